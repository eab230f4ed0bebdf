package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

func TestViewKeys(t *testing.T) {
	cases := []struct {
		keys []string
		want viewID
	}{
		{nil, viewExecutors},
		{[]string{"tab"}, viewThreads},
		{[]string{"tab", "tab"}, viewJobs},
		{[]string{"tab", "tab", "tab"}, viewDetail},
		{[]string{"tab", "tab", "tab", "tab"}, viewFailures},
		{[]string{"tab", "tab", "tab", "tab", "tab"}, viewQueues},
		{[]string{"tab", "tab", "tab", "tab", "tab", "tab"}, viewExecutors},
		{[]string{"shift+tab"}, viewQueues},
		{[]string{"shift+tab", "shift+tab"}, viewFailures},
		{[]string{"6"}, viewQueues},
		{[]string{"2"}, viewThreads},
		{[]string{"3"}, viewJobs},
		{[]string{"4"}, viewDetail},
		{[]string{"5"}, viewFailures},
		{[]string{"5", "enter"}, viewJobs},            // the group's jobs
		{[]string{"5", "enter", "esc"}, viewFailures}, // back to the groups
		{[]string{"5", "enter", "enter", "esc"}, viewJobs},
		{[]string{"3", "1"}, viewExecutors},
		{[]string{"4", "esc"}, viewExecutors}, // back to where the detail was opened
		{[]string{"3", "4", "esc"}, viewJobs},
		{[]string{"2", "4", "esc"}, viewThreads},
		{[]string{"/"}, viewJobs},
		{[]string{"f"}, viewJobs},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.keys, " "), func(t *testing.T) {
			m := newTestModel(t, 80, 24)
			press(m, tc.keys...)
			if m.active != tc.want {
				t.Errorf("view %s, want %s", viewTitles[m.active], viewTitles[tc.want])
			}
			if !strings.Contains(screen(m), "["+string(rune('1'+tc.want))+" "+viewTitles[tc.want]+"]") {
				t.Errorf("the header does not mark %s as shown:\n%s", viewTitles[tc.want], screen(m))
			}
		})
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c"} {
		m := newTestModel(t, 80, 24)
		if cmd := press(m, k); !isQuit(cmd) {
			t.Errorf("%s does not quit", k)
		}
	}
	// In the filter prompt, q is text.
	m := newTestModel(t, 80, 24)
	if cmd := press(m, "/", "q"); isQuit(cmd) {
		t.Error("q quits while typing a filter")
	}
	if m.jobs.q.Text != "q" {
		t.Errorf("filter %q, want q", m.jobs.q.Text)
	}
}

func TestJobsCursor(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3")
	rows := m.jobs.bodyRows()
	steps := []struct {
		key  string
		want int
	}{
		{"j", 1}, {"down", 2}, {"k", 1}, {"up", 0}, {"up", 0},
		{"pgdown", rows - 1}, {"pgup", 0},
		{"G", demoJobs - 1}, {"end", demoJobs - 1}, {"down", demoJobs - 1}, {"g", 0}, {"G", demoJobs - 1}, {"home", 0},
	}
	for _, s := range steps {
		press(m, s.key)
		if m.jobs.cur.pos != s.want {
			t.Fatalf("after %s the cursor is on row %d, want %d", s.key, m.jobs.cur.pos, s.want)
		}
		if m.jobs.cur.pos < m.jobs.cur.off || m.jobs.cur.pos >= m.jobs.cur.off+rows {
			t.Fatalf("after %s the cursor (%d) is off the page [%d, %d)", s.key, m.jobs.cur.pos, m.jobs.cur.off, m.jobs.cur.off+rows)
		}
	}
	press(m, "G")
	id, _ := m.jobs.Selected()
	if !strings.Contains(lineWith(screen(m), "›"), id) {
		t.Errorf("the selected row is not %s:\n%s", id, screen(m))
	}
}

func TestEnterAndBack(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3", "j", "j")
	want, ok := m.jobs.Selected()
	if !ok {
		t.Fatal("no job selected")
	}
	press(m, "enter")
	if m.active != viewDetail || m.detail.JobID() != want {
		t.Fatalf("enter shows view %s job %q, want the detail of %s", viewTitles[m.active], m.detail.JobID(), want)
	}
	if !strings.Contains(screen(m), "Job "+want) {
		t.Errorf("the detail does not show job %s:\n%s", want, screen(m))
	}
	press(m, "esc")
	if m.active != viewJobs || m.jobs.cur.pos != 2 {
		t.Errorf("esc goes to %s row %d, want back to the jobs at row 2", viewTitles[m.active], m.jobs.cur.pos)
	}
}

func TestExecutorEnterShowsItsJobs(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "j") // node-2
	x, _ := m.execs.Selected()
	if x.Hostname != "node-2" {
		t.Fatalf("selected %s, want node-2", x.Hostname)
	}
	press(m, "enter")
	if m.active != viewJobs || m.jobs.q.Executor != x.ID {
		t.Fatalf("enter shows %s with executor %q, want the jobs of %s", viewTitles[m.active], m.jobs.q.Executor, x.ID)
	}
	jobs, _ := m.c.st.Jobs(m.jobs.q, 0, -1)
	for _, j := range jobs {
		if j.Hostname != "node-2" {
			t.Fatalf("job %s of %s listed", j.ID, j.Hostname)
		}
	}
	if !strings.Contains(screen(m), "executor node-2") {
		t.Errorf("the filter bar does not name the executor:\n%s", screen(m))
	}
	press(m, "esc")
	if m.jobs.q.Executor != "" {
		t.Error("esc does not clear the executor filter")
	}
}

func TestThreadsEnterOpensLaneJob(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "2", "j") // node-1, thread 1
	_, want := m.threads.Selected()
	if want == "" {
		t.Fatal("lane without a job")
	}
	press(m, "enter")
	if m.active != viewDetail || m.detail.JobID() != want {
		t.Fatalf("enter shows %s %q, want the detail of %s", viewTitles[m.active], m.detail.JobID(), want)
	}
	press(m, "esc")
	if m.active != viewThreads {
		t.Errorf("esc goes to %s, want threads", viewTitles[m.active])
	}
}

func TestZoom(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "2")
	for _, s := range []struct {
		key  string
		want time.Duration
	}{{"+", time.Minute}, {"+", 30 * time.Second}, {"+", 30 * time.Second}, {"-", time.Minute}, {"-", 2 * time.Minute}, {"-", 5 * time.Minute}, {"-", 10 * time.Minute}, {"-", 10 * time.Minute}} {
		press(m, s.key)
		if m.threads.window != s.want {
			t.Fatalf("after %s the window is %s, want %s", s.key, m.threads.window, s.want)
		}
	}
	if !strings.Contains(screen(m), "last 10m") {
		t.Errorf("the legend does not show the window:\n%s", screen(m))
	}
}

func TestSortKeys(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3")
	if m.jobs.q.Sort != state.SortStarted || !m.jobs.q.Reverse {
		t.Fatalf("default sort %v reverse %v, want started, newest first", m.jobs.q.Sort, m.jobs.q.Reverse)
	}
	press(m, "s")
	if m.jobs.q.Sort != state.SortStageIn {
		t.Errorf("s sorts on %v, want stage-in (the next column)", m.jobs.q.Sort)
	}
	press(m, "S", "S")
	if m.jobs.q.Sort != state.SortThread {
		t.Errorf("S S sorts on %v, want thread", m.jobs.q.Sort)
	}
	// Every column is reachable.
	seen := map[state.SortKey]bool{}
	for range jobCols {
		press(m, "s")
		seen[m.jobs.q.Sort] = true
	}
	if len(seen) != len(jobCols) {
		t.Errorf("s reaches %d sort keys, want %d", len(seen), len(jobCols))
	}
	// r reverses: the wall times go down.
	for m.jobs.q.Sort != state.SortDuration {
		press(m, "s")
	}
	press(m, "r")
	if !m.jobs.q.Reverse || !strings.Contains(screen(m), "WALL▼") {
		t.Fatalf("r does not reverse:\n%s", screen(m))
	}
	page := m.jobs.page
	for i := 1; i < len(page); i++ {
		if page[i].Duration(demoNow) > page[i-1].Duration(demoNow) {
			t.Fatalf("row %d (%s) is longer than the row above", i, page[i].ID)
		}
	}
}

func TestStateFilters(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "f")
	if m.jobs.q.States != failedStates {
		t.Fatalf("f sets states %v, want failed+lost", m.jobs.q.States)
	}
	if m.jobs.total != demoFailed {
		t.Errorf("%d failed jobs listed, want %d", m.jobs.total, demoFailed)
	}
	for _, j := range m.jobs.page {
		if j.State != state.StateFailed && j.State != state.StateLost {
			t.Errorf("job %s (%s) listed as failed", j.ID, j.State)
		}
	}
	if !strings.Contains(screen(m), "state failed+lost") {
		t.Errorf("the filter bar does not say failed:\n%s", screen(m))
	}
	press(m, "f")
	if m.jobs.q.States != 0 {
		t.Errorf("f again leaves states %v", m.jobs.q.States)
	}
	wants := []string{"running", "done", "failed", "lost", "failed+lost", ""}
	for _, want := range wants {
		press(m, "t")
		if got := statesName(m.jobs.q.States); m.jobs.q.States != 0 && got != want {
			t.Errorf("t: state %q, want %q", got, want)
		}
	}
	if m.jobs.q.States != 0 {
		t.Errorf("t does not come back to all states")
	}
	press(m, "t") // running
	for _, j := range m.jobs.page {
		if j.State != state.StateRunning {
			t.Errorf("job %s (%s) listed as running", j.ID, j.State)
		}
	}
}

func TestTextFilter(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "/")
	if !m.jobs.Filtering() {
		t.Fatal("/ does not open the filter prompt")
	}
	typeText(m, "mADD") // case-insensitive
	if m.jobs.q.Text != "mADD" {
		t.Fatalf("filter %q", m.jobs.q.Text)
	}
	jobs, n := m.c.st.Jobs(m.jobs.q, 0, -1)
	if n == 0 {
		t.Fatal("nothing matches mADD")
	}
	for _, j := range jobs {
		if j.Executable != "mAdd" {
			t.Errorf("job %s (%s) matches mADD", j.ID, j.Executable)
		}
	}
	press(m, "backspace")
	if m.jobs.q.Text != "mAD" {
		t.Errorf("backspace leaves %q", m.jobs.q.Text)
	}
	press(m, "enter")
	if m.jobs.Filtering() || m.jobs.q.Text != "mAD" {
		t.Errorf("enter: filtering %v text %q, want the filter kept", m.jobs.Filtering(), m.jobs.q.Text)
	}
	press(m, "j") // keys move again
	if m.jobs.cur.pos != 1 {
		t.Errorf("j after the filter: row %d", m.jobs.cur.pos)
	}
	press(m, "esc")
	if m.jobs.q.Text != "" {
		t.Errorf("esc leaves the filter %q", m.jobs.q.Text)
	}
	press(m, "/", "z", "z", "z")
	if !strings.Contains(screen(m), "/zzz") {
		t.Errorf("the prompt does not show the text:\n%s", screen(m))
	}
	press(m, "enter")
	if !strings.Contains(screen(m), "No job matches the filter") {
		t.Errorf("an empty selection is not explained:\n%s", screen(m))
	}
	press(m, "/", "esc")
	if m.jobs.Filtering() || m.jobs.q.Text != "" {
		t.Errorf("esc in the prompt: filtering %v text %q", m.jobs.Filtering(), m.jobs.q.Text)
	}
}

func TestHelpKey(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3")
	short := m.jobs.height
	press(m, "?")
	if !m.help.ShowAll || m.jobs.height >= short {
		t.Fatalf("? shows all %v, body %d lines (was %d)", m.help.ShowAll, m.jobs.height, short)
	}
	for _, want := range []string{"page down", "sort column", "reverse", "failed only", "state filter", "marks filter", "pause", "export", ".tsv Nextflow trace", "quit"} {
		if !strings.Contains(screen(m), want) {
			t.Errorf("the full help lacks %q:\n%s", want, screen(m))
		}
	}
	press(m, "?")
	if m.help.ShowAll || m.jobs.height != short {
		t.Errorf("? again: shows all %v, body %d lines, want %d", m.help.ShowAll, m.jobs.height, short)
	}
}

// newJobEvent is a job.started of a new job on node-1.
func newJobEvent(id string, at time.Time) eventbus.Message {
	e := eventbus.Event{Executor: "3f2a1b4c-7d1e-4a51-9c0e-2b7f6e1d0a01", Type: eventbus.TypeJobStarted, ID: id, Job: id,
		Thread: 3, Executable: "mNew", Timestamp: eventbus.Timestamp(at), Redelivered: eventbus.Ptr(false)}
	body, _ := jsonMarshal(&e)
	return eventbus.Message{RoutingKey: e.RoutingKey(), Body: body, Received: at}
}

func TestPause(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3") // newest first
	press(m, "p")
	if !m.c.paused {
		t.Fatal("p does not pause")
	}
	before := screen(m)
	m.Update(eventsMsg{batch: []eventbus.Message{newJobEvent("job-new", demoNow)}})
	m.Update(refreshMsg{})
	m.Update(tickMsg(demoNow))
	if _, ok := m.c.st.Job("job-new"); !ok {
		t.Fatal("the event was not collected while paused")
	}
	after := screen(m)
	if strings.Contains(after, "job-new") || strings.Replace(after, "+1 events", "+0 events", 1) != before {
		t.Errorf("the display changed while paused:\n%s\n---\n%s", before, after)
	}
	// Moving through the frozen list still works, on the frozen data.
	press(m, "G")
	if m.jobs.cur.pos != demoJobs-1 {
		t.Errorf("G while paused: row %d, want %d (the jobs as paused)", m.jobs.cur.pos, demoJobs-1)
	}
	press(m, "g", "p")
	if m.c.paused {
		t.Fatal("p again does not resume")
	}
	if !strings.Contains(screen(m), "job-new") {
		t.Errorf("the new job is not shown after resuming:\n%s", screen(m))
	}
}

func TestMouseWheel(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "3")
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if m.jobs.cur.pos != 6 {
		t.Errorf("two notches down: row %d, want 6", m.jobs.cur.pos)
	}
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelUp})
	if m.jobs.cur.pos != 3 {
		t.Errorf("a notch up: row %d, want 3", m.jobs.cur.pos)
	}
	press(m, "f", "enter") // a failed job: its stderr makes the detail long
	m.Update(tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if m.detail.vp.YOffset() != 3 {
		t.Errorf("the wheel scrolls the detail to %d, want 3", m.detail.vp.YOffset())
	}
}

func TestResize(t *testing.T) {
	m := newTestModel(t, 80, 24)
	for _, keys := range [][]string{{"1"}, {"2"}, {"3"}, {"3", "enter"}, {"5"}, {"5", "enter"}, {"3", "m", "enter"}, {"?"}} {
		press(m, keys...)
		for _, sz := range [][2]int{{80, 24}, {100, 30}, {160, 48}, {200, 60}, {40, 10}, {120, 24}, {80, 24}} {
			m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			lines := strings.Split(screen(m), "\n")
			if len(lines) != sz[1] {
				t.Errorf("%v at %dx%d: %d lines", keys, sz[0], sz[1], len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w != sz[0] {
					t.Errorf("%v at %dx%d: line %d is %d wide: %q", keys, sz[0], sz[1], i, w, l)
				}
			}
		}
		if m.help.ShowAll {
			press(m, "?")
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 30, Height: 8})
	if !strings.Contains(screen(m), "needs 40x10") {
		t.Errorf("a too small terminal is not explained:\n%s", screen(m))
	}
}

func TestStatusWordsWithoutColour(t *testing.T) {
	m := newTestModel(t, 160, 48)
	// Executors: each status is a word.
	for _, w := range []string{"online", "stopped: signal", "LOST", "transfers dominate"} {
		if !strings.Contains(screen(m), w) {
			t.Errorf("executors view lacks %q", w)
		}
	}
	press(m, "3", "t", "t", "t") // failed
	if l := lineWith(screen(m), "job-0026"); !strings.Contains(l, "failed") || !strings.Contains(l, " 1 ") {
		t.Errorf("a failed job's row has no state word and exit status: %q", l)
	}
	press(m, "esc", "m") // all jobs, then the stalled
	if l := lineWith(screen(m), "job-0118"); !strings.Contains(l, "STALLED") {
		t.Errorf("the stalled job's row has no STALLED mark: %q", l)
	}
	press(m, "m") // near deadline
	if l := lineWith(screen(m), "job-0126"); !strings.Contains(l, "⚠") {
		t.Errorf("the job near its deadline has no ⚠ mark: %q", l)
	}
	press(m, "2")
	if l := lineWith(screen(m), "job-0118"); !strings.Contains(l, "STALLED") {
		t.Errorf("the stalled job's lane has no STALLED mark: %q", l)
	}
	for _, w := range []string{glyphStageIn + " stage-in", glyphExec + " execution", glyphStageOut + " stage-out", glyphFailed + " failed"} {
		if !strings.Contains(screen(m), w) {
			t.Errorf("threads legend lacks %q", w)
		}
	}
}

func TestExportKey(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "f", "e")
	if !m.export.active {
		t.Fatal("e does not open the export prompt")
	}
	def := m.export.input.Value()
	if filepath.Base(def) != "hyperflow-top-20240501-100300.csv" || filepath.Dir(def) != m.opts.ExportDir {
		t.Errorf("default file %q", def)
	}
	// Export the failed jobs under another name.
	want := filepath.Join(m.opts.ExportDir, "failed.csv")
	m.export.input.SetValue("")
	typeText(m, want)
	cmd := press(m, "enter")
	if m.export.active || cmd == nil {
		t.Fatal("enter does not write")
	}
	m.Update(cmd())
	// It says the filter applied.
	if m.status != fmt.Sprintf("exported %d of %d jobs (filter: state failed+lost) to %s (CSV)", demoFailed, demoJobs, want) ||
		!strings.Contains(screen(m), "exported") {
		t.Errorf("the status line does not confirm: %q\n%s", m.status, screen(m))
	}
	f, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	jobs, err := export.ReadCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != demoFailed {
		t.Errorf("%d jobs in the CSV, want the %d failed", len(jobs), demoFailed)
	}
	for _, j := range jobs {
		if j.State != state.StateFailed {
			t.Errorf("job %s is %s", j.ID, j.State)
		}
	}
	// The default name, with ctrl+s; the file is the whole table.
	cmd = press(m, "f", "ctrl+s", "enter")
	m.Update(cmd())
	if _, err := os.Stat(def); err != nil {
		t.Errorf("default export: %v", err)
	}
	if m.status != fmt.Sprintf("exported %d jobs to %s (CSV)", demoJobs, def) {
		t.Errorf("the status line does not confirm the whole table: %q", m.status)
	}
	// esc cancels; an unwritable path is reported.
	press(m, "e", "esc")
	if m.export.active || !strings.Contains(screen(m), "export cancelled") {
		t.Errorf("esc does not cancel:\n%s", screen(m))
	}
	press(m, "e")
	m.export.input.SetValue(filepath.Join(m.opts.ExportDir, "missing", "x.csv"))
	m.Update(press(m, "enter")())
	if !strings.Contains(screen(m), "export CSV to") || !m.statusErr {
		t.Errorf("a failed export is not reported:\n%s", screen(m))
	}
	// The status message goes after a few ticks.
	for range statusTicks {
		m.Update(tickMsg(demoNow))
	}
	if m.status != "" {
		t.Errorf("status %q stays", m.status)
	}
}

func TestWaitEventsBatches(t *testing.T) {
	ch := make(chan eventbus.Message, 5000)
	for i := range 5000 {
		ch <- newJobEvent("j"+string(rune('a'+i%26)), demoNow)
	}
	close(ch)
	var sizes []int
	for {
		msg := waitEvents(ch)().(eventsMsg)
		sizes = append(sizes, len(msg.batch))
		if msg.closed {
			break
		}
	}
	if len(sizes) != 3 || sizes[0] != maxBatch || sizes[1] != maxBatch || sizes[2] != 5000-2*maxBatch {
		t.Errorf("batches %v, want %d %d %d", sizes, maxBatch, maxBatch, 5000-2*maxBatch)
	}
}

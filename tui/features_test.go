package tui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The demo's marked jobs (see demoSpec).
const (
	demoStalledJob  = "job-0118" // node-2, stage-in stalled since about 10:02:09
	demoDeadlineJob = "job-0126" // node-2, executing, 55 s before its deadline
)

func TestFailuresView(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "5")
	groups := m.c.st.FailureGroups()
	if len(groups) < 5 {
		t.Fatalf("%d failure groups in the demo, want several", len(groups))
	}
	sc := screen(m)
	for i, g := range groups[:5] {
		l := lineWith(sc, g.Signature[:min(len(g.Signature), 20)])
		if !strings.Contains(l, g.Executable) || !strings.Contains(l, fmt.Sprint(g.Count)) {
			t.Errorf("group %d (%s %q) not listed: %q", i, g.Executable, g.Signature, l)
		}
	}
	if !strings.HasPrefix(lineWith(sc, "›"), "›") || !strings.Contains(lineWith(sc, "›"), groups[0].Executable) {
		t.Errorf("the cursor is not on the newest group:\n%s", sc)
	}
	// The panel tells the selected group.
	press(m, "j", "j")
	g := groups[2]
	if !strings.Contains(screen(m), "latest: "+g.Line[:min(len(g.Line), 40)]) {
		t.Errorf("the panel does not show the group's latest line %q:\n%s", g.Line, screen(m))
	}
	// enter: the group's jobs, every one failed into it.
	press(m, "enter")
	if m.active != viewJobs || m.jobs.q.Group != g.Key {
		t.Fatalf("enter shows %s with group %q, want the jobs of group %q", viewTitles[m.active], m.jobs.q.Group, g.Key)
	}
	jobs, n := m.c.st.Jobs(m.jobs.q, 0, -1)
	if int64(n) != g.Count {
		t.Errorf("%d jobs listed for a group of %d", n, g.Count)
	}
	for _, j := range jobs {
		d, _ := m.c.st.Job(j.ID)
		if d.FailureGroup != g.Key || j.State != state.StateFailed {
			t.Errorf("job %s (%s, group %q) listed", j.ID, j.State, d.FailureGroup)
		}
	}
	if !strings.Contains(screen(m), "group "+g.Executable) {
		t.Errorf("the filter bar does not name the group:\n%s", screen(m))
	}
	// A job's detail shows its stderr tail and its group; esc, esc: back
	// to the groups, the cursor where it was.
	press(m, "enter")
	if sc := screen(m); !strings.Contains(sc, "STDERR (tail)") && !strings.Contains(sc, "EXCEPTIONS") || !strings.Contains(sc, "failure group") {
		t.Errorf("the failed job's detail lacks its stderr or group:\n%s", sc)
	}
	press(m, "esc", "esc")
	if m.active != viewFailures || m.failures.cur.pos != 2 || m.jobs.q.Group != "" {
		t.Errorf("esc esc: view %s, cursor %d, group %q; want the failures at row 2, no group filter",
			viewTitles[m.active], m.failures.cur.pos, m.jobs.q.Group)
	}
	// The group filter also goes with esc in the jobs view when reached
	// otherwise.
	press(m, "enter", "3", "esc")
	if m.jobs.q.Group != "" {
		t.Errorf("esc leaves the group filter %q", m.jobs.q.Group)
	}
}

func TestMarksKey(t *testing.T) {
	m := newTestModel(t, 80, 24)
	steps := []struct {
		flags state.JobFlags
		want  []string
		mark  string
	}{
		{state.FlagStalled, []string{demoStalledJob}, "STALLED"},
		{state.FlagNearDeadline, []string{demoDeadlineJob}, "⚠"},
		{state.FlagRedelivered, []string{"job-0155", "job-0141"}, "↻"},
		{0, nil, ""},
	}
	for _, s := range steps {
		press(m, "m")
		if m.active != viewJobs || m.jobs.q.Flags != s.flags {
			t.Fatalf("m: view %s flags %v, want the jobs with flags %v", viewTitles[m.active], m.jobs.q.Flags, s.flags)
		}
		if s.flags == 0 {
			if m.jobs.total != demoJobs || strings.Contains(screen(m), "marks") {
				t.Errorf("m back to all: %d jobs\n%s", m.jobs.total, screen(m))
			}
			continue
		}
		if m.jobs.total != len(s.want) {
			t.Errorf("flags %v: %d jobs, want %v", s.flags, m.jobs.total, s.want)
		}
		for _, id := range s.want {
			if l := lineWith(screen(m), id); !strings.Contains(l, s.mark) {
				t.Errorf("flags %v: %s not listed with %s: %q", s.flags, id, s.mark, l)
			}
		}
		if !strings.Contains(screen(m), "marks "+marksName(s.flags)) {
			t.Errorf("the filter bar does not say the marks:\n%s", screen(m))
		}
	}
	press(m, "m", "esc")
	if m.jobs.q.Flags != 0 {
		t.Error("esc does not clear the marks filter")
	}
	// The header counts the marks.
	for _, want := range []string{"stalled 1", "deadline 1", "redeliv 2", "1 LOST"} {
		if !strings.Contains(screen(m), want) {
			t.Errorf("the header lacks %q:\n%s", want, screen(m))
		}
	}
}

func TestSortByDeadline(t *testing.T) {
	m := newTestModel(t, 160, 48)
	press(m, "3")
	for m.jobs.q.Sort != state.SortDeadline {
		press(m, "s")
	}
	if id, _ := m.jobs.Selected(); id != demoDeadlineJob {
		t.Errorf("sorted by deadline, soonest first: %s on top, want %s\n%s", id, demoDeadlineJob, screen(m))
	}
	if !strings.Contains(screen(m), "DEADLIN▲") {
		t.Errorf("the column is not marked sorted:\n%s", screen(m))
	}
}

func TestThreadsViewMarks(t *testing.T) {
	for _, w := range []int{80, 160} {
		m := newTestModel(t, w, 48)
		press(m, "2")
		sc := screen(m)
		if l := lineWith(sc, "STALLED"); !strings.Contains(l, "in 12MiB") {
			t.Errorf("%d: the stalled lane: %q", w, l)
		}
		if l := lineWith(sc, "node-4"); !strings.Contains(l, "LOST") {
			t.Errorf("%d: the lost executor: %q", w, l)
		}
		if l := lineWith(sc, "node-2 "); !strings.Contains(l, "busy 92% (staging 50%, exec 42%)") {
			t.Errorf("%d: node-2's utilisation: %q", w, l)
		}
		// The lane of the job near its deadline shows its memory and CPU.
		if l := lineWith(sc, "exec 1m27s"); !strings.Contains(l, "711MiB 0.9cpu") {
			t.Errorf("%d: a running command's lane: %q", w, l)
		}
		// The busy share per thread on wide terminals.
		if got := strings.Contains(lineWith(sc, "STALLED"), "96%"); got != (w >= 100) {
			t.Errorf("%d: busy share shown %v:\n%s", w, got, sc)
		}
	}
}

func TestExecutorsViewUtilisation(t *testing.T) {
	m := newTestModel(t, 80, 24)
	sc := screen(m)
	if l := lineWith(sc, "node-2"); !strings.Contains(l, "92%   50%  42%") {
		t.Errorf("node-2's busy, staging and exec shares: %q", l)
	}
	if !strings.Contains(sc, "↳ exec 42%, staging 50%: transfers dominate") {
		t.Errorf("no diagnosis under node-2:\n%s", sc)
	}
	if l := lineWith(sc, "node-4"); !strings.HasPrefix(strings.TrimLeft(l, " ›"), "LOST") {
		t.Errorf("node-4 is not LOST: %q", l)
	}
	if !strings.Contains(sc, "LOST: silent for") {
		t.Errorf("no line saying why node-4 is lost:\n%s", sc)
	}
	for _, want := range []string{"IN RATE", "OUT TOTAL", "nfs ", "cloud ", "busy 86%", "STAGING"} {
		if !strings.Contains(sc, want) {
			t.Errorf("the executors view lacks %q:\n%s", want, sc)
		}
	}
	// The cursor moves over executors, not lines.
	press(m, "j", "j", "j")
	if x, _ := m.execs.Selected(); x.Hostname != "node-4" || !strings.HasPrefix(lineWith(screen(m), "node-4"), "›") {
		t.Errorf("j j j selects %s:\n%s", x.Hostname, screen(m))
	}
}

// The executors view shows each executor's broker node (the demo's
// executors are on the nodes of a cluster) when the terminal is wide
// enough, and drops the column first on a narrow one, every line still
// within the width.
func TestExecutorsViewBroker(t *testing.T) {
	m := newTestModel(t, 160, 48)
	sc := screen(m)
	if !strings.Contains(lineWith(sc, "STATUS"), " BROKER ") {
		t.Errorf("no BROKER column:\n%s", sc)
	}
	for host, node := range map[string]string{"node-1": "rmq-1", "node-2": "rmq-2", "node-3": "rmq-3", "node-4": "rmq-1"} {
		if l := lineWith(sc, host); !strings.Contains(l, " "+node+" ") {
			t.Errorf("%s's line does not show its broker node %s: %q", host, node, l)
		}
	}
	if strings.Contains(sc, "***") || strings.Contains(sc, "amqp") {
		t.Errorf("the view shows more of the URL than the node:\n%s", sc)
	}
	m = newTestModel(t, 80, 24)
	sc = screen(m)
	if strings.Contains(sc, "BROKER") || strings.Contains(sc, "rmq-") {
		t.Errorf("at 80 columns the broker column is kept:\n%s", sc)
	}
	for i, l := range strings.Split(sc, "\n") {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line %d is %d columns wide: %q", i, w, l)
		}
	}
}

func TestBrokerNode(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://hf:***@rmq-2:5672/hf":       "rmq-2",
		"amqp://hf:***@rmq-2:5673/hf":       "rmq-2:5673",
		"amqps://hf:***@rmq-2:5671/hf":      "rmq-2",
		"amqps://hf:***@rmq-2:5672/hf":      "rmq-2:5672",
		"amqp://guest:***@127.0.0.1:42593/": "127.0.0.1:42593",
		"amqp://[::1]:5672/":                "::1",
		"":                                  "-",
		"not a url":                         "not a url",
	} {
		if got := brokerNode(in); got != want {
			t.Errorf("brokerNode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetailProgressBar(t *testing.T) {
	at := demoStart
	x := "exec-p"
	ev := func(dt float64, e eventbus.Event) eventbus.Message {
		e.Executor, e.Timestamp = x, eventbus.Timestamp(at)+dt
		if strings.HasPrefix(e.Type, "job.") {
			e.ID, e.Job, e.Thread = "p1", "p1", 1
		}
		body, _ := json.Marshal(&e)
		return eventbus.Message{RoutingKey: e.RoutingKey(), Body: body, Received: eventbus.FromTimestamp(e.Timestamp)}
	}
	msgs := []eventbus.Message{
		ev(0, eventbus.Event{Type: eventbus.TypeExecutorReady, Hostname: "node-p", Threads: 1, Storage: "cloud"}),
		ev(1, eventbus.Event{Type: eventbus.TypeJobStarted, Executable: "mOut"}),
		ev(1, eventbus.Event{Type: eventbus.TypeExecStarted, Executable: "mOut"}),
		ev(2, eventbus.Event{Type: eventbus.TypeExecFinished, ExitStatus: eventbus.Ptr(0), Time: eventbus.Ptr(1.0)}),
		ev(2, eventbus.Event{Type: eventbus.TypeStageOutStarted}),
		ev(4, eventbus.Event{Type: eventbus.TypeJobProgress, Phase: eventbus.PhaseStageOut, Elapsed: eventbus.Ptr(2.0),
			Bytes: eventbus.Ptr(int64(10 << 20)), BytesTotal: eventbus.Ptr(int64(100 << 20))}),
		ev(6, eventbus.Event{Type: eventbus.TypeJobProgress, Phase: eventbus.PhaseStageOut, Elapsed: eventbus.Ptr(4.0),
			Bytes: eventbus.Ptr(int64(25 << 20)), BytesTotal: eventbus.Ptr(int64(100 << 20))}),
	}
	st := state.New(state.Options{})
	for _, msg := range msgs {
		if err := st.Apply(msg); err != nil {
			t.Fatal(err)
		}
	}
	now := at.Add(6 * time.Second)
	m := New(Options{State: st, Now: func() time.Time { return now }, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	press(m, "3", "enter")
	sc := screen(m)
	// 25 of 100 MiB at 6.25 MiB/s (since the phase began): 12 s left.
	if l := lineWith(sc, "progress"); !strings.Contains(l, "25.0MiB of 100MiB") || !strings.Contains(l, "█") ||
		!strings.Contains(l, "25%") || !strings.Contains(l, "6.2MiB/s") || !strings.Contains(l, "about 12.0s left") {
		t.Errorf("the progress line: %q", l)
	}
	press(m, "2")
	if l := lineWith(screen(m), "p1"); !strings.Contains(l, "out 25% 6.2MiB/s p1") {
		t.Errorf("the lane: %q", l)
	}
}

// TestLateMonitor: a monitor started while jobs run shows them at once,
// from the executors' heartbeats.
func TestLateMonitor(t *testing.T) {
	msgs, err := record.LoadFile("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	st := state.New(state.Options{})
	from := demoNow.Add(-6 * time.Second) // one heartbeat of each executor
	for _, msg := range msgs {
		if !msg.Received.Before(from) && msg.RoutingKey == "executor.heartbeat" {
			_ = st.Apply(msg)
		}
	}
	st.Tick(demoNow)
	m := New(Options{State: st, Now: func() time.Time { return demoNow }, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
	press(m, "2")
	for _, id := range []string{demoStalledJob, demoDeadlineJob} {
		if l := lineWith(screen(m), id); l == "" {
			t.Errorf("%s is not on its lane:\n%s", id, screen(m))
		}
	}
	press(m, "3")
	if l := lineWith(screen(m), demoDeadlineJob); !strings.Contains(l, "running") || !strings.Contains(l, "⚠") {
		t.Errorf("the job known from heartbeats: %q\n%s", l, screen(m))
	}
}

func TestExportFormats(t *testing.T) {
	for path, want := range map[string]Format{"a.csv": FormatCSV, "A.CSV": FormatCSV, "t.tsv": FormatNextflow,
		"t.trace": FormatNextflow, "x/t.txt": FormatNextflow, "c.json": FormatChrome} {
		if f, err := FormatOf(path); err != nil || f != want {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", path, f, err, want)
		}
	}
	if _, err := FormatOf("a.xlsx"); err == nil || !strings.Contains(err.Error(), ".tsv") {
		t.Errorf("FormatOf(a.xlsx): %v, want an error naming the formats", err)
	}

	m := newTestModel(t, 160, 24)
	press(m, "e")
	def := m.export.input.Value()
	// tab steps the extension through the formats.
	for _, ext := range []string{".tsv", ".json", ".csv"} {
		press(m, "tab")
		if got := m.export.input.Value(); got != strings.TrimSuffix(def, ".csv")+ext {
			t.Errorf("tab: %q, want the %s name", got, ext)
		}
	}
	// An unknown extension keeps the prompt open and says why.
	m.export.input.SetValue(filepath.Join(m.opts.ExportDir, "x.xlsx"))
	if cmd := press(m, "enter"); cmd != nil || !m.export.active || !strings.Contains(screen(m), "unknown export format") {
		t.Errorf("an unknown format: active %v\n%s", m.export.active, screen(m))
	}
	// A Nextflow trace and a Chrome trace of the failed jobs.
	press(m, "esc", "f")
	for _, name := range []string{"failed.tsv", "failed.json"} {
		path := filepath.Join(m.opts.ExportDir, name)
		press(m, "e")
		m.export.input.SetValue(path)
		cmd := press(m, "enter")
		if cmd == nil {
			t.Fatalf("%s: enter does not write", name)
		}
		m.Update(cmd())
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(name) {
		case ".tsv":
			if m.status != fmt.Sprintf("exported %d of %d jobs (filter: state failed+lost) to %s (Nextflow trace)", demoFailed, demoJobs, path) {
				t.Errorf("no confirmation: %q", m.status)
			}
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) != demoFailed+1 || !strings.HasPrefix(lines[0], "task_id\tnative_id\tprocess") {
				t.Errorf("trace: %d lines, header %q", len(lines), lines[0])
			}
			for _, l := range lines[1:] {
				if !strings.Contains(l, "\tFAILED\t") {
					t.Errorf("trace row not FAILED: %q", l)
				}
			}
		case ".json":
			var trace struct {
				TraceEvents []struct {
					Ph   string         `json:"ph"`
					Args map[string]any `json:"args"`
				} `json:"traceEvents"`
			}
			if err := json.Unmarshal(data, &trace); err != nil {
				t.Fatalf("chrome trace: %v", err)
			}
			jobs := map[any]bool{}
			for _, e := range trace.TraceEvents {
				if e.Ph == "X" {
					jobs[e.Args["job"]] = true
				}
			}
			if len(jobs) != demoFailed {
				t.Errorf("chrome trace: stages of %d jobs, want %d", len(jobs), demoFailed)
			}
		}
	}
}

func TestResumeRecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	demo, err := os.ReadFile("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// A monitor killed while writing a line: the half line goes.
	if err := os.WriteFile(path, append(demo, `{"t":"2024-05-01T10:03:00Z","key":"job.x.sta`...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseArgs([]string{"--resume", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	rec, history, err := openRecording(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != demoEvents {
		t.Fatalf("resumed %d events, want %d", len(history), demoEvents)
	}
	st := newState(cfg, history, demoNow)
	if tot := st.Totals(demoNow); tot.Kept != demoJobs || tot.Stalled != 1 {
		t.Errorf("resumed state: %d jobs, %d stalled", tot.Kept, tot.Stalled)
	}
	// What follows is recorded after the history.
	more := newJobEvent("job-after", demoNow.Add(time.Second))
	if err := rec.Record(more); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := closeRecorder(rec, cfg, Env{Stderr: &stderr}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "recorded 1 more events to "+path) {
		t.Errorf("stderr: %q", stderr.String())
	}
	got, err := record.LoadFile(path)
	if err != nil || len(got) != demoEvents+1 || got[demoEvents].RoutingKey != more.RoutingKey {
		t.Fatalf("the recording after resuming: %d events, %v", len(got), err)
	}
	// The UI starts with the history and says so.
	m := New(Options{State: st, Now: func() time.Time { return demoNow }, Location: time.UTC,
		Status: "resumed 1574 events from " + path + "; recording to it"})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
	if !strings.Contains(screen(m), "resumed 1574 events") || !strings.Contains(screen(m), "node-4") {
		t.Errorf("the resumed monitor:\n%s", screen(m))
	}
	// A file that is not a recording is refused, and left as it was.
	bad := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(bad, []byte("not a recording\nat all\n"), 0o644)
	cfg.Resume = bad
	if _, _, err := openRecording(cfg); err == nil || !errors.Is(err, record.ErrBadLine) || !strings.Contains(err.Error(), "--resume") {
		t.Errorf("resuming a file that is not a recording: %v", err)
	}
	if data, _ := os.ReadFile(bad); string(data) != "not a recording\nat all\n" {
		t.Errorf("the file was changed: %q", data)
	}
}

func TestHeadlessTraces(t *testing.T) {
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }
	cfg, err := ParseArgs([]string{"--replay", "testdata/demo.jsonl", "--speed", "0", "--csv", out("j.csv"),
		"--trace", out("t.tsv"), "--chrome-trace", out("c.json")}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := Run(t.Context(), cfg, Env{Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("wrote %d jobs to %s (%d events received)", demoJobs, out("j.csv"), demoEvents),
		fmt.Sprintf("wrote %d jobs to %s (Nextflow trace, %d events received)", demoJobs, out("t.tsv"), demoEvents),
		fmt.Sprintf("wrote %d jobs to %s (Chrome trace, %d events received)", demoJobs, out("c.json"), demoEvents),
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if n := readJobsCSV(t, out("j.csv")); n != demoJobs {
		t.Errorf("%d jobs in the CSV", n)
	}
	tsv, _ := os.ReadFile(out("t.tsv"))
	if n := strings.Count(string(tsv), "\n"); n != demoJobs+1 {
		t.Errorf("%d lines in the trace, want %d", n, demoJobs+1)
	}
	f, _ := os.Open(out("c.json"))
	defer f.Close()
	var v map[string]any
	if err := json.NewDecoder(f).Decode(&v); err != nil || v["traceEvents"] == nil {
		t.Errorf("the Chrome trace is not a trace: %v", err)
	}
	// Only a trace is headless too; an unwritable one fails at once.
	cfg, _ = ParseArgs([]string{"--replay", "testdata/demo.jsonl", "--chrome-trace", filepath.Join(dir, "no", "c.json")},
		func(string) string { return "" })
	if err := Run(t.Context(), cfg, Env{Terminal: false, Stderr: io.Discard}); err == nil || !strings.Contains(err.Error(), "--chrome-trace") {
		t.Errorf("an unwritable --chrome-trace: %v", err)
	}
}

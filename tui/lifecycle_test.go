package tui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// newLaterModel is the demo seen later than its end: at demoNow+after,
// with no event since.
func newLaterModel(t *testing.T, w, h int, after time.Duration) *Model {
	t.Helper()
	st := loadDemo(t)
	later := demoNow.Add(after)
	st.Tick(later)
	m := New(Options{State: st, Now: func() time.Time { return later }, Location: time.UTC, ExportDir: t.TempDir()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// Five minutes after the demo's end, its stopped executor (node-3) is gone:
// shown as such, last; h hides it (and says so), in the executors and the
// threads views; the header counts the live executors only.
func TestGoneExecutors(t *testing.T) {
	m := newLaterModel(t, 100, 30, 5*time.Minute)
	sc := screen(m)
	rows := []string{}
	for _, l := range strings.Split(sc, "\n") {
		if f := strings.Fields(strings.TrimLeft(l, "›")); len(f) > 1 && strings.HasPrefix(f[1], "node-") {
			rows = append(rows, f[0]+" "+f[1])
		}
	}
	if len(rows) != 4 || rows[3] != "gone node-3" {
		t.Errorf("executors (status, host) %q: want node-3 gone, last\n%s", rows, sc)
	}
	// node-1, node-2 and node-4 are silent with jobs running: LOST, live.
	if l := lineWith(sc, "exec"); !strings.Contains(l, "0/3") || !strings.Contains(l, "3 LOST") {
		t.Errorf("header %q: want 0/3 online, 3 LOST (node-3 gone is not counted)", l)
	}
	press(m, "h")
	sc = screen(m)
	if strings.Contains(sc, "node-3") {
		t.Errorf("h: node-3 still shown:\n%s", sc)
	}
	if !strings.Contains(sc, "1 gone executor hidden") {
		t.Errorf("h: no word of the hidden executor:\n%s", sc)
	}
	press(m, "2")
	if sc := screen(m); strings.Contains(sc, "node-3") || !strings.Contains(sc, "1 gone hidden") {
		t.Errorf("threads view with gone executors hidden:\n%s", sc)
	}
	press(m, "h")
	if sc := screen(m); !strings.Contains(sc, "node-3") {
		t.Errorf("h again: node-3 not shown:\n%s", sc)
	}
	// The help says so.
	press(m, "1", "?")
	if sc := screen(m); !strings.Contains(sc, "hide gone") {
		t.Errorf("the help does not tell the key:\n%s", sc)
	}
}

func TestGoneAfterFlag(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want time.Duration
		err  string
	}{
		{nil, state.DefaultGoneAfter, ""},
		{[]string{"--gone-after", "1m"}, time.Minute, ""},
		{[]string{"--gone-after", "0"}, -1, ""}, // never
		{[]string{"--gone-after", "-1s"}, 0, "--gone-after -1s: must not be negative"},
	} {
		cfg, err := ParseArgs(tc.args, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.stateOptions().GoneAfter; got != tc.want {
			t.Errorf("%q: GoneAfter %s, want %s", tc.args, got, tc.want)
		}
	}
}

// eventAt is ev as received at t (its timestamp 10 ms earlier).
func eventAt(t time.Time, ev eventbus.Event) eventbus.Message {
	ev.Timestamp = eventbus.Timestamp(t.Add(-10 * time.Millisecond))
	ev.Job = ev.ID
	body, err := jsonMarshal(&ev)
	if err != nil {
		panic(err)
	}
	return eventbus.Message{RoutingKey: ev.RoutingKey(), Body: body, Received: t}
}

// modelOf is a model of the events, seen at now, w×h.
func modelOf(t *testing.T, w, h int, now time.Time, msgs ...eventbus.Message) *Model {
	t.Helper()
	st := state.New(state.Options{})
	for _, msg := range msgs {
		if err := st.Apply(msg); err != nil {
			t.Fatal(err)
		}
	}
	st.Tick(now)
	m := New(Options{State: st, Now: func() time.Time { return now }, Location: time.UTC, ExportDir: t.TempDir()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// An executor draining after SIGTERM shows as draining, with the jobs it
// waits for, in the executors and threads views and the header.
func TestDrainingExecutor(t *testing.T) {
	const x = "d1a2b3c4-0000-4000-8000-000000000001"
	t0 := demoStart
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	run := func(id string, thread int64) eventbus.RunningJob {
		return eventbus.RunningJob{ID: id, Thread: thread, Phase: eventbus.PhaseExecution,
			Since: eventbus.Timestamp(sec(1)), Executable: "/bin/sleep"}
	}
	running := []eventbus.RunningJob{run("job-a", 1), run("job-b", 2)}
	m := modelOf(t, 100, 30, sec(12),
		eventAt(sec(0), eventbus.Event{Executor: x, Type: eventbus.TypeExecutorReady, Hostname: "node-9",
			Threads: 2, Storage: "local", Version: "1.0.0", Queue: "hyperflow.jobs"}),
		eventAt(sec(1), eventbus.Event{Executor: x, Type: eventbus.TypeJobStarted, ID: "job-a", Thread: 1,
			Executable: "/bin/sleep", Redelivered: eventbus.Ptr(false)}),
		eventAt(sec(1), eventbus.Event{Executor: x, Type: eventbus.TypeJobStarted, ID: "job-b", Thread: 2,
			Executable: "/bin/sleep", Redelivered: eventbus.Ptr(false)}),
		eventAt(sec(10), eventbus.Event{Executor: x, Type: eventbus.TypeExecutorDraining, Reason: "signal terminated",
			Busy: eventbus.Ptr(2), Running: &running}),
	)
	sc := screen(m)
	if l := lineWith(sc, "node-9"); !strings.HasPrefix(strings.TrimLeft(l, " ›"), "draining") {
		t.Errorf("node-9 row %q: want draining", l)
	}
	if !strings.Contains(sc, "draining for 2s (signal terminated): waits for 2 jobs: job-a, job-b") {
		t.Errorf("no line telling what node-9 waits for:\n%s", sc)
	}
	if l := lineWith(sc, "exec"); !strings.Contains(l, "0/1") || !strings.Contains(l, "1 draining") {
		t.Errorf("header %q: want 0/1 online, 1 draining", l)
	}
	press(m, "2")
	if l := lineWith(screen(m), "node-9"); !strings.Contains(l, "draining") || !strings.Contains(l, "waits for 2 jobs") {
		t.Errorf("threads view, node-9's line %q: want draining and the jobs it waits for", l)
	}
}

// The filter matches more than ids and executables (the state's tests
// check each field); the prompt and the help say which fields.
func TestFilterFieldsHelp(t *testing.T) {
	m := newTestModel(t, 80, 24)
	press(m, "/")
	typeText(m, "exit 1")
	jobs, n := m.c.st.Jobs(m.jobs.q, 0, -1)
	if n == 0 {
		t.Fatal("nothing matches exit 1 in the demo")
	}
	for _, j := range jobs {
		if !j.HasExit || j.ExitStatus != 1 {
			t.Errorf("job %s (exit %d) matches exit 1", j.ID, j.ExitStatus)
		}
	}
	press(m, "esc", "/")
	if sc := screen(m); !strings.Contains(sc, "state, exit") {
		t.Errorf("the prompt's placeholder does not name the fields:\n%s", sc)
	}
	press(m, "esc", "?")
	if sc := screen(m); !strings.Contains(sc, "/ matches") || !strings.Contains(sc, "exit status") ||
		!strings.Contains(sc, "stderr") {
		t.Errorf("the help does not say what / matches:\n%s", sc)
	}
}

// A monitor started late: the header's counts are what it saw, the rows
// the executors' own; the header says which is which, and the executors'
// total agrees with the rows.
func TestSeenAndExecutorTotals(t *testing.T) {
	const x = "1a2b3c4d-0000-4000-8000-000000000001"
	hb := eventbus.Event{Executor: x, Type: eventbus.TypeExecutorHeartbeat, Hostname: "node-5", Threads: 2,
		Busy: eventbus.Ptr(0), JobsDone: eventbus.Ptr[int64](669), JobsFailed: eventbus.Ptr[int64](90),
		Running: &[]eventbus.RunningJob{}, Interval: 5}
	now := demoStart.Add(2 * time.Second)
	for _, w := range []int{80, 160} {
		m := modelOf(t, w, 24, now, eventAt(demoStart.Add(time.Second), hb))
		sc := screen(m)
		if l := lineWith(sc, "node-5"); !strings.Contains(l, " 669 ") || !strings.Contains(l, " 90 ") {
			t.Errorf("%d columns: row %q: want the executor's 669 done, 90 failed", w, l)
		}
		head := lineWith(sc, "exec")
		want := []string{"seen: done 0  fail 0 │ execs: done 669  fail 90"}
		if w >= 110 {
			want = []string{"seen: done 0  failed 0 │ executors: done 669  failed 90"}
		}
		for _, s := range want {
			if !strings.Contains(head, s) {
				t.Errorf("%d columns: header %q lacks %q", w, head, s)
			}
		}
	}
	// When they agree, no label.
	m := newTestModel(t, 80, 24)
	if head := lineWith(screen(m), "exec"); strings.Contains(head, "seen") {
		t.Errorf("the demo's header %q: labelled though the counts agree", head)
	}
}

// A connection error longer than the screen is wide is shown whole: the
// status line wraps (and the view above gives up the lines).
func TestLongConnectionErrorWraps(t *testing.T) {
	m := newTestModel(t, 80, 24)
	m.opts.Source = &Source{Notices: make(chan Notice), Label: "127.0.0.1:5672"}
	text := `connect to broker amqp://guest:***@127.0.0.1:5672/: Exception (403) Reason: "username or password not allowed"; retrying in 1.2s`
	m.Update(noticeMsg(Notice{State: ConnDown, Text: text, Err: errors.New("403")}))
	sc := screen(m)
	if n := strings.Count(sc, "\n") + 1; n != 24 {
		t.Errorf("%d lines, want 24", n)
	}
	flat := strings.Join(strings.Fields(sc), " ")
	if !strings.Contains(flat, text) {
		t.Errorf("the error is not shown whole:\n%s", sc)
	}
	// Gone when connected.
	m.Update(noticeMsg(Notice{State: ConnUp, Text: "connected to 127.0.0.1:5672"}))
	if sc := screen(m); strings.Contains(sc, "username") || m.execs.height != 24-headerLines-2 {
		t.Errorf("after connecting: the error stays, or the view has %d lines:\n%s", m.execs.height, sc)
	}
}

// At 60x15 the job detail cuts its long lines with "…".
func TestDetailCutsWithEllipsis(t *testing.T) {
	m := newTestModel(t, 60, 15)
	press(m, "f", "enter")
	cut := 0
	for _, l := range m.detail.lines() {
		if ansiWidth(l) <= 60 {
			continue
		}
		plain := ansi.Strip(l)
		head := plain[:20]
		got := lineWith(screen(m), head)
		if got == "" {
			continue // scrolled off
		}
		cut++
		if !strings.HasSuffix(strings.TrimRight(got, " "), "…") {
			t.Errorf("line cut without …: %q (of %q)", got, plain)
		}
	}
	if cut == 0 {
		t.Fatalf("no long line on screen:\n%s", screen(m))
	}
}

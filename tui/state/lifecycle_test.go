package state_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The life of an executor as the monitor tells it: online, stale, LOST,
// draining, stopped, gone.

// life feeds events to a model; each is received 10 ms after its
// timestamp (seconds after base).
type life struct {
	t *testing.T
	m *state.Model
}

func newLife(t *testing.T, opts state.Options) *life {
	return &life{t: t, m: state.New(opts)}
}

// send applies ev, stamped at base+s, and fails the test on an anomaly.
func (l *life) send(s float64, ev eventbus.Event) {
	l.t.Helper()
	if err := l.m.Apply(eventMsg(s, ev)); err != nil {
		l.t.Fatalf("%s: %v", ev.Type, err)
	}
}

func eventMsg(s float64, ev eventbus.Event) eventbus.Message {
	ev.Timestamp = base + s
	if ev.ID != "" {
		ev.Job = ev.ID
	}
	body, err := json.Marshal(&ev)
	if err != nil {
		panic(err)
	}
	key := ev.RoutingKey()
	if ev.ID == "" && ev.Job != "" {
		key = eventbus.JobRoutingKey(ev.Job, ev.Type)
	}
	return eventbus.Message{RoutingKey: key, Body: body, Received: at(s + 0.01)}
}

func (l *life) executor(id string, now float64) state.ExecutorView {
	l.t.Helper()
	l.m.Tick(at(now))
	x, ok := l.m.Executor(id)
	if !ok {
		l.t.Fatalf("executor %s unknown", id)
	}
	return x
}

func ready(id, host string) eventbus.Event {
	return eventbus.Event{Executor: id, Type: eventbus.TypeExecutorReady, Hostname: host, Threads: 2,
		Storage: "local", Version: "1.0.0", Queue: "hyperflow.jobs"}
}

func started(exec, job string, thread int64) eventbus.Event {
	return eventbus.Event{Executor: exec, Type: eventbus.TypeJobStarted, ID: job, Thread: thread,
		Executable: "/bin/sleep", Redelivered: eventbus.Ptr(false)}
}

func finished(exec, job string, thread int64, exit int) eventbus.Event {
	return eventbus.Event{Executor: exec, Type: eventbus.TypeJobFinished, ID: job, Thread: thread,
		Executable: "/bin/sleep", ExitStatus: eventbus.Ptr(exit)}
}

func heartbeat(exec string, running ...eventbus.RunningJob) eventbus.Event {
	return eventbus.Event{Executor: exec, Type: eventbus.TypeExecutorHeartbeat, Threads: 2,
		Busy: eventbus.Ptr(len(running)), JobsDone: eventbus.Ptr[int64](0), JobsFailed: eventbus.Ptr[int64](0),
		Running: &running, Interval: 5}
}

// An executor killed before its first heartbeat: it said it was ready and
// started a job, then nothing. It goes stale from its last sign of life,
// and LOST since it ran a job; its job stays running (it may be).
func TestExecutorSilentBeforeFirstHeartbeat(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, ready("x1", "node-1"))
	l.send(1, started("x1", "j1", 1))

	if x := l.executor("x1", 10); x.Status != state.StatusOnline || x.Lost {
		t.Errorf("10 s after its last event: %s lost=%v, want online", x.Status, x.Lost)
	}
	// The default heartbeat interval (5 s) × StaleIntervals (3) after
	// its last event.
	x := l.executor("x1", 17)
	if x.Status != state.StatusStale || !x.Lost || x.Running != 1 {
		t.Errorf("16 s after its last event: %s lost=%v running=%d, want stale, LOST, 1 running", x.Status, x.Lost, x.Running)
	}
	if tot := l.m.Totals(at(17)); tot.LostExecutors != 1 || tot.Online != 0 {
		t.Errorf("totals: %d online, %d lost executors; want 0, 1", tot.Online, tot.LostExecutors)
	}
	// An event again: online.
	l.send(18, finished("x1", "j1", 1, 0))
	if x := l.executor("x1", 18.5); x.Status != state.StatusOnline || x.Lost {
		t.Errorf("after its job finished: %s lost=%v, want online", x.Status, x.Lost)
	}

	// Seen from job events only (a monitor started late): the same.
	l.send(20, started("x2", "j2", 1))
	if x := l.executor("x2", 40); x.Status != state.StatusStale || !x.Lost {
		t.Errorf("x2, known from job events only, 20 s later: %s lost=%v, want stale, LOST", x.Status, x.Lost)
	}
}

// The original Ruby executor sends no heartbeat, no version and no
// redelivered flag: a long job without events does not make it stale.
func TestOriginalExecutorBusyStaysOnline(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, eventbus.Event{Executor: "ruby", Type: eventbus.TypeExecutorReady, Hostname: "zeus"})
	l.send(1, eventbus.Event{Executor: "ruby", Type: eventbus.TypeJobStarted, Job: "r1", Thread: 70123456789012})
	if x := l.executor("ruby", 600); x.Status != state.StatusOnline || x.Lost {
		t.Errorf("the original executor running a job: %s lost=%v, want online", x.Status, x.Lost)
	}
}

func stopped(exec, reason string) eventbus.Event {
	return eventbus.Event{Executor: exec, Type: eventbus.TypeExecutorStopped, Reason: reason}
}

// A stopped executor, or a silent one with nothing running, is gone
// GoneAfter after its last sign of life; one with jobs running is LOST,
// never gone. The totals count the live ones only.
func TestExecutorGone(t *testing.T) {
	l := newLife(t, state.Options{})
	// x1 stops at 10 s; x2 falls silent at 5 s with nothing running; x3
	// falls silent at 5 s with a job running; x4 goes on.
	for _, id := range []string{"x1", "x2", "x3", "x4"} {
		l.send(0, ready(id, "node-"+id))
		l.send(5, heartbeat(id))
	}
	l.send(5.5, started("x3", "j3", 1))
	l.send(10, stopped("x1", "signal"))
	for s := 10.0; s < 400; s += 5 {
		l.send(s, heartbeat("x4"))
	}
	statuses := func(now float64) map[string]state.Status {
		got := map[string]state.Status{}
		for _, id := range []string{"x1", "x2", "x3", "x4"} {
			got[id] = l.executor(id, now).Status
		}
		return got
	}
	if got := statuses(300); got["x1"] != state.StatusStopped || got["x2"] != state.StatusStale ||
		got["x3"] != state.StatusStale || got["x4"] != state.StatusOnline {
		t.Errorf("at 300 s: %v, want x1 stopped, x2 and x3 stale, x4 online", got)
	}
	tot := l.m.Totals(at(300))
	if tot.Live != 3 || tot.Online != 1 || tot.Stopped != 1 || tot.Gone != 0 || tot.Executors != 4 {
		t.Errorf("at 300 s: %d live, %d online, %d stopped, %d gone of %d; want 3, 1, 1, 0 of 4",
			tot.Live, tot.Online, tot.Stopped, tot.Gone, tot.Executors)
	}
	// 5 min (the default) after their last sign of life.
	got := statuses(311)
	if got["x1"] != state.StatusGone || got["x2"] != state.StatusGone || got["x3"] != state.StatusStale ||
		got["x4"] != state.StatusOnline {
		t.Errorf("at 311 s: %v, want x1 and x2 gone, x3 stale (LOST), x4 online", got)
	}
	if x := l.executor("x1", 311); !x.Stopped || x.Reason != "signal" {
		t.Errorf("gone x1 lost what it said when it stopped: %+v", x)
	}
	if x := l.executor("x3", 311); !x.Lost {
		t.Error("x3 with a job running is not LOST")
	}
	tot = l.m.Totals(at(311))
	if tot.Live != 2 || tot.Gone != 2 || tot.Stopped != 0 || tot.LostExecutors != 1 {
		t.Errorf("at 311 s: %d live, %d gone, %d stopped, %d lost; want 2, 2, 0, 1", tot.Live, tot.Gone, tot.Stopped, tot.LostExecutors)
	}
	// A gone executor heard of again is back.
	l.send(320, heartbeat("x2"))
	if x := l.executor("x2", 320.5); x.Status != state.StatusOnline {
		t.Errorf("x2 heard again: %s, want online", x.Status)
	}
}

func TestExecutorGoneAfterOption(t *testing.T) {
	for _, tc := range []struct {
		after time.Duration
		at    float64
		want  state.Status
	}{
		{time.Minute, 69, state.StatusStopped},
		{time.Minute, 71, state.StatusGone},
		{-1, 100000, state.StatusStopped}, // never
	} {
		l := newLife(t, state.Options{GoneAfter: tc.after})
		l.send(0, ready("x", "node"))
		l.send(10, stopped("x", "signal"))
		if x := l.executor("x", tc.at); x.Status != tc.want {
			t.Errorf("GoneAfter %s, %g s after: %s, want %s", tc.after, tc.at-10, x.Status, tc.want)
		}
	}
}

func draining(exec, reason string, running ...eventbus.RunningJob) eventbus.Event {
	return eventbus.Event{Executor: exec, Type: eventbus.TypeExecutorDraining, Reason: reason,
		Busy: eventbus.Ptr(len(running)), Running: &running}
}

func runningJob(id string, thread int64, since float64) eventbus.RunningJob {
	return eventbus.RunningJob{ID: id, Thread: thread, Phase: eventbus.PhaseExecution, Since: base + since, Executable: "/bin/sleep"}
}

// SIGTERM: the executor says it drains (executor.draining, then draining
// heartbeats) and waits for its running jobs; it is draining, with those
// jobs, until it stops (or falls silent: stale, LOST).
func TestExecutorDraining(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, ready("x", "node"))
	l.send(1, started("x", "j1", 1))
	l.send(2, started("x", "j2", 2))
	l.send(5, heartbeat("x", runningJob("j1", 1, 1), runningJob("j2", 2, 2)))
	l.send(6, draining("x", "signal terminated", runningJob("j1", 1, 1), runningJob("j2", 2, 2)))

	x := l.executor("x", 6.5)
	if x.Status != state.StatusDraining || !x.Draining || x.DrainReason != "signal terminated" ||
		!x.DrainingSince.Equal(at(6)) || !equal(x.Waiting, []string{"j1", "j2"}) {
		t.Errorf("after executor.draining: %+v", x)
	}
	tot := l.m.Totals(at(6.5))
	if tot.Draining != 1 || tot.Online != 0 || tot.Live != 1 {
		t.Errorf("totals: %d draining, %d online, %d live; want 1, 0, 1", tot.Draining, tot.Online, tot.Live)
	}
	l.send(8, finished("x", "j1", 1, 0))
	hb := heartbeat("x", runningJob("j2", 2, 2))
	hb.Draining = eventbus.Ptr(true)
	l.send(10, hb)
	if x := l.executor("x", 10.5); x.Status != state.StatusDraining || !equal(x.Waiting, []string{"j2"}) {
		t.Errorf("j1 done: %s waiting for %q, want draining for j2", x.Status, x.Waiting)
	}
	// Silent while it drains: LOST.
	if x := l.executor("x", 30); x.Status != state.StatusStale || !x.Lost {
		t.Errorf("silent while draining: %s lost=%v, want stale, LOST", x.Status, x.Lost)
	}
	l.send(31, finished("x", "j2", 2, 0))
	l.send(31.5, stopped("x", "signal"))
	if x := l.executor("x", 32); x.Status != state.StatusStopped || len(x.Waiting) != 0 {
		t.Errorf("stopped: %s waiting for %q", x.Status, x.Waiting)
	}
}

// A monitor started while an executor drains learns it from a heartbeat.
func TestExecutorDrainingFromHeartbeat(t *testing.T) {
	l := newLife(t, state.Options{})
	hb := heartbeat("x", runningJob("j9", 1, 0))
	hb.Draining = eventbus.Ptr(true)
	l.send(10, hb)
	if x := l.executor("x", 10.5); x.Status != state.StatusDraining || !equal(x.Waiting, []string{"j9"}) {
		t.Errorf("draining heartbeat: %s waiting for %q, want draining for j9", x.Status, x.Waiting)
	}
}

// A monitor started late sees the executors' own counts in heartbeats:
// ExecutorView.DoneTotal and Totals.ExecutorsDone add to them the jobs
// seen finishing since the last heartbeat; Totals.Done counts what the
// monitor saw only.
func TestExecutorCountsAndSeenTotals(t *testing.T) {
	l := newLife(t, state.Options{})
	hb := heartbeat("x")
	hb.JobsDone, hb.JobsFailed = eventbus.Ptr[int64](669), eventbus.Ptr[int64](90)
	l.send(5, hb)
	l.send(6, started("x", "j1", 1))
	l.send(7, finished("x", "j1", 1, 0))
	l.send(8, started("x", "j2", 1))
	l.send(9, finished("x", "j2", 1, 2))
	x := l.executor("x", 9.5)
	if x.DoneTotal != 670 || x.FailedTotal != 91 || x.Done != 1 || x.Failed != 1 {
		t.Errorf("before the next heartbeat: totals %d/%d, seen %d/%d; want 670/91, 1/1", x.DoneTotal, x.FailedTotal, x.Done, x.Failed)
	}
	tot := l.m.Totals(at(9.5))
	if tot.Done != 1 || tot.Failed != 1 || tot.ExecutorsDone != 670 || tot.ExecutorsFailed != 91 {
		t.Errorf("totals: seen %d/%d, executors %d/%d; want 1/1, 670/91", tot.Done, tot.Failed, tot.ExecutorsDone, tot.ExecutorsFailed)
	}
	// The next heartbeat counts them.
	hb.JobsDone, hb.JobsFailed = eventbus.Ptr[int64](670), eventbus.Ptr[int64](91)
	l.send(10, hb)
	if x := l.executor("x", 10.5); x.DoneTotal != 670 || x.FailedTotal != 91 {
		t.Errorf("after the heartbeat: %d/%d, want 670/91", x.DoneTotal, x.FailedTotal)
	}
	// Without heartbeats, what was seen.
	l.send(11, started("y", "k1", 1))
	l.send(12, finished("y", "k1", 1, 0))
	if x := l.executor("y", 12.5); x.DoneTotal != 1 || x.FailedTotal != 0 {
		t.Errorf("y: %d/%d, want 1/0", x.DoneTotal, x.FailedTotal)
	}
}

// The broker node of an executor is that of its executor.ready, then of its
// latest heartbeat (after a reconnection to another node of a cluster); a
// heartbeat without one (an older executor) keeps the last known.
func TestExecutorBrokerNode(t *testing.T) {
	l := newLife(t, state.Options{})
	r := ready("x1", "node-1")
	r.Broker = "amqp://hf:***@rmq-1:5672/hf"
	l.send(0, r)
	if got := l.executor("x1", 1).Broker; got != r.Broker {
		t.Errorf("after executor.ready: broker %q, want %q", got, r.Broker)
	}
	hb := heartbeat("x1")
	hb.Broker = "amqp://hf:***@rmq-2:5672/hf"
	l.send(5, hb)
	if got := l.executor("x1", 6).Broker; got != hb.Broker {
		t.Errorf("after a heartbeat from another node: broker %q, want %q", got, hb.Broker)
	}
	l.send(10, heartbeat("x1"))
	if got := l.executor("x1", 11).Broker; got != hb.Broker {
		t.Errorf("after a heartbeat without broker: %q, want the last known %q", got, hb.Broker)
	}
}

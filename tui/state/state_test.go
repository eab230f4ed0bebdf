package state_test

import (
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// load reads a recorded stream of testdata.
func load(t testing.TB, name string) []eventbus.Message {
	t.Helper()
	msgs, err := record.LoadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	if len(msgs) == 0 {
		t.Fatalf("load %s: no events", name)
	}
	return msgs
}

// setup feeds a recorded stream to a new model.
func setup(t testing.TB, opts state.Options, names ...string) *state.Model {
	t.Helper()
	m := state.New(opts)
	for _, name := range names {
		for _, msg := range load(t, name) {
			_ = m.Apply(msg)
		}
	}
	checkInvariants(t, m)
	return m
}

// checkInvariants: the counts agree with the jobs and executors.
func checkInvariants(t testing.TB, m *state.Model) {
	t.Helper()
	jobs, total := m.Jobs(state.JobQuery{}, 0, -1)
	tot := m.Totals(m.Latest())
	if total != len(jobs) || total != tot.Kept {
		t.Errorf("Jobs total %d, page %d, Totals.Kept %d", total, len(jobs), tot.Kept)
	}
	running := 0
	for _, j := range jobs {
		if j.State == state.StateRunning {
			running++
			if j.Phase == "" {
				t.Errorf("running job %s has no phase", j.ID)
			}
		} else if j.Phase != "" {
			t.Errorf("%s job %s has phase %q", j.State, j.ID, j.Phase)
		}
	}
	if running != tot.Running {
		t.Errorf("running jobs %d, Totals.Running %d", running, tot.Running)
	}
	perExec := 0
	for _, x := range m.Executors() {
		perExec += x.Running
		busy := 0
		for _, th := range m.Threads(x.ID, time.Time{}) {
			if th.Job != "" {
				busy++
				if th.Phase == state.PhaseIdle {
					t.Errorf("thread %s of %s runs %s but is idle", th.Thread, x.ID, th.Job)
				}
			}
		}
		if busy > x.Running {
			t.Errorf("executor %s: %d busy threads, %d running jobs", x.ID, busy, x.Running)
		}
	}
	if perExec != tot.Running {
		t.Errorf("running per executor %d, Totals.Running %d", perExec, tot.Running)
	}
	if a := m.Anomalies(); a.Total() != tot.Anomalies {
		t.Errorf("anomalies %d, Totals.Anomalies %d", a.Total(), tot.Anomalies)
	}
}

type wantJob struct {
	state      state.JobState
	executor   string
	thread     string
	executable string
	phase      string
	exit       int // checked when hasExit
	hasExit    bool
	execution  time.Duration // 0: not checked
	stageIn    int64         // bytes, -1: stage unknown
	stageOut   int64
	attempts   int
	partial    bool
}

type want struct {
	running                        int
	done, failed, lost, redeliv    int64
	malformed, invalid, unknown    int64
	duplicate, outOfOrder, late    int64
	jobs                           map[string]wantJob
	executors                      map[string]state.Status
	check                          func(t *testing.T, m *state.Model)
	tick                           string // RFC 3339 time to Tick at before checking
	noJobs                         bool
	events                         int64
	executorsN                     int // 0: not checked
	hostnames                      map[string]string
	threadCounts                   map[string]int // executor -> lanes
	totalsAt                       string
	ratesStageInBytes, ratesEvents float64
}

// ts is an event timestamp as the model shows it (to the microsecond).
func ts(s float64) time.Time { return time.UnixMicro(int64(math.Round(s * 1e6))) }

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStreams(t *testing.T) {
	tests := []struct {
		name string
		file string
		want want
	}{
		{
			name: "local job",
			file: "local_job.jsonl",
			want: want{
				done: 1, events: 6,
				jobs: map[string]wantJob{"j1": {state: state.StateDone, executor: "exec-a", thread: "1",
					executable: "/bin/echo", hasExit: true, exit: 0, execution: 2500 * time.Millisecond,
					stageIn: -1, stageOut: -1, attempts: 1}},
				executors:    map[string]state.Status{"exec-a": state.StatusOnline},
				hostnames:    map[string]string{"exec-a": "node-1"},
				threadCounts: map[string]int{"exec-a": 2},
				check: func(t *testing.T, m *state.Model) {
					th := m.Threads("exec-a", time.Time{})
					if th[0].Thread != "1" || th[0].Phase != state.PhaseIdle || len(th[0].Intervals) != 1 {
						t.Fatalf("thread 1 = %+v", th[0])
					}
					iv := th[0].Intervals[0]
					if iv.Phase != state.PhaseExecution || !iv.Start.Equal(ts(1700000001.1)) ||
						!iv.End.Equal(ts(1700000003.6)) || iv.Failed || iv.Job != "j1" {
						t.Errorf("interval = %+v", iv)
					}
					if len(th[1].Intervals) != 0 || th[1].Job != "" {
						t.Errorf("thread 2 = %+v", th[1])
					}
					x, _ := m.Executor("exec-a")
					if !x.HasCounts || x.JobsDone != 1 || x.Storage != "local" || x.Version != "1.0.0" ||
						x.Queue != "hyperflow.jobs" || x.Interval != 5*time.Second || x.Done != 1 {
						t.Errorf("executor = %+v", x)
					}
					st := m.ExecStats()
					if len(st) != 1 || st[0].Executable != "/bin/echo" || st[0].Count != 1 ||
						st[0].P50 != 2500*time.Millisecond || st[0].P95 != 2500*time.Millisecond {
						t.Errorf("ExecStats = %+v", st)
					}
					d, ok := m.Job("j1")
					if !ok || len(d.Timeline) != 4 || d.Timeline[3].Type != eventbus.TypeJobFinished ||
						d.Timeline[3].Duration != 2700*time.Millisecond || d.Timeline[1].Elapsed != 100*time.Millisecond {
						t.Errorf("Job(j1) = %+v", d)
					}
					if d.Metrics.OutputSize != 200 || d.Metrics.MaxRSS != 1048576 || d.Metrics.CPUUser != 1.25 {
						t.Errorf("metrics = %+v", d.Metrics)
					}
				},
			},
		},
		{
			name: "nfs job with stages",
			file: "nfs_job.jsonl",
			want: want{
				done: 1,
				jobs: map[string]wantJob{"j2": {state: state.StateDone, executor: "exec-n", thread: "3",
					executable: "mProject", hasExit: true, execution: 4 * time.Second, stageIn: 4096, stageOut: 8192, attempts: 1}},
				executors:    map[string]state.Status{"exec-n": state.StatusOnline},
				threadCounts: map[string]int{"exec-n": 4},
				check: func(t *testing.T, m *state.Model) {
					th := m.Threads("exec-n", time.Time{})
					ivs := th[2].Intervals
					if th[2].Thread != "3" || len(ivs) != 3 {
						t.Fatalf("thread 3 = %+v", th[2])
					}
					for i, p := range []string{state.PhaseStageIn, state.PhaseExecution, state.PhaseStageOut} {
						if ivs[i].Phase != p || ivs[i].End.IsZero() {
							t.Errorf("interval %d = %+v, want %s, ended", i, ivs[i], p)
						}
					}
					j, _ := m.Job("j2")
					if j.StageIn.Duration != time.Second || j.StageOut.Duration != 500*time.Millisecond ||
						!j.StageIn.Start.Equal(ts(1700000001.01)) {
						t.Errorf("stages = %+v %+v", j.StageIn, j.StageOut)
					}
					if len(j.Timeline) != 8 {
						t.Errorf("timeline has %d entries", len(j.Timeline))
					}
					if e := j.Timeline[2]; e.Type != eventbus.TypeStageInFinished || e.Bytes != 4096 || !e.HasBytes ||
						e.Duration != time.Second {
						t.Errorf("timeline[2] = %+v", e)
					}
					// Only the second with the stage-in counts bytes.
					r := m.Totals(ts(1700000002.5)).Rates
					if r.StageInBytes == 0 {
						t.Errorf("no stage-in rate: %+v", r)
					}
					st := m.ExecStats()[0]
					if st.StageInMean != time.Second || st.InputBytes != 4096 || st.OutputBytes != 8192 {
						t.Errorf("ExecStats = %+v", st)
					}
				},
			},
		},
		{
			name: "failing job",
			file: "failing_job.jsonl",
			want: want{
				failed: 1, redeliv: 1,
				jobs: map[string]wantJob{"j3": {state: state.StateFailed, executor: "exec-f", thread: "1",
					executable: "/bin/false", hasExit: true, exit: 3, execution: 200 * time.Millisecond,
					stageIn: -1, stageOut: -1, attempts: 1}},
				check: func(t *testing.T, m *state.Model) {
					d, _ := m.Job("j3")
					if len(d.Exceptions) != 1 || d.Exceptions[0] != "command exited with status 3" || d.StderrTail != "boom\n" ||
						!d.Redelivered {
						t.Errorf("detail = %+v", d)
					}
					iv := m.Threads("exec-f", time.Time{})[0].Intervals
					if len(iv) != 1 || !iv[0].Failed {
						t.Errorf("intervals = %+v", iv)
					}
					if st := m.ExecStats(); st[0].Failed != 1 {
						t.Errorf("ExecStats = %+v", st)
					}
					x, _ := m.Executor("exec-f")
					if x.Failed != 1 {
						t.Errorf("executor = %+v", x)
					}
					failed, n := m.Jobs(state.JobQuery{States: state.States(state.StateFailed)}, 0, 10)
					if n != 1 || failed[0].ID != "j3" {
						t.Errorf("failed jobs = %+v", failed)
					}
				},
			},
		},
		{
			name: "original Ruby executor",
			file: "ruby.jsonl",
			want: want{
				done: 1,
				jobs: map[string]wantJob{"r1": {state: state.StateDone, executor: "4f7e1c2a-0000-4000-8000-00000000r001",
					thread: "70123456789012", executable: "mDiffFit", hasExit: true, exit: 0,
					execution: 10 * time.Second, stageIn: 1000000, stageOut: 2000, attempts: 1}},
				hostnames:    map[string]string{"4f7e1c2a-0000-4000-8000-00000000r001": "zeus-ruby"},
				threadCounts: map[string]int{"4f7e1c2a-0000-4000-8000-00000000r001": 1},
				tick:         "2013-11-14T22:20:00Z",
				// Silent for over 5 min with nothing running: gone.
				executors: map[string]state.Status{"4f7e1c2a-0000-4000-8000-00000000r001": state.StatusGone},
				check: func(t *testing.T, m *state.Model) {
					th := m.Threads("4f7e1c2a-0000-4000-8000-00000000r001", time.Time{})
					if th[0].Slot != 1 || len(th[0].Intervals) != 3 {
						t.Errorf("lane = %+v", th[0])
					}
					// Its executable came late: its stage-in counts for it.
					st := m.ExecStats()
					if len(st) != 1 || st[0].Executable != "mDiffFit" || st[0].StageInMean != 2*time.Second ||
						st[0].InputBytes != 1000000 || st[0].P50 != 10*time.Second {
						t.Errorf("ExecStats = %+v", st)
					}
				},
			},
		},
		{
			name: "duplicates",
			file: "duplicates.jsonl",
			want: want{
				done: 1, duplicate: 4,
				jobs: map[string]wantJob{"j4": {state: state.StateDone, executor: "exec-d", thread: "2",
					executable: "/bin/true", hasExit: true, attempts: 1, stageIn: -1, stageOut: -1}},
			},
		},
		{
			name: "out of order",
			file: "out_of_order.jsonl",
			want: want{
				done: 1, outOfOrder: 3,
				jobs: map[string]wantJob{"j5": {state: state.StateDone, executor: "exec-o", thread: "1",
					executable: "/bin/sleep", hasExit: true, execution: 1800 * time.Millisecond,
					attempts: 1, stageIn: -1, stageOut: -1}},
				check: func(t *testing.T, m *state.Model) {
					j, _ := m.Job("j5")
					if !j.Started.Equal(ts(1700000001.0)) || !j.Finished.Equal(ts(1700000003.0)) {
						t.Errorf("started %v finished %v", j.Started, j.Finished)
					}
					x, _ := m.Executor("exec-o")
					if x.JobsDone != 1 { // the older heartbeat did not win
						t.Errorf("executor = %+v", x)
					}
				},
			},
		},
		{
			name: "unknown types",
			file: "unknown.jsonl",
			want: want{
				unknown: 2, noJobs: true, events: 3,
				executors: map[string]state.Status{"exec-u": state.StatusOnline},
			},
		},
		{
			name: "malformed events",
			file: "malformed.jsonl",
			want: want{
				running: 1, malformed: 3, invalid: 2,
				jobs: map[string]wantJob{"j9": {state: state.StateRunning, executor: "exec-m", thread: "2",
					executable: "/bin/cat", phase: state.PhaseStageIn, stageIn: -1, stageOut: -1, attempts: 1}},
				hostnames: map[string]string{"exec-m": "node-7"},
				check: func(t *testing.T, m *state.Model) {
					a := m.Anomalies()
					if len(a.Recent) != 5 || a.Recent[0].Kind != state.AnomalyMalformed ||
						a.Recent[0].RoutingKey != "job.j7.started" || a.Recent[4].Kind != state.AnomalyInvalid {
						t.Errorf("recent = %+v", a.Recent)
					}
				},
			},
		},
		{
			name: "heartbeat running list for a late start",
			file: "late_start.jsonl",
			want: want{
				running: 1, done: 1,
				jobs: map[string]wantJob{
					"j10": {state: state.StateRunning, executor: "exec-l", thread: "1", executable: "mAdd",
						phase: state.PhaseExecution, partial: true, stageIn: -1, stageOut: -1},
					"j11": {state: state.StateDone, executor: "exec-l", thread: "2", executable: "mAdd",
						hasExit: true, partial: true, execution: 16990 * time.Millisecond, stageIn: 700, stageOut: 5000},
				},
				threadCounts: map[string]int{"exec-l": 3},
				check: func(t *testing.T, m *state.Model) {
					th := m.Threads("exec-l", time.Time{})
					if th[0].Job != "j10" || th[0].Phase != state.PhaseExecution || !th[0].Since.Equal(ts(1700000030.0)) {
						t.Errorf("thread 1 = %+v", th[0])
					}
					if th[1].Job != "" || len(th[1].Intervals) != 1 || th[1].Intervals[0].Phase != state.PhaseStageOut {
						t.Errorf("thread 2 = %+v", th[1])
					}
					x, _ := m.Executor("exec-l")
					if x.Interval != 10*time.Second || x.JobsDone != 7 || x.JobsFailed != 1 || x.Busy != 2 {
						t.Errorf("executor = %+v", x)
					}
					j, _ := m.Job("j11")
					if !j.Started.Equal(ts(1700000020.0)) {
						t.Errorf("started = %v", j.Started)
					}
				},
			},
		},
		{
			name: "draining, then stopped",
			file: "draining.jsonl",
			want: want{
				done:      1,
				jobs:      map[string]wantJob{"d1": {state: state.StateDone, executor: "exec-dr", thread: "1", executable: "/bin/sleep", hasExit: true, attempts: 1, stageIn: -1, stageOut: -1}},
				executors: map[string]state.Status{"exec-dr": state.StatusStopped},
				check: func(t *testing.T, m *state.Model) {
					if x, _ := m.Executor("exec-dr"); !x.Stopped || x.Draining || x.Waiting != nil {
						t.Errorf("executor = %+v", x)
					}
				},
			},
		},
		{
			name: "executor stopped",
			file: "stopped.jsonl",
			want: want{
				lost:      1,
				jobs:      map[string]wantJob{"j12": {state: state.StateLost, executor: "exec-s", thread: "1", executable: "/bin/sleep", attempts: 1, stageIn: -1, stageOut: -1}},
				executors: map[string]state.Status{"exec-s": state.StatusStopped},
				tick:      "2023-11-14T22:14:00Z", // stopped stays stopped
				check: func(t *testing.T, m *state.Model) {
					x, _ := m.Executor("exec-s")
					if x.Reason != "signal" || x.Running != 0 {
						t.Errorf("executor = %+v", x)
					}
					iv := m.Threads("exec-s", time.Time{})[0].Intervals
					if len(iv) != 1 || !iv[0].End.Equal(ts(1700000010.0)) {
						t.Errorf("intervals = %+v", iv)
					}
				},
			},
		},
		{
			name: "stale after missed heartbeats",
			file: "stale.jsonl",
			want: want{
				tick:      "2023-11-14T22:13:30Z",
				executors: map[string]state.Status{"exec-t": state.StatusStale, "exec-t2": state.StatusOnline},
				noJobs:    true,
				check: func(t *testing.T, m *state.Model) {
					if !m.Tick(mustTime(t, "2023-11-14T22:13:40Z")) {
						t.Error("Tick reported no change")
					}
					x, _ := m.Executor("exec-t2")
					if x.Status != state.StatusStale {
						t.Errorf("exec-t2 = %s", x.Status)
					}
					tot := m.Totals(mustTime(t, "2023-11-14T22:13:40Z"))
					if tot.Stale != 2 || tot.Online != 0 || tot.Executors != 2 {
						t.Errorf("totals = %+v", tot)
					}
				},
			},
		},
		{
			name: "redelivered to another executor",
			file: "redelivery.jsonl",
			want: want{
				done: 1, redeliv: 1, outOfOrder: 1,
				jobs: map[string]wantJob{"j13": {state: state.StateDone, executor: "exec-r2", thread: "1",
					executable: "/bin/sleep", hasExit: true, execution: time.Second, attempts: 2, stageIn: -1, stageOut: -1}},
				check: func(t *testing.T, m *state.Model) {
					x, _ := m.Executor("exec-r1")
					if x.Running != 0 {
						t.Errorf("exec-r1 = %+v", x)
					}
					if th := m.Threads("exec-r1", time.Time{}); th[0].Job != "" {
						t.Errorf("exec-r1 thread = %+v", th[0])
					}
				},
			},
		},
		{
			name: "lost jobs",
			file: "lost.jsonl",
			want: want{
				running: 1, done: 1, lost: 1,
				jobs: map[string]wantJob{
					"j15": {state: state.StateDone, executor: "exec-k", thread: "1", executable: "/bin/a", hasExit: true, attempts: 1, stageIn: -1, stageOut: -1},
					"j16": {state: state.StateRunning, executor: "exec-k", thread: "1", executable: "/bin/b", phase: state.PhaseStageIn, attempts: 1, stageIn: -1, stageOut: -1},
					"j17": {state: state.StateLost, executor: "exec-k", thread: "2", executable: "/bin/c", attempts: 1, stageIn: -1, stageOut: -1},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setup(t, state.Options{}, tt.file)
			w := tt.want
			if w.tick != "" {
				m.Tick(mustTime(t, w.tick))
			}
			tot := m.Totals(m.Latest())
			if tot.Running != w.running || tot.Done != w.done || tot.Failed != w.failed || tot.Lost != w.lost ||
				tot.Redelivered != w.redeliv {
				t.Errorf("totals running/done/failed/lost/redelivered = %d/%d/%d/%d/%d, want %d/%d/%d/%d/%d",
					tot.Running, tot.Done, tot.Failed, tot.Lost, tot.Redelivered,
					w.running, w.done, w.failed, w.lost, w.redeliv)
			}
			if w.events != 0 && tot.Events != w.events {
				t.Errorf("events = %d, want %d", tot.Events, w.events)
			}
			a := m.Anomalies()
			got := [6]int64{a.Malformed, a.Invalid, a.Unknown, a.Duplicate, a.OutOfOrder, a.Late}
			exp := [6]int64{w.malformed, w.invalid, w.unknown, w.duplicate, w.outOfOrder, w.late}
			if got != exp {
				t.Errorf("anomalies malformed/invalid/unknown/duplicate/out-of-order/late = %v, want %v; recent: %+v",
					got, exp, a.Recent)
			}
			all, n := m.Jobs(state.JobQuery{}, 0, -1)
			if w.noJobs && n != 0 {
				t.Errorf("jobs = %+v, want none", all)
			}
			if w.jobs != nil && n != len(w.jobs) {
				t.Errorf("%d jobs, want %d", n, len(w.jobs))
			}
			for id, wj := range w.jobs {
				j, ok := m.Job(id)
				if !ok {
					t.Errorf("job %s missing", id)
					continue
				}
				checkJob(t, j.JobView, wj)
			}
			for id, st := range w.executors {
				x, ok := m.Executor(id)
				if !ok || x.Status != st {
					t.Errorf("executor %s: %+v, want status %s", id, x, st)
				}
			}
			for id, h := range w.hostnames {
				if x, _ := m.Executor(id); x.Hostname != h {
					t.Errorf("executor %s hostname %q, want %q", id, x.Hostname, h)
				}
			}
			for id, n := range w.threadCounts {
				if th := m.Threads(id, time.Time{}); len(th) != n {
					t.Errorf("executor %s: %d threads, want %d: %+v", id, len(th), n, th)
				}
			}
			if w.check != nil {
				w.check(t, m)
			}
			checkInvariants(t, m)
		})
	}
}

func checkJob(t *testing.T, j state.JobView, w wantJob) {
	t.Helper()
	if j.State != w.state || j.Executor != w.executor || j.Thread != w.thread || j.Executable != w.executable ||
		j.Phase != w.phase || j.Partial != w.partial {
		t.Errorf("job %s: state %s executor %s thread %s executable %s phase %q partial %v; want %s %s %s %s %q %v",
			j.ID, j.State, j.Executor, j.Thread, j.Executable, j.Phase, j.Partial,
			w.state, w.executor, w.thread, w.executable, w.phase, w.partial)
	}
	if j.HasExit != w.hasExit || (w.hasExit && j.ExitStatus != w.exit) {
		t.Errorf("job %s: exit %d (%v), want %d (%v)", j.ID, j.ExitStatus, j.HasExit, w.exit, w.hasExit)
	}
	if w.execution != 0 && j.Execution.Duration != w.execution {
		t.Errorf("job %s: execution %v, want %v", j.ID, j.Execution.Duration, w.execution)
	}
	checkStage := func(name string, s state.Stage, bytes int64) {
		if bytes < 0 {
			if s.Known() {
				t.Errorf("job %s: %s = %+v, want unknown", j.ID, name, s)
			}
			return
		}
		if !s.HasBytes || s.Bytes != bytes || !s.HasDuration {
			t.Errorf("job %s: %s = %+v, want %d bytes", j.ID, name, s, bytes)
		}
	}
	if w.stageIn != 0 {
		checkStage("stage-in", j.StageIn, w.stageIn)
	}
	if w.stageOut != 0 {
		checkStage("stage-out", j.StageOut, w.stageOut)
	}
	if w.attempts != 0 && j.Attempts != w.attempts {
		t.Errorf("job %s: %d attempts, want %d", j.ID, j.Attempts, w.attempts)
	}
}

// TestAllStreamsTogether feeds every stream to one model, in order and
// then again (all duplicates): nothing breaks, totals do not move.
func TestAllStreamsTogether(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	m := state.New(state.Options{})
	for _, f := range files {
		for _, msg := range load(t, filepath.Base(f)) {
			_ = m.Apply(msg)
		}
	}
	checkInvariants(t, m)
	before := m.Totals(m.Latest())
	for _, f := range files {
		for _, msg := range load(t, filepath.Base(f)) {
			_ = m.Apply(msg)
		}
	}
	checkInvariants(t, m)
	after := m.Totals(m.Latest())
	if after.Done != before.Done || after.Failed != before.Failed || after.Running != before.Running {
		t.Errorf("replaying everything again changed the totals: %+v -> %+v", before, after)
	}
}

func TestApplyErrors(t *testing.T) {
	m := state.New(state.Options{})
	now := time.Unix(1700000000, 0)
	tests := []struct {
		key, body string
		want      error
	}{
		{"executor.ready", `{"executor":"x","timestamp":1700000000,"type":"executor.ready"}`, nil},
		{"executor.ready", `{"executor":"x","timestamp":1700000000,"type":"executor.ready"}`, state.ErrDuplicate},
		{"job.a.started", `not json`, state.ErrMalformed},
		{"job.a.started", `{"executor":"x","timestamp":1700000001,"id":"a","thread":{"n":1}}`, state.ErrInvalid},
		{"job.a.exploded", `{"executor":"x","timestamp":1700000001,"id":"a"}`, state.ErrUnknown},
		{"job.b.finished", `{"executor":"x","timestamp":1700000003,"id":"b","exit_status":"0"}`, nil},
		{"job.b.started", `{"executor":"x","timestamp":1700000002,"id":"b"}`, state.ErrOutOfOrder},
	}
	for i, tt := range tests {
		err := m.Apply(eventbus.Message{RoutingKey: tt.key, Body: []byte(tt.body), Received: now.Add(time.Duration(i) * time.Second)})
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%d: Apply(%s) = %v, want %v", i, tt.body, err, tt.want)
		}
	}
	if j, ok := m.Job("b"); !ok || j.State != state.StateDone || !j.HasExit {
		t.Errorf("job b = %+v", j)
	}
}

// TestEviction: only MaxJobs finished jobs are kept, running ones always,
// totals exact; late events for dropped jobs are counted, not revived.
func TestEviction(t *testing.T) {
	m := state.New(state.Options{MaxJobs: 10})
	base := 1700000000.0
	at := func(s float64) time.Time { return eventbus.FromTimestamp(base + s) }
	send := func(typ, id string, s float64, extra string) error {
		key := eventbus.JobRoutingKey(id, typ)
		thread := "1"
		if id == "keep" {
			thread = "2"
		}
		body := `{"executor":"x","timestamp":` + ftoa(base+s) + `,"type":"` + typ + `","id":"` + id + `","thread":` + thread + extra + `}`
		return m.Apply(eventbus.Message{RoutingKey: key, Body: []byte(body), Received: at(s)})
	}
	_ = send(eventbus.TypeJobStarted, "keep", 0, "")
	for i := range 100 {
		id := "j" + strconv.Itoa(i)
		s := float64(i + 1)
		_ = send(eventbus.TypeJobStarted, id, s, "")
		exit := `,"exit_status":0`
		if i%10 == 0 {
			exit = `,"exit_status":1`
		}
		_ = send(eventbus.TypeJobFinished, id, s+0.5, exit)
	}
	tot := m.Totals(at(200))
	if tot.Done != 90 || tot.Failed != 10 || tot.Kept != 11 || tot.Evicted != 90 || tot.Running != 1 {
		t.Errorf("totals = %+v", tot)
	}
	if _, ok := m.Job("j0"); ok {
		t.Error("j0 kept")
	}
	if _, ok := m.Job("j99"); !ok {
		t.Error("j99 dropped")
	}
	if err := send(eventbus.TypeJobFinished, "j0", 1.5, `,"exit_status":1`); !errors.Is(err, state.ErrLate) {
		t.Errorf("late finished = %v", err)
	}
	if tot2 := m.Totals(at(200)); tot2.Failed != tot.Failed {
		t.Errorf("late event counted: %+v", tot2)
	}
	// A new delivery of a dropped job is a new job.
	if err := send(eventbus.TypeJobStarted, "j1", 300, `,"redelivered":true`); err != nil {
		t.Errorf("redelivered dropped job: %v", err)
	}
	if j, ok := m.Job("j1"); !ok || j.State != state.StateRunning || !j.Redelivered {
		t.Errorf("j1 = %+v", j)
	}
	checkInvariants(t, m)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestJobsQuery(t *testing.T) {
	m := setup(t, state.Options{}, "local_job.jsonl", "nfs_job.jsonl", "failing_job.jsonl", "late_start.jsonl", "lost.jsonl")
	tests := []struct {
		name string
		q    state.JobQuery
		want []string
	}{
		// j10 has no known start (seen in a heartbeat only); j11's came
		// with its metrics.
		{"all by start", state.JobQuery{}, []string{"j10", "j1", "j15", "j2", "j3", "j16", "j17", "j11"}},
		{"by id", state.JobQuery{Sort: state.SortID}, []string{"j1", "j10", "j11", "j15", "j16", "j17", "j2", "j3"}},
		{"by id reversed", state.JobQuery{Sort: state.SortID, Reverse: true}, []string{"j3", "j2", "j17", "j16", "j15", "j11", "j10", "j1"}},
		{"failed or lost", state.JobQuery{States: state.States(state.StateFailed, state.StateLost)}, []string{"j3", "j17"}},
		{"text", state.JobQuery{Text: "NODE-2"}, []string{"j2"}},
		{"executable", state.JobQuery{Executable: "mAdd", Sort: state.SortExecution, Reverse: true}, []string{"j11", "j10"}},
		{"executor", state.JobQuery{Executor: "exec-k", Sort: state.SortThread}, []string{"j15", "j16", "j17"}},
		{"by execution time", state.JobQuery{Sort: state.SortExecution, States: state.States(state.StateDone, state.StateFailed)},
			[]string{"j15", "j3", "j1", "j2", "j11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, n := m.Jobs(tt.q, 0, -1)
			var got []string
			for _, j := range page {
				got = append(got, j.ID)
			}
			if n != len(tt.want) || !equal(got, tt.want) {
				t.Errorf("Jobs = %v (%d), want %v", got, n, tt.want)
			}
			if len(tt.want) > 1 {
				p, n2 := m.Jobs(tt.q, 1, 1)
				if n2 != n || len(p) != 1 || p[0].ID != tt.want[1] {
					t.Errorf("page 1,1 = %+v", p)
				}
				if i := m.JobIndex(tt.q, tt.want[1]); i != 1 {
					t.Errorf("JobIndex = %d", i)
				}
			}
		})
	}
	if p, n := m.Jobs(state.JobQuery{}, 100, 10); p != nil || n != 8 {
		t.Errorf("page past the end = %v, %d", p, n)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestVersionAndCache(t *testing.T) {
	m := setup(t, state.Options{}, "local_job.jsonl")
	v, jv := m.Version(), m.JobsVersion()
	m.Jobs(state.JobQuery{}, 0, 10)
	m.Executors()
	m.Threads("exec-a", time.Time{})
	m.Totals(m.Latest())
	if m.Version() != v || m.JobsVersion() != jv {
		t.Error("reading moved the version")
	}
	for _, msg := range load(t, "stale.jsonl") {
		_ = m.Apply(msg)
	}
	if m.Version() == v {
		t.Error("applying did not move the version")
	}
	if m.JobsVersion() != jv {
		t.Error("executor events moved the jobs version")
	}
}

func TestThroughputAndRates(t *testing.T) {
	m := setup(t, state.Options{}, "nfs_job.jsonl")
	now := mustTime(t, "2023-11-14T22:13:27Z")
	b := m.Throughput(now, 10)
	if len(b) != 10 || !b[9].Time.Equal(mustTime(t, "2023-11-14T22:13:27Z")) {
		t.Fatalf("buckets = %+v", b)
	}
	var events, inBytes, outBytes int64
	for _, x := range b {
		events += int64(x.Events)
		inBytes += x.StageInBytes
		outBytes += x.StageOutBytes
	}
	if events != 10 || inBytes != 4096 || outBytes != 8192 {
		t.Errorf("events %d in %d out %d", events, inBytes, outBytes)
	}
	r := m.Totals(now).Rates
	// 10 events over the 7 s since the first one.
	if r.Events < 1.4 || r.Events > 1.5 || r.Finished == 0 {
		t.Errorf("rates = %+v", r)
	}
	if r := m.Totals(now.Add(2 * time.Minute)).Rates; r.Events != 0 {
		t.Errorf("rates two minutes later = %+v", r)
	}
}

func TestGanttWindow(t *testing.T) {
	m := setup(t, state.Options{HistoryWindow: time.Minute, MaxIntervals: 2}, "nfs_job.jsonl")
	th := m.Threads("exec-n", time.Time{})
	if n := len(th[2].Intervals); n != 2 {
		t.Errorf("%d intervals kept, want 2 (MaxIntervals)", n)
	}
	if n := len(m.Threads("exec-n", ts(1700000006.1))[2].Intervals); n != 1 {
		t.Errorf("%d intervals since 6.1, want 1", n)
	}
	m.Tick(ts(1700000100))
	if n := len(m.Threads("exec-n", time.Time{})[2].Intervals); n != 0 {
		t.Errorf("%d intervals after the window, want 0", n)
	}
}

package state_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The recorded streams of these tests start at timestamp base
// (2023-11-14T22:13:20Z); each event is received 10 ms after its
// timestamp.
const base = 1700000000.0

const mib = 1 << 20

// at is base+s seconds as a time.
func at(s float64) time.Time { return ts(base + s) }

// applyUntil applies the messages received up to until and returns the
// rest.
func applyUntil(m *state.Model, msgs []eventbus.Message, until time.Time) []eventbus.Message {
	for i, msg := range msgs {
		if msg.Received.After(until) {
			return msgs[i:]
		}
		_ = m.Apply(msg)
	}
	return nil
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func ids(jobs []state.JobView) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.ID)
	}
	return out
}

func TestProgressAndStall(t *testing.T) {
	msgs := load(t, "progress_stall.jsonl")
	m := state.New(state.Options{})

	// Mid-way: p1 has moved 5 MiB in the 15 s since its stage-in began;
	// p2 executes.
	rest := applyUntil(m, msgs, at(16.5))
	p1, _ := m.Job("p1")
	p := p1.Progress
	if !p.Known() || p.Phase != state.PhaseStageIn || p.Bytes != 5*mib || !p.HasBytes || p.HasTotal ||
		!p.HasRate || !near(p.Rate, 5*mib/15.0, 1) || !p.LastGrowth.Equal(at(16.02)) ||
		!p.Updated.Equal(at(16.02)) || p.Elapsed != 15*time.Second {
		t.Errorf("p1 progress = %+v", p)
	}
	if _, ok := p.Fraction(); ok {
		t.Error("stage-in has a fraction without a total")
	}
	p2, _ := m.Job("p2")
	if u := p2.Progress; u.Phase != state.PhaseExecution || !u.HasUsage || u.RSS != 30*mib ||
		u.CPU != 9500*time.Millisecond || !near(u.CPURate, 0.95, 1e-9) || u.HasBytes {
		t.Errorf("p2 progress = %+v", u)
	}
	if th := m.Threads("exec-p", time.Time{}); th[1].Progress.RSS != 30*mib || th[0].Progress.Bytes != 5*mib {
		t.Errorf("threads = %+v", th)
	}

	// Stage-out of p2 with its total.
	rest = applyUntil(m, rest, at(34.5))
	p2, _ = m.Job("p2")
	po := p2.Progress
	if f, ok := po.Fraction(); !ok || f != 0.75 || po.BytesTotal != 8*mib {
		t.Errorf("p2 stage-out progress = %+v", po)
	}
	if !near(po.Rate, 6*mib/9.995, 1) {
		t.Errorf("p2 stage-out rate = %v", po.Rate)
	}
	if left, ok := po.Remaining(); !ok || !near(left.Seconds(), 2*9.995/6, 0.01) {
		t.Errorf("p2 remaining = %v %v", left, ok)
	}

	applyUntil(m, rest, at(1e6))
	checkInvariants(t, m)
	p2, _ = m.Job("p2")
	if p2.State != state.StateDone || p2.Progress.Known() || p2.Stalled {
		t.Errorf("p2 = %+v", p2)
	}
	// p1's bytes last grew at 16 s (received 16.02): stalled 30 s later.
	if m.Tick(at(45)); m.Totals(at(45)).Stalled != 0 {
		t.Error("stalled before 30 s")
	}
	if !m.Tick(at(47)) {
		t.Error("Tick reported no change")
	}
	p1, _ = m.Job("p1")
	if !p1.Stalled || p1.Progress.Rate != 0 || !p1.Progress.HasRate {
		t.Errorf("p1 = %+v", p1)
	}
	if tot := m.Totals(at(47)); tot.Stalled != 1 {
		t.Errorf("totals = %+v", tot)
	}
	if page, _ := m.Jobs(state.JobQuery{Flags: state.FlagStalled}, 0, -1); len(page) != 1 || page[0].ID != "p1" {
		t.Errorf("stalled jobs = %v", ids(page))
	}
	if th := m.Threads("exec-p", time.Time{}); !th[0].Stalled || th[1].Stalled {
		t.Errorf("threads = %+v", th)
	}

	// The bytes grow again: no longer stalled, at once.
	v := m.JobsVersion()
	_ = m.Apply(eventbus.Message{RoutingKey: "job.p1.progress", Received: at(60.02),
		Body: []byte(`{"executor":"exec-p","timestamp":1700000060.01,"type":"job.progress","id":"p1","thread":1,"phase":"stage-in","elapsed":59,"bytes":6291456}`)})
	if p1, _ = m.Job("p1"); p1.Stalled || p1.Progress.Bytes != 6*mib || m.JobsVersion() == v {
		t.Errorf("p1 after growth = %+v", p1)
	}
	if m.Tick(at(89)); m.Totals(at(89)).Stalled != 0 {
		t.Error("stalled again too soon")
	}
	m.Tick(at(91))
	if p1, _ = m.Job("p1"); !p1.Stalled {
		t.Error("not stalled 30 s after the last growth")
	}

	// Storage: nfs (the executor's), bytes counted as they move.
	rates := m.StorageRates(at(40))
	if len(rates) != 2 {
		t.Fatalf("storage rates = %+v", rates)
	}
	in, out := rates[0], rates[1]
	if in.Storage != "nfs" || in.Direction != state.PhaseStageIn || in.Bytes != 4*mib || in.Transfers != 1 ||
		in.Active != 1 || in.Time != 2*time.Second || in.Speed() != 2*mib {
		t.Errorf("stage-in = %+v", in)
	}
	// 5 MiB of p1 in progress and 4 MiB of p2, over the 39.99 s since the
	// first event.
	if !near(in.Rate, 9*mib/39.99, 1) {
		t.Errorf("stage-in rate = %v", in.Rate)
	}
	if out.Direction != state.PhaseStageOut || out.Bytes != 8*mib || out.Active != 0 || !near(out.Rate, 8*mib/39.99, 1) {
		t.Errorf("stage-out = %+v", out)
	}
}

func TestNoStallWithoutProgressEvents(t *testing.T) {
	// exec-k sends no progress events: its job j16 in stage-in is never
	// judged stalled.
	m := setup(t, state.Options{}, "lost.jsonl")
	m.Tick(m.Latest().Add(time.Hour))
	if j, _ := m.Job("j16"); j.Stalled || j.State != state.StateRunning {
		t.Errorf("j16 = %+v", j)
	}
}

func TestProgressIgnored(t *testing.T) {
	m := setup(t, state.Options{}, "progress_stall.jsonl")
	send := func(body string) error {
		return m.Apply(eventbus.Message{RoutingKey: "job.x.progress", Received: at(70), Body: []byte(body)})
	}
	before, _ := m.Job("p1")
	// Another executor's attempt, a finished job, a phase already left,
	// an unknown phase (reported invalid).
	_ = send(`{"executor":"exec-other","timestamp":1700000070,"type":"job.progress","id":"p1","thread":1,"phase":"stage-in","bytes":1}`)
	_ = send(`{"executor":"exec-p","timestamp":1700000070,"type":"job.progress","id":"p2","thread":2,"phase":"stage-out","bytes":1}`)
	if err := send(`{"executor":"exec-p","timestamp":1700000070,"type":"job.progress","id":"p1","thread":1,"phase":"warp","bytes":1}`); err == nil {
		t.Error("unknown phase accepted")
	}
	after, _ := m.Job("p1")
	if after.Progress != before.Progress || after.State != state.StateRunning || after.Redelivered {
		t.Errorf("p1 changed: %+v -> %+v", before, after)
	}
	if tot := m.Totals(at(70)); tot.Redelivered != 0 || tot.Done != 1 {
		t.Errorf("totals = %+v", tot)
	}
	// A progress event ahead of the phase known moves it on.
	_ = send(`{"executor":"exec-p","timestamp":1700000070,"type":"job.progress","id":"p1","thread":1,"phase":"execution","elapsed":2,"rss":100,"cpu":1}`)
	if j, _ := m.Job("p1"); j.Phase != state.PhaseExecution || !j.PhaseSince.Equal(at(68)) || j.Progress.RSS != 100 {
		t.Errorf("p1 = %+v", j)
	}
	checkInvariants(t, m)
}

func TestExecutorLost(t *testing.T) {
	m := setup(t, state.Options{}, "executor_lost.jsonl")
	m.Tick(at(7))
	for _, id := range []string{"exec-x1", "exec-x2"} {
		if x, _ := m.Executor(id); x.Status != state.StatusOnline || x.Lost {
			t.Errorf("%s = %+v", id, x)
		}
	}
	// Interval 2 s, stale after 3 missed: x1 had a job running.
	m.Tick(at(20))
	x1, _ := m.Executor("exec-x1")
	x2, _ := m.Executor("exec-x2")
	if x1.Status != state.StatusStale || !x1.Lost || x2.Status != state.StatusStale || x2.Lost {
		t.Errorf("x1 = %+v\nx2 = %+v", x1, x2)
	}
	if tot := m.Totals(at(20)); tot.LostExecutors != 1 || tot.Stale != 2 || tot.Running != 1 {
		t.Errorf("totals = %+v", tot)
	}
	if j, _ := m.Job("x1"); j.State != state.StateRunning {
		t.Errorf("x1's job = %+v", j)
	}
	// It comes back.
	_ = m.Apply(eventbus.Message{RoutingKey: "executor.heartbeat", Received: at(21),
		Body: []byte(`{"executor":"exec-x1","timestamp":1700000021,"type":"executor.heartbeat","busy":1,"threads":2,"running":[{"id":"x1","thread":1,"phase":"execution","since":1700000001.01}],"interval":2}`)})
	if x1, _ = m.Executor("exec-x1"); x1.Status != state.StatusOnline || x1.Lost {
		t.Errorf("x1 back = %+v", x1)
	}
}

func TestDeadlines(t *testing.T) {
	m := setup(t, state.Options{}, "deadline.jsonl")
	x, _ := m.Executor("exec-d")
	if x.ConsumerTimeout != 10*time.Minute {
		t.Errorf("executor = %+v", x)
	}
	d1, _ := m.Job("d1")
	d2, _ := m.Job("d2")
	d3, _ := m.Job("d3")
	// Timeout 600 s: warn max(60 s, 5 min), at most half the timeout,
	// before.
	if !d1.Deadline.Equal(at(601)) || !d1.DeadlineWarn.Equal(at(301)) {
		t.Errorf("d1 deadline %v warn %v", d1.Deadline, d1.DeadlineWarn)
	}
	if !d2.Deadline.Equal(at(750)) { // redelivered: a new deadline
		t.Errorf("d2 deadline %v", d2.Deadline)
	}
	if !d3.Deadline.Equal(at(850)) { // not listed yet: started + timeout
		t.Errorf("d3 deadline %v", d3.Deadline)
	}
	for _, c := range []struct {
		at    float64
		level state.DeadlineLevel
		left  time.Duration
	}{{250, state.DeadlineOK, 351 * time.Second}, {301, state.DeadlineWarning, 300 * time.Second},
		{601, state.DeadlineExpired, 0}, {700, state.DeadlineExpired, -99 * time.Second}} {
		if l := d1.DeadlineLevel(at(c.at)); l != c.level {
			t.Errorf("at %v: level %v, want %v", c.at, l, c.level)
		}
		if left, ok := d1.DeadlineLeft(at(c.at)); !ok || left != c.left {
			t.Errorf("at %v: left %v, want %v", c.at, left, c.left)
		}
	}
	if tot := m.Totals(at(460)); tot.NearDeadline != 2 { // d1 and d2
		t.Errorf("totals at 460 = %+v", tot)
	}
	m.Tick(at(400))
	if page, _ := m.Jobs(state.JobQuery{Flags: state.FlagNearDeadline}, 0, -1); len(page) != 1 || page[0].ID != "d1" {
		t.Errorf("near deadline = %v", ids(page))
	}
	if page, _ := m.Jobs(state.JobQuery{Sort: state.SortDeadline}, 0, -1); strings.Join(ids(page), ",") != "d1,d2,d3" {
		t.Errorf("by deadline = %v", ids(page))
	}
	var none state.JobView
	if none.DeadlineLevel(at(0)) != state.DeadlineNone || none.DeadlineLevel(at(0)).String() != "" {
		t.Error("a job without a deadline has a level")
	}

	// Other warning settings: 10 % of 600 s or 1 min.
	m2 := setup(t, state.Options{DeadlineWarnBefore: time.Minute}, "deadline.jsonl")
	if j, _ := m2.Job("d1"); !j.DeadlineWarn.Equal(at(541)) {
		t.Errorf("warn = %v", j.DeadlineWarn)
	}
	// Finished jobs have none.
	m3 := setup(t, state.Options{}, "progress_stall.jsonl")
	if j, _ := m3.Job("p2"); !j.Deadline.IsZero() {
		t.Errorf("finished job's deadline = %v", j.Deadline)
	}
	if j, _ := m3.Job("p1"); !j.Deadline.Equal(at(1801)) || !j.DeadlineWarn.Equal(at(1501)) {
		t.Errorf("p1 deadline %v warn %v", j.Deadline, j.DeadlineWarn)
	}
}

func TestFailureGroups(t *testing.T) {
	m := setup(t, state.Options{}, "failure_groups.jsonl")
	groups := m.FailureGroups()
	if len(groups) != 4 || m.Totals(m.Latest()).FailureGroups != 4 {
		t.Fatalf("groups = %+v", groups)
	}
	g := groups[0]
	if g.Executable != "mProject" || g.ExitStatus != 1 || !g.HasExit || g.Hostname != "node-24" ||
		g.Signature != "mProject: cannot open input file #mass-#.fits" ||
		g.Line != "mProject: cannot open input file 2mass-0099.fits" || g.Count != 3 ||
		strings.Join(g.Jobs, ",") != "f6,f2,f1" || !g.First.Equal(at(1.5)) || !g.Last.Equal(at(6.5)) {
		t.Errorf("group 0 = %+v", g)
	}
	// Newest first; the empty stderr falls back on the exception.
	if g := groups[1]; g.Executable != "mAdd" || g.ExitStatus != -2 ||
		g.Signature != "stage-in failed: s#://bucket/run-#/a.fits: not found" || g.Count != 1 {
		t.Errorf("group 1 = %+v", g)
	}
	// A cut tail: its partial first line is skipped.
	if g := groups[2]; g.ExitStatus != 137 || g.Signature != "progress # of # done" ||
		!strings.HasPrefix(g.Line, "progress 01") {
		t.Errorf("group 2 = %+v", g)
	}
	// Another host, another group.
	if g := groups[3]; g.Hostname != "node-25" || g.Signature != groups[0].Signature || strings.Join(g.Jobs, ",") != "f3" {
		t.Errorf("group 3 = %+v", g)
	}
	page, n := m.Jobs(state.JobQuery{Group: groups[0].Key}, 0, -1)
	if n != 3 || strings.Join(ids(page), ",") != "f1,f2,f6" {
		t.Errorf("jobs of group 0 = %v", ids(page))
	}
	d, _ := m.Job("f2")
	if d.FailureGroup != groups[0].Key || d.Signature != groups[0].Signature || !strings.Contains(d.StderrTail, "second line") {
		t.Errorf("f2 = %+v", d)
	}
	if d, _ := m.Job("f7"); d.FailureGroup != "" {
		t.Errorf("f7 = %+v", d)
	}

	// Bounded: the groups that failed least recently go.
	m2 := setup(t, state.Options{MaxFailureGroups: 2}, "failure_groups.jsonl")
	gs := m2.FailureGroups()
	if len(gs) != 2 || gs[0].Executable != "mProject" || gs[0].Count != 1 || gs[1].Executable != "mAdd" {
		t.Errorf("bounded groups = %+v", gs)
	}
	if tot := m2.Totals(m2.Latest()); tot.Failed != 6 {
		t.Errorf("failed = %d", tot.Failed)
	}
}

func TestUtilisation(t *testing.T) {
	m := setup(t, state.Options{}, "utilisation.jsonl")
	now := m.Latest() // 300.81 s
	u, threads, ok := m.Utilisation("exec-u1", now)
	if !ok || len(threads) != 2 || u.Threads != 2 || u.Span != 300*time.Second {
		t.Fatalf("exec-u1 = %+v %+v %v", u, threads, ok)
	}
	// Each thread: 15 s in, 10 s exec, 5 s out of every 30 s (within a
	// bucket's accuracy at the window's start).
	if !near(u.StageIn, 0.5, 0.02) || !near(u.Execution, 1/3.0, 0.02) || !near(u.StageOut, 1/6.0, 0.02) ||
		!near(u.Idle(), 0, 0.02) || !near(u.Staging(), 2/3.0, 0.02) {
		t.Errorf("exec-u1 = %+v", u)
	}
	if th := threads[0]; th.Thread != "1" || th.Slot != 1 || !near(th.Execution, 1/3.0, 0.02) {
		t.Errorf("thread 1 = %+v", th)
	}
	if d := m.Diagnosis("exec-u1", now); d != "exec 33%, staging 66%: transfers dominate" {
		t.Errorf("diagnosis exec-u1 = %q", d)
	}

	// With few intervals kept per lane, the buckets answer (within one
	// bucket, 15 s, at the window's start).
	mb := setup(t, state.Options{MaxIntervals: 4}, "utilisation.jsonl")
	ub, _, _ := mb.Utilisation("exec-u1", now)
	if !near(ub.StageIn, u.StageIn, 0.02) || !near(ub.Execution, u.Execution, 0.02) || !near(ub.StageOut, u.StageOut, 0.02) {
		t.Errorf("from buckets %+v, exactly %+v", ub, u)
	}
	if d := mb.Diagnosis("exec-u1", now); !strings.HasSuffix(d, ": transfers dominate") {
		t.Errorf("diagnosis from buckets = %q", d)
	}

	u2, threads2, _ := m.Utilisation("exec-u2", now)
	if u2.Threads != 4 || len(threads2) != 4 || u2.Execution != 0.05 || u2.Staging() != 0 ||
		threads2[0].Execution != 0.2 || threads2[3].Busy() != 0 {
		t.Errorf("exec-u2 = %+v %+v", u2, threads2)
	}
	if d := m.Diagnosis("exec-u2", now); d != "idle 95%: too few jobs for 4 threads" {
		t.Errorf("diagnosis exec-u2 = %q", d)
	}
	c := m.ClusterUtilisation(now)
	if c.Threads != 6 || !near(c.Busy(), (600+60)/1800.0, 0.02) {
		t.Errorf("cluster = %+v", c)
	}
	// Nothing to say of an executor just seen, or gone.
	if d := m.Diagnosis("exec-u2", at(10)); d != "" {
		t.Errorf("diagnosis after 10 s = %q", d)
	}
	m.Tick(now.Add(time.Minute))
	if d := m.Diagnosis("exec-u2", now.Add(time.Minute)); d != "" {
		t.Errorf("diagnosis of a stale executor = %q", d)
	}
	if _, _, ok := m.Utilisation("nobody", now); ok {
		t.Error("utilisation of an unknown executor")
	}

	// Per executable: staging against execution.
	for _, st := range m.ExecStats() {
		if st.Executable != "mViewer" {
			continue
		}
		if st.StageInTotal != 300*time.Second || st.ExecutionTotal != 200*time.Second ||
			st.StageOutTotal != 99980*time.Millisecond || !near(st.StagingShare(), 399.98/599.98, 1e-9) {
			t.Errorf("mViewer = %+v", st)
		}
	}
	// Per storage: cloud, the executor's default.
	rates := m.StorageRates(now)
	if len(rates) != 2 || rates[0].Storage != "cloud" || rates[0].Bytes != 300*mib || rates[0].Transfers != 20 ||
		rates[0].Speed() != mib || !near(rates[0].Rate, mib, 1) || !near(rates[1].Rate, 20*mib/60.0, 1) {
		t.Errorf("storage rates = %+v", rates)
	}
}

// TestUtilisationRunning: stages in progress count up to now.
func TestUtilisationRunning(t *testing.T) {
	m := setup(t, state.Options{UtilisationWindow: time.Minute}, "progress_stall.jsonl")
	u, threads, ok := m.Utilisation("exec-p", at(60))
	if !ok || u.Span != time.Minute {
		t.Fatalf("utilisation = %+v", u)
	}
	// Thread 1: stage-in since 1.01; thread 2: p2 from 2 to 35.01.
	if th := threads[0]; !near(th.StageIn, 58.99/60, 1e-6) || th.Execution != 0 {
		t.Errorf("thread 1 = %+v", th)
	}
	if th := threads[1]; !near(th.Execution, 20/60.0, 0.01) || !near(th.StageIn+th.StageOut, 13/60.0, 0.01) {
		t.Errorf("thread 2 = %+v", th)
	}
}

func TestRedeliveredFlag(t *testing.T) {
	m := setup(t, state.Options{}, "redelivered.jsonl")
	if tot := m.Totals(m.Latest()); tot.Redelivered != 2 || tot.Done != 2 || tot.Running != 1 {
		t.Errorf("totals = %+v", tot)
	}
	page, _ := m.Jobs(state.JobQuery{Flags: state.FlagRedelivered}, 0, -1)
	if strings.Join(ids(page), ",") != "rd1,rd3" || !page[0].Redelivered || page[0].Attempts != 1 {
		t.Errorf("redelivered = %+v", page)
	}
	if page, _ := m.Jobs(state.JobQuery{Flags: state.FlagRedelivered, States: state.States(state.StateRunning)}, 0, -1); len(page) != 1 {
		t.Errorf("redelivered running = %v", ids(page))
	}
}

func TestLateStartWithProgress(t *testing.T) {
	msgs := load(t, "late_progress.jsonl")
	m := state.New(state.Options{})
	// The first heartbeat alone shows what runs where.
	rest := applyUntil(m, msgs, at(1000.5))
	if tot := m.Totals(m.Latest()); tot.Running != 3 {
		t.Fatalf("totals = %+v", tot)
	}
	th := m.Threads("exec-lp", time.Time{})
	if len(th) != 4 || th[0].Job != "lp1" || th[0].Phase != state.PhaseStageIn || !th[0].Since.Equal(at(990)) ||
		th[1].Phase != state.PhaseExecution || th[2].Phase != state.PhaseStageOut || th[3].Job != "" {
		t.Errorf("threads = %+v", th)
	}
	lp1, _ := m.Job("lp1")
	if !lp1.Partial || !lp1.Deadline.Equal(at(2790)) || !lp1.DeadlineWarn.Equal(at(2490)) || lp1.Progress.Known() {
		t.Errorf("lp1 = %+v", lp1)
	}
	if x, _ := m.Executor("exec-lp"); x.ConsumerTimeout != 30*time.Minute || x.JobsDone != 40 {
		t.Errorf("executor = %+v", x)
	}

	applyUntil(m, rest, at(1e6))
	checkInvariants(t, m)
	lp1, _ = m.Job("lp1")
	if p := lp1.Progress; p.Bytes != 34*mib || !near(p.Rate, 34*mib/17.0, 1) {
		t.Errorf("lp1 progress = %+v", p)
	}
	lp2, _ := m.Job("lp2")
	if p := lp2.Progress; p.RSS != 64*mib || p.CPU != 100*time.Second || !near(p.CPURate, 100/102.5, 1e-9) {
		t.Errorf("lp2 progress = %+v", p)
	}
	lp3, _ := m.Job("lp3")
	if f, ok := lp3.Progress.Fraction(); !ok || f != 0.25 {
		t.Errorf("lp3 progress = %+v", lp3.Progress)
	}
	// lp4's progress came before any heartbeat listed it: known from the
	// second heartbeat, without figures until its next progress event.
	lp4, ok := m.Job("lp4")
	if !ok || lp4.Phase != state.PhaseExecution || !lp4.PhaseSince.Equal(at(1001)) || lp4.Progress.Known() ||
		!lp4.Deadline.Equal(at(2801)) {
		t.Errorf("lp4 = %+v", lp4)
	}
}

// A worker pool's executor shows its queue, and its tasks their name in
// the workflow (executor/workerpool).
func TestWorkerPoolTasks(t *testing.T) {
	m := setup(t, state.Options{}, "workerpool.jsonl")
	j, ok := m.Job("hf1:1:2:1")
	if !ok || j.Name != "mProject" || j.Executable != "mProject" || j.ExitStatus != 137 || j.State != state.StateFailed {
		t.Errorf("task = %+v", j)
	}
	xs := m.Executors()
	if len(xs) != 1 || xs[0].Queue != "montage.mProject" || xs[0].Storage != "shared" {
		t.Errorf("executors = %+v", xs)
	}
}

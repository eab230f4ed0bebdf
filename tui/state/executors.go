package state

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

type executor struct {
	id, hostname, storage, version, queue string
	broker                                string // the broker node it is connected to (password hidden)
	threadsN                              int
	status                                Status
	stopped                               bool // executor.stopped received
	reason                                string
	firstSeen, lastSeen, heartbeat        int64 // receive times, UNIX ns
	readyTS, hbTS, stoppedTS              float64
	interval                              time.Duration
	busy                                  int
	jobsDone, jobsFailed                  int64
	hasCounts                             bool
	done, failed                          int64
	// doneAfterHB, failedAfterHB: the jobs seen finishing after the last
	// heartbeat (its counts do not have them yet).
	doneAfterHB, failedAfterHB int64
	running                    map[*job]struct{}
	threads                    map[string]*thread

	// lost: stale with jobs running. progress: it sends job.progress
	// events (so its staging jobs can be judged stalled). beats: it is of
	// a kind that sends heartbeats (it sent one, or a sign of this
	// implementation: a versioned executor.ready, a job.started with the
	// redelivered flag, progress), unlike the original executor.
	lost, progress  bool
	beats           bool
	consumerTimeout float64 // seconds, from heartbeats; 0 unknown
	// since is the earliest event timestamp known of it (ready, first
	// event, or a stage that began before): where its utilisation can
	// start.
	since float64
	store *storeStat // of its storage (nil: look it up)

	// draining: it began its shutdown (executor.draining, or a heartbeat
	// with draining) at drainTS, for drainReason.
	draining    bool
	drainTS     float64
	drainReason string

	// blocked: its last heartbeat said the broker blocked its publishing
	// (connection.blocked); maxDeliveries its max_deliveries (0 unknown).
	blocked       bool
	maxDeliveries int
}

// execFor returns the event's executor, creating it, and marks it seen.
func (m *model) execFor(e *event) *executor {
	id := e.w.Executor
	x, ok := m.execs[id]
	if !ok {
		if len(m.execs) >= m.opts.MaxExecutors {
			m.dropExecutor()
		}
		x = &executor{
			id:        m.str(id),
			status:    StatusOnline,
			firstSeen: e.recv,
			running:   make(map[*job]struct{}),
			threads:   make(map[string]*thread),
			since:     e.ts,
		}
		m.execs[x.id] = x
	}
	if e.ts > 0 && e.ts < x.since {
		x.since = e.ts
	}
	if e.recv > x.lastSeen {
		x.lastSeen = e.recv
	}
	if e.recv != 0 && (x.firstSeen == 0 || e.recv < x.firstSeen) {
		x.firstSeen = e.recv
	}
	if x.status == StatusStale || x.status == StatusGone {
		// Heard of again.
		x.status, x.lost = m.statusAt(x, x.lastSeen)
	}
	return x
}

// dropExecutor forgets the least recently seen stopped or gone executor
// without running jobs, if there is one.
func (m *model) dropExecutor() {
	var victim *executor
	for _, x := range m.execs {
		if (!x.stopped && x.status != StatusGone) || len(x.running) > 0 {
			continue
		}
		if victim == nil || x.lastSeen < victim.lastSeen {
			victim = x
		}
	}
	if victim != nil {
		delete(m.execs, victim.id)
	}
}

func (m *model) applyReady(e *event) error {
	x := m.execFor(e)
	w := e.w
	if x.readyTS != 0 {
		if x.readyTS == e.ts {
			return m.anomaly(AnomalyDuplicate, e.msg, "executor.ready of %s again", x.id)
		}
	}
	m.fillExecutor(x, w)
	if w.Threads > 0 {
		x.threadsN = w.Threads
	}
	if w.Version != "" || w.Queue != "" {
		x.beats = true
	}
	dup := x.readyTS != 0
	if x.readyTS == 0 || e.ts < x.readyTS {
		x.readyTS = e.ts
	}
	if x.stopped {
		return m.anomaly(AnomalyOutOfOrder, e.msg, "executor.ready of %s after executor.stopped", x.id)
	}
	if dup {
		return m.anomaly(AnomalyDuplicate, e.msg, "second executor.ready of %s", x.id)
	}
	return nil
}

func (m *model) fillExecutor(x *executor, w *wireEvent) {
	if w.Hostname != "" {
		x.hostname = m.str(w.Hostname)
	}
	if w.Storage != "" && w.Storage != x.storage {
		x.storage = m.str(w.Storage)
		x.store = nil
	}
	if w.Version != "" {
		x.version = m.str(w.Version)
	}
	if w.Queue != "" {
		x.queue = m.str(w.Queue)
	}
	if w.Broker != "" {
		x.broker = m.str(w.Broker)
	}
}

func (m *model) applyHeartbeat(e *event) error {
	x := m.execFor(e)
	w := e.w
	switch {
	case x.hbTS == e.ts:
		return m.anomaly(AnomalyDuplicate, e.msg, "heartbeat of %s at %.6f again", x.id, e.ts)
	case e.ts < x.hbTS:
		return m.anomaly(AnomalyOutOfOrder, e.msg, "heartbeat of %s older than the last", x.id)
	}
	x.hbTS = e.ts
	x.heartbeat = max(x.heartbeat, e.recv)
	x.beats = true
	m.fillExecutor(x, w)
	if w.Threads > 0 {
		x.threadsN = w.Threads
	}
	if w.Interval > 0 {
		x.interval = seconds(w.Interval)
	}
	if w.ConsumerTimeout > 0 {
		x.consumerTimeout = w.ConsumerTimeout
	}
	x.blocked = w.Blocked != nil && *w.Blocked
	if w.MaxDeliveries > 0 {
		x.maxDeliveries = w.MaxDeliveries
	}
	if w.Busy != nil || w.JobsDone != nil || w.JobsFailed != nil {
		x.hasCounts = true
		if w.Busy != nil {
			x.busy = *w.Busy
		}
		if w.JobsDone != nil {
			x.jobsDone = *w.JobsDone
			x.doneAfterHB = 0
		}
		if w.JobsFailed != nil {
			x.jobsFailed = *w.JobsFailed
			x.failedAfterHB = 0
		}
	}
	if w.Draining != nil && *w.Draining {
		m.drain(x, e)
	}
	m.applyRunningList(e, x)
	return nil
}

// totals are x's jobs done and failed as best known: its own counts
// (heartbeats, since it started) and those seen finishing since, or what
// the monitor saw when that is more (or there are no heartbeats).
func (x *executor) totals() (done, failed int64) {
	if !x.hasCounts {
		return x.done, x.failed
	}
	return max(x.done, x.jobsDone+x.doneAfterHB), max(x.failed, x.jobsFailed+x.failedAfterHB)
}

// applyDraining takes executor.draining: the executor began its shutdown
// and waits for the jobs of its running list.
func (m *model) applyDraining(e *event) error {
	x := m.execFor(e)
	if x.stopped {
		return m.anomaly(AnomalyOutOfOrder, e.msg, "executor.draining of %s after executor.stopped", x.id)
	}
	if x.draining && x.drainTS == e.ts {
		return m.anomaly(AnomalyDuplicate, e.msg, "executor.draining of %s again", x.id)
	}
	m.drain(x, e)
	if e.w.Reason != "" {
		x.drainReason = e.w.Reason
	}
	if e.w.Busy != nil && !x.hasCounts {
		x.busy = *e.w.Busy
	}
	m.applyRunningList(e, x)
	return nil
}

// drain marks x draining from e on (the earliest such event).
func (m *model) drain(x *executor, e *event) {
	x.beats = true
	if !x.draining || e.ts < x.drainTS {
		x.drainTS = e.ts
	}
	x.draining = true
	if x.status == StatusOnline {
		x.status = StatusDraining
	}
}

// applyRunningList takes the running list of a heartbeat or of
// executor.draining: the jobs it lists are running, and those it no longer
// lists, though their last event is older, have ended unseen.
func (m *model) applyRunningList(e *event, x *executor) {
	w := e.w
	if w.Running == nil {
		return
	}
	listed := make(map[*job]bool, len(*w.Running))
	for i := range *w.Running {
		if j := m.applyRunning(e, x, &(*w.Running)[i]); j != nil {
			listed[j] = true
		}
	}
	// Running jobs the executor no longer lists, though their last event
	// is older than the heartbeat, have ended unseen.
	for j := range x.running {
		if listed[j] || j.lastTS >= e.ts {
			continue
		}
		j.hbMiss++
		if j.hbMiss >= hbMissesLost {
			m.lose(j, j.lastTS)
		}
	}
}

// applyRunning takes one entry of a heartbeat's running list: it creates
// the job when the monitor has not seen it yet (a monitor started late)
// and refreshes its phase when the list knows better.
func (m *model) applyRunning(e *event, x *executor, r *wireRunning) *job {
	id := r.ID
	if id == "" {
		id = r.Job
	}
	if id == "" {
		return nil
	}
	key, num := threadKey(r.Thread)
	since := r.Since
	if since <= 0 {
		since = e.ts
	}
	phase := phaseName(r.Phase)
	j, ok := m.jobs[id]
	if !ok {
		if fin, gone := m.evicted[m.hash(id)]; gone && since <= fin {
			return nil // a snapshot taken before the job finished
		}
		j = m.newJob(id, x, key, num)
		j.partial = true
		j.executable = m.str(r.Executable)
		j.lastTS = since
		j.lastRecv = e.recv
		j.deadline = r.Deadline
		j.setPhase(phase, since)
		m.setRunning(j)
		m.takeThread(j, since)
		m.openInterval(j, phaseCode(phase), since)
		m.jobsVersion++
		return j
	}
	switch {
	case j.exec != x || (j.state.Finished() && j.finished > 0 && since > j.finished):
		if since <= j.lastTS {
			return nil // an older snapshot than what the job's events said
		}
		// Delivered again (to this executor), its job.started not seen.
		m.restart(j, x, key, num, since)
		j.partial = true
		j.deadline = r.Deadline
		if r.Executable != "" {
			j.executable = m.str(r.Executable)
		}
		j.setPhase(phase, since)
		m.openInterval(j, phaseCode(phase), since)
		return j
	case j.state == StateRunning:
		j.hbMiss = 0
		if r.Deadline > 0 && r.Deadline != j.deadline {
			// A redelivery attached to the running job starts a new
			// deadline.
			j.deadline = r.Deadline
			m.jobsVersion++
		}
		if j.executable == "" && r.Executable != "" {
			j.executable = m.str(r.Executable)
			m.jobsVersion++
		}
		if since > j.phaseSince && phaseOrder(phase) > phaseOrder(j.phase) {
			j.setPhase(phase, since)
			m.openInterval(j, phaseCode(phase), since)
			m.jobsVersion++
		}
		return j
	}
	return nil // finished: the snapshot predates its end
}

func (m *model) applyStopped(e *event) error {
	x := m.execFor(e)
	if x.stopped {
		if x.stoppedTS == e.ts {
			return m.anomaly(AnomalyDuplicate, e.msg, "executor.stopped of %s again", x.id)
		}
		return m.anomaly(AnomalyDuplicate, e.msg, "second executor.stopped of %s", x.id)
	}
	x.status, x.stopped, x.lost = StatusStopped, true, false
	x.stoppedTS = e.ts
	x.reason = e.w.Reason
	for j := range x.running {
		if j.lastTS <= e.ts {
			m.lose(j, e.ts)
		}
	}
	return nil
}

// age sets an executor's status for now; it reports a change.
func (m *model) age(x *executor, now int64) bool {
	st, lost := m.statusAt(x, now)
	if st == x.status && lost == x.lost {
		return false
	}
	x.status, x.lost = st, lost
	return true
}

// statusAt is an executor's status at now (receive time, UNIX ns), and
// whether it is lost.
func (m *model) statusAt(x *executor, now int64) (Status, bool) {
	idle := len(x.running) == 0
	quiet := now - x.lastSeen
	gone := idle && m.opts.GoneAfter > 0 && quiet > int64(m.opts.GoneAfter)
	switch {
	case x.stopped && gone:
		return StatusGone, false
	case x.stopped:
		return StatusStopped, false
	case !x.beats && !idle:
		// Of a kind without heartbeats (the original executor): it is
		// busy, not dead, as far as anyone can tell.
		return StatusOnline, false
	case quiet <= int64(m.opts.StaleIntervals)*int64(m.interval(x)):
		// Stale from its last sign of life of any kind (executor.ready,
		// a job event, a heartbeat): an executor killed before its first
		// heartbeat goes stale too.
		if x.draining {
			return StatusDraining, false
		}
		return StatusOnline, false
	case gone:
		return StatusGone, false
	}
	return StatusStale, !idle
}

func (m *model) interval(x *executor) time.Duration {
	if x.interval > 0 {
		return x.interval
	}
	return m.opts.DefaultHeartbeat
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (m *model) executorView(x *executor) ExecutorView {
	v := ExecutorView{
		ID:         x.id,
		Hostname:   x.hostname,
		Threads:    x.threadsN,
		Storage:    x.storage,
		Version:    x.version,
		Queue:      x.queue,
		Broker:     x.broker,
		Status:     x.status,
		Stopped:    x.stopped,
		Reason:     x.reason,
		FirstSeen:  nsTime(x.firstSeen),
		LastSeen:   nsTime(x.lastSeen),
		Heartbeat:  nsTime(x.heartbeat),
		Interval:   m.interval(x),
		Busy:       x.busy,
		JobsDone:   x.jobsDone,
		JobsFailed: x.jobsFailed,
		HasCounts:  x.hasCounts,
		Running:    len(x.running),
		Done:       x.done,
		Failed:     x.failed,

		Lost:            x.lost,
		ConsumerTimeout: seconds(x.consumerTimeout),
	}
	v.DoneTotal, v.FailedTotal = x.totals()
	if x.draining && !x.stopped {
		v.Draining, v.DrainingSince, v.DrainReason = true, tsTime(x.drainTS), x.drainReason
		v.Waiting = make([]string, 0, len(x.running))
		for j := range x.running {
			v.Waiting = append(v.Waiting, j.id)
		}
		slices.Sort(v.Waiting)
	}
	return v
}

func (m *model) executors() []ExecutorView {
	out := make([]ExecutorView, 0, len(m.execs))
	for _, x := range m.execs {
		out = append(out, m.executorView(x))
	}
	slices.SortFunc(out, func(a, b ExecutorView) int {
		return cmp.Or(strings.Compare(a.Hostname, b.Hostname), a.FirstSeen.Compare(b.FirstSeen),
			strings.Compare(a.ID, b.ID))
	})
	return out
}

func (m *model) executor(id string) (ExecutorView, bool) {
	x, ok := m.execs[id]
	if !ok {
		return ExecutorView{}, false
	}
	return m.executorView(x), true
}

// thread is one worker slot of an executor.
type thread struct {
	key       string
	num       int64 // -1 when the id is not a number
	cur       *job  // the job running on it, nil when idle
	idleSince float64
	iv        ivRing
	util      *utilRing // busy time per phase, allocated at first use
}

func (m *model) thread(x *executor, key string, num int64) *thread {
	t, ok := x.threads[key]
	if !ok {
		t = &thread{key: key, num: num, iv: ivRing{max: m.opts.MaxIntervals}}
		x.threads[key] = t
	}
	return t
}

func (m *model) threads(executorID string, since time.Time) []ThreadView {
	x, ok := m.execs[executorID]
	if !ok {
		return nil
	}
	list := sortedThreads(x)
	sinceTS := eventbus.Timestamp(since)
	out := make([]ThreadView, len(list))
	for i, t := range list {
		v := ThreadView{Thread: t.key, Slot: i + 1, Phase: PhaseIdle, Since: tsTime(t.idleSince)}
		if j := t.cur; j != nil {
			v.Job, v.Executable, v.Phase = j.id, j.executable, j.phase
			v.Since = tsTime(j.phaseSince)
			v.Progress = progressView(j)
			v.Stalled = j.stalled
		}
		v.Intervals = t.iv.view(sinceTS)
		out[i] = v
	}
	return out
}

// sortedThreads lists an executor's threads in lane order, with the slots
// 1..threads that have not run anything yet as idle lanes.
func sortedThreads(x *executor) []*thread {
	list := make([]*thread, 0, max(len(x.threads), x.threadsN))
	inRange := true
	for _, t := range x.threads {
		list = append(list, t)
		if t.num < 1 || t.num > int64(x.threadsN) {
			inRange = false
		}
	}
	if inRange {
		// Slots 1..threads that have not run anything yet are idle lanes.
		for n := 1; n <= x.threadsN; n++ {
			k := threadName(int64(n))
			if _, ok := x.threads[k]; !ok {
				list = append(list, &thread{key: k, num: int64(n)})
			}
		}
	}
	slices.SortFunc(list, func(a, b *thread) int {
		switch {
		case a.num >= 0 && b.num >= 0:
			return cmp.Compare(a.num, b.num)
		case a.num >= 0:
			return -1
		case b.num >= 0:
			return 1
		}
		return strings.Compare(a.key, b.key)
	})
	return list
}

func threadName(n int64) string {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n]
	}
	return strconv.FormatInt(n, 10)
}

// Phase codes of intervals.
const (
	phaseNone uint8 = iota
	phaseStageIn
	phaseExec
	phaseStageOut
)

var phaseNames = [...]string{phaseNone: "", phaseStageIn: PhaseStageIn, phaseExec: PhaseExecution, phaseStageOut: PhaseStageOut}

func phaseCode(p string) uint8 {
	switch p {
	case PhaseStageIn:
		return phaseStageIn
	case PhaseExecution:
		return phaseExec
	case PhaseStageOut:
		return phaseStageOut
	}
	return phaseNone
}

// phaseName normalises a phase's spelling (the original's stage_in).
func phaseName(p string) string {
	switch p {
	case PhaseStageIn, "stage_in", "stagein":
		return PhaseStageIn
	case PhaseExecution, "exec", "running":
		return PhaseExecution
	case PhaseStageOut, "stage_out", "stageout":
		return PhaseStageOut
	}
	return PhaseStageIn
}

func phaseOrder(p string) int { return int(phaseCode(p)) }

// interval is one stage on a thread's lane; end 0 = in progress.
type interval struct {
	job        string
	start, end float64
	phase      uint8
	failed     bool
}

// ivRing holds a thread's most recent intervals, at most max.
type ivRing struct {
	buf     []interval
	head, n int
	max     int
	// dropped is the latest end of the intervals dropped from the ring:
	// from then on it holds every interval.
	dropped float64
}

func (r *ivRing) at(i int) *interval { return &r.buf[(r.head+i)%len(r.buf)] }

func (r *ivRing) push(iv interval) {
	switch {
	case r.n < len(r.buf):
		*r.at(r.n) = iv
		r.n++
	case len(r.buf) < r.max:
		// Grow, keeping the order from index 0.
		nb := make([]interval, r.n, min(max(2*len(r.buf), 8), r.max))
		for i := range r.n {
			nb[i] = *r.at(i)
		}
		r.buf, r.head = append(nb, iv), 0
		r.n++
		r.buf = r.buf[:cap(r.buf)]
	default: // full: replace the oldest
		old := &r.buf[r.head]
		r.dropped = max(r.dropped, old.start, old.end)
		r.buf[r.head] = iv
		r.head = (r.head + 1) % len(r.buf)
	}
}

// find returns the newest interval of job j in phase p among the last few.
func (r *ivRing) find(id string, p uint8) *interval {
	for i := r.n - 1; i >= 0 && i >= r.n-8; i-- {
		iv := r.at(i)
		if iv.phase == p && iv.job == id {
			return iv
		}
	}
	return nil
}

// prune drops the oldest intervals that ended before cutoff.
func (r *ivRing) prune(cutoff float64) bool {
	changed := false
	for r.n > 0 {
		iv := r.at(0)
		if iv.end == 0 || iv.end >= cutoff {
			break
		}
		r.dropped = max(r.dropped, iv.end)
		*iv = interval{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
		changed = true
	}
	return changed
}

func (t *thread) prune(cutoff float64) bool { return t.iv.prune(cutoff) }

func (r *ivRing) view(since float64) []Interval {
	var out []Interval
	for i := range r.n {
		iv := r.at(i)
		if iv.end != 0 && iv.end < since {
			continue
		}
		out = append(out, Interval{
			Job:    iv.job,
			Phase:  phaseNames[iv.phase],
			Start:  tsTime(iv.start),
			End:    tsTime(iv.end),
			Failed: iv.failed,
		})
	}
	return out
}

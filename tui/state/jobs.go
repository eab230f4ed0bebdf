package state

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// job is one job (its current attempt). Event timestamps are UNIX seconds
// (0 = unknown), receive times UNIX ns.
type job struct {
	id         string
	exec       *executor
	thread     string
	threadN    int64
	executable string
	name       string // a worker-pool task's name in the workflow
	queue      string // a worker-pool task's queue (job.started); else its executor's

	state      JobState
	phase      string
	phaseSince float64

	seen    uint16 // bit per rank seen in this attempt
	maxRank int8   // highest rank seen, -1 none
	ts      [nRanks]float64
	recv    [nRanks]int64

	started, finished float64
	stages            [3]stageRec // stage-in, execution, stage-out

	exit, execExit       int32
	hasExit, hasExecExit bool
	redelivered, partial bool
	dropped              bool // evicted from the model
	hbMiss               uint8
	statted              uint8 // bit per stage added to the statistics
	attempts             int32
	gen                  uint32 // bumped when the job leaves the finished set

	metrics    *eventbus.Metrics
	exceptions []string
	stderr     string

	lastTS   float64
	lastRecv int64

	deadline float64   // acknowledgement deadline from heartbeats; 0 unknown
	prog     *progress // of the current phase, while running
	group    *failGroup
	// stalled: staging without growth (Tick); nearDeadline: deadline near
	// or past at the last Tick.
	stalled, nearDeadline bool
}

const (
	stIn = iota
	stExec
	stOut
)

type stageRec struct {
	start, end, dur  float64
	bytes            int64
	hasDur, hasBytes bool
}

func (m *model) hash(id string) uint64 { return maphash.String(m.seed, id) }

func (m *model) newJob(id string, x *executor, key string, num int64) *job {
	j := &job{id: id, exec: x, thread: key, threadN: num, maxRank: -1}
	m.jobs[id] = j
	m.order = append(m.order, j)
	return j
}

func (j *job) setPhase(p string, since float64) {
	if j.phase != p {
		j.phase, j.phaseSince = p, since
	}
}

// rankPhase is the phase a running job is in after an event of rank r.
func rankPhase(r int) string {
	switch {
	case r <= rankStageInFinished:
		return PhaseStageIn
	case r <= rankExecFinished:
		return PhaseExecution
	default:
		return PhaseStageOut
	}
}

func (m *model) setRunning(j *job) {
	j.state = StateRunning
	m.running++
	j.exec.running[j] = struct{}{}
}

func (m *model) leaveRunning(j *job) {
	if j.state == StateRunning {
		m.running--
		delete(j.exec.running, j)
	}
}

// end moves a job to a finished state (done, failed or lost).
func (m *model) end(j *job, st JobState, at float64) {
	was := j.state
	if was == st {
		return
	}
	m.leaveRunning(j)
	m.closeIntervals(j, at, st == StateFailed)
	m.release(j, at)
	if was == StateLost {
		m.lost--
	}
	if st == StateLost {
		m.lost++
	}
	j.state = st
	j.phase, j.phaseSince = "", 0
	j.prog, j.stalled, j.nearDeadline = nil, false, false
	m.jobsVersion++
	if !was.Finished() {
		m.finishedKept++
		m.fifo = append(m.fifo, fifoEntry{j: j, gen: j.gen})
		m.evict()
	}
}

// lose marks a running job lost: it can no longer be running, and its end
// was not seen.
func (m *model) lose(j *job, at float64) {
	if j.state == StateRunning {
		m.end(j, StateLost, at)
	}
}

// evict drops the oldest finished jobs beyond MaxJobs.
func (m *model) evict() {
	for m.finishedKept > m.opts.MaxJobs && m.fifoHead < len(m.fifo) {
		e := m.fifo[m.fifoHead]
		m.fifo[m.fifoHead] = fifoEntry{}
		m.fifoHead++
		j := e.j
		if j.gen != e.gen || !j.state.Finished() || m.jobs[j.id] != j {
			continue
		}
		delete(m.jobs, j.id)
		j.dropped = true
		m.orderDropped++
		m.finishedKept--
		m.evictedN++
		m.remember(j)
	}
	if m.orderDropped > 1024 && m.orderDropped*4 > len(m.order) {
		kept := m.order[:0]
		for _, j := range m.order {
			if !j.dropped {
				kept = append(kept, j)
			}
		}
		clear(m.order[len(kept):])
		m.order = kept
		m.orderDropped = 0
	}
	if m.fifoHead > 1024 && m.fifoHead*2 > len(m.fifo) {
		n := copy(m.fifo, m.fifo[m.fifoHead:])
		clear(m.fifo[n:])
		m.fifo = m.fifo[:n]
		m.fifoHead = 0
	}
}

// remember notes a dropped job's id, to recognise late events for it.
func (m *model) remember(j *job) {
	h := m.hash(j.id)
	fin := j.finished
	if fin == 0 {
		fin = j.lastTS
	}
	if len(m.evictRing) < max(m.opts.MaxJobs, minRemembered) {
		m.evictRing = append(m.evictRing, h)
	} else {
		delete(m.evicted, m.evictRing[m.evictPos])
		m.evictRing[m.evictPos] = h
		m.evictPos = (m.evictPos + 1) % len(m.evictRing)
	}
	m.evicted[h] = fin
}

// restart begins a new attempt of a job (delivered again) on executor x.
func (m *model) restart(j *job, x *executor, key string, num int64, at float64) {
	switch j.state {
	case StateRunning:
		m.leaveRunning(j)
		m.closeIntervals(j, at, false)
		m.release(j, at)
	case StateLost:
		m.lost--
		fallthrough
	default:
		m.finishedKept--
		j.gen++
	}
	*j = job{
		id: j.id, exec: x, thread: key, threadN: num, executable: j.executable,
		maxRank: -1, attempts: j.attempts, gen: j.gen, redelivered: true,
		lastTS: at, lastRecv: j.lastRecv,
	}
	m.redeliv++
	m.setRunning(j)
	m.takeThread(j, at)
	m.jobsVersion++
}

// takeThread makes j the job running on its thread. A job still running
// there with older events has ended unseen (lost); a newer one keeps the
// thread.
func (m *model) takeThread(j *job, at float64) {
	if j.thread == "" || j.state != StateRunning {
		return
	}
	t := m.thread(j.exec, j.thread, j.threadN)
	if t.cur == j {
		return
	}
	if o := t.cur; o != nil && o.state == StateRunning {
		if o.lastTS > at {
			return
		}
		m.lose(o, o.lastTS)
	}
	t.cur = j
}

// release frees j's thread.
func (m *model) release(j *job, at float64) {
	if j.thread == "" {
		return
	}
	if t, ok := j.exec.threads[j.thread]; ok && t.cur == j {
		t.cur = nil
		t.idleSince = at
	}
}

func (m *model) openInterval(j *job, p uint8, at float64) {
	if j.thread == "" || p == phaseNone {
		return
	}
	t := m.thread(j.exec, j.thread, j.threadN)
	if t.iv.find(j.id, p) != nil {
		return
	}
	t.iv.push(interval{job: j.id, phase: p, start: at})
}

// closeInterval ends j's interval of phase p at end; dur (seconds, when
// known) places its start if the start was not seen.
func (m *model) closeInterval(j *job, p uint8, end, dur float64, failed bool) {
	if j.thread == "" {
		return
	}
	t := m.thread(j.exec, j.thread, j.threadN)
	if iv := t.iv.find(j.id, p); iv != nil {
		switch {
		case iv.end == 0:
			m.busy(j.exec, t, p, iv.start, end)
			iv.end = end
		case end > iv.end:
			m.busy(j.exec, t, p, iv.end, end)
			iv.end = end
		}
		iv.failed = iv.failed || failed
		return
	}
	start := end
	if dur > 0 {
		start = end - dur
	}
	m.busy(j.exec, t, p, start, end)
	t.iv.push(interval{job: j.id, phase: p, start: start, end: end, failed: failed})
}

// closeIntervals ends j's open intervals at end (the job ended).
func (m *model) closeIntervals(j *job, end float64, failed bool) {
	if j.thread == "" {
		return
	}
	t, ok := j.exec.threads[j.thread]
	if !ok {
		return
	}
	r := &t.iv
	var last *interval
	for i := r.n - 1; i >= 0 && i >= r.n-8; i-- {
		iv := r.at(i)
		if iv.job != j.id {
			continue
		}
		if last == nil {
			last = iv
		}
		if iv.end == 0 {
			iv.end = max(end, iv.start)
			m.busy(j.exec, t, iv.phase, iv.start, iv.end)
		}
	}
	if failed && last != nil {
		last.failed = true
	}
}

// applyJob applies a job event: it finds (or makes) the job and its
// attempt, drops a duplicate, notes the event, and applies what the event
// says of the job's stages.
func (m *model) applyJob(e *event) error {
	id, err := m.jobID(e)
	if err != nil {
		return err
	}
	key, num := m.eventThread(e)
	if e.rank == rankProgress {
		return m.applyProgress(e, id)
	}
	j, err := m.jobFor(e, id, key, num)
	if err != nil {
		return err
	}
	rank := e.rank

	// Duplicates and order.
	bit := uint16(1) << rank
	if j.seen&bit != 0 {
		if j.ts[rank] == e.ts {
			return m.anomaly(AnomalyDuplicate, e.msg, "%s of job %s again", rankTypes[rank], id)
		}
		return m.anomaly(AnomalyDuplicate, e.msg, "second %s of job %s", rankTypes[rank], id)
	}
	outOfOrder := int8(rank) < j.maxRank
	m.noteEvent(e, j, key, num)

	running := j.state == StateRunning
	if running && !outOfOrder && rank != rankFinished {
		j.setPhase(rankPhase(rank), e.ts)
		m.takeThread(j, e.ts)
	}
	m.applyStage(e, j, running)
	if outOfOrder {
		return m.anomaly(AnomalyOutOfOrder, e.msg, "%s of job %s after %s", rankTypes[rank], id, rankTypes[j.maxRank])
	}
	return nil
}

// jobID is the id of the job an event is about: its id, else its job, else
// the id in its routing key.
func (m *model) jobID(e *event) (string, error) {
	w := e.w
	id := w.ID
	if id == "" {
		id = w.Job
	}
	if id == "" {
		_, id = parseKey(e.msg.RoutingKey)
	}
	if id == "" {
		return "", m.anomaly(AnomalyInvalid, e.msg, "job event without a job id")
	}
	return id, nil
}

// eventThread is the thread an event names (else its metrics' thread), as
// a key and a number (see threadKey). A thread that cannot be read marks the
// event invalid.
func (m *model) eventThread(e *event) (key string, num int64) {
	w := e.w
	key, num = threadKey(w.Thread)
	if key == "" && len(w.Thread) > 0 && string(w.Thread) != "null" {
		e.invalid = "thread " + truncate(string(w.Thread), 64)
	}
	if key == "" && w.Metrics != nil {
		key, num = threadKey(w.Metrics.Thread)
	}
	if key != "" {
		key = m.str(key)
	}
	return key, num
}

// jobFor finds the job of an event, or makes it (an event of a job already
// dropped from memory is late), and begins a new attempt when the event
// says so.
func (m *model) jobFor(e *event, id, key string, num int64) (*job, error) {
	j, ok := m.jobs[id]
	if ok {
		return j, m.newAttempt(e, j, m.execFor(e), key, num)
	}
	if fin, gone := m.evicted[m.hash(id)]; gone && (e.rank != rankStarted || e.ts <= fin) {
		return nil, m.anomaly(AnomalyLate, e.msg, "job %s already dropped", id)
	}
	j = m.newJob(m.str(id), m.execFor(e), key, num)
	j.partial = e.rank != rankStarted
	m.setRunning(j)
	m.jobsVersion++
	return j, nil
}

// noteEvent records that j had event e: its times, and what it tells of the
// job's executable and thread.
func (m *model) noteEvent(e *event, j *job, key string, num int64) {
	rank := e.rank
	j.seen |= uint16(1) << rank
	j.ts[rank], j.recv[rank] = e.ts, e.recv
	j.maxRank = max(j.maxRank, int8(rank))
	j.lastTS = max(j.lastTS, e.ts)
	j.lastRecv = max(j.lastRecv, e.recv)
	j.hbMiss = 0
	if j.name == "" && e.w.Name != "" {
		j.name = m.str(e.w.Name)
	}
	if j.executable == "" && e.w.Executable != "" {
		j.executable = m.str(e.w.Executable)
	}
	if j.thread == "" && key != "" {
		j.thread, j.threadN = key, num
	}
	m.jobsVersion++
}

// applyStage applies what event e says of j's stages, intervals and the
// throughput counters.
func (m *model) applyStage(e *event, j *job, running bool) {
	w := e.w
	b := m.count(e.recv)
	if b == nil {
		b = new(Bucket) // older than the throughput ring: counted nowhere
	}
	switch e.rank {
	case rankStarted:
		j.started = e.ts
		j.attempts++
		j.partial = false
		b.Started++
		m.queueStarted(e, j)
		if w.Redelivered != nil {
			j.exec.beats = true // only this implementation sends the flag
		}
		if w.Redelivered != nil && *w.Redelivered && !j.redelivered {
			j.redelivered = true
			m.redeliv++
		}
	case rankStageInStarted:
		j.stages[stIn].start = e.ts
		if running {
			m.openInterval(j, phaseStageIn, e.ts)
		}
	case rankExecStarted:
		j.stages[stExec].start = e.ts
		if running {
			m.openInterval(j, phaseExec, e.ts)
		}
	case rankStageOutStarted:
		j.stages[stOut].start = e.ts
		if running {
			m.openInterval(j, phaseStageOut, e.ts)
		}
	case rankStageInFinished:
		s := &j.stages[stIn]
		m.stageFinished(s, w, e.ts)
		b.StageIn++
		b.StageInBytes += s.bytes
		m.transferred(j, phaseStageIn, s, e.recv)
		m.addStats(j, stIn, false)
		m.closeInterval(j, phaseStageIn, e.ts, s.dur, false)
	case rankStageOutFinished:
		s := &j.stages[stOut]
		m.stageFinished(s, w, e.ts)
		b.StageOut++
		b.StageOutBytes += s.bytes
		m.transferred(j, phaseStageOut, s, e.recv)
		m.addStats(j, stOut, false)
		m.closeInterval(j, phaseStageOut, e.ts, s.dur, false)
	case rankExecFinished:
		s := &j.stages[stExec]
		s.end = e.ts
		if w.Time != nil {
			s.dur, s.hasDur = *w.Time, true
		} else if w.Metrics != nil && w.Metrics.Execution > 0 {
			s.dur, s.hasDur = w.Metrics.Execution, true
		}
		if st, ok := exitStatus(w.ExitStatus); ok {
			j.execExit, j.hasExecExit = int32(st), true
		}
		if w.Metrics != nil && j.metrics == nil {
			j.metrics = m.metrics(w.Metrics)
		}
		b.Execution++
		m.addStats(j, stExec, false)
		m.closeInterval(j, phaseExec, e.ts, s.dur, j.hasExecExit && j.execExit != 0)
	case rankFinished:
		m.jobFinished(e, j, b)
		m.queueFinished(e, j)
	}
}

// newAttempt checks an event of a known job: an event of another executor,
// or a job.started after the job's end, begins a new attempt (the job was
// delivered again); an event of an older attempt is out of order.
func (m *model) newAttempt(e *event, j *job, x *executor, key string, num int64) error {
	rank := e.rank
	newer := e.ts > j.lastTS
	switch {
	case j.exec != x:
		if !newer {
			return m.anomaly(AnomalyOutOfOrder, e.msg, "event of job %s from %s, an earlier attempt", j.id, x.id)
		}
		m.restart(j, x, key, num, e.ts)
		j.partial = rank != rankStarted
	case rank == rankStarted && j.seen&1 != 0 && e.ts != j.ts[rankStarted] && newer &&
		(j.state.Finished() || (e.w.Redelivered != nil && *e.w.Redelivered)):
		m.restart(j, x, key, num, e.ts)
	case rank == rankStarted && j.seen&1 == 0 && j.state.Finished() && j.finished > 0 && e.ts > j.finished:
		m.restart(j, x, key, num, e.ts)
	}
	return nil
}

// stageFinished fills a staging stage from its finished event.
func (m *model) stageFinished(s *stageRec, w *wireEvent, ts float64) {
	s.end = ts
	if w.Time != nil {
		s.dur, s.hasDur = *w.Time, true
	} else if s.start > 0 {
		s.dur, s.hasDur = ts-s.start, true
	}
	if w.Bytes != nil {
		s.bytes, s.hasBytes = *w.Bytes, true
	}
}

func (m *model) jobFinished(e *event, j *job, b *Bucket) {
	w := e.w
	j.finished = e.ts
	st, ok := exitStatus(w.ExitStatus)
	if !ok && j.hasExecExit {
		st, ok = int(j.execExit), true
	}
	j.exit, j.hasExit = int32(st), ok
	if w.Metrics != nil {
		j.metrics = m.metrics(w.Metrics)
		m.fillFromMetrics(j)
	}
	if len(w.Exceptions) > 0 {
		j.exceptions = make([]string, 0, min(len(w.Exceptions), maxExceptions))
		for _, x := range w.Exceptions[:min(len(w.Exceptions), maxExceptions)] {
			j.exceptions = append(j.exceptions, truncate(x, maxExceptionLen))
		}
	}
	j.stderr = tail(w.StderrTail, maxStderrTail)
	failed := ok && st != 0
	for stage := range j.stages {
		m.addStats(j, stage, true)
	}
	if failed {
		m.stat(statName(j)).failed++
		m.addFailure(j)
	}
	b.Finished++
	after := e.ts > j.exec.hbTS // not in the executor's last heartbeat's counts
	if failed {
		b.Failed++
		m.failed++
		j.exec.failed++
		if after {
			j.exec.failedAfterHB++
		}
	} else {
		m.done++
		j.exec.done++
		if after {
			j.exec.doneAfterHB++
		}
	}
	state := StateDone
	if failed {
		state = StateFailed
	}
	m.end(j, state, e.ts)
}

// addStats adds a stage of j, once known, to its executable's statistics:
// when the stage ends, or, if its executable was not known yet (the
// original executor names it late), when the job ends.
func (m *model) addStats(j *job, stage int, jobEnded bool) {
	s := &j.stages[stage]
	bit := uint8(1) << stage
	if j.statted&bit != 0 || !s.hasDur || (j.executable == "" && !jobEnded) {
		return
	}
	j.statted |= bit
	st := m.stat(statName(j))
	switch stage {
	case stExec:
		st.exec.add(s.dur)
	case stIn:
		st.stageIn += s.dur
		st.stageInN++
		st.inputBytes += s.bytes
	case stOut:
		st.stageOut += s.dur
		st.stageOutN++
		st.outputBytes += s.bytes
	}
}

func statName(j *job) string {
	if j.executable == "" {
		return unknownExecutable
	}
	return j.executable
}

// fillFromMetrics fills what the stage events did not say from the
// metrics of job.finished (a monitor started late, lost events).
func (m *model) fillFromMetrics(j *job) {
	mt := j.metrics
	ts := &mt.Timestamps
	if j.started == 0 {
		j.started = ts.JobStarted
	}
	fill := func(s *stageRec, start, end, dur float64, bytes int64, staged bool) {
		if s.start == 0 {
			s.start = start
		}
		if s.end == 0 {
			s.end = end
		}
		if !s.hasDur && (dur > 0 || end > 0) {
			s.dur, s.hasDur = dur, true
		}
		if !s.hasBytes && staged && (start > 0 || end > 0) {
			s.bytes, s.hasBytes = bytes, true
		}
	}
	fill(&j.stages[stIn], ts.StageInStarted, ts.StageInFinished, mt.StageIn, mt.InputSize, true)
	fill(&j.stages[stExec], ts.ExecutionStarted, ts.ExecutionFinished, mt.Execution, 0, false)
	fill(&j.stages[stOut], ts.StageOutStarted, ts.StageOutFinished, mt.StageOut, mt.OutputSize, true)
}

func (m *model) metrics(w *wireMetrics) *eventbus.Metrics {
	_, num := threadKey(w.Thread)
	return &eventbus.Metrics{
		Executor:   m.str(w.Executor),
		Thread:     max(num, 0),
		Hostname:   m.str(w.Hostname),
		Timestamps: w.Timestamps,
		StageIn:    w.StageIn,
		Execution:  w.Execution,
		StageOut:   w.StageOut,
		InputSize:  w.InputSize,
		OutputSize: w.OutputSize,
		CPUUser:    w.CPUUser,
		CPUSystem:  w.CPUSystem,
		MaxRSS:     w.MaxRSS,

		ProcessesEnded: w.ProcessesEnded,
	}
}

// truncate returns at most n bytes of s, cut at a rune start, in a copy of
// its own when cut (so that the rest of s can be freed).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

// Views.

func (m *model) jobView(j *job) JobView {
	v := JobView{
		ID:          j.id,
		Executor:    j.exec.id,
		Hostname:    j.exec.hostname,
		Thread:      j.thread,
		Executable:  j.executable,
		Name:        j.name,
		State:       j.state,
		Phase:       j.phase,
		PhaseSince:  tsTime(j.phaseSince),
		Started:     tsTime(j.started),
		Finished:    tsTime(j.finished),
		StageIn:     stageView(&j.stages[stIn]),
		Execution:   stageView(&j.stages[stExec]),
		StageOut:    stageView(&j.stages[stOut]),
		Redelivered: j.redelivered,
		Attempts:    int(j.attempts),
		Partial:     j.partial,
		LastEvent:   nsTime(j.lastRecv),
		Stalled:     j.stalled && j.state == StateRunning,
	}
	if j.state == StateRunning {
		v.Progress = progressView(j)
		if d, warn := m.deadlineOf(j); d > 0 {
			v.Deadline, v.DeadlineWarn = tsTime(d), tsTime(warn)
		}
	}
	switch {
	case j.hasExit:
		v.ExitStatus, v.HasExit = int(j.exit), true
	case j.hasExecExit:
		v.ExitStatus, v.HasExit = int(j.execExit), true
	}
	if j.metrics != nil {
		v.Metrics, v.HasMetrics = *j.metrics, true
		if v.Hostname == "" {
			v.Hostname = j.metrics.Hostname
		}
	}
	return v
}

func stageView(s *stageRec) Stage {
	v := Stage{
		Start:    tsTime(s.start),
		End:      tsTime(s.end),
		Bytes:    s.bytes,
		HasBytes: s.hasBytes,
	}
	switch {
	case s.hasDur:
		v.Duration, v.HasDuration = seconds(s.dur), true
	case s.start > 0 && s.end >= s.start:
		v.Duration, v.HasDuration = between(s.start, s.end), true
	}
	return v
}

func (m *model) job(id string) (JobDetail, bool) {
	j, ok := m.jobs[id]
	if !ok {
		return JobDetail{}, false
	}
	d := JobDetail{JobView: m.jobView(j), StderrTail: j.stderr}
	if g := j.group; g != nil {
		d.FailureGroup, d.Signature = g.key, g.signature
	}
	if len(j.exceptions) > 0 {
		d.Exceptions = append([]string(nil), j.exceptions...)
	}
	for r := range nRanks {
		if j.seen&(1<<r) == 0 {
			continue
		}
		te := TimelineEntry{
			Type:     rankTypes[r],
			Time:     tsTime(j.ts[r]),
			Received: nsTime(j.recv[r]),
		}
		if j.started > 0 && j.ts[r] >= j.started {
			te.Elapsed = between(j.started, j.ts[r])
		}
		switch r {
		case rankStageInFinished:
			s := stageView(&j.stages[stIn])
			te.Duration, te.Bytes, te.HasBytes = s.Duration, s.Bytes, s.HasBytes
		case rankStageOutFinished:
			s := stageView(&j.stages[stOut])
			te.Duration, te.Bytes, te.HasBytes = s.Duration, s.Bytes, s.HasBytes
		case rankExecFinished:
			te.Duration = stageView(&j.stages[stExec]).Duration
			te.ExitStatus, te.HasExit = int(j.execExit), j.hasExecExit
		case rankFinished:
			if j.started > 0 && j.finished >= j.started {
				te.Duration = between(j.started, j.finished)
			}
			te.ExitStatus, te.HasExit = int(j.exit), j.hasExit
		}
		d.Timeline = append(d.Timeline, te)
	}
	return d, true
}

// tail returns at most the last n bytes of s, cut at a rune start, in a
// copy of its own when cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return strings.Clone(s[i:])
}

package state

// progressSamples is how many progress samples a job keeps for its rates:
// with the executor's default progress_interval of 5 s, about 30 s.
const progressSamples = 6

// sample is one progress reading (event timestamp, bytes, CPU seconds).
type sample struct {
	ts    float64
	bytes int64
	cpu   float64
}

// progress is what the job.progress events of a running job's current
// phase said. It is allocated at a job's first progress event and dropped
// when the job ends, so finished jobs cost nothing for it.
type progress struct {
	phase              uint8
	recv               int64 // receive time of the last progress event
	ts                 float64
	elapsed            float64
	bytes, total       int64
	hasBytes, hasTotal bool
	hasUsage           bool
	rss                int64
	cpu                float64
	// grew is the receive time the bytes last grew, or the phase began.
	grew int64
	// counted is how many of the phase's bytes the storage rates have
	// counted already.
	counted int64
	samples [progressSamples]sample
	n, head uint8
}

func (p *progress) push(s sample) {
	if p.n > 0 {
		last := p.samples[(int(p.head)+int(p.n)-1)%progressSamples]
		if s.ts <= last.ts {
			return // not newer: would make a rate of nothing
		}
	}
	if p.n < progressSamples {
		p.samples[(int(p.head)+int(p.n))%progressSamples] = s
		p.n++
		return
	}
	p.samples[p.head] = s
	p.head = (p.head + 1) % progressSamples
}

// span returns the oldest and newest samples; false with fewer than two.
func (p *progress) span() (first, last sample, ok bool) {
	if p.n < 2 {
		return first, last, false
	}
	first = p.samples[p.head]
	last = p.samples[(int(p.head)+int(p.n)-1)%progressSamples]
	return first, last, last.ts > first.ts
}

// progressPhase reads a progress event's phase; phaseNone when unknown.
func progressPhase(p string) uint8 {
	switch p {
	case PhaseStageIn, "stage_in":
		return phaseStageIn
	case PhaseExecution:
		return phaseExec
	case PhaseStageOut, "stage_out":
		return phaseStageOut
	}
	return phaseNone
}

// phaseStartRecv is the receive time of the event that began phase p of
// j's current attempt; 0 if not seen.
func phaseStartRecv(j *job, p uint8) int64 {
	r := -1
	switch p {
	case phaseStageIn:
		r = rankStageInStarted
		if j.seen&(1<<r) == 0 {
			r = rankStarted // stage-in begins with the job
		}
	case phaseExec:
		r = rankExecStarted
	case phaseStageOut:
		r = rankStageOutStarted
	}
	if r < 0 || j.seen&(1<<r) == 0 {
		return 0
	}
	return j.recv[r]
}

// applyProgress takes a job.progress event: it keeps the figures, and
// moves the job's phase on when the event is ahead of what the monitor
// knew. Progress of a job not known yet only marks its executor alive (a
// monitor started late learns the job from the next heartbeat's running
// list, with its phase and deadline); progress of another executor than
// the job's (an earlier attempt still running after its delivery went
// elsewhere), of a finished job, or of a phase already left is ignored.
func (m *model) applyProgress(e *event, id string) error {
	w := e.w
	x := m.execFor(e)
	x.progress, x.beats = true, true
	code := progressPhase(w.Phase)
	if code == phaseNone {
		e.invalid = "progress phase " + truncate(w.Phase, 64)
		return nil
	}
	since := e.ts
	if w.Elapsed != nil && *w.Elapsed > 0 {
		since = e.ts - *w.Elapsed
	}
	j, ok := m.jobs[id]
	if !ok || j.exec != x || j.state != StateRunning {
		return nil
	}
	j.lastTS = max(j.lastTS, e.ts)
	j.lastRecv = max(j.lastRecv, e.recv)
	j.hbMiss = 0
	if j.executable == "" && w.Executable != "" {
		j.executable = m.str(w.Executable)
		m.jobsVersion++
	}
	switch cur := phaseCode(j.phase); {
	case code < cur:
		return nil // its phase has ended: the event is late
	case code > cur:
		// Ahead of the events seen (some were lost, or the monitor knew
		// the job from an older heartbeat).
		if since < j.phaseSince {
			return nil // contradicts them
		}
		j.setPhase(phaseNames[code], since)
		m.takeThread(j, since)
		m.openInterval(j, code, since)
		m.jobsVersion++
	}
	m.updateProgress(j, e, code)
	return nil
}

func (m *model) updateProgress(j *job, e *event, code uint8) {
	w := e.w
	p := j.prog
	if p == nil {
		p = new(progress)
		j.prog = p
	}
	if p.phase != code {
		*p = progress{phase: code}
		p.grew = phaseStartRecv(j, code)
		if w.Elapsed != nil && *w.Elapsed > 0 {
			// The phase began at elapsed 0 with nothing moved or used.
			p.push(sample{ts: e.ts - *w.Elapsed})
			if p.grew == 0 {
				p.grew = e.recv - int64(*w.Elapsed*1e9)
			}
		}
		if p.grew == 0 {
			p.grew = e.recv
		}
	}
	p.recv, p.ts = e.recv, e.ts
	if w.Elapsed != nil {
		p.elapsed = *w.Elapsed
	}
	s := sample{ts: e.ts, bytes: p.bytes, cpu: p.cpu}
	if w.Bytes != nil {
		b := *w.Bytes
		if b > p.bytes || (!p.hasBytes && b > 0) {
			p.grew = e.recv
			if j.stalled {
				j.stalled = false
				m.jobsVersion++ // leaves the stalled selection
			}
		}
		p.bytes, p.hasBytes = b, true
		s.bytes = b
		if code != phaseExec && b > p.counted {
			m.countBytes(j.exec, code, b-p.counted, e.recv)
			p.counted = b
		}
	}
	if w.BytesTotal != nil {
		p.total, p.hasTotal = *w.BytesTotal, true
	}
	if w.RSS != nil || w.CPU != nil {
		p.hasUsage = true
		if w.RSS != nil {
			p.rss = *w.RSS
		}
		if w.CPU != nil {
			p.cpu = *w.CPU
			s.cpu = p.cpu
		}
	}
	p.push(s)
	m.progressVersion++
}

// progressView renders a running job's progress in its current phase.
func progressView(j *job) Progress {
	p := j.prog
	if p == nil || j.state != StateRunning || p.phase != phaseCode(j.phase) {
		return Progress{}
	}
	v := Progress{
		Phase:      phaseNames[p.phase],
		Updated:    nsTime(p.recv),
		Elapsed:    seconds(p.elapsed),
		Bytes:      p.bytes,
		BytesTotal: p.total,
		HasBytes:   p.hasBytes,
		HasTotal:   p.hasTotal,
		LastGrowth: nsTime(p.grew),
		RSS:        p.rss,
		CPU:        seconds(p.cpu),
		HasUsage:   p.hasUsage,
	}
	if first, last, ok := p.span(); ok {
		dt := last.ts - first.ts
		if p.hasBytes {
			v.Rate, v.HasRate = max(float64(last.bytes-first.bytes)/dt, 0), true
		}
		if p.hasUsage {
			v.CPURate = max((last.cpu-first.cpu)/dt, 0)
		}
	}
	return v
}

// growthStart is the receive time from which a staging job's stall is
// measured: when its bytes last grew, or its phase began.
func growthStart(j *job) int64 {
	code := phaseCode(j.phase)
	if p := j.prog; p != nil && p.phase == code {
		return p.grew
	}
	if r := phaseStartRecv(j, code); r != 0 {
		return r
	}
	// Known from a heartbeat only: its phase's start, on the executor's
	// clock.
	return int64(j.phaseSince * 1e9)
}

// tickJobs re-judges the running jobs at now: stalled transfers and near
// deadlines. It reports a change.
func (m *model) tickJobs(now int64) bool {
	changed := false
	nowTS := float64(now) / 1e9
	stallAfter := int64(m.opts.StallAfter)
	for _, x := range m.execs {
		for j := range x.running {
			stalled := false
			if x.progress && (j.phase == PhaseStageIn || j.phase == PhaseStageOut) {
				if g := growthStart(j); g > 0 && now-g >= stallAfter {
					stalled = true
				}
			}
			_, warn := m.deadlineOf(j)
			near := warn > 0 && nowTS >= warn
			if stalled != j.stalled || near != j.nearDeadline {
				j.stalled, j.nearDeadline = stalled, near
				m.jobsVersion++
				changed = true
			}
		}
	}
	return changed
}

// deadlineOf returns a running job's acknowledgement deadline and the time
// from which it is near (timestamps); 0, 0 when unknown.
func (m *model) deadlineOf(j *job) (deadline, warn float64) {
	deadline = jobDeadline(j)
	if deadline == 0 {
		return 0, 0
	}
	timeout := j.exec.consumerTimeout
	if timeout <= 0 && j.started > 0 && deadline > j.started {
		timeout = deadline - j.started
	}
	before := m.opts.DeadlineWarnBefore.Seconds()
	if timeout > 0 {
		before = min(max(m.opts.DeadlineWarnFraction*timeout, before), timeout/2)
	}
	return deadline, deadline - before
}

// jobDeadline is a running job's acknowledgement deadline (timestamp); 0
// when unknown.
func jobDeadline(j *job) float64 {
	if j.state != StateRunning {
		return 0
	}
	if j.deadline > 0 {
		return j.deadline
	}
	if t := j.exec.consumerTimeout; t > 0 && j.started > 0 {
		// Not listed by a heartbeat yet: the executor computes it so.
		return j.started + t
	}
	return 0
}

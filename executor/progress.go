package executor

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// defaultConsumerTimeout is RabbitMQ's default delivery acknowledgement
// timeout, assumed when consumer_timeout is not set.
const defaultConsumerTimeout = 30 * time.Minute

// phaseState is what the progress reporter reads of a running job. Its mutex
// also orders events: a phase change and its event happen under it, and so
// does each progress event, so a progress event never follows the event
// that ended its phase.
type phaseState struct {
	mu       sync.Mutex
	phase    string // "" between phases
	since    time.Time
	transfer *storage.Transfer // during staging
	pid      atomic.Int64      // the command's process (group) id
}

// enterPhase starts a phase and publishes its started event.
func (e *Executor) enterPhase(ctx context.Context, r *jobRun, phase string, ev *eventbus.Event, tr *storage.Transfer) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	r.ps.phase, r.ps.since, r.ps.transfer = phase, time.Now(), tr
	e.setPhase(r, phase)
	e.publishEvent(ctx, r, ev)
}

// leavePhase ends the phase and publishes its finished event.
func (e *Executor) leavePhase(ctx context.Context, r *jobRun, ev *eventbus.Event) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	r.ps.phase, r.ps.transfer = "", nil
	e.publishEvent(ctx, r, ev)
}

// reportProgress publishes job.progress every ProgressInterval while the job
// runs, until stop is closed.
func (e *Executor) reportProgress(ctx context.Context, r *jobRun, stop <-chan struct{}) {
	t := time.NewTicker(e.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			e.progressEvent(ctx, r)
		}
	}
}

func (e *Executor) progressEvent(ctx context.Context, r *jobRun) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	if r.ps.phase == "" {
		return
	}
	ev := &eventbus.Event{Type: eventbus.TypeJobProgress, Phase: r.ps.phase,
		Elapsed: eventbus.Ptr(time.Since(r.ps.since).Seconds())}
	if r.job != nil {
		ev.Executable = r.job.Executable
	}
	switch r.ps.phase {
	case eventbus.PhaseStageIn, eventbus.PhaseStageOut:
		ev.Bytes = eventbus.Ptr(r.ps.transfer.Bytes())
		if total := r.ps.transfer.Total(); total >= 0 {
			ev.BytesTotal = eventbus.Ptr(total)
		}
	case eventbus.PhaseExecution:
		pid := r.ps.pid.Load()
		if pid <= 0 {
			return // not started yet: nothing to report
		}
		rss, cpu := groupUsage(int(pid))
		ev.RSS, ev.CPU = eventbus.Ptr(rss), eventbus.Ptr(cpu)
	}
	e.publishEvent(ctx, r, ev)
}

// groupUsage sums the resident memory (bytes) and CPU time (seconds) of the
// processes in process group pgid, from /proc.
func groupUsage(pgid int) (rss int64, cpu float64) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	page := int64(os.Getpagesize())
	const ticks = 100 // USER_HZ on Linux
	for _, ent := range entries {
		name := ent.Name()
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses and may
		// hold spaces: state ppid pgrp session tty tpgid flags minflt
		// cminflt majflt cmajflt utime stime cutime cstime priority nice
		// threads itrealvalue starttime vsize rss.
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 22 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g != pgid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		cpu += float64(ut+st) / ticks
		rss += pages * page
	}
	return rss, cpu
}

// deadline is when the broker would time out a delivery received at t.
func (e *Executor) deadline(t time.Time) float64 {
	timeout := e.cfg.ConsumerTimeout
	if timeout == 0 {
		timeout = defaultConsumerTimeout
	}
	return eventbus.Timestamp(t.Add(timeout))
}

// redelivered records that the running job id got a new delivery (its
// acknowledgement deadline starts again).
func (e *Executor) redelivered(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for slot, rj := range e.running {
		if rj.ID == id {
			rj.Deadline = e.deadline(time.Now())
			e.running[slot] = rj
		}
	}
}

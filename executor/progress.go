package executor

import (
	"context"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
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
	stopped  bool              // the job ended: no more progress events
	// linger publishes held events that waited eventLinger (events.go);
	// lingering: it is armed.
	linger    *time.Timer
	lingering bool
}

// enterPhase starts a phase and publishes its started event, with the
// events held before it, within eventLinger: the phase may take time (a
// phase that ends sooner sends them with what follows it).
func (e *Executor) enterPhase(ctx context.Context, r *jobRun, phase string, ev *eventbus.Event, tr *storage.Transfer) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	r.ps.phase, r.ps.since, r.ps.transfer = phase, time.Now(), tr
	e.setPhase(r, phase)
	e.hold(r, ev)
	e.flushSoon(ctx, r)
}

// leavePhase ends the phase and holds its finished event for the next
// flush.
func (e *Executor) leavePhase(r *jobRun, ev *eventbus.Event) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	r.ps.phase, r.ps.transfer = "", nil
	e.hold(r, ev)
}

// startProgress publishes job.progress every ProgressInterval while the job
// runs, from a timer (no goroutine for jobs shorter than the interval). The
// returned function stops it; no progress event follows its return.
func (e *Executor) startProgress(ctx context.Context, r *jobRun) (stop func()) {
	every := e.cfg.ProgressInterval
	if every <= 0 || !e.wantEvent(eventbus.TypeJobProgress) {
		return func() {}
	}
	var t *time.Timer
	t = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		if e.progressEvent(ctx, r) {
			t.Reset(every)
		}
	})
	t.Reset(every) // armed only now that t is set

	return func() {
		r.ps.mu.Lock()
		r.ps.stopped = true
		r.ps.mu.Unlock()
		t.Stop()
	}
}

// progressEvent publishes one job.progress event; it reports whether the
// reports go on.
func (e *Executor) progressEvent(ctx context.Context, r *jobRun) bool {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	if r.ps.stopped {
		return false
	}
	if r.ps.phase == "" {
		return true
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
			return true // not started yet: nothing to report
		}
		rss, cpu := groupUsage(int(pid))
		ev.RSS, ev.CPU = eventbus.Ptr(rss), eventbus.Ptr(cpu)
	}
	e.hold(r, ev)
	e.flush(ctx, r)
	return true
}

// groupUsage sums the resident memory (bytes) and CPU time (seconds) of
// the command's processes: the process group leader pgid and its
// descendants, found through /proc/PID/task/TID/children (a process that
// left the tree by being reparented is not counted). When the kernel lacks
// the children files it scans /proc for the members of the group instead.
func groupUsage(pgid int) (rss int64, cpu float64) {
	page := int64(os.Getpagesize())
	add := func(pid int) {
		if r, c, ok := procUsage(pid, pgid, page); ok {
			rss += r
			cpu += c
		}
	}
	queue, ok := procfs.Children(pgid)
	if !ok {
		pids, _ := procfs.Pids()
		for _, pid := range pids {
			add(pid)
		}
		return rss, cpu
	}
	add(pgid)
	for seen := 0; len(queue) > 0 && seen < 10000; seen++ {
		pid := queue[0]
		queue = queue[1:]
		add(pid)
		children, _ := procfs.Children(pid)
		queue = append(queue, children...)
	}
	return rss, cpu
}

// procUsage reads one process's resident memory and CPU time from
// /proc/PID/stat when it belongs to process group pgid.
func procUsage(pid, pgid int, page int64) (rss int64, cpu float64, ok bool) {
	st, err := procfs.ReadStat(pid)
	if err != nil || st.Pgrp != pgid {
		return 0, 0, false
	}
	const ticks = 100 // USER_HZ on Linux
	return st.RSS * page, float64(st.UTime+st.STime) / ticks, true
}

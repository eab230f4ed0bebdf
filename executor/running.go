package executor

import (
	"context"
	"sort"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

func (e *Executor) setRunning(r *jobRun, rj eventbus.RunningJob) {
	e.mu.Lock()
	e.running[r.slot] = rj
	e.mu.Unlock()
}

func (e *Executor) clearRunning(r *jobRun) {
	e.mu.Lock()
	delete(e.running, r.slot)
	e.mu.Unlock()
}

func (e *Executor) setPhase(r *jobRun, phase string) {
	e.mu.Lock()
	rj := e.running[r.slot]
	rj.Phase = phase
	rj.Since = eventbus.Timestamp(time.Now())
	e.running[r.slot] = rj
	e.mu.Unlock()
}

// heartbeat publishes executor.heartbeat every HeartbeatInterval until ctx
// is done (nothing while disconnected).
func (e *Executor) heartbeat(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	e.lastTick.Store(time.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.lastTick.Store(now.UnixNano())
			e.emitExecutor(ctx, e.heartbeatEvent())
		}
	}
}

// runningJobs lists the running jobs by thread.
func (e *Executor) runningJobs() []eventbus.RunningJob {
	e.mu.Lock()
	running := make([]eventbus.RunningJob, 0, len(e.running))
	for _, rj := range e.running {
		running = append(running, rj)
	}
	e.mu.Unlock()
	sort.Slice(running, func(i, j int) bool { return running[i].Thread < running[j].Thread })
	return running
}

// drainingEvent says that the executor stopped taking jobs and waits for
// its running ones (executor.draining, once, when the shutdown begins).
func (e *Executor) drainingEvent(reason string) *eventbus.Event {
	running := e.runningJobs()
	return &eventbus.Event{Type: eventbus.TypeExecutorDraining, Reason: reason,
		Busy: eventbus.Ptr(len(running)), Running: &running}
}

func (e *Executor) heartbeatEvent() *eventbus.Event {
	running := e.runningJobs()
	var draining *bool
	if e.draining.Load() {
		draining = eventbus.Ptr(true)
	}
	return &eventbus.Event{
		Type: eventbus.TypeExecutorHeartbeat,
		// What executor.ready said, for monitors started later.
		Hostname: e.hostname, Storage: e.cfg.Storage, Version: e.version, Queue: e.cfg.Queue,
		Broker:        e.broker(),
		Busy:          eventbus.Ptr(int(e.busy.Load())),
		Threads:       e.cfg.Threads,
		JobsDone:      eventbus.Ptr(e.jobsDone.Load()),
		JobsFailed:    eventbus.Ptr(e.jobsFailed.Load()),
		Running:       &running,
		Interval:      e.cfg.HeartbeatInterval.Seconds(),
		Draining:      draining,
		Blocked:       e.blockedSinceLastHeartbeat(),
		MaxDeliveries: e.cfg.MaxDeliveries,
		ConsumerTimeout: func() float64 {
			if e.cfg.ConsumerTimeout > 0 {
				return e.cfg.ConsumerTimeout.Seconds()
			}
			return defaultConsumerTimeout.Seconds()
		}(),
	}
}

// blockedSinceLastHeartbeat is the heartbeat's blocked (see
// eventbus.BlockReport); nil when the executor never connected.
func (e *Executor) blockedSinceLastHeartbeat() *bool {
	if e.link == nil {
		return nil
	}
	return e.blocks.Since(e.link.current())
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

package executor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// A job's events are encoded when they happen and held on the job until it
// has done something that takes time (stage files, run its command) for
// eventLinger, or until it answers: then they go out together, in one write
// to the broker's socket (eventbus.Client.PublishBatch), and the last ones
// in the same write as the reply (PublishConfirmed's before). A job that
// runs for longer than eventLinger has its job.started and
// job.execution.started published eventLinger after they happened; a
// shorter one costs one write for all its events and its reply instead of
// two, and the broker one read. Their order, and their timestamps (taken
// when each event happened), are unchanged; an event is late by at most
// eventLinger.
//
// The events setting (all, lifecycle, off) drops event types here, before
// they are encoded.

// eventLinger is how long a job's held events may wait for its next write
// (see above): long enough for a trivial command (a few ms), too short to
// be seen in hyperflow-top.
const eventLinger = 20 * time.Millisecond

// heldEvent is one encoded job event waiting for the next flush.
type heldEvent struct {
	key string
	buf *[]byte // from eventbus.GetBuffer
}

// wantEvent says whether events of type typ are published under the events
// setting: executor events always; with lifecycle only job.started and
// job.finished of the job events; with off none.
func (e *Executor) wantEvent(typ string) bool {
	if !strings.HasPrefix(typ, "job.") {
		return true
	}
	switch e.cfg.Events {
	case config.EventsOff:
		return false
	case config.EventsLifecycle:
		return typ == eventbus.TypeJobStarted || typ == eventbus.TypeJobFinished
	}
	return true
}

// stamp fills in what every event carries.
func (e *Executor) stamp(r *jobRun, ev *eventbus.Event) {
	ev.Executor = e.id
	ev.Timestamp = eventbus.Timestamp(time.Now())
	if r != nil {
		ev.ID, ev.Job, ev.Thread = r.id, r.id, int64(r.slot)
	}
}

// hold encodes a job event and keeps it for the next flush. The caller
// holds r.ps.mu.
func (e *Executor) hold(r *jobRun, ev *eventbus.Event) {
	if !e.wantEvent(ev.Type) {
		return
	}
	e.stamp(r, ev)
	bp := eventbus.GetBuffer()
	body, err := ev.AppendJSON(*bp)
	if err != nil {
		eventbus.PutBuffer(bp)
		e.log.Warn("encode event", "type", ev.Type, "err", err)
		return
	}
	*bp = body
	r.held = append(r.held, heldEvent{key: ev.RoutingKey(), buf: bp})
}

// takeHeld removes the job's held events and returns them as messages;
// release gives their buffers back once they were published. The caller
// holds r.ps.mu.
func (e *Executor) takeHeld(r *jobRun) (msgs []eventbus.Outgoing, release func()) {
	if r.ps.lingering {
		r.ps.linger.Stop()
		r.ps.lingering = false
	}
	if len(r.held) == 0 {
		return nil, func() {}
	}
	held := slices.Clone(r.held)
	r.held = r.held[:0]
	msgs = make([]eventbus.Outgoing, len(held))
	for i, h := range held {
		msgs[i] = eventbus.Outgoing{Exchange: e.cfg.EventsExchange, Key: h.key,
			Msg: amqp.Publishing{ContentType: "application/json", Body: *h.buf}}
	}
	return msgs, func() {
		for _, h := range held {
			eventbus.PutBuffer(h.buf)
		}
	}
}

// flush publishes the job's held events, best effort. The caller holds
// r.ps.mu, so that a progress event never overtakes them.
func (e *Executor) flush(ctx context.Context, r *jobRun) {
	msgs, release := e.takeHeld(r)
	if len(msgs) == 0 {
		return
	}
	err := e.pub.PublishBatch(ctx, msgs)
	release()
	e.eventError(err, len(msgs))
}

// flushSoon publishes the job's held events eventLinger from now, unless
// they are taken before (a flush, the reply). The caller holds r.ps.mu.
func (e *Executor) flushSoon(ctx context.Context, r *jobRun) {
	if len(r.held) == 0 || r.ps.lingering {
		return
	}
	r.ps.lingering = true
	if r.ps.linger == nil {
		r.ps.linger = time.AfterFunc(eventLinger, func() { e.flushNow(ctx, r) })
		return
	}
	r.ps.linger.Reset(eventLinger)
}

// flushNow is flush for a caller that does not hold r.ps.mu.
func (e *Executor) flushNow(ctx context.Context, r *jobRun) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	e.flush(ctx, r)
}

func (e *Executor) eventError(err error, n int) {
	switch {
	case err == nil:
	case errors.Is(err, errNotConnected), errors.Is(err, eventbus.ErrBlocked):
		e.log.Debug("events dropped", "events", n, "err", err)
	default:
		e.log.Warn("publish events", "events", n, "err", err)
	}
}

// emitExecutor publishes an executor event (ready, heartbeat, draining,
// stopped) at once, best effort.
func (e *Executor) emitExecutor(ctx context.Context, ev *eventbus.Event) {
	e.stamp(nil, ev)
	bp := eventbus.GetBuffer()
	defer eventbus.PutBuffer(bp)
	body, err := ev.AppendJSON(*bp)
	if err != nil {
		e.log.Warn("encode event", "type", ev.Type, "err", err)
		return
	}
	*bp = body
	err = e.pub.Publish(ctx, e.cfg.EventsExchange, ev.RoutingKey(), amqp.Publishing{
		ContentType: "application/json",
		Body:        body,
	})
	e.eventError(err, 1)
}

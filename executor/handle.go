package executor

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/job"
)

// handle runs one delivery on a slot, answers it and settles it (and any
// redelivery attached to it meanwhile). It never panics.
func (e *Executor) handle(d amqp.Delivery, slot int) {
	ctx := e.jobCtx
	e.busy.Add(1)
	defer e.busy.Add(-1)
	r := &jobRun{id: d.CorrelationId, slot: slot, redelivered: d.Redelivered}
	if r.id == "" {
		r.id = d.MessageId
	}
	started := time.Now()
	r.metrics = eventbus.Metrics{Executor: e.id, Thread: int64(slot), Hostname: e.hostname}
	r.metrics.Timestamps.JobStarted = eventbus.Timestamp(started)
	r.reply.Exceptions = []string{}

	job, refusal := e.admitMessage(d)
	executable := ""
	if job != nil {
		r.job = job
		executable = job.Executable
	}
	e.setRunning(r, eventbus.RunningJob{ID: r.id, Thread: int64(slot), Phase: eventbus.PhaseStageIn,
		Since: eventbus.Timestamp(started), Executable: executable, Deadline: e.deadline(started)})
	defer e.clearRunning(r)
	e.emit(r, &eventbus.Event{Type: eventbus.TypeJobStarted, Executable: executable,
		Redelivered: eventbus.Ptr(d.Redelivered), DeliveryCount: deliveryCount(d)})

	if refusal != nil {
		r.reply.ExitStatus = eventbus.ExitJobError
		r.reply.Exceptions = append(r.reply.Exceptions, refusal.Error())
	} else {
		stopProgress := e.startProgress(ctx, r)
		e.runSafely(ctx, r)
		stopProgress()
	}

	if ctx.Err() != nil {
		// Killed by a shutdown: not answered, back to the queue for
		// another executor (or this one after a restart).
		e.log.Warn("job killed by shutdown; its delivery goes back to the queue", "job", r.id)
		e.flushNow(context.Background(), r)
		e.settle(d, e.track.finish(d.CorrelationId, false), settleRequeue)
		return
	}

	finished := time.Now()
	r.metrics.Timestamps.JobFinished = eventbus.Timestamp(finished)
	r.reply.Metrics = &r.metrics
	if r.reply.ExitStatus != 0 && len(r.reply.Exceptions) == 0 {
		r.reply.Exceptions = append(r.reply.Exceptions, fmt.Sprintf("job failed with status %d", r.reply.ExitStatus))
	}
	if r.reply.ExitStatus == 0 {
		e.jobsDone.Add(1)
	} else {
		e.jobsFailed.Add(1)
	}
	fin := &eventbus.Event{Type: eventbus.TypeJobFinished, Executable: executable,
		ExitStatus: eventbus.Ptr(r.reply.ExitStatus), Metrics: &r.metrics, Exceptions: r.reply.Exceptions}
	if r.reply.ExitStatus != 0 {
		fin.StderrTail = lastBytes(r.reply.Stderr, stderrTailSize)
	}
	e.emit(r, fin)
	e.log.Info("job finished", "job", r.id, "thread", slot, "executable", executable,
		"exit_status", r.reply.ExitStatus, "stage_in_s", r.metrics.StageIn, "execution_s", r.metrics.Execution,
		"stage_out_s", r.metrics.StageOut, "input_bytes", r.metrics.InputSize, "output_bytes", r.metrics.OutputSize)

	// Answer (in the same write as the job's last events), then
	// acknowledge only once the reply is confirmed.
	if err := e.reply(ctx, d, r); err != nil {
		e.log.Error("reply not sent: the job goes back to the queue", "job", r.id, "err", err)
		e.settle(d, e.track.finish(d.CorrelationId, false), settleRequeue)
		return
	}
	if e.finished != nil {
		e.finished(r.storage, r.reply.ExitStatus, r.metrics)
	}
	how := settleAck
	if refusal != nil {
		// Poison: never back into the queue (a dead-letter exchange keeps it).
		how = settleReject
	}
	e.settle(d, e.track.finish(d.CorrelationId, true), how)
}

// admitMessage refuses messages that must not run (too large, delivered
// too often) and parses the rest.
func (e *Executor) admitMessage(d amqp.Delivery) (*job.Job, error) {
	if max := e.cfg.MaxMessageSize; len(d.Body) > max {
		return nil, fmt.Errorf("message refused: %d bytes is over max_message_size (%d bytes)", len(d.Body), max)
	}
	if max := e.cfg.MaxDeliveries; max > 0 {
		if n, ok := eventbus.DeliveryCount(d.Headers); ok && n >= int64(max) {
			return nil, fmt.Errorf("message refused: delivered %d times before (x-delivery-count), max_deliveries is %d; "+
				"the job may crash its executor", n, max)
		}
	}
	return job.Parse(d.Body)
}

// runSafely runs the pipeline, turning a panic into a job error.
func (e *Executor) runSafely(ctx context.Context, r *jobRun) {
	defer func() {
		if p := recover(); p != nil {
			r.reply.ExitStatus = eventbus.ExitJobError
			r.reply.Exceptions = append(r.reply.Exceptions, fmt.Sprintf("executor error: %v", p))
			e.log.Error("panic while running job", "job", r.id, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	e.runPipeline(ctx, r)
}

type settleHow int

const (
	settleAck settleHow = iota
	settleReject
	settleRequeue
)

// settle acknowledges, rejects or requeues a delivery and the redeliveries
// attached to it. A delivery whose channel is gone cannot be settled: the
// broker has requeued it already and it will come back.
func (e *Executor) settle(d amqp.Delivery, extra []amqp.Delivery, how settleHow) {
	for _, dd := range append([]amqp.Delivery{d}, extra...) {
		if dd.Acknowledger == nil {
			continue
		}
		var err error
		switch how {
		case settleAck:
			err = dd.Ack(false)
		case settleReject:
			err = dd.Reject(false)
		case settleRequeue:
			err = dd.Nack(false, true)
		}
		if err != nil {
			e.log.Info("delivery not settled (its channel is gone; the broker requeued it)",
				"job", dd.CorrelationId, "err", err)
		}
	}
}

// reply publishes the job's reply to its reply_to queue, after the job's
// held events, and waits for the broker's confirmation, across
// reconnections, until ctx is done.
func (e *Executor) reply(ctx context.Context, d amqp.Delivery, r *jobRun) error {
	r.ps.mu.Lock()
	events, release := e.takeHeld(r)
	r.ps.mu.Unlock()
	defer release()
	if d.ReplyTo == "" {
		e.log.Warn("job has no reply_to: the result is only in events", "job", d.CorrelationId)
		e.eventError(e.pub.PublishBatch(ctx, events), len(events))
		return nil
	}
	bp := eventbus.GetBuffer()
	defer eventbus.PutBuffer(bp)
	body, err := r.reply.AppendJSON(*bp)
	if err != nil {
		e.eventError(e.pub.PublishBatch(ctx, events), len(events))
		return fmt.Errorf("encode reply: %w", err)
	}
	*bp = body
	return e.pub.PublishConfirmed(ctx, "", d.ReplyTo, amqp.Publishing{
		ContentType:   "application/json",
		CorrelationId: d.CorrelationId,
		DeliveryMode:  amqp.Persistent,
		Timestamp:     time.Now(),
		Body:          body,
	}, events...)
}

// emit holds a job event until the job's next flush (events.go).
func (e *Executor) emit(r *jobRun, ev *eventbus.Event) {
	r.ps.mu.Lock()
	defer r.ps.mu.Unlock()
	e.hold(r, ev)
}

// lastBytes returns at most n bytes of the end of s, cut at a rune start.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s) && i < 4; i++ {
		if s[i]&0xC0 != 0x80 {
			return s[i:]
		}
	}
	return s
}

// deliveryCount is the delivery's x-delivery-count (quorum queues), for
// job.started; nil when the broker sent none.
func deliveryCount(d amqp.Delivery) *int64 {
	if n, ok := eventbus.DeliveryCount(d.Headers); ok {
		return &n
	}
	return nil
}

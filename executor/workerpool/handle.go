package workerpool

import (
	"fmt"
	"runtime/debug"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// stderrTailSize is how much of a failed task's stderr job.finished
// carries (wire.md §3).
const stderrTailSize = 2 << 10

// handle runs the tasks of one message in turn on a slot, writes each
// completion, and settles the message (and any redelivery attached to it):
//
//   - acknowledged once every task's completion is written (or the task
//     was skipped as completed already);
//   - rejected without requeue (dead-lettered if the queue has a
//     dead-letter exchange, else dropped) when the body is unusable or the
//     message came max_deliveries times, with an error log;
//   - returned to the queue, unanswered, when a shutdown killed its task
//     or a completion could not be written (it is counted, see tracker).
//
// It never panics.
func (p *Pool) handle(d amqp.Delivery, key [32]byte, count, slot int) {
	p.busy.Add(1)
	defer p.busy.Add(-1)
	how := settleRequeue
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic while handling a message: it goes back to the queue", "panic", r, "stack", string(debug.Stack()))
			how = settleRequeue
		}
		p.settle(d, p.track.settled(key, how != settleRequeue), how)
	}()

	tasks, err := p.admitMessage(d)
	if err != nil {
		p.dropped.Add(1)
		p.log.Error("message refused and rejected (dead-lettered if the queue has a dead-letter exchange, else dropped)",
			"queue", p.cfg.PoolQueue, "err", err, "body", lastBytes(string(d.Body), 512))
		how = settleReject
		return
	}
	if limit := p.cfg.MaxDeliveries; limit > 0 && count > limit {
		p.dropped.Add(1)
		p.log.Error("message delivered too often: its tasks fail and it is rejected (dead-lettered if the queue "+
			"has a dead-letter exchange, else dropped)", "queue", p.cfg.PoolQueue, "deliveries", count, "max_deliveries", limit)
		for _, t := range tasks {
			if p.track.wasCompleted(t.ID) {
				continue
			}
			// Its completion is tried (the engine then knows), but the
			// message is rejected whether it is written or not.
			t.Err = fmt.Errorf("message delivered %d times, max_deliveries is %d", count, limit)
			if p.finishTask(t, slot, d.Redelivered, count) == taskKilled {
				return
			}
		}
		how = settleReject
		return
	}
	for _, t := range tasks {
		if d.Redelivered && p.track.wasCompleted(t.ID) {
			p.log.Info("redelivered task already completed here: not run again", "task", t.ID)
			continue
		}
		if p.finishTask(t, slot, d.Redelivered, count) != taskDone {
			return
		}
	}
	how = settleAck
}

// taskEnd is how finishTask ended.
type taskEnd int

const (
	taskDone       taskEnd = iota // completed (or skipped as completed before)
	taskKilled                    // stopped by the shutdown: nothing written
	taskNotWritten                // ran, but Redis refused its completion
)

// admitMessage refuses bodies that are too large or unusable and parses
// the rest.
func (p *Pool) admitMessage(d amqp.Delivery) ([]Task, error) {
	if limit := p.cfg.MaxMessageSize; len(d.Body) > limit {
		return nil, fmt.Errorf("%d bytes is over max_message_size (%d bytes)", len(d.Body), limit)
	}
	return ParseBody(d.Body)
}

// finishTask runs a task and writes its completion. Unless it is done,
// the message goes back to the queue.
func (p *Pool) finishTask(t Task, slot int, redelivered bool, deliveries int) taskEnd {
	out := p.runTask(t, slot, redelivered, deliveries)
	if out.killed {
		p.log.Warn("task stopped by the shutdown: its message goes back to the queue", "task", t.ID)
		return taskKilled
	}
	if out.skipped {
		return taskDone
	}
	transport := TransportSet
	if t.Job != nil {
		transport = t.Job.Transport
	}
	c := Completion{Task: t.ID, Code: out.code, Transport: transport}
	fin := &eventbus.Event{Type: eventbus.TypeJobFinished, ExitStatus: eventbus.Ptr(out.code),
		Metrics: &out.metrics, Exceptions: out.exceptions}
	if t.Job != nil {
		fin.Executable = t.Job.Executable
	}
	if out.code != 0 {
		fin.StderrTail = lastBytes(out.stderr, stderrTailSize)
	}
	if err := p.store.Complete(p.jobCtx, c); err != nil {
		if p.jobCtx.Err() != nil {
			return taskKilled
		}
		p.log.Error("completion not written", "task", t.ID, "err", err)
		return taskNotWritten
	}
	p.track.completed(t.ID)
	if out.code == 0 {
		p.tasksDone.Add(1)
	} else {
		p.tasksFailed.Add(1)
	}
	p.emit(p.jobCtx, slot, t.ID, fin)
	if p.finished != nil {
		p.finished(storageName, out.code, out.metrics)
	}
	level := p.log.Info
	if out.code != 0 {
		level = p.log.Warn
	}
	level("task finished", "task", t.ID, "thread", slot, "executable", fin.Executable, "exit_status", out.code,
		"execution_s", out.metrics.Execution, "completion", transport.String(), "exceptions", out.exceptions)
	return taskDone
}

type settleHow int

const (
	settleAck settleHow = iota
	settleReject
	settleRequeue
)

// settle acknowledges, rejects or requeues a delivery and the redeliveries
// attached to it. A delivery whose channel is gone cannot be settled: the
// broker has requeued it already.
func (p *Pool) settle(d amqp.Delivery, extra []amqp.Delivery, how settleHow) {
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
			p.log.Info("delivery not settled (its channel is gone; the broker requeued it)",
				"delivery_tag", dd.DeliveryTag, "err", err)
		}
	}
}

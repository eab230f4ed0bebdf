package workerpool

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// TestPoolEventsStream: with events_stream set, the worker pool declares
// the stream, and a task's events are kept in it.
func TestPoolEventsStream(t *testing.T) {
	var stream string
	b := setup(t, func(cfg *config.Settings) {
		cfg.EventsExchange = cfg.PoolQueue + ".events"
		cfg.EventsStream = cfg.PoolQueue + ".history"
		stream = cfg.EventsStream
	})
	t.Cleanup(func() { b.ch.QueueDelete(stream, false, false, false) })
	task := b.task(1)
	b.publish(message(map[TaskID]map[string]any{
		task: {"name": "ok", "executable": "sh", "args": []any{"-c", "true"}},
	}, task))
	if got := b.code(task); got != "0" {
		t.Fatalf("code of %s = %s, want 0", task, got)
	}
	b.events.wait(t, task, eventbus.TypeJobFinished)

	// Read back from the stream's first event: the task's job.finished.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	found := errors.New("found")
	f := &eventbus.Follower{URL: b.cfg.AMQPURL.Reveal(), Stream: stream, FailFast: true}
	err := f.Run(ctx, func(msg eventbus.Message) error {
		if msg.RoutingKey == "job."+string(task)+".finished" {
			return found
		}
		return nil
	})
	if err != found {
		t.Errorf("reading %s: %v; want the job.finished of %s", stream, err, task)
	}
}

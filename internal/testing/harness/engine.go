package harness

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// Engine plays the HyperFlow engine: it declares the job queue as the
// engine does, sends jobs with a reply_to of its own (a private,
// server-named queue) and collects the replies by correlation id.
type Engine struct {
	t       testing.TB
	conn    *amqp.Connection
	ch      *amqp.Channel
	queue   string
	replyTo string

	mu         sync.Mutex
	replies    map[string][]eventbus.Reply
	deliveries map[string][]amqp.Delivery
}

// NewEngine connects to the broker at url and declares queue with
// queueArgs (nil as the engine does; quorum queues need
// {"x-queue-type": "quorum"}). The connection is closed when the test ends.
func NewEngine(t testing.TB, url, queue string, queueArgs amqp.Table) *Engine {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.DeclareJobQueue(ch, queue, queueArgs); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Engine{t: t, conn: conn, ch: ch, queue: queue, replyTo: q.Name,
		replies: map[string][]eventbus.Reply{}, deliveries: map[string][]amqp.Delivery{}}
	go func() {
		for d := range deliveries {
			var r eventbus.Reply
			if err := json.Unmarshal(d.Body, &r); err != nil {
				t.Errorf("reply is not JSON: %s", d.Body)
			}
			e.mu.Lock()
			e.replies[d.CorrelationId] = append(e.replies[d.CorrelationId], r)
			e.deliveries[d.CorrelationId] = append(e.deliveries[d.CorrelationId], d)
			e.mu.Unlock()
		}
	}()
	return e
}

// Conn is the engine's connection.
func (e *Engine) Conn() *amqp.Connection { return e.conn }

// Channel is the channel the engine publishes on and receives replies on.
func (e *Engine) Channel() *amqp.Channel { return e.ch }

// Send publishes job with a new correlation id and returns the id. job is
// marshalled to JSON, or sent as it is if it is a []byte.
func (e *Engine) Send(job any) string {
	e.t.Helper()
	id := uuid.NewString()
	e.SendAs(id, job)
	return id
}

// SendAs is Send with the correlation id id.
func (e *Engine) SendAs(id string, job any) {
	e.t.Helper()
	body, ok := job.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(job); err != nil {
			e.t.Fatal(err)
		}
	}
	err := e.ch.PublishWithContext(context.Background(), "", e.queue, false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: id, ReplyTo: e.replyTo, Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
}

// Await waits for a reply to id and returns every reply received for it
// by then; it fails the test after timeout.
func (e *Engine) Await(id string, timeout time.Duration) []eventbus.Reply {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r := e.Replies(id); len(r) > 0 {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no reply for %s after %v", id, timeout)
	return nil
}

// Replies returns the replies received so far for id (a reply that is not
// JSON is there as a zero Reply), without waiting.
func (e *Engine) Replies(id string) []eventbus.Reply {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]eventbus.Reply(nil), e.replies[id]...)
}

// Deliveries returns the deliveries that carried the replies to id, for
// tests of their properties and raw bodies.
func (e *Engine) Deliveries(id string) []amqp.Delivery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]amqp.Delivery(nil), e.deliveries[id]...)
}

// Count is the number of replies received so far for id.
func (e *Engine) Count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.replies[id])
}

// Answered is the number of correlation ids with at least one reply.
func (e *Engine) Answered() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.replies)
}

// Queued is the number of messages ready in the job queue.
func (e *Engine) Queued() int {
	e.t.Helper()
	q, err := e.ch.QueueDeclarePassive(e.queue, true, false, false, false, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return q.Messages
}

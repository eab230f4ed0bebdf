package testenv

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestBrokerReachable proves the private broker from scripts/rabbitmq.sh
// works: it connects, declares a temporary queue, publishes a message and
// gets it back.
func TestBrokerReachable(t *testing.T) {
	url := AMQPURL(t)

	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer conn.Close()

	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	defer ch.Close()

	// Server-named, exclusive, auto-deleted: gone when the connection closes.
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("queue declare: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	body := "hello from TestBrokerReachable " + time.Now().Format(time.RFC3339Nano)
	if err := ch.PublishWithContext(ctx, "", q.Name, true, false, amqp.Publishing{
		ContentType: "text/plain",
		Body:        []byte(body),
	}); err != nil {
		t.Fatalf("publish: %v", err)
	}

	// basic.get right after the publish on the same channel normally finds
	// the message; poll briefly to be robust.
	for {
		msg, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if ok {
			if got := string(msg.Body); got != body {
				t.Fatalf("got body %q, want %q", got, body)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message did not arrive in queue %s: %v", q.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

package eventbus

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Message is one event as received: its routing key, its raw JSON body and
// when it arrived.
type Message struct {
	RoutingKey string
	Body       []byte
	Received   time.Time
	// Offset is the event's offset in the stream it was read from
	// (SubscribeStream), when HasOffset.
	Offset    int64
	HasOffset bool
}

// Subscription receives the events of an exchange through an exclusive,
// auto-delete queue of its own.
type Subscription struct {
	ch *amqp.Channel
	C  <-chan Message // closed when the subscription ends

	mu  sync.Mutex
	err error
}

// Err says why the subscription ended, when it was not the connection's
// loss or ctx (read it once C is closed).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Subscribe declares the events exchange, binds a private queue to it with
// each binding key ("#" = everything, "job.*.finished" = finished jobs, ...)
// and delivers what arrives on Subscription.C until ctx is done or the
// connection is lost.
func (c *Client) Subscribe(ctx context.Context, exchange string, bindings ...string) (*Subscription, error) {
	if len(bindings) == 0 {
		bindings = []string{"#"}
	}
	if err := c.DeclareEvents(exchange); err != nil {
		return nil, err
	}
	ch, err := c.Channel()
	if err != nil {
		return nil, err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("declare subscriber queue: %w", err)
	}
	for _, b := range bindings {
		if err := ch.QueueBind(q.Name, b, exchange, false, nil); err != nil {
			ch.Close()
			return nil, fmt.Errorf("bind %s to %s with %q: %w", q.Name, exchange, b, err)
		}
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("set subscriber prefetch: %w", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("consume %s: %w", q.Name, err)
	}
	out := make(chan Message, 256)
	go func() {
		defer close(out)
		defer ch.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case d, ok := <-deliveries:
				if !ok {
					return
				}
				select {
				case out <- Message{RoutingKey: d.RoutingKey, Body: d.Body, Received: time.Now()}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return &Subscription{ch: ch, C: out}, nil
}

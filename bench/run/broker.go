package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// eventsExchange is the executor's default events exchange (wire.md §3).
const eventsExchange = "hyperflow.events"

// control is the bench's own broker connection: it watches executor.ready
// events and deletes the queues of finished runs.
type control struct {
	conn    *amqp.Connection
	mgmt    *amqp.Channel
	version string // RabbitMQ version, from the server properties
	erlang  string

	mu      sync.Mutex
	waiters map[string]chan readyEvent // by queue
}

// readyEvent is an executor.ready event as received.
type readyEvent struct {
	Executor string    // the executor's id
	Stamp    time.Time // its own timestamp
	Received time.Time
}

func dialControl(url string) (*control, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{
		Properties: amqp.Table{"connection_name": "hyperflow-bench"},
		Heartbeat:  10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to the broker: %w", err)
	}
	c := &control{conn: conn, waiters: map[string]chan readyEvent{}}
	c.version, _ = conn.Properties["version"].(string)
	c.erlang, _ = conn.Properties["platform"].(string)
	if c.mgmt, err = conn.Channel(); err != nil {
		conn.Close()
		return nil, err
	}
	sub, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	// The exchange as the executor declares it, and a private queue that
	// receives only the ready events.
	if err := sub.ExchangeDeclare(eventsExchange, "topic", true, false, false, false, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("declare %s: %w", eventsExchange, err)
	}
	q, err := sub.QueueDeclare("", false, true, true, false, nil)
	if err == nil {
		err = sub.QueueBind(q.Name, "executor.ready", eventsExchange, false, nil)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = sub.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("subscribe to executor.ready: %w", err)
	}
	go func() {
		for d := range deliveries {
			now := time.Now()
			var ev struct {
				Executor  string  `json:"executor"`
				Timestamp float64 `json:"timestamp"`
				Queue     string  `json:"queue"`
			}
			if json.Unmarshal(d.Body, &ev) != nil {
				continue
			}
			sec, frac := math.Modf(ev.Timestamp)
			r := readyEvent{Executor: ev.Executor, Stamp: time.Unix(int64(sec), int64(frac*1e9)), Received: now}
			c.mu.Lock()
			w := c.waiters[ev.Queue]
			c.mu.Unlock()
			if w != nil {
				select {
				case w <- r:
				default:
				}
			}
		}
	}()
	return c, nil
}

// expectReady registers interest in the next executor.ready of queue;
// call it before starting the executor.
func (c *control) expectReady(queue string) <-chan readyEvent {
	ch := make(chan readyEvent, 1)
	c.mu.Lock()
	c.waiters[queue] = ch
	c.mu.Unlock()
	return ch
}

func (c *control) forget(queue string) {
	c.mu.Lock()
	delete(c.waiters, queue)
	c.mu.Unlock()
}

// deleteQueue removes a run's job queue (durable: it would stay).
func (c *control) deleteQueue(queue string) {
	_, _ = c.mgmt.QueueDelete(queue, false, false, false)
}

func (c *control) close() { c.conn.Close() }

package executor

import (
	"context"
	"errors"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// link holds the current broker connection, which is replaced after a loss.
// Run sets and drops it; job goroutines publish through it.
type link struct {
	mu     sync.Mutex
	client *eventbus.Client
	up     chan struct{} // closed while client != nil
}

func newLink() *link { return &link{up: make(chan struct{})} }

func (l *link) set(c *eventbus.Client) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.client = c
	close(l.up)
}

func (l *link) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		l.client = nil
		l.up = make(chan struct{})
	}
}

func (l *link) current() *eventbus.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// wait returns the current client, waiting for a connection if there is
// none.
func (l *link) wait(ctx context.Context) (*eventbus.Client, error) {
	for {
		l.mu.Lock()
		c, up := l.client, l.up
		l.mu.Unlock()
		if c != nil {
			return c, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lossNoticeWait bounds the wait for a client to notice the loss of its
// connection after a failed publish.
const lossNoticeWait = 2 * time.Second

var errNotConnected = errors.New("not connected to the broker")

// Publish sends an event on the current connection, if any (best effort).
func (l *link) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	c := l.current()
	if c == nil {
		return errNotConnected
	}
	return c.Publish(ctx, exchange, key, msg)
}

// PublishBatch sends events on the current connection, if any (best
// effort), in one write.
func (l *link) PublishBatch(ctx context.Context, msgs []eventbus.Outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	c := l.current()
	if c == nil {
		return errNotConnected
	}
	return c.PublishBatch(ctx, msgs)
}

// PublishConfirmed sends the events before (best effort, only on the first
// attempt) and msg, and waits for the broker's confirmation of msg; when
// the connection is lost meanwhile it waits for the next one and sends
// msg again, until ctx is done.
func (l *link) PublishConfirmed(ctx context.Context, exchange, key string, msg amqp.Publishing, before ...eventbus.Outgoing) error {
	for {
		c, err := l.wait(ctx)
		if err != nil {
			return err
		}
		err = c.PublishConfirmed(ctx, exchange, key, msg, before...)
		before = nil
		if err == nil || ctx.Err() != nil || errors.Is(err, eventbus.ErrNacked) {
			return err
		}
		// The write can fail on a connection going away before the
		// client has noticed the loss: give it a moment to, and send msg
		// again on the next connection. Otherwise the error stands.
		t := time.NewTimer(lossNoticeWait)
		select {
		case <-c.Done(): // lost: try on the next connection
			t.Stop()
		case <-t.C:
			return err
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

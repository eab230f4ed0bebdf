package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// The orders in which the URLs of a broker cluster are tried (amqp_url_order).
const (
	// OrderShuffle: the list is shuffled once, so that executors spread
	// over the nodes; the default.
	OrderShuffle = "shuffle"
	// OrderOrdered: the URLs are tried in the order given.
	OrderOrdered = "ordered"
)

// SplitURLs splits a comma-separated list of broker URLs (the convention of
// Celery and of RabbitMQ's own clients), dropping spaces around each and
// empty items.
func SplitURLs(raw string) []string {
	var urls []string
	for _, u := range strings.Split(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// CheckOrder checks an amqp_url_order value ("" counts as the default).
func CheckOrder(order string) error {
	switch order {
	case "", OrderShuffle, OrderOrdered:
		return nil
	}
	return fmt.Errorf("must be %s or %s, got %q", OrderShuffle, OrderOrdered, order)
}

// Brokers is the list of URLs of the nodes of a broker cluster (or of one
// broker) and where the next connection starts: Dial tries each URL once,
// starting after the one that served the last connection, so that after the
// loss of a node the next node is tried first. Safe for concurrent use; the
// owner of a connection loop keeps one for its life.
type Brokers struct {
	mu   sync.Mutex
	urls []string
	next int
}

// NewBrokers parses a comma-separated list of URLs and orders it
// (OrderShuffle or OrderOrdered; "" is OrderShuffle).
func NewBrokers(raw, order string) (*Brokers, error) {
	if err := CheckOrder(order); err != nil {
		return nil, fmt.Errorf("amqp_url_order: %w", err)
	}
	urls := SplitURLs(raw)
	if len(urls) == 0 {
		return nil, errors.New("no broker URL")
	}
	if order != OrderOrdered {
		rand.Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	}
	return &Brokers{urls: urls}, nil
}

// Len is the number of URLs.
func (b *Brokers) Len() int { return len(b.urls) }

// String is the list with every password hidden.
func (b *Brokers) String() string { return redact.URL(strings.Join(b.urls, ",")) }

// Dial connects to the first URL that answers, trying each once, starting
// after the URL of the last successful Dial. The error of a round where
// none answered names every URL tried (passwords hidden) with its cause.
func (b *Brokers) Dial(o DialOptions) (*Client, error) {
	b.mu.Lock()
	start := b.next
	b.mu.Unlock()
	var errs []error
	for k := range b.urls {
		i := (start + k) % len(b.urls)
		c, err := dialOne(b.urls[i], o)
		if err == nil {
			b.mu.Lock()
			b.next = (i + 1) % len(b.urls)
			b.mu.Unlock()
			if k > 0 && o.Log != nil {
				o.Log.Info("connected to another broker node", "broker", c.Broker(), "nodes_refused", k)
			}
			return c, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("no broker node of %d answered: %w", len(b.urls), errors.Join(errs...))
}

// Connect dials (Dial: every node once, starting after the one of the last
// connection) until a node answers, waiting between rounds the delays of
// backoff, the reconnection policy. backoff belongs to the caller's
// connection loop and is kept across connections: Connect calls its Up on
// success, so that the delays after the loss of a connection that worked
// stay short. It gives up when ctx is done (returning ctx.Err()) or after
// attempts failed rounds (attempts <= 0: never), with an error naming every
// node tried, passwords hidden. Each failed round is logged to o.Log.
func (b *Brokers) Connect(ctx context.Context, o DialOptions, attempts int, backoff *Backoff) (*Client, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for attempt := 1; ; attempt++ {
		client, err := b.Dial(o)
		if err == nil {
			backoff.Up()
			if attempt > 1 {
				log.Info("connected to the broker", "broker", client.Broker(), "attempts", attempt)
			}
			return client, nil
		}
		if attempts > 0 && attempt >= attempts {
			return nil, fmt.Errorf("broker unreachable after %d attempts: %w", attempt, err)
		}
		wait := backoff.Next()
		log.Warn("broker unreachable, retrying", "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", err)
		if !Sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

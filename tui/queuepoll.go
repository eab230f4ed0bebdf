package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// QueuePollEvery is how often the queue view asks the broker about the job
// queues.
const QueuePollEvery = 2 * time.Second

// QueuePoller asks the broker about job queues with a passive
// queue.declare: messages ready and consumers. It has a connection of its
// own ("hyperflow-top queues"), apart from the events subscription, so
// that a refused declare (the broker closes the channel of a passive
// declare of a missing queue) or a slow broker never disturbs the events.
// It dials on first use and again after a failure, at the pace of the
// polls. Safe for one poll at a time (the model keeps one in flight).
type QueuePoller struct {
	url   string
	order string
	tls   eventbus.TLSFiles
	log   *slog.Logger
	// brokers: the nodes of url, made at the first dial and kept, so that
	// a new connection moves on to the next node after a loss.
	brokers *eventbus.Brokers

	mu     sync.Mutex
	client *eventbus.Client
	ch     *amqp.Channel
}

// NewQueuePoller makes a poller of the broker at url (or of the nodes of a
// comma-separated list, tried in order: eventbus.OrderShuffle or
// OrderOrdered); it connects on the first Poll.
func NewQueuePoller(url, order string, tls eventbus.TLSFiles, log *slog.Logger) *QueuePoller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &QueuePoller{url: url, order: order, tls: tls, log: log}
}

// Poll samples every queue of names; a queue that cannot be asked about
// gets a sample with Err naming the queue and why.
func (p *QueuePoller) Poll(ctx context.Context, names []string) map[string]state.QueueSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]state.QueueSample, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		s, err := p.declare(name)
		s.At = time.Now()
		if err != nil {
			s.Err = err
		}
		out[name] = s
	}
	return out
}

func (p *QueuePoller) declare(name string) (state.QueueSample, error) {
	ch, err := p.channel()
	if err != nil {
		return state.QueueSample{}, err
	}
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		// The broker closed the channel; the next declare opens another.
		p.ch = nil
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return state.QueueSample{}, fmt.Errorf("queue %q not found (no executor declared it yet, or another vhost)", name)
		}
		if p.client != nil && p.client.Err() != nil {
			p.dropClient()
		}
		return state.QueueSample{}, fmt.Errorf("passive declare of queue %q: %w", name, err)
	}
	return state.QueueSample{Ready: q.Messages, Consumers: q.Consumers}, nil
}

// channel is the poller's channel, dialling and opening as needed.
func (p *QueuePoller) channel() (*amqp.Channel, error) {
	if p.client != nil {
		select {
		case <-p.client.Done():
			p.dropClient()
		default:
		}
	}
	if p.client == nil {
		if p.brokers == nil {
			b, err := eventbus.NewBrokers(p.url, p.order)
			if err != nil {
				return nil, fmt.Errorf("ask the broker %s about queues: %w", redact.URL(p.url), err)
			}
			p.brokers = b
		}
		c, err := p.brokers.Dial(eventbus.DialOptions{Name: "hyperflow-top queues", TLS: p.tls, Log: p.log})
		if err != nil {
			return nil, fmt.Errorf("ask the broker about queues: %w", err)
		}
		p.client = c
	}
	if p.ch == nil || p.ch.IsClosed() {
		ch, err := p.client.Channel()
		if err != nil {
			p.dropClient()
			return nil, fmt.Errorf("open a channel to ask the broker %s about queues: %w", redact.URL(p.url), err)
		}
		p.ch = ch
	}
	return p.ch, nil
}

func (p *QueuePoller) dropClient() {
	if p.client != nil {
		_ = p.client.Close()
	}
	p.client, p.ch = nil, nil
}

// Close ends the poller's connection.
func (p *QueuePoller) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropClient()
	return nil
}

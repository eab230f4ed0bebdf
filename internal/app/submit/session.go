package submit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// session is the broker side of a run: the job queue declared, a reply
// queue consumed, a channel to publish jobs on. It is used by one run; the
// publishing goroutine owns pub, the consuming goroutine reads replies.
type session struct {
	client  *eventbus.Client
	ch      *amqp.Channel // declares the queues and consumes the replies
	pub     *amqp.Channel // publishes the jobs (ch itself in single mode)
	queue   string
	replyTo string
	replies <-chan amqp.Delivery
	chClose chan *amqp.Error // buffered, written once by the library
}

// openSession connects and prepares the queues as the engine does: the job
// queue durable, not exclusive, not auto-delete, without arguments; a
// server-named, exclusive, auto-delete reply queue consumed with auto-ack.
// With separatePublisher the jobs are published on a channel of their own
// (load mode), so that publishing and consuming do not share flow control.
func openSession(o Options, separatePublisher bool, log *slog.Logger) (_ *session, err error) {
	client, err := eventbus.DialWith(o.AMQPURL, eventbus.DialOptions{Name: "hyperflow-submit", TLS: o.TLS, Order: o.Order, Log: log})
	if err != nil {
		return nil, err
	}
	queue := o.Queue
	s := &session{client: client, queue: queue}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.ch, err = client.Channel(); err != nil {
		return nil, fmt.Errorf("reply channel: %w", err)
	}
	s.chClose = s.ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := eventbus.DeclareJobQueue(s.ch, queue, nil); err != nil {
		return nil, err
	}
	q, err := s.ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return nil, fmt.Errorf("declare reply queue: %w", err)
	}
	s.replyTo = q.Name
	if s.replies, err = s.ch.Consume(q.Name, "", true, false, false, false, nil); err != nil {
		return nil, fmt.Errorf("consume reply queue %s: %w", q.Name, err)
	}
	s.pub = s.ch
	if separatePublisher {
		if s.pub, err = client.Channel(); err != nil {
			return nil, fmt.Errorf("publishing channel: %w", err)
		}
	}
	return s, nil
}

// message is the job message with the engine's properties: JSON content
// type, the job id as correlation id, the reply queue, no delivery mode.
func (s *session) message(id string, body []byte) amqp.Publishing {
	return amqp.Publishing{
		ContentType:   "application/json",
		CorrelationId: id,
		ReplyTo:       s.replyTo,
		Headers:       amqp.Table{},
		Body:          body,
	}
}

// publish sends one job to the default exchange with routing key = queue.
func (s *session) publish(ctx context.Context, id string, body []byte) error {
	if err := s.pub.PublishWithContext(ctx, "", s.queue, false, false, s.message(id, body)); err != nil {
		return fmt.Errorf("publish job %s to queue %s: %w", id, s.queue, err)
	}
	return nil
}

// lost says why the reply deliveries stopped.
func (s *session) lost() error {
	select {
	case e, ok := <-s.chClose:
		if ok && e != nil {
			return fmt.Errorf("reply channel closed: %w", e)
		}
	default:
	}
	select {
	case <-s.client.Done():
		return s.client.Err()
	default:
	}
	return errors.New("reply channel closed")
}

func (s *session) close() {
	if s.client != nil {
		s.client.Close() // closes the channels with it
	}
}

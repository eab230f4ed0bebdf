package workerpool

import (
	"context"
	"fmt"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// queueExpires is the x-expires argument both the engine
// (functions/kubernetes/amqpConnector.js) and the Node listener give the
// queue (amqplib's {expires: 6000000}): an unused queue goes after 100 min.
const queueExpires = 6000000

// DeclareQueue declares a worker-pool queue exactly as the engine and the
// Node listener do: not durable, not exclusive, not auto-delete, x-expires
// 6000000 ms. Any other declaration of an existing queue fails with
// PRECONDITION_FAILED.
func DeclareQueue(ch *amqp.Channel, queue string) error {
	args := amqp.Table{"x-expires": int32(queueExpires)}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, args); err != nil {
		if strings.Contains(err.Error(), "transient_nonexcl_queues") {
			return fmt.Errorf("declare queue %s: the broker refuses transient non-exclusive queues, which the HyperFlow "+
				"engine declares for worker pools (RabbitMQ >= 4.3 by default); permit them on the broker with "+
				"deprecated_features.permit.transient_nonexcl_queues = true: %w", queue, err)
		}
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	return nil
}

// serve declares the queue and the events exchange on a new connection and
// hands deliveries to slots until ctx is done (then it cancels the
// consumer, returns the prefetched deliveries to the queue and returns nil)
// or the connection or channel is lost (then it returns why). consuming is
// set once the consumer runs.
func (p *Pool) serve(ctx context.Context, client *eventbus.Client, consuming *bool) error {
	if err := client.DeclareEvents(p.cfg.EventsExchange); err != nil {
		return err
	}
	if st := p.cfg.EventsStream; st != "" {
		if err := client.DeclareStream(p.cfg.EventsExchange, st, p.cfg.EventsStreamMaxAge, int64(p.cfg.EventsStreamMaxBytes)); err != nil {
			return err
		}
	}
	ch, err := client.Channel()
	if err != nil {
		return err
	}
	if err := DeclareQueue(ch, p.cfg.PoolQueue); err != nil {
		return err
	}
	if err := ch.Qos(p.prefetch, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", p.prefetch, err)
	}
	var consumeArgs amqp.Table
	if t := p.cfg.ConsumerTimeout; t > 0 {
		consumeArgs = amqp.Table{"x-consumer-timeout": t.Milliseconds()}
	}
	tag := "hyperflow-worker-pool-" + p.id
	deliveries, err := ch.Consume(p.cfg.PoolQueue, tag, false, false, false, false, consumeArgs)
	if err != nil {
		return fmt.Errorf("consume %s: %w", p.cfg.PoolQueue, err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancelled := ch.NotifyCancel(make(chan string, 1))

	*consuming = true
	p.emit(context.Background(), 0, "", p.readyEvent())
	p.log.Info("worker pool ready", "executor", p.id, "queue", p.cfg.PoolQueue, "threads", p.cfg.Threads,
		"prefetch", p.prefetch, "work_dir", p.workDir, "log_dir", p.logDir, "node", p.hostname,
		"pod", p.cfg.PodName, "broker", p.cfg.PoolBrokerURL(), "redis", p.cfg.RedisURL)
	if p.ready != nil && p.readyCalled.CompareAndSwap(false, true) {
		p.ready()
	}

	for {
		select {
		case <-ctx.Done():
			if err := ch.Cancel(tag, false); err != nil {
				p.log.Warn("cancel consumer", "err", err)
			}
			// Deliveries already prefetched go back to the queue.
			for d := range deliveries {
				_ = d.Nack(false, true)
			}
			return nil
		case d, ok := <-deliveries:
			if !ok {
				select {
				case cause := <-closed:
					if cause != nil {
						return fmt.Errorf("consumer channel closed: %w", cause)
					}
					return fmt.Errorf("consumer channel closed: %w", client.Err())
				case <-cancelled:
					ch.Close()
					return fmt.Errorf("the broker cancelled the consumer of %s (queue deleted or expired?)", p.cfg.PoolQueue)
				}
			}
			p.dispatch(ctx, d)
		}
	}
}

// dispatch hands a delivery to a free slot, waiting for one; a redelivery
// of a message running here is attached to it.
func (p *Pool) dispatch(ctx context.Context, d amqp.Delivery) {
	key, attached, count := p.track.admit(d)
	if attached {
		p.log.Info("redelivery of a message that runs here: settled with it", "delivery_tag", d.DeliveryTag)
		return
	}
	var slot int
	select {
	case slot = <-p.slots:
	case <-ctx.Done():
		p.track.settled(key, false)
		_ = d.Nack(false, true)
		return
	}
	p.jobs.Go(func() {
		defer func() { p.slots <- slot }()
		p.handle(d, key, count, slot)
	})
}

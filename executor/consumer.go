package executor

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// serve declares the queue and exchange on a new connection and hands
// deliveries to jobs until ctx is done (then it cancels the consumer,
// returns the deliveries not started to the queue and returns nil) or the
// connection or consumer channel is lost (then it returns why).
func (e *Executor) serve(ctx context.Context, client *eventbus.Client) error {
	if err := client.DeclareEvents(e.cfg.EventsExchange); err != nil {
		return err
	}
	if st := e.cfg.EventsStream; st != "" {
		if err := client.DeclareStream(e.cfg.EventsExchange, st, e.cfg.EventsStreamMaxAge, int64(e.cfg.EventsStreamMaxBytes)); err != nil {
			return err
		}
	}
	ch, err := client.Channel()
	if err != nil {
		return err
	}
	if err := eventbus.DeclareJobQueue(ch, e.cfg.Queue, e.cfg.QueueArgs()); err != nil {
		return err
	}
	if err := ch.Qos(e.cfg.Threads, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", e.cfg.Threads, err)
	}
	server := client.Server()
	var consumeArgs amqp.Table
	if t := e.cfg.ConsumerTimeout; t > 0 {
		if perConsumerTimeout(server) {
			consumeArgs = amqp.Table{"x-consumer-timeout": t.Milliseconds()}
		} else if e.timeoutNoted.CompareAndSwap(false, true) {
			e.log.Warn("this broker ignores a per-consumer timeout: consumer_timeout is taken as what the broker applies; make sure it does",
				"broker", server.Product+" "+server.Version, "consumer_timeout", t, "fix", timeoutFix(server, e.cfg.Queue, t))
		}
	}
	tag := "hyperflow-executor-" + e.id
	deliveries, err := ch.Consume(e.cfg.Queue, tag, false, false, false, false, consumeArgs)
	if err != nil {
		return fmt.Errorf("consume %s: %w", e.cfg.Queue, err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	// The broker cancels the consumer when the queue is deleted (or its
	// node fails): the channel stays open, only the deliveries end.
	cancelled := ch.NotifyCancel(make(chan string, 1))

	e.emitExecutor(context.Background(), &eventbus.Event{
		Type: eventbus.TypeExecutorReady, Hostname: e.hostname, Threads: e.cfg.Threads,
		Storage: e.cfg.Storage, Version: e.version, Queue: e.cfg.Queue, Broker: client.Broker(),
	})
	e.log.Info("executor ready", "executor", e.id, "queue", e.cfg.Queue, "threads", e.cfg.Threads,
		"storage", e.cfg.Storage, "broker", client.Broker())
	if e.ready != nil && e.readyCalled.CompareAndSwap(false, true) {
		e.ready()
	}

	for {
		select {
		case <-ctx.Done():
			if err := ch.Cancel(tag, false); err != nil {
				e.log.Warn("cancel consumer", "err", err)
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
						if strings.Contains(cause.Reason, "delivery acknowledgement") && strings.Contains(cause.Reason, "timed out") {
							e.log.Error("the broker's consumer timeout closed the channel: a job ran longer than the broker lets a delivery stay unacknowledged; running jobs go on and are answered once, but raise the timeout",
								"broker", server.Product+" "+server.Version, "fix", timeoutFix(server, e.cfg.Queue, max(e.cfg.ConsumerTimeout, 24*time.Hour)))
						}
						return fmt.Errorf("consumer channel closed: %w", cause)
					}
					return fmt.Errorf("consumer channel closed: %w", client.Err())
				case <-cancelled:
					ch.Close()
					if e.busy.Load() > 0 {
						// RabbitMQ 4 may cancel the consumer instead of
						// closing the channel when a delivery times out.
						e.log.Error("the broker cancelled the consumer while jobs ran: its consumer timeout does this when a delivery stays unacknowledged too long (or the queue was deleted); running jobs go on and are answered once, but raise the timeout",
							"broker", server.Product+" "+server.Version, "fix", timeoutFix(server, e.cfg.Queue, max(e.cfg.ConsumerTimeout, 24*time.Hour)))
					}
					return fmt.Errorf("the broker cancelled the consumer of %s (queue deleted?)", e.cfg.Queue)
				}
			}
			e.dispatch(ctx, d)
		}
	}
}

// dispatch starts a job for a delivery on a free slot, or settles a
// redelivery of a job that is running or was answered already.
func (e *Executor) dispatch(ctx context.Context, d amqp.Delivery) {
	switch e.track.admit(d) {
	case attached:
		e.redelivered(d.CorrelationId)
		e.log.Info("redelivery of a running job: it will be answered once, when it ends",
			"job", d.CorrelationId)
		return
	case answered:
		e.duplicates.Add(1)
		e.log.Info("redelivery of an answered job acknowledged without running it again", "job", d.CorrelationId)
		if err := d.Ack(false); err != nil {
			e.log.Warn("acknowledge redelivery", "job", d.CorrelationId, "err", err)
		}
		return
	}
	var slot int
	select {
	case slot = <-e.slots:
	case <-ctx.Done():
		e.track.finish(d.CorrelationId, false)
		_ = d.Nack(false, true)
		return
	}
	e.jobs.Add(1)
	e.work[slot-1] <- d // the slot's worker is idle: it never blocks
}

// startWorkers starts one goroutine per slot, which runs the jobs handed to
// its slot. A goroutine per job would cost its creation and, every time,
// the growth of its stack to what a job needs (about 7 % of the executor's
// CPU on trivial jobs). The returned function stops them, once no job runs.
func (e *Executor) startWorkers() (stop func()) {
	var wg sync.WaitGroup
	e.work = make([]chan amqp.Delivery, e.cfg.Threads)
	for i := range e.work {
		ch := make(chan amqp.Delivery, 1)
		e.work[i] = ch
		slot := i + 1
		wg.Go(func() {
			for d := range ch {
				e.handle(d, slot)
				e.slots <- slot
				e.jobs.Done()
			}
		})
	}
	return func() {
		for _, ch := range e.work {
			close(ch)
		}
		wg.Wait()
	}
}

// perConsumerTimeout says whether the broker honours x-consumer-timeout on
// basic.consume: RabbitMQ 3.12 and 3.13. Older ones do not know it; 4.x
// accepts it and ignores it (only a queue argument or a policy works there).
func perConsumerTimeout(s eventbus.ServerInfo) bool {
	return s.Product == "RabbitMQ" && s.AtLeast(3, 12) && !s.AtLeast(4, 0)
}

// timeoutFix is what an operator runs so that deliveries of queue may stay
// unacknowledged for t on this broker.
func timeoutFix(s eventbus.ServerInfo, queue string, t time.Duration) string {
	if s.Product == "RabbitMQ" && !s.AtLeast(3, 12) {
		return fmt.Sprintf("set consumer_timeout = %d in rabbitmq.conf (RabbitMQ before 3.12 has no per-queue timeout)", t.Milliseconds())
	}
	return fmt.Sprintf(`rabbitmqctl set_policy hyperflow-long-jobs '^%s$' '{"consumer-timeout":%d}' --apply-to queues`,
		regexp.QuoteMeta(queue), t.Milliseconds())
}

// consumerRestartWait is the first pause before a consumer channel lost on
// a live connection is opened again; it doubles (up to 10 s) while the
// broker closes the new one within a minute.
const consumerRestartWait = 100 * time.Millisecond

// consume serves jobs on client until ctx is done (it returns nil) or the
// connection is lost (it returns why). A consumer channel closed, or a
// consumer cancelled, by the broker on a live connection (its consumer
// timeout, a deleted queue) is opened again on that connection: the
// publishing channel, and the confirmations of replies in flight on it,
// are kept, so no reply is sent twice.
func (e *Executor) consume(ctx context.Context, client *eventbus.Client) error {
	err := e.serve(ctx, client)
	wait := consumerRestartWait
	for err != nil && !client.Lost() {
		e.consumerRestarts.Add(1)
		e.log.Warn("consumer channel lost; consuming again on the same connection (running jobs go on)",
			"broker", client.Broker(), "retry_in", wait, "err", err)
		if !eventbus.Sleep(ctx, wait) {
			return nil
		}
		began := time.Now()
		err = e.serve(ctx, client)
		// A channel refused again at once waits longer each time.
		wait = min(2*wait, 10*time.Second)
		if time.Since(began) > time.Minute {
			wait = consumerRestartWait
		}
	}
	return err
}

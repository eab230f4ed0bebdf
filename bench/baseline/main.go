// Command baseline is the bare consumer the executor is measured against
// (docs/benchmarks.md): the least a program can do to answer HyperFlow
// jobs. It declares the job queue as the engine does (durable, no
// arguments), sets the prefetch to N, consumes with manual acknowledgement
// on N worker goroutines and, for each delivery: reads only `executable`
// and `args` from the JSON body, runs the command (fork/exec, no shell,
// output discarded), publishes a minimal reply that hyperflow-submit's
// load mode accepts, and acknowledges. No staging, no events, no publisher
// confirms, no tracking of redeliveries.
//
// With --confirm it puts its reply channel in confirm mode and acknowledges
// a job only once the broker confirmed its reply, as the executor must
// (docs/wire.md): the least a consumer with that guarantee can do, which
// tells the cost of the guarantee (a broker round trip per job, the
// broker's work for it) from the cost of the executor's code.
//
// With --tx it publishes each reply on the consuming channel, in an AMQP
// transaction with the job's acknowledgement (replies of jobs that end
// together share one commit). One broker round trip per job instead of
// two; docs/benchmarks.md says why the executor does not answer so:
// RabbitMQ applies a transaction's acknowledgements even when one of its
// publishes is refused ("partial tx completion"), so a job could be
// acknowledged without a reply.
//
// It prints "ready" on stdout once it consumes, and stops on SIGTERM or
// SIGINT (unacknowledged deliveries go back to the queue with the
// connection).
//
//	baseline --amqp-url amqp://guest:guest@127.0.0.1:5672/ --queue q --prefetch 2 [--confirm | --tx]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("amqp-url", os.Getenv("AMQP_URL"), "broker URL")
	queue := flag.String("queue", "hyperflow.jobs", "job queue")
	prefetch := flag.Int("prefetch", 1, "prefetch and number of workers")
	confirm := flag.Bool("confirm", false, "acknowledge a job only once the broker confirmed its reply")
	tx := flag.Bool("tx", false, "publish each reply and acknowledge its job in one transaction on the consuming channel")
	flag.Parse()
	if *url == "" || *prefetch < 1 || *confirm && *tx {
		fmt.Fprintln(os.Stderr, "baseline: need --amqp-url, --prefetch >= 1, and at most one of --confirm and --tx")
		os.Exit(2)
	}
	m := modeBare
	switch {
	case *confirm:
		m = modeConfirm
	case *tx:
		m = modeTx
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *url, *queue, *prefetch, m); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// mode is how a reply is published and its job acknowledged.
type mode int

const (
	modeBare    mode = iota // publish, acknowledge
	modeConfirm             // publish, wait for the confirmation, acknowledge
	modeTx                  // publish and acknowledge in one committed transaction
)

func run(ctx context.Context, url, queue string, n int, m mode) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	if err := ch.Qos(n, 0, false); err != nil {
		return err
	}
	var answer func(amqp.Delivery, *amqp.Publishing) error
	if m == modeTx {
		// A transaction covers the channel's publishes and acks, so the
		// replies go out on the consuming channel, through one committer.
		if err := ch.Tx(); err != nil {
			return fmt.Errorf("transaction mode: %w", err)
		}
		answer = committer(ctx, ch)
	} else {
		// Replies go out on a channel of their own, as acks and
		// deliveries share the consuming one.
		pub, err := conn.Channel()
		if err != nil {
			return err
		}
		if m == modeConfirm {
			if err := pub.Confirm(false); err != nil {
				return fmt.Errorf("confirm mode: %w", err)
			}
		}
		answer = func(d amqp.Delivery, msg *amqp.Publishing) error {
			if msg != nil {
				if err := publish(ctx, pub, d.ReplyTo, *msg, m == modeConfirm); err != nil {
					return err
				}
			}
			return d.Ack(false)
		}
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}
	fmt.Println("ready")

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for d := range deliveries {
				if err := answer(d, reply(d, m != modeBare)); err != nil {
					fmt.Fprintln(os.Stderr, "baseline: reply:", err)
					_ = d.Nack(false, true)
				}
			}
		})
	}
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))
	select {
	case <-ctx.Done():
		conn.Close() // closes deliveries; the workers end
		wg.Wait()
		return nil
	case e := <-lost:
		wg.Wait()
		if e != nil {
			return e
		}
		return errors.New("connection closed")
	}
}

// job is all the baseline reads of a job message.
type job struct {
	Executable string   `json:"executable"`
	Args       []string `json:"args"`
}

// reply runs the job of d and returns its reply (persistent, as the
// executor's, for the modes that wait for the broker), nil when d has no
// reply_to.
func reply(d amqp.Delivery, persistent bool) *amqp.Publishing {
	status, exc := execute(d.Body)
	if d.ReplyTo == "" {
		return nil
	}
	excs := "[]"
	if exc != "" {
		b, _ := json.Marshal([]string{exc})
		excs = string(b)
	}
	msg := &amqp.Publishing{
		ContentType:   "application/json",
		CorrelationId: d.CorrelationId,
		Body:          []byte(`{"exit_status":` + strconv.Itoa(status) + `,"exceptions":` + excs + `,"metrics":{}}`),
	}
	if persistent {
		msg.DeliveryMode = amqp.Persistent
	}
	return msg
}

// publish sends a reply and, when confirm, waits for the broker's
// confirmation.
func publish(ctx context.Context, pub *amqp.Channel, key string, msg amqp.Publishing, confirm bool) error {
	if !confirm {
		return pub.PublishWithContext(ctx, "", key, false, false, msg)
	}
	dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", key, false, false, msg)
	if err != nil {
		return err
	}
	acked, err := dc.WaitContext(ctx)
	if err == nil && !acked {
		err = errors.New("reply nacked by the broker")
	}
	return err
}

// answered is a reply and its job waiting for the committer.
type answered struct {
	d    amqp.Delivery
	msg  *amqp.Publishing
	done chan error
}

// committer starts the goroutine that publishes replies and acknowledges
// their jobs on ch (in transaction mode), one commit for all the replies
// waiting, and returns the function that hands it one.
func committer(ctx context.Context, ch *amqp.Channel) func(amqp.Delivery, *amqp.Publishing) error {
	waiting := make(chan answered)
	go func() {
		var batch []answered
		for {
			select {
			case a := <-waiting:
				batch = append(batch[:0], a)
			case <-ctx.Done():
				return
			}
		more:
			for {
				select {
				case a := <-waiting:
					batch = append(batch, a)
				default:
					break more
				}
			}
			var err error
			for _, a := range batch {
				if a.msg != nil && err == nil {
					err = ch.PublishWithContext(ctx, "", a.d.ReplyTo, false, false, *a.msg)
				}
				if err == nil {
					err = a.d.Ack(false)
				}
			}
			if err == nil {
				err = ch.TxCommit()
			}
			for _, a := range batch {
				a.done <- err
			}
		}
	}()
	return func(d amqp.Delivery, msg *amqp.Publishing) error {
		a := answered{d: d, msg: msg, done: make(chan error, 1)}
		select {
		case waiting <- a:
		case <-ctx.Done():
			return ctx.Err()
		}
		return <-a.done
	}
}

func execute(body []byte) (int, string) {
	var j job
	if err := json.Unmarshal(body, &j); err != nil || j.Executable == "" {
		return -2, fmt.Sprintf("bad job message: %v", err)
	}
	err := exec.Command(j.Executable, j.Args...).Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &ee):
		return ee.ExitCode(), "command " + err.Error()
	default:
		return -1, "command " + err.Error()
	}
}

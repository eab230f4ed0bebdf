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
// It prints "ready" on stdout once it consumes, and stops on SIGTERM or
// SIGINT (unacknowledged deliveries go back to the queue with the
// connection).
//
//	baseline --amqp-url amqp://guest:guest@127.0.0.1:5672/ --queue q --prefetch 2 [--confirm]
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
	flag.Parse()
	if *url == "" || *prefetch < 1 {
		fmt.Fprintln(os.Stderr, "baseline: need --amqp-url and --prefetch >= 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, *url, *queue, *prefetch, *confirm); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url, queue string, n int, confirm bool) error {
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
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", queue, err)
	}
	// Replies go out on a channel of their own, as acks and deliveries
	// share the consuming one.
	pub, err := conn.Channel()
	if err != nil {
		return err
	}
	if confirm {
		if err := pub.Confirm(false); err != nil {
			return fmt.Errorf("confirm mode: %w", err)
		}
	}
	fmt.Println("ready")

	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for d := range deliveries {
				handle(ctx, pub, d, confirm)
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

func handle(ctx context.Context, pub *amqp.Channel, d amqp.Delivery, confirm bool) {
	status, exc := execute(d.Body)
	excs := "[]"
	if exc != "" {
		b, _ := json.Marshal([]string{exc})
		excs = string(b)
	}
	body := `{"exit_status":` + strconv.Itoa(status) + `,"exceptions":` + excs + `,"metrics":{}}`
	if d.ReplyTo != "" {
		msg := amqp.Publishing{
			ContentType:   "application/json",
			CorrelationId: d.CorrelationId,
			Body:          []byte(body),
		}
		var err error
		if confirm {
			msg.DeliveryMode = amqp.Persistent // as the executor's replies
			var dc *amqp.DeferredConfirmation
			if dc, err = pub.PublishWithDeferredConfirmWithContext(ctx, "", d.ReplyTo, false, false, msg); err == nil {
				var acked bool
				if acked, err = dc.WaitContext(ctx); err == nil && !acked {
					err = errors.New("reply nacked by the broker")
				}
			}
		} else {
			err = pub.PublishWithContext(ctx, "", d.ReplyTo, false, false, msg)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline: reply:", err)
			_ = d.Nack(false, true)
			return
		}
	}
	_ = d.Ack(false)
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

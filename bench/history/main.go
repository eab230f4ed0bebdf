// Command history measures hyperflow-top --history catching up: it fills a
// stream with N real-shaped events (jobs of 8 events each: started,
// stage-in, execution, stage-out, finished; heartbeats), then reads them
// back in a child process per way, measuring the seconds until the last
// event was handled and the child's peak RSS and heap:
//
//   - baseline: a plain AMQP stream consumer (prefetch, acks), no processing;
//   - follower: eventbus.Follower (what hyperflow-top and --csv use) into
//     the monitor's state model (tui/state), as the interactive monitor does.
//
// Usage: go run ./bench/history -amqp-url URL [-events 100000]
// (scripts/with-servers.sh --rabbitmq exports HYPERFLOW_TEST_AMQP_URL).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

func main() {
	url := flag.String("amqp-url", os.Getenv("HYPERFLOW_TEST_AMQP_URL"), "broker")
	n := flag.Int("events", 100_000, "events in the stream")
	mode := flag.String("mode", "", "internal: baseline or follower, reading -stream")
	stream := flag.String("stream", "", "internal: the stream to read")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "history: -amqp-url or HYPERFLOW_TEST_AMQP_URL required")
		os.Exit(2)
	}
	var err error
	if *mode != "" {
		err = read(*mode, *url, *stream, *n)
	} else {
		err = run(*url, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(1)
	}
}

func run(url string, n int) error {
	c, err := eventbus.DialWith(url, eventbus.DialOptions{Name: "bench-history"})
	if err != nil {
		return err
	}
	defer c.Close()
	ex := "bench.history-" + uuid.NewString()[:8]
	stream := ex + ".history"
	if err := c.DeclareEvents(ex); err != nil {
		return err
	}
	if err := c.DeclareStream(ex, stream, 24*time.Hour, 1e9); err != nil {
		return err
	}
	defer func() {
		if ch, err := c.Channel(); err == nil {
			ch.QueueDelete(stream, false, false, false)
			ch.ExchangeDelete(ex, false, false)
			ch.Close()
		}
	}()
	t0 := time.Now()
	bytes, err := fill(c, ex, n)
	if err != nil {
		return err
	}
	fmt.Printf("filled %s with %d events (%.1f MiB) in %.1fs\n", stream, n, float64(bytes)/(1<<20), time.Since(t0).Seconds())
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, mode := range []string{"baseline", "follower", "baseline", "follower"} {
		cmd := exec.Command(self, "-mode", mode, "-stream", stream, "-amqp-url", url, "-events", strconv.Itoa(n))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", mode, err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		fmt.Printf("  %-8s peak RSS %.1f MiB, cpu %.2fs\n", mode, float64(ru.Maxrss)/1024,
			time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds())
	}
	return nil
}

// fill publishes n events of jobs (8 events each) and heartbeats to ex,
// with publisher confirms, returning the bytes published.
func fill(c *eventbus.Client, ex string, n int) (int, error) {
	ch, err := c.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		return 0, err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1024))
	base := float64(time.Now().Add(-time.Hour).UnixNano()) / 1e9
	total, sent, outstanding := 0, 0, 0
	pub := func(ev *eventbus.Event) error {
		body, err := ev.AppendJSON(nil)
		if err != nil {
			return err
		}
		if err := ch.Publish(ex, ev.RoutingKey(), false, false, amqp.Publishing{ContentType: "application/json", Body: body}); err != nil {
			return err
		}
		total += len(body)
		sent++
		outstanding++
		for outstanding >= 512 {
			if cf, ok := <-confirms; !ok || !cf.Ack {
				return fmt.Errorf("publish not confirmed")
			}
			outstanding--
		}
		return nil
	}
	for job := 0; sent < n; job++ {
		exec := fmt.Sprintf("exec-%02d", job%8)
		thread := int64(job/8%8 + 1)
		id := fmt.Sprintf("job-%06d", job)
		t := base + float64(job)*0.02
		ev := func(typ string, at float64) *eventbus.Event {
			return &eventbus.Event{Executor: exec, Timestamp: at, Type: typ, ID: id, Job: id, Thread: thread, Hostname: "node-" + exec}
		}
		m := eventbus.Metrics{Executor: exec, Thread: thread, Hostname: "node-" + exec}
		m.Timestamps.JobStarted, m.Timestamps.StageInStarted, m.Timestamps.StageInFinished = t, t+0.001, t+0.2
		m.Timestamps.ExecutionStarted, m.Timestamps.ExecutionFinished = t+0.21, t+1.21
		m.Timestamps.StageOutStarted, m.Timestamps.StageOutFinished, m.Timestamps.JobFinished = t+1.211, t+1.3, t+1.31
		m.StageIn, m.Execution, m.StageOut, m.InputSize, m.OutputSize = 0.199, 1, 0.089, 1<<20, 4096
		m.CPUUser, m.CPUSystem, m.MaxRSS = 0.9, 0.05, 50<<20
		started := ev(eventbus.TypeJobStarted, t)
		started.Executable, started.Redelivered = "/bin/work", eventbus.Ptr(false)
		sin := ev(eventbus.TypeStageInFinished, t+0.2)
		sin.Time, sin.Bytes = eventbus.Ptr(0.199), eventbus.Ptr(int64(1<<20))
		xs := ev(eventbus.TypeExecStarted, t+0.21)
		xs.Executable = "/bin/work"
		xf := ev(eventbus.TypeExecFinished, t+1.21)
		xf.Executable, xf.ExitStatus, xf.Time, xf.Metrics = "/bin/work", eventbus.Ptr(0), eventbus.Ptr(1.0), &m
		sof := ev(eventbus.TypeStageOutFinished, t+1.3)
		sof.Time, sof.Bytes = eventbus.Ptr(0.089), eventbus.Ptr(int64(4096))
		fin := ev(eventbus.TypeJobFinished, t+1.31)
		fin.Executable, fin.ExitStatus, fin.Metrics, fin.Exceptions = "/bin/work", eventbus.Ptr(0), &m, []string{}
		for _, e := range []*eventbus.Event{started, ev(eventbus.TypeStageInStarted, t+0.001), sin, xs, xf,
			ev(eventbus.TypeStageOutStarted, t+1.211), sof, fin} {
			if sent >= n {
				break
			}
			if err := pub(e); err != nil {
				return total, err
			}
		}
	}
	for ; outstanding > 0; outstanding-- {
		if cf, ok := <-confirms; !ok || !cf.Ack {
			return total, fmt.Errorf("publish not confirmed")
		}
	}
	return total, nil
}

// read reads n events of the stream one way and prints the time it took
// and the heap in use at the end.
func read(mode, url, stream string, n int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	got := 0
	switch mode {
	case "baseline":
		conn, err := amqp.Dial(url)
		if err != nil {
			return err
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if err := ch.Qos(1000, 0, false); err != nil {
			return err
		}
		ds, err := ch.Consume(stream, "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
		if err != nil {
			return err
		}
		for d := range ds {
			got++
			if got%250 == 0 || got == n {
				d.Ack(true)
			}
			if got == n {
				break
			}
		}
	case "follower":
		st := state.New(state.Options{})
		f := &eventbus.Follower{URL: url, Name: "bench-history", Stream: stream, FailFast: true}
		done := fmt.Errorf("done")
		err := f.Run(ctx, func(msg eventbus.Message) error {
			st.Apply(msg)
			got++
			if got == n {
				return done
			}
			return nil
		})
		if err != done {
			return fmt.Errorf("follower: %v after %d events", err, got)
		}
		if tot := st.Totals(time.Now()); tot.Done == 0 {
			return fmt.Errorf("follower: the state model counted no job done")
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	el := time.Since(t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("%-8s %d events in %.2fs (%.0f events/s), heap in use %.1f MiB\n", mode, got, el.Seconds(),
		float64(got)/el.Seconds(), float64(ms.HeapInuse)/(1<<20))
	return nil
}

package tui

// Integration tests against a real broker (testenv.AMQPURL: skipped
// without one, failed under make test).

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
)

// publisher publishes events to a fresh exchange, deleted at the end.
func publisher(t *testing.T, url string) (exchange string, publish func(msgs []eventbus.Message)) {
	t.Helper()
	exchange = "test.events." + uuid.NewString()
	c, err := eventbus.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.DeclareEvents(exchange); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ch, err := c.Channel(); err == nil {
			ch.ExchangeDelete(exchange, false, false)
			ch.Close()
		}
	})
	return exchange, func(msgs []eventbus.Message) {
		t.Helper()
		for _, m := range msgs {
			err := c.PublishConfirmed(t.Context(), exchange, m.RoutingKey, amqp.Publishing{ContentType: "application/json", Body: m.Body})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitWriter closes seen when want was written.
type waitWriter struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	done bool
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return len(p), nil
}

func waitUp(t *testing.T, src *Source) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-src.Notices:
			if n.State == ConnUp {
				return
			}
		case <-deadline:
			t.Fatal("the source did not connect")
		}
	}
}

func TestAMQPSourceReceivesAndRecords(t *testing.T) {
	url := testenv.AMQPURL(t)
	exchange, publish := publisher(t, url)
	msgs := generate(demoSpec())[:200]

	path := filepath.Join(t.TempDir(), "live.jsonl")
	rec, err := record.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Only the job events: the binding narrows what arrives.
	src := StartAMQP(ctx, AMQPSource{URL: url, Exchange: exchange, Bindings: []string{"job.#"}}, rec, nil)
	waitUp(t, src)
	publish(msgs)
	var want []eventbus.Message
	for _, m := range msgs {
		if strings.HasPrefix(m.RoutingKey, "job.") {
			want = append(want, m)
		}
	}
	for i, w := range want {
		select {
		case got := <-src.Events:
			if got.RoutingKey != w.RoutingKey || string(got.Body) != string(w.Body) || got.Received.IsZero() {
				t.Fatalf("event %d: %s, want %s", i, got.RoutingKey, w.RoutingKey)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d of %d not received", i, len(want))
		}
	}
	cancel()
	if err := src.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := record.LoadFile(path)
	if err != nil || len(got) != len(want) {
		t.Fatalf("recorded %d events (%v), want %d", len(got), err, len(want))
	}
	for i := range got {
		if got[i].RoutingKey != want[i].RoutingKey || string(got[i].Body) != string(want[i].Body) {
			t.Fatalf("recorded event %d: %s, want %s", i, got[i].RoutingKey, want[i].RoutingKey)
		}
	}
}

func TestHeadlessLive(t *testing.T) {
	url := testenv.AMQPURL(t)
	exchange, publish := publisher(t, url)
	csvPath := filepath.Join(t.TempDir(), "jobs.csv")
	cfg, err := ParseArgs([]string{"--amqp-url", url, "--exchange", exchange, "--csv", csvPath}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logw := &waitWriter{want: "connected to", seen: make(chan struct{})}
	go func() { done <- Run(ctx, cfg, Env{Log: slog.New(slog.NewTextHandler(logw, nil))}) }()
	select {
	case <-logw.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("headless collection did not connect")
	}
	msgs := generate(demoSpec())
	publish(msgs)
	// The last event is in once the state model has it: wait a little for
	// the queue to drain (the broker confirmed every publish).
	time.Sleep(2 * time.Second)
	cancel() // SIGINT
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := readJobsCSV(t, csvPath); n != demoJobs {
		t.Errorf("%d jobs in the CSV, want %d", n, demoJobs)
	}
}

// TestHeadlessResumeLive: --resume loads a recording, goes on recording to
// it what the broker sends, and the jobs written are both.
func TestHeadlessResumeLive(t *testing.T) {
	url := testenv.AMQPURL(t)
	exchange, publish := publisher(t, url)
	dir := t.TempDir()
	rec := filepath.Join(dir, "run.jsonl")
	demo, err := os.ReadFile("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, demo, 0o644); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(dir, "jobs.csv")
	cfg, err := ParseArgs([]string{"--amqp-url", url, "--exchange", exchange, "--resume", rec, "--csv", csvPath},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logw := &waitWriter{want: "connected to", seen: make(chan struct{})}
	var stderr syncBuffer
	go func() { done <- Run(ctx, cfg, Env{Log: slog.New(slog.NewTextHandler(logw, nil)), Stderr: &stderr}) }()
	select {
	case <-logw.seen:
	case <-time.After(30 * time.Second):
		t.Fatal("headless collection did not connect")
	}
	now := time.Now()
	publish([]eventbus.Message{newJobEvent("job-after-1", now), newJobEvent("job-after-2", now)})
	time.Sleep(2 * time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := readJobsCSV(t, csvPath); n != demoJobs+2 {
		t.Errorf("%d jobs in the CSV, want %d (the recording's and the new ones)", n, demoJobs+2)
	}
	msgs, err := record.LoadFile(rec)
	if err != nil || len(msgs) != demoEvents+2 {
		t.Errorf("the recording has %d events (%v), want %d", len(msgs), err, demoEvents+2)
	}
	if !strings.Contains(stderr.String(), "recorded 2 more events to "+rec) {
		t.Errorf("stderr: %s", stderr.String())
	}
}

// syncBuffer is a strings.Builder safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package e2e

// The events stream (executor setting events_stream) and hyperflow-top
// --history: jobs run before the monitor starts appear, a monitor whose
// connection is lost (and one started again) sees every job exactly once, a
// missing stream is named, and --since starts later.

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// historyMonitor is a monitor reading a stream through tui.StartAMQP into
// the state model, counting the job.finished events and offsets it saw.
type historyMonitor struct {
	st      *state.Model
	src     *tui.Source
	mu      sync.Mutex
	done    map[string]int // job id -> job.finished events seen
	offsets map[int64]int  // stream offset -> events seen
	downs   int            // connection losses noticed
}

func startHistoryMonitor(t *testing.T, ctx context.Context, url, stream string, from eventbus.StreamFrom) *historyMonitor {
	t.Helper()
	m := &historyMonitor{st: state.New(state.Options{}), done: map[string]int{}, offsets: map[int64]int{}}
	m.src = tui.StartAMQP(ctx, tui.AMQPSource{URL: url, Stream: stream, From: from}, nil, nil)
	go func() {
		for n := range m.src.Notices {
			if n.State == tui.ConnDown {
				m.mu.Lock()
				m.downs++
				m.mu.Unlock()
			}
		}
	}()
	go func() {
		for msg := range m.src.Events {
			m.mu.Lock() // the model is used from one goroutine at a time
			if err := m.st.Apply(msg); err != nil {
				t.Errorf("apply %s: %v", msg.RoutingKey, err)
			}
			if !msg.HasOffset {
				t.Errorf("event %s without a stream offset", msg.RoutingKey)
			}
			m.offsets[msg.Offset]++
			if id, ok := strings.CutPrefix(msg.RoutingKey, "job."); ok && strings.HasSuffix(id, ".finished") && !strings.Contains(id, ".stage-") && !strings.Contains(id, ".execution.") {
				m.done[strings.TrimSuffix(id, ".finished")]++
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// seen is how many job.finished events of id the monitor saw.
func (m *historyMonitor) seen(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done[id]
}

// waitAll waits until every job of ids was seen finishing.
func (m *historyMonitor) waitAll(t *testing.T, what string, ids []string) {
	t.Helper()
	harness.WaitFor(t, 60*time.Second, what, func() bool {
		for _, id := range ids {
			if m.seen(id) == 0 {
				return false
			}
		}
		return true
	})
}

// exactlyOnce checks that every job of ids was seen finishing once, that
// no offset came twice, and that the state model has each job finished.
func (m *historyMonitor) exactlyOnce(t *testing.T, who string, ids []string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if n := m.done[id]; n != 1 {
			t.Errorf("%s: job %s finished %d times, want once", who, id, n)
		}
		if j, ok := m.st.Job(id); !ok || j.State != state.StateDone {
			t.Errorf("%s: job %s in the state model: %v %+v, want done", who, id, ok, j.JobView)
		}
	}
	for off, n := range m.offsets {
		if n != 1 {
			t.Errorf("%s: offset %d seen %d times", who, off, n)
		}
	}
}

func deleteStream(t *testing.T, url, stream string) {
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Logf("delete stream %s: %v", stream, err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err == nil {
			_, err = ch.QueueDelete(stream, false, false, false)
		}
		if err != nil {
			t.Logf("delete stream %s: %v", stream, err)
		}
	})
}

func TestHistoryStream(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.hist-" + uuid.NewString()[:8]
	exchange := queue + ".events"
	stream := queue + ".history"
	deleteStream(t, url, stream)
	harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2, Tweak: func(cfg *config.Settings) {
		cfg.EventsExchange = exchange
		cfg.EventsStream = stream
	}})
	eng := harness.NewEngine(t, url, queue, nil)
	workdir := t.TempDir()
	runJobs := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = eng.Send(map[string]any{"executable": "/bin/echo", "args": []any{"hello", i},
				"options": map[string]any{"storage": "local", "workdir": workdir}})
		}
		for _, id := range ids {
			if r := eng.Await(id, 60*time.Second); len(r) != 1 || r[0].ExitStatus != 0 {
				t.Fatalf("job %s: replies %+v", id, r)
			}
		}
		return ids
	}

	// Jobs run before any monitor starts.
	before := runJobs(5)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mon := startHistoryMonitor(t, ctx, url, stream, eventbus.StreamFrom{})
	mon.waitAll(t, "the monitor to read the jobs run before it started", before)

	// Its connection is lost; jobs run meanwhile and after.
	harness.CloseConnections(t, "", "hyperflow-top")
	during := runJobs(5)
	harness.WaitFor(t, 60*time.Second, "the monitor to notice the loss", func() bool {
		mon.mu.Lock()
		defer mon.mu.Unlock()
		return mon.downs > 0
	})
	after := runJobs(3)
	all := append(append(append([]string{}, before...), during...), after...)
	mon.waitAll(t, "the monitor to see every job after reconnecting", all)
	mon.exactlyOnce(t, "monitor reconnected", all)
	mon.mu.Lock()
	if tot := mon.st.Totals(time.Now()); tot.Done != int64(len(all)) {
		t.Errorf("monitor totals: done %d, want %d", tot.Done, len(all))
	}
	mon.mu.Unlock()

	// A second monitor started now sees them all, once.
	mon2 := startHistoryMonitor(t, ctx, url, stream, eventbus.StreamFrom{})
	mon2.waitAll(t, "a monitor started again to read every job", all)
	mon2.exactlyOnce(t, "monitor started again", all)

	// --since: a monitor starting at a time after those jobs sees only the
	// jobs run since.
	time.Sleep(1100 * time.Millisecond) // the next events are in a later second
	mark := time.Now()
	late := runJobs(2)
	mon3 := startHistoryMonitor(t, ctx, url, stream, eventbus.StreamFrom{Since: mark})
	mon3.waitAll(t, "a monitor from a time to read the jobs since", late)
	mon3.exactlyOnce(t, "monitor since", late)
	for _, id := range all {
		if n := mon3.seen(id); n != 0 {
			t.Errorf("monitor since %s: saw job %s run before it %d times", mark.Format(time.RFC3339Nano), id, n)
		}
	}
	cancel()

	// Headless, from the command line: hyperflow-top --history --csv.
	out := filepath.Join(t.TempDir(), "jobs.csv")
	cfg, err := tui.ParseArgs([]string{"--amqp-url", url, "--history", "--history-stream", stream, "--csv", out, "--duration", "10s"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if err := tui.Run(t.Context(), cfg, tui.Env{}); err != nil {
		t.Fatalf("hyperflow-top --history --csv: %v", err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", out, err)
	}
	rowsOf := map[string]int{}
	for _, r := range rows[1:] {
		rowsOf[r[0]]++
	}
	for _, id := range append(all, late...) {
		if rowsOf[id] != 1 {
			t.Errorf("--csv: job %s in %d rows, want 1", id, rowsOf[id])
		}
	}
	if len(rows)-1 != len(all)+len(late) {
		t.Errorf("--csv: %d rows, want %d", len(rows)-1, len(all)+len(late))
	}
}

// TestHistoryMissingStream: a stream nobody declared is named, with the
// executor setting that creates it.
func TestHistoryMissingStream(t *testing.T) {
	url := testenv.AMQPURL(t)
	stream := "hyperflow.events.history-missing-" + uuid.NewString()[:8]
	cfg, err := tui.ParseArgs([]string{"--amqp-url", url, "--history", "--history-stream", stream, "--csv", filepath.Join(t.TempDir(), "j.csv")}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	err = tui.Run(t.Context(), cfg, tui.Env{})
	if err == nil {
		t.Fatal("hyperflow-top --history on a missing stream: no error")
	}
	for _, want := range []string{stream, "events_stream", "EVENTS_STREAM"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

package tui

// The stall, end to end: the real executor (in-process) on the real broker
// (testenv.AMQPURL: skipped without one, failed under make test) stages a
// job's input from the PL-Grid Data reference server, which stops sending
// half-way through the file; the monitor, fed from the events exchange,
// marks the job stalled and shows it; then the server sends the rest and
// the job finishes.

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/plgdatatest"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

func TestStalledTransferLive(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.stall-" + uuid.NewString()[:8]
	exchange := queue + ".events"

	// The storage server: the input is 4 MiB; the first download sends
	// 1 MiB, then nothing until release is closed.
	cert := plgdatatest.FakeProxy(t)
	srv := plgdatatest.New(t, cert)
	const prefix = "/people/plgtest/stall"
	data := []byte(strings.Repeat("0123456789abcdef", 4<<20/16))
	srv.Seed(t, prefix+"/in.dat", data)
	release := make(chan struct{})
	released := false
	unstall := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(unstall)
	srv.SetHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/in.dat") || n != 1 {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:1<<20])
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return true
		}
		w.Write(data[1<<20:])
		return true
	})

	// The monitor subscribes first, so that it sees the executor start.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := StartAMQP(ctx, AMQPSource{URL: url, Exchange: exchange, Bindings: []string{"#"}}, nil, nil)
	waitUp(t, src)
	st := state.New(state.Options{StallAfter: time.Second})
	m := New(Options{State: st, Now: time.Now, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 48})

	// The executor: plgdata storage on the reference server, progress
	// every 200 ms.
	cfg := config.Default()
	cfg.AMQPURL = config.Secret(url)
	cfg.Queue = queue
	cfg.EventsExchange = exchange
	cfg.Threads = 1
	cfg.Storage = "plgdata"
	cfg.PLGData = config.PLGData{Endpoint: srv.URL, Proxy: plgdatatest.WriteProxy(t, cert)}
	cfg.TmpDir = t.TempDir()
	cfg.HeartbeatInterval = time.Second
	cfg.ProgressInterval = 200 * time.Millisecond
	cfg.ConsumerTimeout = time.Hour
	runExecutor(t, cfg)
	t.Cleanup(func() { deleteQueue(t, url, queue) })

	// The engine sends the job.
	jobID := uuid.NewString()
	replies := sendJob(t, url, queue, jobID, map[string]any{
		"executable": "/bin/sh",
		"args":       []string{"-c", "wc -c < in.dat > out.txt"},
		"inputs":     []map[string]any{{"name": "in.dat"}},
		"outputs":    []map[string]any{{"name": "out.txt"}},
		"options":    map[string]any{"storage": "plgdata", "prefix": prefix},
	})

	// feed applies what came from the exchange and ticks the monitor, as
	// its program would, until cond holds.
	feed := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.After(limit)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case msg := <-src.Events:
				batch := []eventbus.Message{msg}
				for len(src.Events) > 0 {
					batch = append(batch, <-src.Events)
				}
				m.Update(eventsMsg{batch: batch})
			case <-tick.C:
				m.Update(tickMsg(time.Now()))
			case <-deadline:
				j, _ := st.Job(jobID)
				t.Fatalf("%s: not after %s; job %+v\n%s", what, limit, j.JobView, screen(m))
			}
		}
	}
	job := func() state.JobDetail {
		j, _ := st.Job(jobID)
		return j
	}
	feed("the job stalls in stage-in", 30*time.Second, func() bool { return job().Stalled })
	j := job()
	if j.Phase != state.PhaseStageIn || !j.Progress.HasBytes || j.Progress.Bytes != 1<<20 {
		t.Errorf("stalled job: phase %q, progress %+v; want stage-in with 1 MiB moved", j.Phase, j.Progress)
	}
	if tot := st.Totals(time.Now()); tot.Stalled != 1 {
		t.Errorf("totals: %d stalled, want 1", tot.Stalled)
	}
	// The views show it: the header, the lane, the jobs table, the detail.
	press(m, "2")
	if l := lineWith(screen(m), jobID[:8]); !strings.Contains(l, "STALLED in 1.0MiB") {
		t.Errorf("the lane does not show the stall: %q\n%s", l, screen(m))
	}
	if !strings.Contains(screen(m), "stalled 1") {
		t.Errorf("the header does not count the stall:\n%s", screen(m))
	}
	press(m, "3")
	if l := lineWith(screen(m), jobID[:8]); !strings.Contains(l, "STALLED") {
		t.Errorf("the jobs table does not mark the stall: %q\n%s", l, screen(m))
	}
	press(m, "enter")
	if !strings.Contains(screen(m), "STALLED  no bytes moved for") {
		t.Errorf("the detail does not show the stall:\n%s", screen(m))
	}

	// The server sends the rest: the job goes on and finishes.
	unstall()
	feed("the job finishes", 60*time.Second, func() bool { return job().State.Finished() })
	j = job()
	if j.State != state.StateDone || j.Stalled || !j.StageIn.HasBytes || j.StageIn.Bytes != int64(len(data)) {
		t.Errorf("after the stall: state %s, stalled %v, stage-in %+v; want done with %d bytes", j.State, j.Stalled, j.StageIn, len(data))
	}
	if tot := st.Totals(time.Now()); tot.Stalled != 0 || tot.Done != 1 {
		t.Errorf("totals after: %d stalled, %d done", tot.Stalled, tot.Done)
	}
	select {
	case r := <-replies:
		if r.ExitStatus != 0 {
			t.Errorf("reply: exit %d, exceptions %v", r.ExitStatus, r.Exceptions)
		}
	case <-time.After(30 * time.Second):
		t.Error("no reply")
	}
	press(m, "esc", "3")
	if l := lineWith(screen(m), jobID[:8]); !strings.Contains(l, "done") || strings.Contains(l, "STALLED") {
		t.Errorf("the jobs table after the stall: %q", l)
	}
}

// sendJob publishes a job as the engine does and returns its reply when it
// comes.
func sendJob(t *testing.T, url, queue, id string, job map[string]any) <-chan eventbus.Reply {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan eventbus.Reply, 1)
	go func() {
		for d := range deliveries {
			var r eventbus.Reply
			if d.CorrelationId == id && json.Unmarshal(d.Body, &r) == nil {
				out <- r
				return
			}
		}
	}()
	body, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	err = ch.PublishWithContext(t.Context(), "", queue, false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: id, ReplyTo: q.Name, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deleteQueue removes a test's job queue and events exchange.
func deleteQueue(t *testing.T, url, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		ch.QueueDelete(queue, false, false, false)
		ch.ExchangeDelete(queue+".events", false, false)
		ch.Close()
	}
}

// runExecutor runs an executor in-process with cfg until the test ends
// (stop, then Kill if it does not stop within 30 s) and returns it once its
// consumer runs.
func runExecutor(t *testing.T, cfg config.Settings) *executor.Executor {
	t.Helper()
	reg, err := storage.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	ex, err := executor.New(cfg, executor.Params{Storages: reg, Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ex.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			ex.Kill()
			<-done
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("executor stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("executor not ready after 30s")
	}
	return ex
}

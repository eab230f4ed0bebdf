package e2e

// The executor's wire contract under load, end to end: the real executor
// (in-process, internal/testing/harness) and the metric collector
// (internal/app/collector) on the real broker; every reply and every event
// is checked field by field, and the collector's line for every job.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/app/collector"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

type sentJob struct {
	body      []byte
	status    int    // expected exit status
	except    string // expected in exceptions
	staged    bool
	stdout    string
	outFile   string
	outBytes  int64
	inBytes   int64
	rejection bool
}

// TestLive500Jobs sends 500 jobs (local and nfs, good and bad, interleaved)
// to a real broker with THREADS=4 and checks every reply and every event
// against the wire contract field by field.
func TestLive500Jobs(t *testing.T) {
	const threads = 4
	url := testenv.AMQPURL(t)
	suffix := uuid.NewString()[:8]
	queue, exchange := "hyperflow.jobs.test-"+suffix, "hyperflow.events.test-"+suffix
	// The test's own view of the events, subscribed before the executor
	// starts so that executor.ready is in it.
	client, err := eventbus.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events, err := client.Subscribe(ctx, exchange, "#")
	if err != nil {
		t.Fatal(err)
	}
	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: threads, Version: "test",
		Tweak: func(c *config.Settings) {
			c.EventsExchange = exchange
			c.HeartbeatInterval = 200 * time.Millisecond
		}})
	eng := harness.NewEngine(t, url, queue, nil)
	shared := t.TempDir()
	os.WriteFile(filepath.Join(shared, "in.dat"), []byte("0123456789"), 0o644)
	local := t.TempDir()
	badFiles, _ := filepath.Glob(badFixtures)
	if len(badFiles) == 0 {
		t.Fatalf("no bad fixtures in %s", badFixtures)
	}

	lines := startCollector(t, client, url, exchange)

	jobs := map[string]*sentJob{}
	for i := range 500 {
		id := fmt.Sprintf("job-%03d-%s", i, uuid.NewString()[:6])
		var sj *sentJob
		switch {
		case i%25 == 7:
			body, want := loadBadFixture(t, badFiles[(i/25)%len(badFiles)], local, shared)
			sj = &sentJob{body: body, status: -2, except: want}
		case i%5 == 0:
			out := fmt.Sprintf("out-%d.dat", i)
			sj = &sentJob{staged: true, outFile: out, outBytes: 10 + int64(len(fmt.Sprint(i))), inBytes: 10,
				body: mustJSON(t, map[string]any{
					"executable": "/bin/sh", "args": []any{"-c", `cat in.dat > "$1"; printf %s "$2" >> "$1"`, "sh", out, i},
					"inputs":  []any{map[string]any{"name": "in.dat"}},
					"outputs": []any{map[string]any{"name": out}},
					"options": map[string]any{"storage": "nfs", "workdir": shared}})}
		case i%11 == 3:
			sj = &sentJob{status: 5, except: "status 5", body: mustJSON(t, map[string]any{
				"executable": "/bin/sh", "args": []any{"-c", "exit 5"},
				"options": map[string]any{"storage": "local", "workdir": local}})}
		default:
			sj = &sentJob{stdout: fmt.Sprintf("%d 0.5\n", i), body: mustJSON(t, map[string]any{
				"executable": "/bin/echo", "args": []any{i, 0.5},
				"options": map[string]any{"storage": "local", "workdir": local}})}
		}
		jobs[id] = sj
		eng.SendAs(id, sj.body)
	}

	got := map[string]eventbus.Reply{}
	deadline := time.Now().Add(3 * time.Minute)
	for eng.Answered() < len(jobs) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d replies after 3 minutes", eng.Answered(), len(jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for id := range jobs {
		ds := eng.Deliveries(id)
		if len(ds) > 1 {
			t.Errorf("duplicate reply for %s", id)
		}
		for _, d := range ds {
			if d.ContentType != "application/json" {
				t.Errorf("reply content type %q", d.ContentType)
			}
			var raw map[string]any
			if err := json.Unmarshal(d.Body, &raw); err != nil {
				t.Fatalf("reply not JSON: %s", d.Body)
			}
			if _, isNum := raw["exit_status"].(float64); !isNum {
				t.Errorf("exit_status not a number: %s", d.Body)
			}
			if _, ok := raw["exceptions"].([]any); !ok {
				t.Errorf("exceptions missing or null: %s", d.Body)
			}
			var r eventbus.Reply
			json.Unmarshal(d.Body, &r)
			got[id] = r
		}
	}

	// Events: collect until every job has its job.finished.
	byJob := map[string][]eventbus.Event{}
	var execEvents []eventbus.Event
	finished := 0
	for finished < len(jobs) {
		select {
		case m := <-events.C:
			var ev eventbus.Event
			if err := json.Unmarshal(m.Body, &ev); err != nil {
				t.Fatalf("event not JSON: %s", m.Body)
			}
			if ev.Executor == "probe" { // the collector's readiness probe
				continue
			}
			if ev.Executor != run.Ex.ID() || ev.Timestamp == 0 || ev.Type == "" {
				t.Errorf("event lacks executor/timestamp/type: %s", m.Body)
			}
			if strings.HasPrefix(ev.Type, "job.") {
				if m.RoutingKey != eventbus.JobRoutingKey(ev.ID, ev.Type) {
					t.Errorf("routing key %q for %s", m.RoutingKey, m.Body)
				}
				byJob[ev.ID] = append(byJob[ev.ID], ev)
				if ev.Type == eventbus.TypeJobFinished {
					finished++
				}
			} else {
				if m.RoutingKey != ev.Type {
					t.Errorf("routing key %q for %s", m.RoutingKey, m.Body)
				}
				execEvents = append(execEvents, ev)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d job.finished events", finished)
		}
	}

	threadsSeen := map[int64]bool{}
	for id, sj := range jobs {
		r := got[id]
		if r.ExitStatus != sj.status {
			t.Errorf("%s: exit_status %d, want %d (%v)", id, r.ExitStatus, sj.status, r.Exceptions)
			continue
		}
		if sj.status == 0 && len(r.Exceptions) != 0 || sj.status != 0 && !strings.Contains(strings.Join(r.Exceptions, " "), sj.except) {
			t.Errorf("%s: exceptions %q (want %q)", id, r.Exceptions, sj.except)
		}
		if sj.stdout != "" && r.Stdout != sj.stdout {
			t.Errorf("%s: stdout %q, want %q", id, r.Stdout, sj.stdout)
		}
		m := r.Metrics
		if m == nil || m.Executor != run.Ex.ID() || m.Thread < 1 || m.Thread > threads || m.Hostname == "" ||
			m.Timestamps.JobStarted == 0 || m.Timestamps.JobFinished < m.Timestamps.JobStarted {
			t.Errorf("%s: metrics %+v", id, m)
			continue
		}
		threadsSeen[m.Thread] = true
		if sj.staged {
			if m.InputSize != sj.inBytes || m.OutputSize != sj.outBytes {
				t.Errorf("%s: sizes %d/%d, want %d/%d", id, m.InputSize, m.OutputSize, sj.inBytes, sj.outBytes)
			}
			if fi, err := os.Stat(filepath.Join(shared, sj.outFile)); err != nil || fi.Size() != sj.outBytes {
				t.Errorf("%s: output %s not staged out right: %v", id, sj.outFile, err)
			}
		}

		evs := byJob[id]
		var types []string
		for _, ev := range evs {
			types = append(types, strings.TrimPrefix(ev.Type, "job."))
			if ev.Job != id || ev.Thread != m.Thread {
				t.Errorf("%s: event %s has job %q thread %d (metrics thread %d)", id, ev.Type, ev.Job, ev.Thread, m.Thread)
			}
		}
		want := "started execution.started execution.finished finished"
		switch {
		case sj.staged:
			want = "started stage-in.started stage-in.finished execution.started execution.finished stage-out.started stage-out.finished finished"
		case sj.status == -2:
			want = "started finished"
		}
		if got := strings.Join(types, " "); got != want {
			t.Errorf("%s: events %q, want %q", id, got, want)
			continue
		}
		fin := evs[len(evs)-1]
		if *fin.ExitStatus != sj.status || fin.Metrics == nil || fin.Metrics.Thread != m.Thread ||
			(sj.status != 0) != (len(fin.Exceptions) > 0) || evs[0].Redelivered == nil || *evs[0].Redelivered {
			t.Errorf("%s: job.started/finished wrong: %+v / %+v", id, evs[0], fin)
		}
		if sj.staged && (*evs[2].Bytes != sj.inBytes || *evs[6].Bytes != sj.outBytes || evs[2].Time == nil) {
			t.Errorf("%s: stage events bytes %d/%d", id, *evs[2].Bytes, *evs[6].Bytes)
		}
	}
	checkCollectorLines(t, lines, run.Ex.ID(), got)
	if len(threadsSeen) != threads {
		t.Errorf("jobs ran on threads %v, want all of 1..%d", threadsSeen, threads)
	}

	// Executor events: ready first, heartbeats; stop and look for stopped.
	if len(execEvents) == 0 || execEvents[0].Type != eventbus.TypeExecutorReady {
		t.Fatalf("first executor event is not executor.ready: %+v", execEvents)
	}
	rd := execEvents[0]
	if rd.Hostname == "" || rd.Threads != threads || rd.Storage != "local" || rd.Version != "test" || rd.Queue != queue {
		t.Errorf("executor.ready = %+v", rd)
	}
	run.Stop()
	if err := <-run.Done; err != nil {
		t.Fatalf("Run returned %v after stop", err)
	}
	sawHeartbeat, sawStopped := false, false
	for _, ev := range execEvents {
		sawHeartbeat = sawHeartbeat || ev.Type == eventbus.TypeExecutorHeartbeat && ev.Threads == threads && ev.Busy != nil
	}
	timeout := time.After(10 * time.Second)
	for !sawStopped {
		select {
		case m := <-events.C:
			var ev eventbus.Event
			json.Unmarshal(m.Body, &ev)
			sawHeartbeat = sawHeartbeat || ev.Type == eventbus.TypeExecutorHeartbeat
			if ev.Type == eventbus.TypeExecutorStopped {
				sawStopped = ev.Reason != ""
			}
		case <-timeout:
			t.Fatal("no executor.stopped event")
		}
	}
	if !sawHeartbeat {
		t.Error("no heartbeat seen")
	}
	q, err := eng.Channel().QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil || q.Messages != 0 {
		t.Errorf("job queue after the run: %+v %v (want empty: every job settled)", q, err)
	}
}

// startCollector runs the metric collector on the test's exchange and waits
// until it receives finished events (a probe event proves the binding).
func startCollector(t *testing.T, client *eventbus.Client, url, exchange string) *harness.SyncBuffer {
	t.Helper()
	out := &harness.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := &collector.Collector{Opts: collector.Options{AMQPURL: url, Exchange: exchange}, Out: out}
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	probe := []byte(`{"type":"job.finished","id":"probe","executor":"probe","thread":1,"timestamp":1}`)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "\tprobe\t") {
		if time.Now().After(deadline) {
			t.Fatal("metric collector never printed the probe event")
		}
		client.Publish(context.Background(), exchange, "job.probe.finished", amqp.Publishing{Body: probe})
		time.Sleep(100 * time.Millisecond)
	}
	return out
}

// checkCollectorLines checks the collector printed one correct line per job.
func checkCollectorLines(t *testing.T, out *harness.SyncBuffer, executorID string, replies map[string]eventbus.Reply) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	byJob := map[string][]string{}
	for {
		byJob = map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			cols := strings.Split(line, "\t")
			if len(cols) != 8 {
				t.Fatalf("collector line with %d columns: %q", len(cols), line)
			}
			if cols[3] != "probe" {
				byJob[cols[3]] = append(byJob[cols[3]], line)
			}
		}
		if len(byJob) >= len(replies) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for id, r := range replies {
		lines := byJob[id]
		if len(lines) != 1 {
			t.Errorf("collector printed %d lines for %s", len(lines), id)
			continue
		}
		cols := strings.Split(lines[0], "\t")
		m := r.Metrics
		want := []string{executorID, fmt.Sprint(m.Thread), id, "", "", fmt.Sprint(m.InputSize), fmt.Sprint(m.OutputSize)}
		if cols[1] != want[0] || cols[2] != want[1] || cols[6] != want[5] || cols[7] != want[6] {
			t.Errorf("collector line %q, want executor/thread/sizes %v", lines[0], want)
		}
		if _, err := time.Parse(time.RFC3339, cols[0]); err != nil {
			t.Errorf("collector time column %q: %v", cols[0], err)
		}
	}
}

// badFixtures are the executor's bad job messages (executor/job's wire
// fixtures).
const badFixtures = "../../executor/job/testdata/wire/bad/*"

// loadBadFixture returns the message body of a bad fixture (placeholders
// replaced) and the text its error must contain. (The executor's unit tests
// have the same reader: TestBadFixtures.)
func loadBadFixture(t *testing.T, path, workdir, shared string) ([]byte, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".txt") {
		return data, "JSON"
	}
	var fx struct {
		Body        json.RawMessage `json:"body"`
		ExpectError string          `json:"expect_error"`
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(`"WORKDIR"`, `"`+workdir+`"`, `"SHAREDDIR"`, `"`+shared+`"`).Replace(string(fx.Body))
	return []byte(body), fx.ExpectError
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

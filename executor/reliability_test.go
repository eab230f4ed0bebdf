package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// liveOpts tweak the executor of a live test.
type liveOpts struct {
	url     string
	queue   string
	threads int
	tweak   func(*config.Settings)
	log     *syncBuffer
}

// startExecutor runs an executor on the broker at o.url until the test ends
// or stop is called; done yields Run's result once.
func startExecutor(t *testing.T, o liveOpts) (ex *Executor, stop context.CancelFunc, done chan error) {
	t.Helper()
	cfg := config.Default()
	cfg.AMQPURL = config.Secret(o.url)
	cfg.Queue = o.queue
	cfg.EventsExchange = o.queue + ".events"
	cfg.Threads = o.threads
	cfg.Storage = "local"
	cfg.TmpDir = t.TempDir()
	cfg.HeartbeatInterval = time.Second
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	reg, err := storage.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if o.log != nil {
		log = slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ready := make(chan struct{})
	ex, err = New(cfg, Params{Storages: reg, Logger: log, Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- ex.Run(ctx) }()
	t.Cleanup(func() { stop(); ex.Kill() })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("executor stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("executor not ready after 30s")
	}
	return ex, stop, done
}

// engine plays the HyperFlow engine: it sends jobs and collects replies.
type engine struct {
	t       *testing.T
	c       *amqp.Connection
	ch      *amqp.Channel
	queue   string
	replyTo string
	mu      sync.Mutex
	replies map[string][]eventbus.Reply
}

func newEngine(t *testing.T, url, queue string, queueArgs amqp.Table) *engine {
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
	if _, err := ch.QueueDeclare(queue, true, false, false, false, queueArgs); err != nil {
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
	e := &engine{t: t, c: conn, ch: ch, queue: queue, replyTo: q.Name, replies: map[string][]eventbus.Reply{}}
	go func() {
		for d := range deliveries {
			var r eventbus.Reply
			if err := json.Unmarshal(d.Body, &r); err != nil {
				t.Errorf("reply is not JSON: %s", d.Body)
			}
			e.mu.Lock()
			e.replies[d.CorrelationId] = append(e.replies[d.CorrelationId], r)
			e.mu.Unlock()
		}
	}()
	return e
}

func (e *engine) conn() *amqp.Connection { return e.c }

func (e *engine) send(job map[string]any) string {
	e.t.Helper()
	id := uuid.NewString()
	err := e.ch.PublishWithContext(context.Background(), "", e.queue, false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: id, ReplyTo: e.replyTo, Body: mustJSON(e.t, job)})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// await waits for a reply to id and returns every reply received for it.
func (e *engine) await(id string, timeout time.Duration) []eventbus.Reply {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		e.mu.Lock()
		r := e.replies[id]
		e.mu.Unlock()
		if len(r) > 0 {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no reply for %s after %v", id, timeout)
	return nil
}

func (e *engine) count(id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.replies[id])
}

func (e *engine) queued() int {
	e.t.Helper()
	q, err := e.ch.QueueDeclarePassive(e.queue, true, false, false, false, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return q.Messages
}

// countingJob appends a line to runs.txt in dir each time it starts, then
// sleeps.
func countingJob(dir string, sleep float64) map[string]any {
	return map[string]any{
		"executable": "/bin/sh",
		"args":       []any{"-c", fmt.Sprintf("echo run >> runs.txt; sleep %g; echo done", sleep)},
		"options":    map[string]any{"storage": "local", "workdir": dir},
	}
}

func runsIn(t *testing.T, dir string) int {
	data, _ := os.ReadFile(filepath.Join(dir, "runs.txt"))
	return strings.Count(string(data), "run\n")
}

// closeExecutorConnections closes the broker connections of executor id with
// rabbitmqctl, as a network failure or a broker restart would.
func closeExecutorConnections(t *testing.T, id string) {
	t.Helper()
	ctl := testenv.Require(t, "HYPERFLOW_TEST_RABBITMQCTL")
	out, err := exec.Command(ctl, "list_connections", "-q", "--no-table-headers", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Fatalf("list connections: %v: %s", err, out)
	}
	closed := 0
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.Contains(line, `"hyperflow-executor `+id+`"`) {
			continue
		}
		pid, _, _ := strings.Cut(line, "\t")
		if out, err := exec.Command(ctl, "close_connection", pid, "test: simulated failure").CombinedOutput(); err != nil {
			t.Fatalf("close connection %s: %v: %s", pid, err, out)
		}
		closed++
	}
	if closed == 0 {
		t.Fatalf("no connection of executor %s found:\n%s", id, out)
	}
}

// TestLiveReconnectKeepsRunningJobs closes the executor's connection while a
// job runs: the executor reconnects, the job is not killed nor run twice,
// its redelivery is answered once, and new jobs keep flowing.
func TestLiveReconnectKeepsRunningJobs(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.reconnect-" + uuid.NewString()[:8]
	var logs syncBuffer
	ex, stop, done := startExecutor(t, liveOpts{url: url, queue: queue, threads: 2, log: &logs})
	eng := newEngine(t, url, queue, nil)
	dir := t.TempDir()

	long := eng.send(countingJob(dir, 3))
	waitFor(t, 5*time.Second, "the long job to start", func() bool { return runsIn(t, dir) == 1 })
	closeExecutorConnections(t, ex.ID())
	waitFor(t, 10*time.Second, "a reconnection", func() bool { return ex.reconnects.Load() >= 1 })

	quick := eng.send(map[string]any{"executable": "/bin/echo", "args": []any{"after"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	if r := eng.await(quick, 20*time.Second); r[0].ExitStatus != 0 || r[0].Stdout != "after\n" {
		t.Errorf("job after reconnect: %+v", r[0])
	}
	r := eng.await(long, 20*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("long job reply: %+v", r[0])
	}
	time.Sleep(1500 * time.Millisecond) // room for a duplicate to show up
	if n := eng.count(long); n != 1 {
		t.Errorf("long job answered %d times, want once", n)
	}
	if n := runsIn(t, dir); n != 1 {
		t.Errorf("long job ran %d times, want once", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := eng.queued(); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
	if !strings.Contains(logs.String(), "reconnecting") {
		t.Errorf("no reconnection logged:\n%s", logs.String())
	}
}

// TestLiveGracefulShutdown: on stop, a short job finishes and is answered;
// a long one is killed when the grace period ends and goes back to the
// queue unanswered; Run returns nil and executor.stopped says why.
func TestLiveGracefulShutdown(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.shutdown-" + uuid.NewString()[:8]
	client, err := eventbus.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sub, err := client.Subscribe(context.Background(), queue+".events", "executor.stopped")
	if err != nil {
		t.Fatal(err)
	}
	_, stop, done := startExecutor(t, liveOpts{url: url, queue: queue, threads: 2,
		tweak: func(c *config.Settings) { c.ShutdownGrace = 1500 * time.Millisecond }})
	eng := newEngine(t, url, queue, nil)
	shortDir, longDir := t.TempDir(), t.TempDir()
	short := eng.send(countingJob(shortDir, 0.5))
	long := eng.send(countingJob(longDir, 60))
	waitFor(t, 5*time.Second, "both jobs to start", func() bool { return runsIn(t, shortDir) == 1 && runsIn(t, longDir) == 1 })

	start := time.Now()
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("executor did not stop")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v with a 1.5s grace period", d)
	}
	if r := eng.await(short, 5*time.Second); r[0].ExitStatus != 0 {
		t.Errorf("short job: %+v", r[0])
	}
	if n := eng.count(long); n != 0 {
		t.Errorf("killed job was answered %d times", n)
	}
	waitFor(t, 5*time.Second, "the killed job back in the queue", func() bool { return eng.queued() == 1 })
	select {
	case m := <-sub.C:
		var ev eventbus.Event
		json.Unmarshal(m.Body, &ev)
		if !strings.Contains(ev.Reason, "killed") {
			t.Errorf("executor.stopped reason %q", ev.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Error("no executor.stopped event")
	}
}

// TestLiveKillRequeuesAtOnce: the second signal (Kill) does not wait for
// the grace period.
func TestLiveKillRequeuesAtOnce(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.kill-" + uuid.NewString()[:8]
	ex, stop, done := startExecutor(t, liveOpts{url: url, queue: queue, threads: 1,
		tweak: func(c *config.Settings) { c.ShutdownGrace = time.Hour }})
	eng := newEngine(t, url, queue, nil)
	dir := t.TempDir()
	id := eng.send(countingJob(dir, 60))
	waitFor(t, 5*time.Second, "the job to start", func() bool { return runsIn(t, dir) == 1 })
	stop()
	time.Sleep(300 * time.Millisecond)
	ex.Kill()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Kill did not stop the executor")
	}
	if eng.count(id) != 0 {
		t.Error("killed job answered")
	}
	waitFor(t, 5*time.Second, "the job back in the queue", func() bool { return eng.queued() == 1 })
}

// TestLivePoisonDeliveryLimit: on a quorum queue, a job delivered too many
// times (as after executor crashes) is answered -2 and dropped.
func TestLivePoisonDeliveryLimit(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.poison-" + uuid.NewString()[:8]
	quorum := amqp.Table{"x-queue-type": "quorum"}
	eng := newEngine(t, url, queue, quorum)
	dir := t.TempDir()
	id := eng.send(countingJob(dir, 0))
	// Two crashed consumers: the delivery comes back twice.
	for range 2 {
		d, ok, err := eng.ch.Get(queue, false)
		for i := 0; err == nil && !ok && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			d, ok, err = eng.ch.Get(queue, false)
		}
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		d.Nack(false, true)
	}
	startExecutor(t, liveOpts{url: url, queue: queue, threads: 1, tweak: func(c *config.Settings) {
		c.QueueType = "quorum"
		c.MaxDeliveries = 2
	}})
	r := eng.await(id, 20*time.Second)
	if r[0].ExitStatus != -2 || !strings.Contains(strings.Join(r[0].Exceptions, " "), "delivered 2 times") {
		t.Errorf("reply %+v", r[0])
	}
	if runsIn(t, dir) != 0 {
		t.Error("poison job ran")
	}
	waitFor(t, 5*time.Second, "the queue to empty", func() bool { return eng.queued() == 0 })
}

// TestLiveUnreachableBroker: with connect_attempts set, Run gives up with a
// clear error, and the password never shows in it or in the logs.
func TestLiveUnreachableBroker(t *testing.T) {
	testenv.AMQPURL(t)
	var logs bytes.Buffer
	cfg := config.Default()
	cfg.AMQPURL = "amqp://guest:hunter2-secret@127.0.0.1:1/"
	cfg.Storage = "local"
	cfg.TmpDir = t.TempDir()
	cfg.ConnectAttempts = 2
	reg, _ := storage.NewRegistry(cfg, nil)
	ex, err := New(cfg, Params{Storages: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("Run = %v, want an error after 2 attempts", err)
	}
	if strings.Contains(err.Error()+logs.String(), "hunter2") {
		t.Errorf("password leaked:\n%v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retry not logged:\n%s", logs.String())
	}
}

// TestLiveConsumerTimeoutLongJob runs a job longer than the broker's
// consumer_timeout on a private broker configured with a 2 s timeout: the
// broker closes the channel and requeues the delivery, the executor
// reconnects and attaches the redelivery to the running job, which
// completes once; the client gets exactly one reply.
func TestLiveConsumerTimeoutLongJob(t *testing.T) {
	url, ctl := privateBroker(t, "consumer_timeout = 2000")
	// The broker checks timeouts on its channel tick (every minute by
	// default): make it tick every second.
	if out, err := exec.Command(ctl, "eval",
		"application:set_env(rabbit, channel_tick_interval, 1000).").CombinedOutput(); err != nil {
		t.Fatalf("set channel tick: %v: %s", err, out)
	}
	queue := "hyperflow.jobs.long"
	var logs syncBuffer
	ex, _, _ := startExecutor(t, liveOpts{url: url, queue: queue, threads: 2, log: &logs})
	eng := newEngine(t, url, queue, nil)
	work := t.TempDir()
	id := eng.send(countingJob(work, 8))
	r := eng.await(id, 60*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("reply %+v", r[0])
	}
	time.Sleep(3 * time.Second)
	if n := eng.count(id); n != 1 {
		t.Errorf("answered %d times, want once", n)
	}
	if n := runsIn(t, work); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
	if ex.reconnects.Load() == 0 {
		t.Errorf("the broker never timed the delivery out (no reconnect): the test proves nothing\n%s", logs.String())
	}
	waitFor(t, 10*time.Second, "the queue to empty", func() bool { return eng.queued() == 0 })
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// privateBroker starts a broker of the test's own with extra rabbitmq.conf
// lines, for tests that change how the broker behaves. It returns its URL
// and its rabbitmqctl wrapper.
func privateBroker(t *testing.T, extraConf string) (url, ctl string) {
	t.Helper()
	testenv.AMQPURL(t) // run by make test, with the broker scripts installed
	dir := t.TempDir()
	script, _ := filepath.Abs("../scripts/rabbitmq.sh")
	start := exec.Command(script, "start", dir)
	start.Env = append(os.Environ(), "RABBITMQ_EXTRA_CONF="+extraConf)
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("start private broker: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(script, "stop", dir).Run() })
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(line, "export HYPERFLOW_TEST_AMQP_URL="); ok {
			url = v
		}
	}
	return url, filepath.Join(dir, "rabbitmqctl")
}

// TestLiveFlowControlPausesReplies: while the broker blocks publishers (a
// memory alarm), a finished job's reply waits instead of failing, and goes
// out once the broker lets publishers go again.
func TestLiveFlowControlPausesReplies(t *testing.T) {
	url, ctl := privateBroker(t, "")
	queue := "hyperflow.jobs.flow"
	var logs syncBuffer
	// Progress events make the executor publish during the alarm, so the
	// broker blocks its connection before the job ends (RabbitMQ blocks a
	// connection when it next publishes).
	startExecutor(t, liveOpts{url: url, queue: queue, threads: 1, log: &logs,
		tweak: func(c *config.Settings) { c.ProgressInterval = 200 * time.Millisecond }})
	eng := newEngine(t, url, queue, nil)
	dir := t.TempDir()
	// The job runs until the test creates the file "go".
	id := eng.send(map[string]any{"executable": "/bin/sh",
		"args":    []any{"-c", "echo run >> runs.txt; while [ ! -e go ]; do sleep 0.05; done; echo done"},
		"options": map[string]any{"storage": "local", "workdir": dir}})
	waitFor(t, 10*time.Second, "the job to start", func() bool { return runsIn(t, dir) == 1 })
	alarm := func(watermark string) {
		if out, err := exec.Command(ctl, "set_vm_memory_high_watermark", watermark).CombinedOutput(); err != nil {
			t.Fatalf("set watermark %s: %v: %s", watermark, err, out)
		}
	}
	alarm("0")
	unblocked := false
	defer func() {
		if !unblocked {
			alarm("0.4")
		}
	}()
	waitFor(t, 60*time.Second, "the executor to see the block", func() bool {
		return strings.Contains(logs.String(), "broker blocked publishing")
	})
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	time.Sleep(2 * time.Second) // the job ends; its reply must wait
	if n := eng.count(id); n != 0 {
		t.Fatalf("a reply went out while the broker blocked publishers\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="job finished"`) {
		t.Errorf("the job did not finish during the block:\n%s", logs.String())
	}
	alarm("0.4")
	unblocked = true
	r := eng.await(id, 20*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("reply after the block: %+v", r[0])
	}
	if n := runsIn(t, dir); n != 1 {
		t.Errorf("ran %d times", n)
	}
}

// TestLiveQueueDeleted: an operator deletes the job queue under a running
// executor. The broker cancels the consumer; the executor reconnects,
// declares the queue again and goes on serving (it used to hang here).
func TestLiveQueueDeleted(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.deleted-" + uuid.NewString()[:8]
	ex, stop, done := startExecutor(t, liveOpts{url: url, queue: queue, threads: 1})
	eng := newEngine(t, url, queue, nil)
	if _, err := eng.ch.QueueDelete(queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a reconnection", func() bool { return ex.reconnects.Load() >= 1 })
	waitFor(t, 20*time.Second, "the queue declared again", func() bool {
		ch, err := eng.conn().Channel()
		if err != nil {
			return false
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil
	})
	id := eng.send(map[string]any{"executable": "/bin/echo", "args": []any{"again"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	if r := eng.await(id, 20*time.Second); r[0].ExitStatus != 0 || r[0].Stdout != "again\n" {
		t.Errorf("reply after the queue came back: %+v", r[0])
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("executor did not stop")
	}
}

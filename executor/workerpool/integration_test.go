package workerpool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// Integration tests: a Pool in-process against the private RabbitMQ and
// Redis servers of scripts/with-servers.sh:
//
//	scripts/with-servers.sh --rabbitmq --redis -- go test ./executor/workerpool/
//
// Every test has its own queue, workflow id and work directory, so they
// share the servers (the engine's Redis keys all live in DB 0).

const waitFor = 20 * time.Second

// bench is a running pool and what a test needs around it.
type bench struct {
	t       *testing.T
	pool    *Pool
	cfg     config.Settings
	rdb     *redis.Client
	ch      *amqp.Channel
	hf, wf  string // the engine instance's and workflow's ids of this test
	dir     string // the work directory
	events  *eventLog
	cancel  context.CancelFunc
	stopped chan error
	logs    *harness.SyncBuffer
}

// setup starts a pool; change adjusts its settings first.
func setup(t *testing.T, change func(*config.Settings)) *bench {
	t.Helper()
	amqpURL, redisURL := testenv.AMQPURL(t), testenv.RedisURL(t)
	b := &bench{t: t, hf: "hf" + randomHex(4), wf: randomHex(3), dir: t.TempDir(), logs: &harness.SyncBuffer{}}
	cfg := config.Default()
	cfg.WorkerPool = true
	cfg.PoolQueue = "test." + t.Name() + "." + randomHex(4)
	cfg.AMQPURL = config.Secret(amqpURL)
	cfg.RedisURL = config.Secret(redisURL)
	cfg.WorkDir = b.dir
	cfg.Threads = 2
	cfg.BackoffSeed = 0
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.ShutdownGrace = 10 * time.Second
	if change != nil {
		change(&cfg)
	}
	b.cfg = cfg

	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	b.rdb = redis.NewClient(opts)
	t.Cleanup(func() { b.rdb.Close() })
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if b.ch, err = conn.Channel(); err != nil {
		t.Fatal(err)
	}
	b.events = listenEvents(t, conn, cfg.EventsExchange)
	// The engine declares the queue first, as in a deployment.
	if err := DeclareQueue(b.ch, cfg.PoolQueue); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.ch.QueueDelete(cfg.PoolQueue, false, false, false) })

	ready := make(chan struct{})
	log := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b.pool, err = New(cfg, Params{Logger: log, Version: "test", Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.stopped = cancel, make(chan error, 1)
	go func() { b.stopped <- b.pool.Run(ctx) }()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			t.Logf("pool log:\n%s", b.logs.String())
		}
	})
	select {
	case <-ready:
	case err := <-b.stopped:
		t.Fatalf("pool stopped before it was ready: %v", err)
	case <-time.After(waitFor):
		t.Fatal("pool not ready")
	}
	return b
}

// stop stops the pool (first stage) and waits for it.
func (b *bench) stop() error {
	b.cancel()
	select {
	case err, ok := <-b.stopped:
		if ok {
			close(b.stopped)
		}
		return err
	case <-time.After(waitFor):
		b.t.Error("pool did not stop")
		b.pool.Kill()
		return nil
	}
}

// stopAcknowledged stops the pool and checks that the queue is empty: a
// message still unacknowledged would be back in it once the pool's channel
// is closed.
func (b *bench) stopAcknowledged() {
	b.t.Helper()
	if err := b.stop(); err != nil {
		b.t.Errorf("Run: %v", err)
	}
	if d := b.queueDepth(); d != 0 {
		b.t.Errorf("%d messages back in the queue after the stop, want none (all acknowledged or rejected)", d)
	}
}

// task returns a task id of this test.
func (b *bench) task(proc int) TaskID { return TaskID(fmt.Sprintf("%s:%s:%d:1", b.hf, b.wf, proc)) }

// publish sends a message as the engine does: default exchange, no
// properties.
func (b *bench) publish(body string) {
	b.t.Helper()
	if err := b.ch.PublishWithContext(context.Background(), "", b.cfg.PoolQueue, false, false,
		amqp.Publishing{Body: []byte(body)}); err != nil {
		b.t.Fatal(err)
	}
}

// message builds a body of tasks, each a job message object.
func message(tasks map[TaskID]map[string]any, order ...TaskID) string {
	type entry struct {
		ID      TaskID         `json:"id"`
		Message map[string]any `json:"message"`
	}
	var body struct {
		Tasks []entry `json:"tasks"`
	}
	for _, id := range order {
		m := tasks[id]
		m["taskId"] = id
		body.Tasks = append(body.Tasks, entry{id, m})
	}
	out, _ := json.Marshal(body)
	return string(out)
}

// code waits for the task's completion by the set transport and returns
// its code, as the engine reads it (after the pending mark).
func (b *bench) code(id TaskID) string {
	b.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if ok, _ := b.rdb.SIsMember(ctx, PendingKey(id), string(id)).Result(); ok {
			codes, err := b.rdb.SMembers(ctx, string(id)).Result()
			if err != nil || len(codes) != 1 {
				b.t.Fatalf("codes of %s: %q, %v; want one", id, codes, err)
			}
			return codes[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatalf("no completion of %s within %v", id, waitFor)
	return ""
}

// queueDepth returns the messages ready and unacknowledged in the queue.
func (b *bench) queueDepth() int {
	b.t.Helper()
	q, err := b.ch.QueueDeclarePassive(b.cfg.PoolQueue, false, false, false, false, amqp.Table{"x-expires": int32(queueExpires)})
	if err != nil {
		b.t.Fatal(err)
	}
	return q.Messages
}

// eventually waits until cond holds.
func (b *bench) eventually(what string, cond func() bool) {
	b.t.Helper()
	harness.WaitFor(b.t, waitFor, what, cond)
}

func TestPoolRunsTasksOfAMessageInTurn(t *testing.T) {
	b := setup(t, nil)
	ok, bad := b.task(1), b.task(2)
	os.WriteFile(filepath.Join(b.dir, "in.txt"), []byte("hello worker pool\n"), 0o644)
	b.publish(message(map[TaskID]map[string]any{
		ok: {"name": "upper", "executable": "sh", "args": []any{"-c", "tr a-z A-Z < in.txt"}, "stdout": "out.txt",
			"inputs": []any{map[string]any{"name": "in.txt"}}, "outputs": []any{map[string]any{"name": "out.txt"}}},
		bad: {"name": "fail", "executable": "sh", "args": []any{"-c", "echo to-stderr >&2; exit 3"}, "stderrAppend": "err.txt"},
	}, ok, bad))
	if got := b.code(ok); got != "0" {
		t.Errorf("code of %s = %s, want 0", ok, got)
	}
	if got := b.code(bad); got != "3" {
		t.Errorf("code of %s = %s, want 3", bad, got)
	}
	if data, err := os.ReadFile(filepath.Join(b.dir, "err.txt")); err != nil || string(data) != "to-stderr\n" {
		t.Errorf("err.txt = %q, %v", data, err)
	}
	if data, err := os.ReadFile(filepath.Join(b.dir, "out.txt")); err != nil || string(data) != "HELLO WORKER POOL\n" {
		t.Errorf("out.txt = %q, %v", data, err)
	}
	// The listener's per-task log files.
	errLog := StderrLogName(filepath.Join(b.dir, "logs-hf"), bad, b.pool.handler)
	if data, err := os.ReadFile(errLog); err != nil || string(data) != "to-stderr\n" {
		t.Errorf("%s = %q, %v", errLog, data, err)
	}
	// The listener's trace file.
	trace, _ := os.ReadFile(logFileBase(filepath.Join(b.dir, "logs-hf"), bad, b.pool.handler) + ".log")
	for _, want := range []string{"hftrace - handler started, (ID: " + b.pool.handler + ")", `hftrace - jobMessage:  {"args":["-c",`,
		"hftrace - job started: fail", "hftrace - job failed (try 1): 'sh -c echo to-stderr >&2; exit 3'",
		"hftrace - job exit code: 3", "hftrace - handler finished, code= 3"} {
		if !strings.Contains(string(trace), want) {
			t.Errorf("trace file lacks %q:\n%s", want, trace)
		}
	}
	// Events: the task name and queue in job.started; exit statuses.
	started := b.events.wait(t, ok, eventbus.TypeJobStarted)
	if started.Name != "upper" || started.Queue != b.cfg.PoolQueue || started.Executable != "sh" || started.Executor != b.pool.ID() {
		t.Errorf("job.started = %+v", started)
	}
	fin := b.events.wait(t, bad, eventbus.TypeJobFinished)
	if fin.ExitStatus == nil || *fin.ExitStatus != 3 || fin.StderrTail != "to-stderr\n" || len(fin.Exceptions) != 1 {
		t.Errorf("job.finished of the failing task = %+v", fin)
	}
	if s := b.pool.Stats(); s.TasksDone != 1 || s.TasksFailed != 1 {
		t.Errorf("stats %+v", s)
	}
	b.stopAcknowledged()
}

// Output through the message's stdout file and the logs-hf file; a shell
// only when the message says so; signals give 128+N.
func TestPoolShellOutputAndSignals(t *testing.T) {
	b := setup(t, nil)
	shell, plain, killed := b.task(1), b.task(2), b.task(3)
	b.publish(message(map[TaskID]map[string]any{
		shell:  {"executable": "echo", "args": []any{"$((6*7))", "|", "tr", "4", "x"}, "shell": true, "stdout": "shell.txt"},
		plain:  {"executable": "echo", "args": []any{"$((6*7))", 1000, 0.5}, "stdout": "plain.txt"},
		killed: {"executable": "sh", "args": []any{"-c", "kill -9 $$"}},
	}, shell, plain, killed))
	for id, want := range map[TaskID]string{shell: "0", plain: "0", killed: "137"} {
		if got := b.code(id); got != want {
			t.Errorf("code of %s = %s, want %s", id, got, want)
		}
	}
	for name, want := range map[string]string{"shell.txt": "x2\n", "plain.txt": "$((6*7)) 1000 0.5\n"} {
		if data, _ := os.ReadFile(filepath.Join(b.dir, name)); string(data) != want {
			t.Errorf("%s = %q, want %q", name, data, want)
		}
	}
	outLog := StdoutLogName(filepath.Join(b.dir, "logs-hf"), plain, b.pool.handler)
	if data, _ := os.ReadFile(outLog); string(data) != "$((6*7)) 1000 0.5\n" {
		t.Errorf("%s = %q", outLog, data)
	}
}

func TestPoolStreamTransport(t *testing.T) {
	b := setup(t, nil)
	id := b.task(1)
	b.publish(message(map[TaskID]map[string]any{
		id: {"executable": "sh", "args": []any{"-c", "exit 5"}, "completionTransport": "stream"},
	}, id))
	stream := "hf:" + b.hf + ":completions"
	var entries []redis.XMessage
	b.eventually("stream entry", func() bool {
		entries, _ = b.rdb.XRange(context.Background(), stream, "-", "+").Result()
		return len(entries) > 0
	})
	if len(entries) != 1 || entries[0].Values["taskId"] != string(id) || entries[0].Values["code"] != "5" {
		t.Errorf("stream %s = %+v", stream, entries)
	}
	if n, _ := b.rdb.Exists(context.Background(), string(id)).Result(); n != 0 {
		t.Error("the stream transport also wrote the set")
	}
}

// A task the engine has completed is not run again, and nothing is
// written for it; failing commands are retried with the listener's count;
// a refused job message is answered with -2.
func TestPoolSkipsRetriesAndRefuses(t *testing.T) {
	b := setup(t, func(c *config.Settings) { c.TaskAttempts = 3 })
	done, flaky, refused := b.task(1), b.task(2), b.task(3)
	b.rdb.SAdd(context.Background(), CompletedKey(done), string(done))
	b.publish(message(map[TaskID]map[string]any{
		done: {"executable": "touch", "args": []any{"ran"}},
		// Fails twice, then succeeds.
		flaky:   {"executable": "sh", "args": []any{"-c", "echo try >> tries; [ $(wc -l < tries) -ge 3 ]"}},
		refused: {"executable": "echo", "args": []any{"x", map[string]any{}}},
	}, done, flaky, refused))
	if got := b.code(flaky); got != "0" {
		t.Errorf("code of the flaky task = %s, want 0 after 3 attempts", got)
	}
	if got := b.code(refused); got != "-2" {
		t.Errorf("code of the refused task = %s, want -2", got)
	}
	b.stopAcknowledged()
	if _, err := os.Stat(filepath.Join(b.dir, "ran")); err == nil {
		t.Error("a completed task ran again")
	}
	if n, _ := b.rdb.Exists(context.Background(), string(done)).Result(); n != 0 {
		t.Error("a completion was written for a skipped task")
	}
	fin := b.events.wait(t, refused, eventbus.TypeJobFinished)
	if len(fin.Exceptions) != 1 || !strings.Contains(fin.Exceptions[0], "tasks[2].message.args[1]: must be a string or a number") {
		t.Errorf("exceptions of the refused task: %q", fin.Exceptions)
	}
}

// Messages that cannot be used are rejected at once, never requeued, and
// the pool goes on.
func TestPoolPoisonMessages(t *testing.T) {
	b := setup(t, nil)
	for _, body := range []string{`not json`, `{"tasks":[]}`, `{"tasks":[{"id":"no-wf-id","message":{}}]}`, `[1,2]`} {
		b.publish(body)
	}
	after := b.task(9)
	b.publish(message(map[TaskID]map[string]any{after: {"executable": "true"}}, after))
	if got := b.code(after); got != "0" {
		t.Errorf("code after the poison = %s", got)
	}
	b.stopAcknowledged()
	if s := b.pool.Stats(); s.Dropped != 4 {
		t.Errorf("dropped %d messages, want 4", s.Dropped)
	}
}

// A message whose completion Redis keeps refusing comes back a bounded
// number of times, then its tasks fail and it is rejected.
func TestPoolBoundedRedelivery(t *testing.T) {
	b := setup(t, func(c *config.Settings) { c.MaxDeliveries = 2 })
	id := b.task(1)
	// The task's key holds a string: SADD fails with WRONGTYPE.
	b.rdb.Set(context.Background(), string(id), "not a set", time.Hour)
	b.publish(message(map[TaskID]map[string]any{id: {"executable": "sh", "args": []any{"-c", "echo run >> runs"}}}, id))
	b.eventually("message rejected", func() bool { return b.pool.Stats().Dropped == 1 })
	b.stopAcknowledged()
	data, _ := os.ReadFile(filepath.Join(b.dir, "runs"))
	if runs := strings.Count(string(data), "run"); runs != 2 {
		t.Errorf("the task ran %d times, want max_deliveries = 2", runs)
	}
	if !strings.Contains(b.logs.String(), "message delivered too often") {
		t.Error("no error log for the rejected message")
	}
}

// Redis down while a task runs: the task is kept, unacknowledged, until its
// completion is written.
func TestPoolWaitsForRedis(t *testing.T) {
	redis.SetLogger(RedisLibraryLogger(slog.New(slog.DiscardHandler)))
	proxy := newProxy(t, strings.TrimPrefix(testenv.RedisURL(t), "redis://"))
	b := setup(t, func(c *config.Settings) { c.RedisURL = config.Secret("redis://" + proxy.addr) })
	id := b.task(1)
	b.publish(message(map[TaskID]map[string]any{id: {"executable": "sh", "args": []any{"-c", "touch started; sleep 1; touch done"}}}, id))
	b.eventually("task started", func() bool { _, err := os.Stat(filepath.Join(b.dir, "started")); return err == nil })
	proxy.down()
	b.eventually("task ran", func() bool { _, err := os.Stat(filepath.Join(b.dir, "done")); return err == nil })
	time.Sleep(700 * time.Millisecond)
	if n, _ := b.rdb.Exists(context.Background(), string(id)).Result(); n != 0 {
		t.Fatal("completion written while Redis was unreachable")
	}
	if s := b.pool.Stats(); s.Busy != 1 {
		t.Errorf("busy %d while the completion waits, want 1", s.Busy)
	}
	proxy.up()
	if got := b.code(id); got != "0" {
		t.Errorf("code = %s", got)
	}
	b.stopAcknowledged()
}

// SIGTERM, first stage: running tasks finish and are answered; the second
// stage kills them and returns their message unanswered.
func TestPoolShutdown(t *testing.T) {
	t.Run("running task finishes", func(t *testing.T) {
		b := setup(t, nil)
		id := b.task(1)
		b.publish(message(map[TaskID]map[string]any{id: {"executable": "sleep", "args": []any{"0.5"}}}, id))
		b.events.wait(t, id, eventbus.TypeExecStarted)
		if err := b.stop(); err != nil {
			t.Fatal(err)
		}
		if got := b.code(id); got != "0" {
			t.Errorf("code = %s", got)
		}
		b.stopAcknowledged()
		b.events.wait(t, "", eventbus.TypeExecutorStopped)
	})
	t.Run("killed task goes back", func(t *testing.T) {
		b := setup(t, func(c *config.Settings) { c.ShutdownGrace = 100 * time.Millisecond })
		id := b.task(1)
		b.publish(message(map[TaskID]map[string]any{id: {"executable": "sleep", "args": []any{"30"}}}, id))
		b.events.wait(t, id, eventbus.TypeExecStarted)
		start := time.Now()
		if err := b.stop(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("stop took %v", d)
		}
		if n, _ := b.rdb.Exists(context.Background(), string(id)).Result(); n != 0 {
			t.Error("a killed task was answered")
		}
		if d := b.queueDepth(); d != 1 {
			t.Errorf("queue depth %d, want the message back", d)
		}
	})
}

// ---------------------------------------------------------------- helpers --

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// eventLog collects the events published on the exchange.
type eventLog struct {
	mu     sync.Mutex
	events []eventbus.Event
}

func listenEvents(t *testing.T, conn *amqp.Connection, exchange string) *eventLog {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "#", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &eventLog{}
	go func() {
		for m := range msgs {
			var ev eventbus.Event
			if json.Unmarshal(m.Body, &ev) == nil {
				l.mu.Lock()
				l.events = append(l.events, ev)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// wait returns the first event of a type for a task ("" for executor
// events).
func (l *eventLog) wait(t *testing.T, id TaskID, typ string) eventbus.Event {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, ev := range l.events {
			if ev.Type == typ && ev.ID == string(id) {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s event for %q", typ, id)
	return eventbus.Event{}
}

// proxy forwards TCP connections on loopback to a real server and can
// simulate its outage: down closes every connection and refuses new ones;
// up listens again on the same port.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target, conns: map[net.Conn]bool{}}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *proxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[s] = true, true
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// --check in worker-pool mode: every server and directory, and a clear
// failure for an unreachable Redis.
func TestCheck(t *testing.T) {
	redis.SetLogger(RedisLibraryLogger(slog.New(slog.DiscardHandler)))
	amqpURL, redisURL := testenv.AMQPURL(t), testenv.RedisURL(t)
	cfg := config.Default()
	cfg.WorkerPool, cfg.PoolQueue = true, "test.check."+randomHex(4)
	cfg.AMQPURL, cfg.RedisURL, cfg.WorkDir = config.Secret(amqpURL), config.Secret(redisURL), t.TempDir()
	ctx := context.Background()
	var out strings.Builder
	if results := Check(ctx, cfg); !executor.PrintCheck(&out, results) {
		t.Errorf("check failed:\n%s", out.String())
	}
	for _, want := range []string{"ok    redis " + redisURL + " answers", "ok    queue " + cfg.PoolQueue, "ok    log directory " + cfg.WorkDir + "/logs-hf writable"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	conn, err := amqp.Dial(amqpURL)
	if err == nil {
		ch, _ := conn.Channel()
		ch.QueueDelete(cfg.PoolQueue, false, false, false)
		conn.Close()
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	cfg.RedisURL = config.Secret("redis://" + dead)
	out.Reset()
	if executor.PrintCheck(&out, Check(ctx, cfg)) || !strings.Contains(out.String(), "FAIL  redis redis://"+dead+" answers: ") {
		t.Errorf("check with Redis down:\n%s", out.String())
	}
}

// RabbitMQ 4.3 and later refuse the transient non-exclusive queue the
// engine declares for a worker pool (scripts/rabbitmq4.sh denies it as 4.3
// does): the refusal says what to change on the broker.
func TestTransientQueueRefusedExplained(t *testing.T) {
	redis.SetLogger(RedisLibraryLogger(slog.New(slog.DiscardHandler)))
	amqpURL, redisURL := testenv.Require(t, "HYPERFLOW_TEST_AMQP4_URL"), testenv.RedisURL(t)
	cfg := config.Default()
	cfg.WorkerPool, cfg.PoolQueue = true, "test.rmq4."+randomHex(4)
	cfg.AMQPURL, cfg.RedisURL, cfg.WorkDir = config.Secret(amqpURL), config.Secret(redisURL), t.TempDir()
	var out strings.Builder
	if executor.PrintCheck(&out, Check(context.Background(), cfg)) {
		t.Fatalf("check passed on a broker that refuses transient queues:\n%s", out.String())
	}
	want := "FAIL  queue " + cfg.PoolQueue + " (not durable, x-expires 6000000, as the engine declares it): " +
		"declare queue " + cfg.PoolQueue + ": the broker refuses transient non-exclusive queues"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "deprecated_features.permit.transient_nonexcl_queues = true") {
		t.Errorf("report:\n%s\nwant %q and the setting to change", out.String(), want)
	}
}

// The broker connection lost while a task runs: the task goes on, the
// message comes back on the new connection and is attached to it, the
// completion is written once and the message acknowledged.
func TestPoolBrokerLoss(t *testing.T) {
	// The pool reaches the broker through a proxy that can cut it off.
	broker, err := url.Parse(testenv.AMQPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, broker.Host)
	b := setup(t, func(c *config.Settings) {
		viaProxy := *broker
		viaProxy.Host = proxy.addr
		c.AMQPURL = config.Secret(viaProxy.String())
	})
	id := b.task(1)
	b.publish(message(map[TaskID]map[string]any{id: {"executable": "sh", "args": []any{"-c", "echo run >> runs; sleep 2"}}}, id))
	b.eventually("task started", func() bool { _, err := os.Stat(filepath.Join(b.dir, "runs")); return err == nil })
	proxy.down()
	time.Sleep(200 * time.Millisecond)
	proxy.up()
	if got := b.code(id); got != "0" {
		t.Errorf("code = %s", got)
	}
	data, _ := os.ReadFile(filepath.Join(b.dir, "runs"))
	if runs := strings.Count(string(data), "run"); runs != 1 {
		t.Errorf("the task ran %d times, want once", runs)
	}
	if s := b.pool.Stats(); s.Reconnects < 1 {
		t.Errorf("reconnects = %d, want the loss seen", s.Reconnects)
	}
	b.stopAcknowledged()
	if !strings.Contains(b.logs.String(), "redelivery of a message that runs here") {
		t.Error("the redelivery was not attached to the running task")
	}
}

// A list of broker URLs tried in order whose first node is dead: the pool
// connects to the second, and when that connection is lost it moves on to
// the next node of the list (the third URL: the same broker reached
// directly), not back to the first; executor.ready names the node in use,
// and no password of the list is shown.
func TestPoolBrokerList(t *testing.T) {
	live, err := url.Parse(testenv.AMQPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newProxy(t, live.Host)
	viaProxy := *live
	viaProxy.Host = proxy.addr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "amqp://guest:deadsecret@" + ln.Addr().String() + "/"
	ln.Close() // nothing listens there any more: the connection is refused
	b := setup(t, func(c *config.Settings) {
		c.AMQPURL = config.Secret(dead + "," + viaProxy.String() + "," + live.String())
		c.AMQPURLOrder = "ordered"
	})
	first, second := redact.URL(viaProxy.String()), redact.URL(live.String())
	b.eventually("executor.ready naming the second URL", func() bool { return slices.Contains(b.events.readyBrokers(b.pool.ID()), first) })

	id := b.task(1)
	b.publish(message(map[TaskID]map[string]any{id: {"executable": "true"}}, id))
	if got := b.code(id); got != "0" {
		t.Errorf("code of %s = %s, want 0", id, got)
	}

	proxy.down() // the second node goes, for good
	b.eventually("executor.ready naming the third URL", func() bool { return slices.Contains(b.events.readyBrokers(b.pool.ID()), second) })
	id2 := b.task(2)
	b.publish(message(map[TaskID]map[string]any{id2: {"executable": "true"}}, id2))
	if got := b.code(id2); got != "0" {
		t.Errorf("code of %s = %s, want 0", id2, got)
	}
	if s := b.pool.Stats(); s.Reconnects != 1 {
		t.Errorf("reconnects = %d, want 1", s.Reconnects)
	}
	b.stopAcknowledged()
	logs := b.logs.String()
	if !strings.Contains(logs, "connected to another broker node") {
		t.Error("the log does not say that the first node refused and another served")
	}
	if strings.Contains(logs, "deadsecret") || strings.Contains(logs, "guest:guest") {
		t.Errorf("a password is in the log:\n%s", logs)
	}
}

// readyBrokers are the broker nodes named by the executor.ready events of
// an executor, in order.
func (l *eventLog) readyBrokers(executor string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		if ev.Type == eventbus.TypeExecutorReady && ev.Executor == executor {
			out = append(out, ev.Broker)
		}
	}
	return out
}

// A task's command that leaves a background process is completed at once:
// the process is ended (the same runner as the executor's), and job.finished
// counts it.
func TestPoolEndsTaskLeftovers(t *testing.T) {
	b := setup(t, nil)
	id := b.task(1)
	start := time.Now()
	b.publish(message(map[TaskID]map[string]any{
		id: {"executable": "sh", "args": []any{"-c", "sleep 300 & echo started"}, "stdout": "bg.txt"},
	}, id))
	if got := b.code(id); got != "0" {
		t.Fatalf("code of %s = %s, want 0", id, got)
	}
	took := time.Since(start)
	if took > 60*time.Second {
		t.Errorf("completed after %v: it waited for the background sleep", took)
	}
	fin := b.events.wait(t, id, eventbus.TypeJobFinished)
	if fin.Metrics == nil || fin.Metrics.ProcessesEnded != 1 {
		t.Errorf("job.finished metrics %+v: want processes_ended 1", fin.Metrics)
	}
	if data, _ := os.ReadFile(filepath.Join(b.dir, "bg.txt")); string(data) != "started\n" {
		t.Errorf("bg.txt = %q", data)
	}
	t.Logf("task with a background sleep completed in %v", took)
}

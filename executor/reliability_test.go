package executor_test

// Reliability of the executor on the real broker (testenv.AMQPURL: skipped
// without one, failed under make test): reconnection, shutdown, poison
// messages, flow control, consumer timeouts. The executor runs in-process
// (internal/testing/harness) and is seen only through its exported API.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

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

// TestLiveReconnectKeepsRunningJobs closes the executor's connection while a
// job runs: the executor reconnects, the job is not killed nor run twice,
// its redelivery is answered once, and new jobs keep flowing.
func TestLiveReconnectKeepsRunningJobs(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.reconnect-" + uuid.NewString()[:8]
	var logs harness.SyncBuffer
	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2, Log: &logs})
	ex, stop, done := run.Ex, run.Stop, run.Done
	eng := harness.NewEngine(t, url, queue, nil)
	dir := t.TempDir()

	long := eng.Send(countingJob(dir, 3))
	harness.WaitFor(t, 5*time.Second, "the long job to start", func() bool { return runsIn(t, dir) == 1 })
	harness.CloseConnections(t, "", `"hyperflow-executor `+ex.ID()+`"`)
	harness.WaitFor(t, 10*time.Second, "a reconnection", func() bool { return ex.Stats().Reconnects >= 1 })

	quick := eng.Send(map[string]any{"executable": "/bin/echo", "args": []any{"after"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	if r := eng.Await(quick, 20*time.Second); r[0].ExitStatus != 0 || r[0].Stdout != "after\n" {
		t.Errorf("job after reconnect: %+v", r[0])
	}
	r := eng.Await(long, 20*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("long job reply: %+v", r[0])
	}
	time.Sleep(1500 * time.Millisecond) // room for a duplicate to show up
	if n := eng.Count(long); n != 1 {
		t.Errorf("long job answered %d times, want once", n)
	}
	if n := runsIn(t, dir); n != 1 {
		t.Errorf("long job ran %d times, want once", n)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := eng.Queued(); n != 0 {
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
	sub := subscribeEvents(t, url, queue, "executor.stopped")
	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2,
		Tweak: func(c *config.Settings) { c.ShutdownGrace = 1500 * time.Millisecond }})
	stop, done := run.Stop, run.Done
	eng := harness.NewEngine(t, url, queue, nil)
	shortDir, longDir := t.TempDir(), t.TempDir()
	short := eng.Send(countingJob(shortDir, 0.5))
	long := eng.Send(countingJob(longDir, 60))
	harness.WaitFor(t, 5*time.Second, "both jobs to start", func() bool { return runsIn(t, shortDir) == 1 && runsIn(t, longDir) == 1 })

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
	if r := eng.Await(short, 5*time.Second); r[0].ExitStatus != 0 {
		t.Errorf("short job: %+v", r[0])
	}
	if n := eng.Count(long); n != 0 {
		t.Errorf("killed job was answered %d times", n)
	}
	harness.WaitFor(t, 5*time.Second, "the killed job back in the queue", func() bool { return eng.Queued() == 1 })
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
	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1,
		Tweak: func(c *config.Settings) { c.ShutdownGrace = time.Hour }})
	ex, stop, done := run.Ex, run.Stop, run.Done
	eng := harness.NewEngine(t, url, queue, nil)
	dir := t.TempDir()
	id := eng.Send(countingJob(dir, 60))
	harness.WaitFor(t, 5*time.Second, "the job to start", func() bool { return runsIn(t, dir) == 1 })
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
	if eng.Count(id) != 0 {
		t.Error("killed job answered")
	}
	harness.WaitFor(t, 5*time.Second, "the job back in the queue", func() bool { return eng.Queued() == 1 })
}

// TestLivePoisonDeliveryLimit: on a quorum queue, a job delivered too many
// times (as after executor crashes) is answered -2 and dropped.
func TestLivePoisonDeliveryLimit(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.poison-" + uuid.NewString()[:8]
	quorum := amqp.Table{"x-queue-type": "quorum"}
	eng := harness.NewEngine(t, url, queue, quorum)
	sub := subscribeEvents(t, url, queue, "job.*.started")
	dir := t.TempDir()
	id := eng.Send(countingJob(dir, 0))
	// Two crashed consumers: the delivery comes back twice.
	for range 2 {
		d, ok, err := eng.Channel().Get(queue, false)
		for i := 0; err == nil && !ok && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			d, ok, err = eng.Channel().Get(queue, false)
		}
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		d.Nack(false, true)
	}
	harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1, Tweak: func(c *config.Settings) {
		c.QueueType = "quorum"
		c.MaxDeliveries = 2
	}})
	r := eng.Await(id, 20*time.Second)
	if r[0].ExitStatus != -2 || !strings.Contains(strings.Join(r[0].Exceptions, " "), "delivered 2 times") {
		t.Errorf("reply %+v", r[0])
	}
	if runsIn(t, dir) != 0 {
		t.Error("poison job ran")
	}
	harness.WaitFor(t, 5*time.Second, "the queue to empty", func() bool { return eng.Queued() == 0 })
	// job.started tells monitors how often the message came before.
	select {
	case m := <-sub.C:
		var ev eventbus.Event
		if err := json.Unmarshal(m.Body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DeliveryCount == nil || *ev.DeliveryCount != 2 {
			t.Errorf("job.started delivery_count %v, want 2: %s", ev.DeliveryCount, m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Error("no job.started event")
	}
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
	ex, err := executor.New(cfg, executor.Params{Storages: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
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
	var logs harness.SyncBuffer
	ex := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2, Log: &logs}).Ex
	eng := harness.NewEngine(t, url, queue, nil)
	work := t.TempDir()
	id := eng.Send(countingJob(work, 8))
	r := eng.Await(id, 60*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("reply %+v", r[0])
	}
	time.Sleep(3 * time.Second)
	if n := eng.Count(id); n != 1 {
		t.Errorf("answered %d times, want once", n)
	}
	if n := runsIn(t, work); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
	if s := ex.Stats(); s.ConsumerRestarts+s.Reconnects == 0 {
		t.Errorf("the broker never timed the delivery out (no new consumer): the test proves nothing\n%s", logs.String())
	}
	harness.WaitFor(t, 10*time.Second, "the queue to empty", func() bool { return eng.Queued() == 0 })
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
	var logs harness.SyncBuffer
	heartbeats := subscribeEvents(t, url, queue, "executor.heartbeat")
	// Progress events make the executor publish during the alarm, so the
	// broker blocks its connection before the job ends (RabbitMQ blocks a
	// connection when it next publishes).
	harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1, Log: &logs,
		Tweak: func(c *config.Settings) { c.ProgressInterval = 200 * time.Millisecond }})
	eng := harness.NewEngine(t, url, queue, nil)
	dir := t.TempDir()
	// The job runs until the test creates the file "go".
	id := eng.Send(map[string]any{"executable": "/bin/sh",
		"args":    []any{"-c", "echo run >> runs.txt; while [ ! -e go ]; do sleep 0.05; done; echo done"},
		"options": map[string]any{"storage": "local", "workdir": dir}})
	harness.WaitFor(t, 10*time.Second, "the job to start", func() bool { return runsIn(t, dir) == 1 })
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
	harness.WaitFor(t, 60*time.Second, "the executor to see the block", func() bool {
		return strings.Contains(logs.String(), "broker blocked publishing")
	})
	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	time.Sleep(2 * time.Second) // the job ends; its reply must wait
	if n := eng.Count(id); n != 0 {
		t.Fatalf("a reply went out while the broker blocked publishers\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="job finished"`) {
		t.Errorf("the job did not finish during the block:\n%s", logs.String())
	}
	alarm("0.4")
	unblocked = true
	// The heartbeats of the block were dropped with the other events; the
	// first one after it says the broker blocked the executor.
	sawBlocked := false
	for deadline := time.After(20 * time.Second); !sawBlocked; {
		select {
		case m, ok := <-heartbeats.C:
			if !ok {
				t.Fatal("events subscription closed")
			}
			var ev eventbus.Event
			if err := json.Unmarshal(m.Body, &ev); err != nil {
				t.Fatalf("heartbeat %s: %v", m.Body, err)
			}
			sawBlocked = ev.Blocked != nil && *ev.Blocked
		case <-deadline:
			t.Fatal("no heartbeat with blocked: true after the block")
		}
	}
	r := eng.Await(id, 20*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("reply after the block: %+v", r[0])
	}
	if n := runsIn(t, dir); n != 1 {
		t.Errorf("ran %d times", n)
	}
}

// TestLiveQueueDeleted: an operator deletes the job queue under a running
// executor. The broker cancels the consumer; the executor consumes again
// on the same connection, declaring the queue again, and
// goes on serving (it used to hang here).
func TestLiveQueueDeleted(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.deleted-" + uuid.NewString()[:8]
	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1})
	ex, stop, done := run.Ex, run.Stop, run.Done
	eng := harness.NewEngine(t, url, queue, nil)
	if _, err := eng.Channel().QueueDelete(queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 20*time.Second, "a new consumer", func() bool { return ex.Stats().ConsumerRestarts >= 1 })
	harness.WaitFor(t, 20*time.Second, "the queue declared again", func() bool {
		ch, err := eng.Conn().Channel()
		if err != nil {
			return false
		}
		defer ch.Close()
		_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		return err == nil
	})
	id := eng.Send(map[string]any{"executable": "/bin/echo", "args": []any{"again"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	if r := eng.Await(id, 20*time.Second); r[0].ExitStatus != 0 || r[0].Stdout != "again\n" {
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

// TestLiveConsumerTimeoutPolicyRabbitMQ4: RabbitMQ 4 ignores a per-consumer
// timeout; a consumer-timeout policy of 60 s on the job queue closes the
// channel of a 75 s job. The job is answered once and runs once, and the
// executor names the fix (the set_policy line) in its log.
func TestLiveConsumerTimeoutPolicyRabbitMQ4(t *testing.T) {
	url := testenv.Require(t, "HYPERFLOW_TEST_AMQP4_URL")
	ctl := testenv.Require(t, "HYPERFLOW_TEST_RABBITMQ4CTL")
	if os.Getenv("HYPERFLOW_TEST_AMQP_URL") == url {
		t.Skip("ran in the pass on RabbitMQ 3.10, against the 4.0 broker")
	}
	queue := "hyperflow.jobs.policy-" + uuid.NewString()[:8]
	// The broker checks timeouts on its channel tick (every minute by
	// default): make new channels tick every second.
	for _, args := range [][]string{
		{"eval", "application:set_env(rabbit, channel_tick_interval, 1000)."},
		{"set_policy", "hf-test-" + queue, "^" + regexp.QuoteMeta(queue) + "$", `{"consumer-timeout":60000}`, "--apply-to", "queues"},
	} {
		if out, err := exec.Command(ctl, args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command(ctl, "clear_policy", "hf-test-"+queue).Run() })
	var logs harness.SyncBuffer
	ex := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1, Log: &logs,
		Tweak: func(s *config.Settings) { s.ConsumerTimeout = time.Minute }}).Ex
	eng := harness.NewEngine(t, url, queue, nil)
	work := t.TempDir()
	id := eng.Send(countingJob(work, 75))
	r := eng.Await(id, 150*time.Second)
	if r[0].ExitStatus != 0 || r[0].Stdout != "done\n" {
		t.Errorf("reply %+v", r[0])
	}
	time.Sleep(3 * time.Second)
	if n := eng.Count(id); n != 1 {
		t.Errorf("answered %d times, want once", n)
	}
	if n := runsIn(t, work); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
	out := logs.String()
	if s := ex.Stats(); s.ConsumerRestarts+s.Reconnects == 0 {
		t.Errorf("the policy never timed the delivery out (no new consumer): the test proves nothing\n%s", out)
	}
	if !strings.Contains(out, "ignores a per-consumer timeout") {
		t.Errorf("log lacks the warning about the per-consumer timeout:\n%s", out)
	}
	// The broker closes the channel or cancels the consumer (both seen on
	// 4.0.5): either way one error names the consumer timeout and the fix.
	named := false
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=ERROR") && strings.Contains(l, "consumer timeout") && strings.Contains(l, "rabbitmqctl set_policy hyperflow-long-jobs") {
			named = true
		}
	}
	if !named {
		t.Errorf("no error names the consumer timeout and its fix:\n%s", out)
	}
}

// TestLiveUnreachableCluster: with several URLs none of which answers, the
// retries name every node and show no password of any (the second URL's
// password once leaked in the retry line).
func TestLiveUnreachableCluster(t *testing.T) {
	testenv.AMQPURL(t)
	var logs bytes.Buffer
	cfg := config.Default()
	cfg.AMQPURL = "amqp://guest:first-secret@127.0.0.1:1/,amqp://bob:second-secret@127.0.0.1:2/"
	cfg.AMQPURLOrder = "ordered"
	cfg.Storage = "local"
	cfg.TmpDir = t.TempDir()
	cfg.ConnectAttempts = 2
	reg, _ := storage.NewRegistry(cfg, nil)
	ex, err := executor.New(cfg, executor.Params{Storages: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	err = ex.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("Run = %v, want an error after 2 attempts", err)
	}
	all := err.Error() + logs.String()
	for _, secret := range []string{"first-secret", "second-secret"} {
		if strings.Contains(all, secret) {
			t.Errorf("password %s leaked:\n%v\n%s", secret, err, logs.String())
		}
	}
	for _, want := range []string{"no broker node of 2 answered", "amqp://guest:***@127.0.0.1:1/", "amqp://bob:***@127.0.0.1:2/"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestLiveCheckEveryNode: --check with several URLs checks each node.
func TestLiveCheckEveryNode(t *testing.T) {
	live := testenv.AMQPURL(t)
	cfg := config.Default()
	cfg.AMQPURL = config.Secret("amqp://guest:dead-secret@127.0.0.1:1/," + live)
	cfg.Queue = "hyperflow.jobs.check-" + uuid.NewString()[:8]
	cfg.EventsExchange = cfg.Queue + ".events"
	cfg.Storage = "local"
	cfg.TmpDir = t.TempDir()
	t.Cleanup(func() { harness.DeleteQueue(t, live, cfg.Queue, cfg.EventsExchange) })
	reg, _ := storage.NewRegistry(cfg, nil)
	var out bytes.Buffer
	if executor.PrintCheck(&out, executor.Check(context.Background(), cfg, reg)) {
		t.Errorf("a dead node passed the check:\n%s", out.String())
	}
	report := out.String()
	for _, want := range []string{
		"FAIL  broker amqp://guest:***@127.0.0.1:1/ reachable",
		"ok    broker " + redact.URL(live) + " reachable",
		"ok    job queue " + cfg.Queue,
	} {
		if !strings.Contains(report, want) {
			t.Errorf("check report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "dead-secret") {
		t.Errorf("password leaked:\n%s", report)
	}
}

// subscribeEvents follows the events of the executor serving queue (the
// harness's exchange queue+".events") with binding, for the whole test.
func subscribeEvents(t *testing.T, url, queue, binding string) *eventbus.Subscription {
	t.Helper()
	client, err := eventbus.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sub, err := client.Subscribe(t.Context(), queue+".events", binding)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// The worker-pool end-to-end test runs the real HyperFlow engine
// (@hyperflow/hyperflow 1.7.0, k8sCommand with worker pools) on a small
// workflow whose every task type is in workflow.config.executionModels.json,
// with one worker per task-type queue: first this executor in worker-pool
// mode, then, as the reference, the real Node listener
// (@hyperflow/job-executor). Each runs the workflow to its end (exit 0, the
// right total) and a variant with a failing task (the engine exits 1).
//
//	scripts/with-servers.sh --rabbitmq --redis -- go test -run WorkerPool ./internal/e2e/
//
// Node.js, npm and the two packages are installed when missing by
// scripts/hyperflow-engine.sh (Debian packages, the npm registry, a cache
// in ~/.cache/hyperflow). Without Node the test is skipped, unless
// HYPERFLOW_TEST_REQUIRE_SERVERS=1, where it installs it. Every process gets
// a minimal environment with every server on 127.0.0.1.

const (
	poolParts       = 6 // count tasks of the workflow
	poolLines       = 30
	workflowTimeout = 3 * time.Minute
)

// installEngine returns the node_modules directory holding the engine and
// the listener, installing them if needed.
func installEngine(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if req, _ := strconv.ParseBool(os.Getenv(testenv.RequireVar)); !req {
			t.Skip("node is not installed: skipping the test with the real HyperFlow engine (make test installs it)")
		}
	}
	cmd := exec.Command(filepath.Join("..", "..", "scripts", "hyperflow-engine.sh"), "install")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/hyperflow-engine.sh install: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// poolWorkflow writes the workflow into dir: split the input in poolParts
// parts, count the words of each part (task type "count", in parallel),
// add the counts up (join). With failing, the third count exits 3.
func poolWorkflow(t *testing.T, dir string, failing bool) (wantTotal int) {
	t.Helper()
	type proc struct {
		Name        string         `json:"name"`
		Function    string         `json:"function"`
		Type        string         `json:"type"`
		FiringLimit int            `json:"firingLimit"`
		Config      map[string]any `json:"config"`
		Ins         []int          `json:"ins"`
		Outs        []int          `json:"outs"`
	}
	sh := func(script string) map[string]any {
		return map[string]any{"executor": map[string]any{"executable": "sh", "args": []string{"-c", script}}}
	}
	signals := []map[string]any{{"name": "input.txt", "data": []any{map[string]any{}}}}
	var partSigs, countSigs []int
	for i := range poolParts {
		signals = append(signals, map[string]any{"name": fmt.Sprintf("part%d", i)})
		partSigs = append(partSigs, len(signals)-1)
	}
	for i := range poolParts {
		signals = append(signals, map[string]any{"name": fmt.Sprintf("count%d", i)})
		countSigs = append(countSigs, len(signals)-1)
	}
	signals = append(signals, map[string]any{"name": "total.txt"})
	total := len(signals) - 1

	procs := []proc{{Name: "split", Function: "{{function}}", Type: "dataflow", FiringLimit: 1,
		Config: sh(fmt.Sprintf("split -n l/%d -d -a 1 input.txt part", poolParts)), Ins: []int{0}, Outs: partSigs}}
	for i := range poolParts {
		script := fmt.Sprintf("wc -w < part%d > count%d", i, i)
		if failing && i == 2 {
			script = "echo 'count: bad part' >&2; exit 3"
		}
		procs = append(procs, proc{Name: "count", Function: "{{function}}", Type: "dataflow", FiringLimit: 1,
			Config: sh(script), Ins: []int{partSigs[i]}, Outs: []int{countSigs[i]}})
	}
	procs = append(procs, proc{Name: "join", Function: "{{function}}", Type: "dataflow", FiringLimit: 1,
		Config: sh("cat count* | awk '{s+=$1} END {print s}' > total.txt"), Ins: countSigs, Outs: []int{total}})

	wf := map[string]any{"name": "wordcount", "processes": procs, "signals": signals, "ins": []int{0}, "outs": []int{total}}
	writeJSON(t, filepath.Join(dir, "workflow.json"), wf)
	writeJSON(t, filepath.Join(dir, "workflow.config.executionModels.json"),
		[]map[string]string{{"name": "split"}, {"name": "count"}, {"name": "join"}})

	var input strings.Builder
	for i := range poolLines {
		for w := range i%4 + 1 {
			fmt.Fprintf(&input, "w%d ", w)
			wantTotal++
		}
		input.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte(input.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return wantTotal
}

func writeJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// poolWorker is one worker process serving a task-type queue.
type poolWorker struct {
	cmd  *exec.Cmd
	logs *harness.SyncBuffer
	done chan struct{}
	err  error
}

// workerKind is how to start the workers of one implementation.
type workerKind struct {
	name     string
	command  func(modules string) []string
	ready    string   // printed once it consumes
	finished []string // one of them printed once per finished task
	graceful bool     // exits 0 on SIGTERM (the Node listener waits 5 s first)
}

var workerKinds = []workerKind{
	{name: "go", command: func(string) []string { return []string{executorBin} },
		ready: "worker pool ready", finished: []string{`msg="task finished"`}, graceful: true},
	{name: "node", command: func(m string) []string {
		return []string{"node", filepath.Join(m, "@hyperflow", "job-executor", "hflow-job-listener.js")}
	}, ready: "Waiting for messages in queue", finished: []string{"[hf-job] finished:", "[hf-job] failed:"}},
}

func startPoolWorker(t *testing.T, k workerKind, modules string, env []string) *poolWorker {
	t.Helper()
	argv := k.command(modules)
	w := &poolWorker{cmd: exec.Command(argv[0], argv[1:]...), logs: &harness.SyncBuffer{}, done: make(chan struct{})}
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start %s worker: %v", k.name, err)
	}
	go func() { w.err = w.cmd.Wait(); close(w.done) }()
	deadline := time.After(startTimeout)
	for !strings.Contains(w.logs.String(), k.ready) {
		select {
		case <-w.done:
			t.Fatalf("%s worker exited at start: %v\n%s", k.name, w.err, w.logs.String())
		case <-deadline:
			t.Fatalf("%s worker not ready after %v:\n%s", k.name, startTimeout, w.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return w
}

// stop ends the worker: SIGTERM, and for a graceful one a clean exit is
// expected; the Node listener is killed with its process group.
func (w *poolWorker) stop(t *testing.T, k workerKind) {
	t.Helper()
	if !k.graceful {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
		if w.err != nil {
			t.Errorf("%s worker exit after SIGTERM: %v\n%s", k.name, w.err, w.logs.String())
		}
	case <-time.After(stopTimeout):
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		<-w.done
		t.Errorf("%s worker did not exit within %v of SIGTERM", k.name, stopTimeout)
	}
}

// poolRun is the outcome of one engine run.
type poolRun struct {
	exit    int
	elapsed time.Duration // the engine's run, start to exit
	span    time.Duration // first task group submitted to the last one ended (the engine's log)
	tasks   int           // tasks the workers finished
	log     string
}

// runPoolWorkflow runs the engine on a fresh workflow with one worker of
// kind k per task-type queue.
func runPoolWorkflow(t *testing.T, k workerKind, modules, amqpURL, redisURL string, failing bool) (poolRun, string, int) {
	t.Helper()
	dir, home := t.TempDir(), t.TempDir()
	want := poolWorkflow(t, dir, failing)
	namespace := "e2e-" + randHex(t, 4)
	rabbit := strings.TrimSuffix(strings.TrimPrefix(amqpURL, "amqp://"), "/")
	base := []string{"HOME=" + home, "LC_ALL=C", "PATH=" + os.Getenv("PATH"), "RABBIT_HOSTNAME=" + rabbit, "REDIS_URL=" + redisURL}

	var workers []*poolWorker
	for _, taskType := range []string{"split", "count", "join"} {
		env := append(append([]string(nil), base...), "QUEUE_NAME="+namespace+"."+taskType, "HF_VAR_WORK_DIR="+dir)
		if k.name == "go" {
			env = append(env, "WORKER_POOL=1", "LOG_LEVEL=debug", "HEARTBEAT_INTERVAL=1s")
		}
		workers = append(workers, startPoolWorker(t, k, modules, env))
	}
	defer deletePoolQueues(t, amqpURL, namespace)

	ctx, cancel := context.WithTimeout(context.Background(), workflowTimeout)
	defer cancel()
	engine := exec.CommandContext(ctx, "node", filepath.Join(modules, "@hyperflow", "hyperflow", "bin", "hflow"), "run", dir)
	engine.Env = append(base, "HF_VAR_function=k8sCommand", "HF_VAR_NAMESPACE="+namespace,
		"HF_VAR_STOP_WORKFLOW_WHEN_JOB_FAILED=1")
	engine.Dir = home
	var out harness.SyncBuffer
	engine.Stdout, engine.Stderr = &out, &out
	start := time.Now()
	err := engine.Run()
	run := poolRun{elapsed: time.Since(start), log: out.String()}
	run.span = taskSpan(run.log)
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		run.exit = exitErr.ExitCode()
	default:
		t.Fatalf("engine: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("engine did not finish within %v:\n%s", workflowTimeout, run.log)
	}
	var logs strings.Builder
	for _, w := range workers {
		w.stop(t, k)
		for _, marker := range k.finished {
			run.tasks += strings.Count(w.logs.String(), marker)
		}
		logs.WriteString(w.logs.String())
	}
	if t.Failed() {
		t.Logf("engine log:\n%s\nworker logs:\n%s", run.log, logs.String())
	}
	total, _ := os.ReadFile(filepath.Join(dir, "total.txt"))
	got, _ := strconv.Atoi(strings.TrimSpace(string(total)))
	return run, logs.String(), want - got
}

// taskSpan reads from the engine's log the time from the first task group
// it submitted ("k8sCommandGroup started, time: MS") to the last one that
// ended ("Ending k8sCommandGroup function, time: MS"): the run without the
// engine's own start-up.
func taskSpan(log string) time.Duration {
	first := regexp.MustCompile(`k8sCommandGroup started, time: (\d+)`).FindStringSubmatch(log)
	ends := regexp.MustCompile(`Ending k8sCommandGroup function, time: (\d+)`).FindAllStringSubmatch(log, -1)
	if first == nil || len(ends) == 0 {
		return 0
	}
	a, _ := strconv.ParseInt(first[1], 10, 64)
	b, _ := strconv.ParseInt(ends[len(ends)-1][1], 10, 64)
	return time.Duration(b-a) * time.Millisecond
}

func deletePoolQueues(t *testing.T, amqpURL, namespace string) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		t.Logf("delete queues: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range []string{"split", "count", "join"} {
		ch.QueueDelete(namespace+"."+q, false, false, false)
	}
}

func TestWorkerPoolEngine(t *testing.T) {
	amqpURL, redisURL := testenv.AMQPURL(t), testenv.RedisURL(t)
	modules := installEngine(t)
	figures := map[string]poolRun{}
	for _, k := range workerKinds {
		t.Run(k.name, func(t *testing.T) {
			run, logs, missing := runPoolWorkflow(t, k, modules, amqpURL, redisURL, false)
			if run.exit != 0 {
				t.Fatalf("engine exit %d with %s workers, want 0:\n%s\n%s", run.exit, k.name, run.log, logs)
			}
			if missing != 0 {
				t.Errorf("total.txt off by %d words", missing)
			}
			if want := poolParts + 2; run.tasks != want {
				t.Errorf("%s workers finished %d tasks, want %d", k.name, run.tasks, want)
			}
			if !strings.Contains(run.log, "Workflow [") || !strings.Contains(run.log, "finished.") {
				t.Errorf("engine log lacks the end of the workflow:\n%s", run.log)
			}
			figures[k.name] = run

			failed, flogs, _ := runPoolWorkflow(t, k, modules, amqpURL, redisURL, true)
			if failed.exit != 1 {
				t.Errorf("engine exit %d with a failing task, want 1:\n%s\n%s", failed.exit, failed.log, flogs)
			}
			if !strings.Contains(failed.log, "exited with error code 3") {
				t.Errorf("engine log does not name the failed task's code 3:\n%s", failed.log)
			}
			t.Logf("%s workers: %d tasks in %.1f s (engine exit 0; %.1f s from the first task to the last); "+
				"failing variant: engine exit %d after %.1f s",
				k.name, run.tasks, run.elapsed.Seconds(), run.span.Seconds(), failed.exit, failed.elapsed.Seconds())
		})
	}
	if g, n := figures["go"], figures["node"]; g.tasks > 0 && n.tasks > 0 {
		t.Logf("worker-pool e2e, the same workflow: this executor %d tasks in %.1f s (tasks %.1f s); "+
			"Node listener %d tasks in %.1f s (tasks %.1f s)",
			g.tasks, g.elapsed.Seconds(), g.span.Seconds(), n.tasks, n.elapsed.Seconds(), n.span.Seconds())
	}
}

// TestWorkerPoolThroughput measures the workers themselves, without the
// engine's 3 s polling: poolTasks one-task messages of a trivial command
// published at once to one worker (prefetch 1, as the operator deploys
// it), timed until every completion is in Redis; this executor and the
// Node listener in turn. This executor must answer them all within
// throughputTimeout; the Node listener, the reference, is slow on a loaded
// machine (it sets up a logger and process probes per task), so its figure
// is what it did by then.
func TestWorkerPoolThroughput(t *testing.T) {
	const (
		poolTasks         = 50
		throughputTimeout = 2 * time.Minute
	)
	amqpURL, redisURL := testenv.AMQPURL(t), testenv.RedisURL(t)
	modules := installEngine(t)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	rabbit := strings.TrimSuffix(strings.TrimPrefix(amqpURL, "amqp://"), "/")
	figures := map[string]string{}
	for _, k := range workerKinds {
		t.Run(k.name, func(t *testing.T) {
			dir, home := t.TempDir(), t.TempDir()
			queue, hf, wf := "e2e-tp-"+randHex(t, 4), "tp"+randHex(t, 4), randHex(t, 3)
			defer deletePoolQueues(t, amqpURL, queue)
			env := []string{"HOME=" + home, "LC_ALL=C", "PATH=" + os.Getenv("PATH"), "RABBIT_HOSTNAME=" + rabbit,
				"REDIS_URL=" + redisURL, "QUEUE_NAME=" + queue, "HF_VAR_WORK_DIR=" + dir}
			if k.name == "go" {
				env = append(env, "WORKER_POOL=1")
			}
			w := startPoolWorker(t, k, modules, env)
			defer w.stop(t, k)
			taskID := func(i int) string { return fmt.Sprintf("%s:%s:%d:1", hf, wf, i+1) }
			start := time.Now()
			for i := range poolTasks {
				id := taskID(i)
				body := fmt.Sprintf(`{"tasks":[{"id":%q,"message":{"executable":"true","args":[],"inputs":[],"outputs":[],"name":"noop","taskId":%q}}]}`, id, id)
				if err := ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
					t.Fatal(err)
				}
			}
			pending := "wf:" + wf + ":tasksPendingCompletionHandling"
			var done int64
			deadline := time.Now().Add(throughputTimeout)
			for done < poolTasks && time.Now().Before(deadline) {
				select {
				case <-w.done:
					t.Fatalf("%s worker exited: %v\n%s", k.name, w.err, w.logs.String())
				case <-time.After(20 * time.Millisecond):
				}
				done, _ = rdb.SCard(context.Background(), pending).Result()
			}
			took := time.Since(start)
			if done == 0 || (k.graceful && done < poolTasks) {
				t.Fatalf("%s worker completed %d of %d tasks in %v", k.name, done, poolTasks, took.Round(time.Millisecond))
			}
			ids, _ := rdb.SMembers(context.Background(), pending).Result()
			for _, id := range ids {
				if codes, _ := rdb.SMembers(context.Background(), id).Result(); len(codes) != 1 || codes[0] != "0" {
					t.Fatalf("completion of %s: %q, want [0]", id, codes)
				}
			}
			figures[k.name] = fmt.Sprintf("%d tasks in %.1f s (%.0f tasks/s)", done, took.Seconds(), float64(done)/took.Seconds())
			t.Logf("%s worker: %s", k.name, figures[k.name])
		})
	}
	if figures["go"] != "" && figures["node"] != "" {
		t.Logf("one worker, prefetch 1, trivial tasks: this executor %s; Node listener %s", figures["go"], figures["node"])
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hf-executor-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "hyperflow-amqp-executor")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHelpVersionAndBadFile(t *testing.T) {
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "AMQP_URL") || !strings.Contains(string(out), "--shutdown-grace") {
		t.Errorf("--help: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "hyperflow-amqp-executor ") {
		t.Errorf("--version: %v %s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "settings.yml")
	os.WriteFile(bad, []byte("storage: local\nthreads: abc\n"), 0o644)
	cmd := exec.Command(binary, bad)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if err == nil || !strings.Contains(stderr.String(), "settings.yml:2") || !strings.Contains(stderr.String(), "threads") {
		t.Errorf("bad file: %v\n%s", err, stderr.String())
	}
	out, _ = exec.Command(binary, "../../examples/settings.yml", "--storage", "local", "--amqp-url", "amqp://127.0.0.1:1/", "--check").CombinedOutput()
	if !strings.Contains(string(out), "ok    settings") || !strings.Contains(string(out), "FAIL  broker") {
		t.Errorf("--check with the original settings file and no broker:\n%s", out)
	}
}

// The worker-pool mode takes the Node listener's environment; its
// settings are checked with errors naming them.
func TestWorkerPoolSettings(t *testing.T) {
	cmd := exec.Command(binary, "--worker-pool")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HF_VAR_NUMBER_OF_RETRIES=0"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "queue_name: must be set") ||
		!strings.Contains(string(out), "number_of_retries: must be at least 1") {
		t.Errorf("--worker-pool without QUEUE_NAME: %v\n%s", err, out)
	}
	cmd = exec.Command(binary, "--check")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "WORKER_POOL=1", "QUEUE_NAME=montage.mProject",
		"RABBIT_HOSTNAME=guest:guest@127.0.0.1:1", "REDIS_URL=redis://127.0.0.1:1", "HF_VAR_WORK_DIR=" + t.TempDir()}
	out, _ = cmd.CombinedOutput()
	for _, want := range []string{"ok    settings", "FAIL  redis redis://127.0.0.1:1 answers", "FAIL  broker amqp://guest:***@127.0.0.1:1 reachable"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--check in worker-pool mode lacks %q:\n%s", want, out)
		}
	}
}

// TestServiceNotifyMetricsAndStop runs the binary as systemd would (a
// notify socket and a watchdog), scrapes its metrics endpoint, runs a job
// and stops it with SIGTERM.
func TestServiceNotifyMetricsAndStop(t *testing.T) {
	url := testenv.AMQPURL(t)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	metricsAddr := ln.Addr().String()
	ln.Close()

	queue := "hyperflow.jobs.cli-" + uuid.NewString()[:8]
	cmd := exec.Command(binary, "--queue", queue, "--threads", "2", "--storage", "local",
		"--metrics-addr", metricsAddr, "--heartbeat-interval", "200ms", "--tmp-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "AMQP_URL="+url, "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=400000")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	expectNote(t, notes, "READY=1", 30*time.Second, &logs)
	expectNote(t, notes, "WATCHDOG=1", 5*time.Second, &logs)
	if code, body := get(t, "http://"+metricsAddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}

	// One job through the engine's protocol.
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	q, _ := ch.QueueDeclare("", false, true, true, false, nil)
	replies, _ := ch.Consume(q.Name, "", true, true, false, false, nil)
	body, _ := json.Marshal(map[string]any{"executable": "/bin/echo", "args": []any{"hi"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: "cli-job", ReplyTo: q.Name, Body: body})
	select {
	case d := <-replies:
		if !strings.Contains(string(d.Body), `"exit_status":0`) {
			t.Errorf("reply %s", d.Body)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no reply\n%s", logs.String())
	}
	// The job's metrics are counted once its reply is confirmed, which
	// can be a moment after the engine has the reply: poll, as a scraper
	// would, for up to 10 s.
	wants := []string{
		`hyperflow_executor_jobs_total{outcome="success",storage="local"} 1`,
		`hyperflow_executor_threads 2`,
		`hyperflow_executor_broker_connected 1`,
		`hyperflow_executor_broker_node{url="` + redact.URL(url) + `"} 1`,
		`hyperflow_executor_stage_duration_seconds_count{stage="execution"} 1`,
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// Two slots run on one Go thread at a time (package procs).
		wants = append(wants, "go_sched_gomaxprocs_threads 1")
	}
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, metricsText := get(t, "http://"+metricsAddr+"/metrics")
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(metricsText, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		t.Errorf("metrics lack %q", m)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	expectNote(t, notes, "STOPPING=1", 10*time.Second, &logs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if strings.Contains(logs.String(), "guest:guest") {
		t.Errorf("broker password in the logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "job finished") {
		t.Errorf("no per-job summary line in the logs:\n%s", logs.String())
	}
}

func expectNote(t *testing.T, notes <-chan string, want string, timeout time.Duration, logs *bytes.Buffer) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n, ok := <-notes:
			if !ok {
				t.Fatalf("notify socket closed before %s", want)
			}
			if strings.Contains(n, want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s on the notify socket after %v\n%s", want, timeout, logs.String())
		}
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCrashLosesNothing kills an executor with SIGKILL in the middle of a
// job: the broker returns the job to the queue, a new executor runs it,
// the client gets its reply, and the new executor removes the work
// directory the dead one left behind.
func TestCrashLosesNothing(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.crash-" + uuid.NewString()[:8]
	tmp, shared := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(shared, "in.txt"), []byte("payload"), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(binary, "--queue", queue, "--threads", "1", "--storage", "nfs", "--tmp-dir", tmp)
		cmd.Env = append(os.Environ(), "AMQP_URL="+url)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	first := start()

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(queue, false, false, false)
	q, _ := ch.QueueDeclare("", false, true, true, false, nil)
	replies, _ := ch.Consume(q.Name, "", true, true, false, false, nil)
	// The job runs for a while the first time (no marker yet) and at once
	// the second time.
	body, _ := json.Marshal(map[string]any{"executable": "/bin/sh",
		"args":    []any{"-c", "if [ ! -e " + shared + "/ran ]; then touch " + shared + "/ran; sleep 61.5; fi; cat in.txt > out.txt"},
		"inputs":  []any{map[string]any{"name": "in.txt"}},
		"outputs": []any{map[string]any{"name": "out.txt"}},
		"options": map[string]any{"storage": "nfs", "workdir": shared}})
	ch.PublishWithContext(context.Background(), "", queue, false, false, amqp.Publishing{
		ContentType: "application/json", CorrelationId: "crash-job", ReplyTo: q.Name, Body: body})

	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(shared, "ran")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "hyperflow-job-*"))
	if len(left) != 1 {
		t.Fatalf("work directories while the job runs: %v", left)
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	// The job's shell died with the executor (parent-death signal); its
	// sleep is ended by the next executor before it sweeps the work
	// directory or runs the job again: never two copies at once.
	if n := copiesOf("sleep 61.5"); n > 1 {
		t.Fatalf("%d copies of the job's sleep", n)
	}

	start()
	select {
	case d := <-replies:
		var r struct {
			ExitStatus int `json:"exit_status"`
		}
		json.Unmarshal(d.Body, &r)
		if r.ExitStatus != 0 || d.CorrelationId != "crash-job" {
			t.Errorf("reply after the crash: %s", d.Body)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no reply after the crash: the job was lost")
	}
	if data, _ := os.ReadFile(filepath.Join(shared, "out.txt")); string(data) != "payload" {
		t.Errorf("out.txt = %q", data)
	}
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("the dead executor's work directory %s was not swept: %v", left[0], err)
	}
	if n := copiesOf("sleep 61.5"); n != 0 {
		t.Errorf("%d processes of the dead executor's job still run", n)
	}
}

// copiesOf counts the live processes whose command line is cmdline.
func copiesOf(cmdline string) int {
	n := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || strings.Join(strings.Split(strings.TrimRight(string(data), "\x00"), "\x00"), " ") != cmdline {
			continue
		}
		if stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); strings.Contains(string(stat), ") Z ") {
			continue
		}
		n++
	}
	return n
}

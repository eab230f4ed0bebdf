package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testenv"
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
	_, metricsText := get(t, "http://"+metricsAddr+"/metrics")
	for _, want := range []string{
		`hyperflow_executor_jobs_total{outcome="success",storage="local"} 1`,
		`hyperflow_executor_threads 2`,
		`hyperflow_executor_broker_connected 1`,
		`hyperflow_executor_stage_duration_seconds_count{stage="execution"} 1`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("metrics lack %q", want)
		}
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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Environment of the private test servers (see internal/testenv, not
// imported here to keep this package self-contained).
const (
	amqpURLVar = "HYPERFLOW_TEST_AMQP_URL"
	requireVar = "HYPERFLOW_TEST_REQUIRE_SERVERS"
	// runtimeVar names the OCI runtime podman uses (default: runc when
	// installed; crun 1.8 refuses cgroup v1 hybrid hosts such as these).
	runtimeVar = "HYPERFLOW_TEST_PODMAN_RUNTIME"
)

// podman runs podman on a private image store under dir (vfs: no mounts
// left behind), never pulling anything.
type podman struct {
	t    *testing.T
	ctx  context.Context
	base []string
	env  []string
}

func newPodman(t *testing.T, ctx context.Context, dir string) *podman {
	base := []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--storage-driver", "vfs",
	}
	rt := os.Getenv(runtimeVar)
	if rt == "" {
		if p, err := exec.LookPath("runc"); err == nil {
			rt = p
		}
	}
	if rt != "" {
		base = append(base, "--runtime", rt)
	}
	return &podman{t: t, ctx: ctx, base: base, env: os.Environ()}
}

func (p *podman) run(args ...string) (string, error) {
	p.t.Helper()
	cmd := exec.CommandContext(p.ctx, "podman", append(append([]string{}, p.base...), args...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (p *podman) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// ulimits are the container's RLIMIT_NOFILE and RLIMIT_NPROC: without
// CAP_SYS_RESOURCE (as in this sandbox) the runtime cannot raise them to
// podman's defaults (1048576), and podman 4.3 lowers its own RLIMIT_NPROC to
// 32768, which its child then cannot exceed.
func ulimits(t *testing.T) []string {
	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	n := min(nproc.Max, 32768)
	return []string{
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofile.Max, nofile.Max),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", n, n),
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPodman loads the archive into podman and runs the image as a
// Kubernetes pod would (read-only root, /tmp a tmpfs, user 65532, settings
// in the environment) against the private broker: /healthz answers, jobs
// sent with hyperflow-submit are answered, and SIGTERM stops it with 0.
// Skipped when podman is not installed.
func TestPodman(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed")
	}
	amqpURL := strings.TrimSpace(os.Getenv(amqpURLVar))
	if amqpURL == "" {
		if req, _ := strconv.ParseBool(os.Getenv(requireVar)); req {
			t.Fatalf("%s is not set although %s is: run the tests via make test", amqpURLVar, requireVar)
		}
		t.Skipf("%s is not set: run make test for a private broker", amqpURLVar)
	}
	bin, archive, _, sum := image(t)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pm := newPodman(t, ctx, t.TempDir())
	pm.env = append(pm.env, "AMQP_URL="+amqpURL) // passed with -e AMQP_URL: not on a command line

	out := pm.must("load", "-i", archive)
	if !strings.Contains(out, sum.Name) {
		t.Errorf("podman load: %q, want the image named %s", out, sum.Name)
	}
	t.Cleanup(func() { pm.run("rmi", "-f", sum.Name) })

	// podman reads the same configuration.
	inspect := pm.must("image", "inspect", "--format",
		`{{.Config.User}} {{json .Config.Entrypoint}} {{index .Config.Labels "org.opencontainers.image.version"}}`, sum.Name)
	if want := `65532:65532 ["/hyperflow-amqp-executor"] ` + testVersion; strings.TrimSpace(inspect) != want {
		t.Errorf("podman image inspect: %q, want %q", inspect, want)
	}

	queue := fmt.Sprintf("hyperflow.podman-test.%d", time.Now().UnixNano())
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	name := fmt.Sprintf("hyperflow-podman-test-%d", os.Getpid())
	args := []string{"run", "--detach", "--name", name, "--pull", "never",
		"--network", "host", // the private broker is on loopback; nothing else is reachable
		"--read-only", "--tmpfs", "/tmp:rw,mode=1777",
		"-e", "AMQP_URL", "-e", "AMQP_QUEUE=" + queue, "-e", "METRICS_ADDR=" + metrics,
		"-e", "THREADS=2", "-e", "SHUTDOWN_GRACE=20s", "-e", "HYPERFLOW_TMPDIR=/tmp",
	}
	args = append(args, ulimits(t)...)
	pm.must(append(args, sum.Name)...)
	t.Cleanup(func() { pm.run("rm", "-f", "-t", "0", name) })
	logs := func() string { out, _ := pm.run("logs", name); return out }

	// /healthz turns 200 once the executor is connected.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not 200 after 60 s (%v); container logs:\n%s", err, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}

	submit := func(storage string, command ...string) (int, map[string]any) {
		t.Helper()
		args := append([]string{"--amqp-url", amqpURL, "--queue", queue, "--storage", storage,
			"--workdir", "/tmp", "--timeout-reply", "60s", "--"}, command...)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "hyperflow-submit"), args...)
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var reply map[string]any
		if err := json.Unmarshal(out, &reply); err != nil {
			t.Fatalf("hyperflow-submit %v: exit %d, reply %q: %v\ncontainer logs:\n%s", command, code, out, err, logs())
		}
		return code, reply
	}
	// A job run in a work directory on the tmpfs (nfs storage), with a
	// program the image has: the executor itself.
	code, reply := submit("nfs", "/hyperflow-amqp-executor", "--version")
	if code != 0 || reply["exit_status"] != 0.0 || reply["stdout"] != "hyperflow-amqp-executor "+testVersion+"\n" {
		t.Errorf("job --version: exit %d, reply %v", code, reply)
	}
	code, reply = submit("local", "/hyperflow-top", "--no-such-flag")
	if code != 2 || reply["exit_status"] != 2.0 || !strings.Contains(fmt.Sprint(reply["stderr"]), "unknown flag") {
		t.Errorf("failing job: exit %d, reply %v", code, reply)
	}

	// The counters follow the replies closely, not necessarily before them.
	wantMetrics := []string{
		`hyperflow_executor_jobs_total{outcome="success",storage="nfs"} 1`,
		`hyperflow_executor_jobs_total{outcome="failed",storage="local"} 1`,
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var body []byte
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		missing := ""
		for _, want := range wantMetrics {
			if !strings.Contains(string(body), want) {
				missing = want
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics lacks %s (%v)", missing, err)
			break
		}
	}

	// SIGTERM (podman stop, as the kubelet does) drains and exits 0.
	pm.must("stop", "-t", "30", name)
	state := strings.TrimSpace(pm.must("inspect", "--format", "{{.State.ExitCode}}", name))
	l := logs()
	if state != "0" || !strings.Contains(l, "executor stopped") {
		t.Errorf("after SIGTERM: exit code %s; logs:\n%s", state, l)
	}
	if u, err := url.Parse(amqpURL); err == nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(l, ":"+pw+"@") {
			t.Errorf("the broker password appears in the logs:\n%s", l)
		}
	}
	t.Logf("podman %s ran %s: 2 jobs answered, /healthz and /metrics served, SIGTERM exit 0", strings.Join(pm.base, " "), sum.Name)
}

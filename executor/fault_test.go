package executor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// A job on local storage whose output is a symlink out of the work
// directory is refused, as on every other backend: it does not report the
// size of /etc/passwd as its output.
func TestLocalOutputSymlinkOutsideRefused(t *testing.T) {
	b := setup(t, nil)
	dir := t.TempDir()
	body, _ := json.Marshal(map[string]any{
		"executable": "/bin/sh", "args": []any{"-c", "ln -sf /etc/passwd out.txt; echo ok > fine.txt"},
		"outputs": []any{map[string]any{"name": "fine.txt"}, map[string]any{"name": "out.txt"}},
		"options": map[string]any{"storage": "local", "workdir": dir}})
	res := b.deliver(t, body)
	if res.reply.ExitStatus != eventbus.ExitJobError {
		t.Fatalf("exit status %d, want %d (refused output); reply %+v", res.reply.ExitStatus, eventbus.ExitJobError, res.reply)
	}
	if len(res.reply.Exceptions) == 0 || !strings.Contains(res.reply.Exceptions[0], "out.txt") ||
		!strings.Contains(res.reply.Exceptions[0], "outside the work directory") {
		t.Errorf("exceptions %q, want the refused output named", res.reply.Exceptions)
	}
	if m := res.reply.Metrics; m == nil || m.OutputSize > 10 {
		t.Errorf("metrics %+v: the output size counts the symlink's target", m)
	}
}

// A local job whose outputs are real files in its directory still works,
// and a missing output counts 0 (the engine reads the directory itself).
func TestLocalOutputsCounted(t *testing.T) {
	b := setup(t, nil)
	dir := t.TempDir()
	body, _ := json.Marshal(map[string]any{
		"executable": "/bin/sh", "args": []any{"-c", "printf 12345 > a.txt; mkdir -p sub; ln -s ../a.txt sub/b.txt"},
		"outputs": []any{map[string]any{"name": "a.txt"}, map[string]any{"name": "sub/b.txt"}, map[string]any{"name": "missing.txt"}},
		"options": map[string]any{"storage": "local", "workdir": dir}})
	res := b.deliver(t, body)
	if res.reply.ExitStatus != 0 || res.reply.Metrics == nil || res.reply.Metrics.OutputSize != 10 {
		t.Fatalf("reply %+v metrics %+v, want exit 0 and output_size 10", res.reply, res.reply.Metrics)
	}
}

// deadExecutor writes the pid file of an executor that died (its pid is
// that of a reaped process) and returns its 8-hex id.
func deadExecutor(t *testing.T, root string) string {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	owner := "deadbeef"
	pf := filepath.Join(root, pidPrefix+owner+".pid")
	if err := os.WriteFile(pf, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	return owner
}

// startIn starts a shell script in dir with the given extra environment
// and returns it; the test kills it at the end if it still runs.
func startIn(t *testing.T, dir, script string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd
}

func alive(pid int) bool { return processAlive(pid) }

// A dead executor's job processes, its command and a daemon that left the
// job's process group, are ended before its work directory is removed:
// the next executor neither runs the job beside them nor deletes the
// directory they work in.
func TestSweepEndsDeadExecutorsProcesses(t *testing.T) {
	b := setup(t, nil)
	owner := deadExecutor(t, b.tmp)
	wd := filepath.Join(b.tmp, jobPrefix+owner+"-x1")
	if err := os.Mkdir(wd, 0o700); err != nil {
		t.Fatal(err)
	}
	marker := jobMarker + "=" + owner + "-0000-4000-8000-000000000000"
	pidFile := filepath.Join(wd, "daemon.pid")
	job := startIn(t, wd, "setsid sleep 300 & echo $! > daemon.pid; exec sleep 300", marker)
	var daemon int
	waitUntil(t, 5*time.Second, "the daemon's pid", func() bool {
		data, _ := os.ReadFile(pidFile)
		daemon, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		return strings.HasSuffix(string(data), "\n") && daemon > 0
	})
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })

	b.ex.sweepStale(b.tmp)

	waitUntil(t, 5*time.Second, "the job's processes to end", func() bool {
		return !alive(job.Process.Pid) && !alive(daemon)
	})
	if _, err := os.Stat(wd); !os.IsNotExist(err) {
		t.Errorf("work directory %s not removed: %v", wd, err)
	}
	if _, err := os.Stat(filepath.Join(b.tmp, pidPrefix+owner+".pid")); !os.IsNotExist(err) {
		t.Errorf("pid file of the dead executor kept: %v", err)
	}
}

// A work directory in which something still works (a process the sweep
// cannot tell as the dead executor's) is kept, and removed by a later
// sweep once nothing works in it.
func TestSweepKeepsBusyWorkDirectory(t *testing.T) {
	b := setup(t, nil)
	owner := deadExecutor(t, b.tmp)
	wd := filepath.Join(b.tmp, jobPrefix+owner+"-x2")
	if err := os.Mkdir(wd, 0o700); err != nil {
		t.Fatal(err)
	}
	other := startIn(t, wd, "exec sleep 300") // no marker
	b.ex.sweepStale(b.tmp)
	if _, err := os.Stat(wd); err != nil {
		t.Fatalf("busy work directory removed: %v", err)
	}
	if !alive(other.Process.Pid) {
		t.Fatal("a process without the marker was ended")
	}
	syscall.Kill(other.Process.Pid, syscall.SIGKILL)
	waitUntil(t, 5*time.Second, "the process to end", func() bool { return !alive(other.Process.Pid) })
	b.ex.sweepStale(b.tmp)
	if _, err := os.Stat(wd); !os.IsNotExist(err) {
		t.Errorf("work directory kept after its process ended: %v", err)
	}
}

// An executor that died but is not yet reaped (a zombie) is dead.
func TestZombieOwnerIsDead(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	waitUntil(t, 5*time.Second, "the child to become a zombie", func() bool {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return strings.Contains(string(stat), ") Z ")
	})
	if processAlive(pid) {
		t.Error("a zombie counts as alive")
	}
	if !processAlive(os.Getpid()) {
		t.Error("this process counts as dead")
	}
}

// Every job's environment carries this executor's marker, which a job's
// own env cannot remove, and never another executor's.
func TestJobEnvCarriesMarker(t *testing.T) {
	t.Setenv(jobMarker, "inherited-from-another-executor")
	b := setup(t, nil)
	want := jobMarker + "=" + b.ex.ID()
	for _, extra := range []map[string]string{nil, {"A": "1"}, {jobMarker: "hidden"}} {
		env := b.ex.jobEnv(extra)
		n := 0
		for _, kv := range env {
			if strings.HasPrefix(kv, jobMarker+"=") {
				n++
				if kv != want {
					t.Errorf("env with %v has %q, want %q", extra, kv, want)
				}
			}
		}
		if n != 1 {
			t.Errorf("env with %v has %d markers, want 1", extra, n)
		}
	}
}

// The executor announces its drain with the jobs it waits for, and its
// heartbeats say it drains.
func TestDrainingEvent(t *testing.T) {
	b := setup(t, nil)
	b.ex.setRunning(&jobRun{slot: 1}, eventbus.RunningJob{ID: "j1", Thread: 1, Phase: eventbus.PhaseExecution})
	ev := b.ex.drainingEvent("signal")
	if ev.Type != eventbus.TypeExecutorDraining || ev.Reason != "signal" || ev.Running == nil ||
		len(*ev.Running) != 1 || (*ev.Running)[0].ID != "j1" || ev.Busy == nil || *ev.Busy != 1 {
		t.Errorf("draining event %+v", ev)
	}
	if hb := b.ex.heartbeatEvent(); hb.Draining != nil {
		t.Errorf("heartbeat before the drain says draining")
	}
	b.ex.draining.Store(true)
	if hb := b.ex.heartbeatEvent(); hb.Draining == nil || !*hb.Draining {
		t.Errorf("heartbeat during the drain does not say draining")
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

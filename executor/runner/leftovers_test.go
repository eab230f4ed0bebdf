package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// tagged lists the live processes whose environment holds tag.
func tagged(tag string) []int {
	want := []byte(tag)
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, m, _ := hasEnv(pid, want, nil); m && len(alive([]int{pid})) == 1 {
			out = append(out, pid)
		}
	}
	return out
}

func testTag(t *testing.T) string {
	var b [6]byte
	rand.Read(b[:])
	return "HYPERFLOW_TEST_TAG=" + t.Name() + "-" + hex.EncodeToString(b[:])
}

// A background process the command leaves is ended at once: the command
// is answered without waiting for it (it holds stdout open) and nothing of
// it remains.
func TestBackgroundProcessEndedWithCommand(t *testing.T) {
	tag := testTag(t)
	start := time.Now()
	res := Run(context.Background(), Command{Path: "/bin/sh", Args: []string{"-c", "sleep 300 & echo started"},
		Env: append(os.Environ(), tag)})
	took := time.Since(start)
	t.Logf("answered after %v, processes ended %d", took, res.ProcessesEnded)
	if res.Err != nil || res.ExitStatus != 0 || res.Stdout != "started\n" {
		t.Fatalf("result %+v", res)
	}
	if took > 30*time.Second {
		t.Errorf("answered after %v: it waited for the background sleep", took)
	}
	if res.ProcessesEnded != 1 {
		t.Errorf("ProcessesEnded = %d, want 1 (the sleep)", res.ProcessesEnded)
	}
	if left := tagged(tag); len(left) > 0 {
		t.Errorf("processes of the command still running: %v", left)
	}
}

// A daemon that left the command's process group and session (setsid,
// its parent gone) is found by the marker and ended too, even when it
// ignores SIGTERM (SIGKILL after LeftoverGrace).
func TestEscapedDaemonEndedWithCommand(t *testing.T) {
	tag := testTag(t)
	script := `setsid sh -c 'trap "" TERM; echo $$ > daemon.pid; sleep 300 & wait' </dev/null >/dev/null 2>&1 &
while [ ! -s daemon.pid ]; do sleep 0.05; done
echo spawned`
	dir := t.TempDir()
	res := Run(context.Background(), Command{Path: "/bin/sh", Args: []string{"-c", script}, Dir: dir,
		Env: append(os.Environ(), tag)})
	t.Logf("took %v, processes ended %d", res.Finished.Sub(res.Started), res.ProcessesEnded)
	if res.Err != nil || res.ExitStatus != 0 || res.Stdout != "spawned\n" {
		t.Fatalf("result %+v", res)
	}
	b, err := os.ReadFile(dir + "/daemon.pid")
	if err != nil {
		t.Fatal(err)
	}
	daemon, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if sid := sessionOf(t, daemon); sid >= 0 && sid != daemon {
		t.Logf("daemon %d in session %d", daemon, sid)
	}
	if res.ProcessesEnded < 2 {
		t.Errorf("ProcessesEnded = %d, want 2 (the daemon shell and its sleep)", res.ProcessesEnded)
	}
	if left := tagged(tag); len(left) > 0 {
		t.Errorf("processes of the command still running: %v", left)
	}
}

func sessionOf(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// A command that leaves nothing reports nothing ended.
func TestNothingLeftNothingEnded(t *testing.T) {
	res := Run(context.Background(), Command{Path: "/bin/sh", Args: []string{"-c", "sleep 0.01; echo ok"}})
	if res.ExitStatus != 0 || res.ProcessesEnded != 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestCandidatesHoldLaterProcesses: the short look covers every process
// started after the command (whatever its group), and turns into the full
// look for a command that ran long.
func TestCandidatesHoldLaterProcesses(t *testing.T) {
	start := func(setsid bool) *exec.Cmd {
		cmd := exec.Command("sleep", "30")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !setsid, Setsid: setsid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	first := start(false)
	began := time.Now()
	later := start(true)
	pids := candidates(first.Process.Pid, began, (*reaper.Reaper)(nil))
	if pids == nil {
		t.Skip("ns_last_pid unreadable or the pids went round: the full look is used")
	}
	if !slices.Contains(pids, later.Process.Pid) {
		t.Errorf("candidates after pid %d: %d pids, without %d started later", first.Process.Pid, len(pids), later.Process.Pid)
	}
	if slices.Contains(pids, os.Getpid()) || slices.Contains(pids, first.Process.Pid) {
		t.Error("candidates hold processes started before the command, or the command itself")
	}
	if candidates(first.Process.Pid, time.Now().Add(-2*probeFor), reaper.New()) != nil {
		t.Error("a command that ran longer than probeFor does not get the full look")
	}
}

// TestOtherCommandsNotLeftovers: a process carrying the command's marker
// is a leftover, unless it is another command the executor started (its
// environ is then not read): the filter is what keeps sibling jobs' pids
// from costing reads, and it must not hide a real leftover.
func TestOtherCommandsNotLeftovers(t *testing.T) {
	marker := newMarker()
	leader := exec.Command("sleep", "30")
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.Process.Kill(); leader.Wait() })
	began := time.Now()
	marked := exec.Command("sleep", "30")
	marked.Env = append(os.Environ(), marker)
	marked.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := marked.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { marked.Process.Kill(); marked.Wait() })
	pid := marked.Process.Pid
	// Wait for the exec (the environ reads empty before it).
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(leftovers(leader.Process.Pid, marker, began, (*reaper.Reaper)(nil)), pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the marked process %d is not found as a leftover", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := leftovers(leader.Process.Pid, marker, began, knownCommand(pid)); slices.Contains(got, pid) {
		t.Errorf("a command of the executor's own (%d) is taken for a leftover: %v", pid, got)
	}
	if got := leftovers(leader.Process.Pid, marker, began, reaper.New()); !slices.Contains(got, pid) {
		t.Errorf("the filter hides a real leftover %d: %v", pid, got)
	}
}

// knownCommand is a processes that takes pid for a command of the executor.
type knownCommand int

func (k knownCommand) Registered(pid int) bool { return pid == int(k) }
func (k knownCommand) Command(pid int) bool    { return pid == int(k) }
func (knownCommand) Settle()                   {}
func (knownCommand) LastPid() (int, error)     { return procfs.LastPid() }

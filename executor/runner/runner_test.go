package runner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cmd  Command
		want int
	}{
		{name: "true", cmd: Command{Path: "/bin/true"}, want: 0},
		{name: "false via PATH", cmd: Command{Path: "false"}, want: 1},
		{name: "exit 3", cmd: Command{Path: "sh", Args: []string{"-c", "exit 3"}}, want: 3},
		{name: "exit 255", cmd: Command{Path: "sh", Args: []string{"-c", "exit 255"}}, want: 255},
		{name: "killed by SIGKILL", cmd: Command{Path: "sh", Args: []string{"-c", "kill -9 $$"}}, want: 128 + 9},
		{name: "killed by SIGTERM", cmd: Command{Path: "sh", Args: []string{"-c", "kill -TERM $$"}}, want: 128 + 15},
		{name: "fast command under a timeout", cmd: Command{Path: "/bin/true", Timeout: time.Minute}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := Run(context.Background(), tt.cmd)
			if res.ExitStatus != tt.want || res.Err != nil {
				t.Fatalf("Run() = status %d, err %v; want %d, nil (stderr %q)", res.ExitStatus, res.Err, tt.want, res.Stderr)
			}
			if res.Started.IsZero() || res.Finished.Before(res.Started) {
				t.Errorf("Started %v, Finished %v: want Started <= Finished", res.Started, res.Finished)
			}
		})
	}
}

func TestRunNotStarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cmd     Command
		wantErr string // substring of Err
	}{
		{name: "not found in PATH", cmd: Command{Path: "hf-no-such-command"}, wantErr: "hf-no-such-command"},
		{name: "not in the PATH of Env", cmd: Command{Path: "sh", Env: []string{"PATH=" + dir}}, wantErr: `"sh"`},
		{name: "Env without PATH", cmd: Command{Path: "sh", Env: []string{"HOME=/"}}, wantErr: `"sh"`},
		{name: "absolute path missing", cmd: Command{Path: filepath.Join(dir, "missing")}, wantErr: "missing"},
		{name: "not executable", cmd: Command{Path: notExec}, wantErr: "not-executable"},
		{name: "directory", cmd: Command{Path: dir}, wantErr: dir},
		{name: "bad working directory", cmd: Command{Path: "/bin/true", Dir: filepath.Join(dir, "nowhere")}, wantErr: "nowhere"},
		{name: "empty path", cmd: Command{}, wantErr: "no executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := Run(context.Background(), tt.cmd)
			if res.ExitStatus != -1 {
				t.Errorf("ExitStatus = %d, want -1", res.ExitStatus)
			}
			if res.Err == nil || !strings.Contains(res.Err.Error(), tt.wantErr) {
				t.Errorf("Err = %v, want one containing %q", res.Err, tt.wantErr)
			}
			if res.Started.IsZero() || !res.Finished.Equal(res.Started) {
				t.Errorf("Started %v, Finished %v: want equal and set", res.Started, res.Finished)
			}
		})
	}
}

func TestRunOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A symlink needs no write of an executable file, which would risk
	// ETXTBSY in parallel tests that fork.
	if err := os.Symlink("/bin/echo", filepath.Join(dir, "hf-echo")); err != nil {
		t.Fatal(err)
	}
	sh := func(script string) Command { return Command{Path: "sh", Args: []string{"-c", script}} }
	tests := []struct {
		name                   string
		cmd                    Command
		wantStdout, wantStderr string
		wantStdoutTotal        int64
	}{
		{name: "stdout and stderr apart", cmd: sh("printf out; printf err >&2"), wantStdout: "out", wantStderr: "err", wantStdoutTotal: 3},
		{name: "args passed verbatim", cmd: Command{Path: "/bin/echo", Args: []string{"a b", "$HOME", "*", ""}}, wantStdout: "a b $HOME * \n", wantStdoutTotal: 13},
		{name: "argv0 is Path as given", cmd: Command{Path: "sh", Args: []string{"-c", `printf %s "$0"`}}, wantStdout: "sh", wantStdoutTotal: 2},
		{name: "tail keeps the end", cmd: Command{Path: "sh", Args: []string{"-c", "printf 0123456789; printf abcdef >&2"}, TailSize: 4}, wantStdout: "6789", wantStderr: "cdef", wantStdoutTotal: 10},
		{name: "invalid UTF-8 replaced", cmd: sh(`printf '\377abc\376'`), wantStdout: "\uFFFDabc\uFFFD", wantStdoutTotal: 5},
		{name: "cut inside a rune", cmd: Command{Path: "sh", Args: []string{"-c", "printf 'aé€'"}, TailSize: 4}, wantStdout: "€", wantStdoutTotal: 6},
		{name: "Env given", cmd: Command{Path: "sh", Args: []string{"-c", `printf %s "$HF_TEST"`}, Env: []string{"PATH=/usr/bin:/bin", "HF_TEST=hello world"}}, wantStdout: "hello world", wantStdoutTotal: 11},
		{name: "Env given, last value wins", cmd: Command{Path: "sh", Args: []string{"-c", `printf %s "$HF_TEST"`}, Env: []string{"PATH=/nowhere", "HF_TEST=a", "HF_TEST=b", "PATH=/usr/bin:/bin"}}, wantStdout: "b", wantStdoutTotal: 1},
		{name: "Env nil inherits", cmd: sh(`printf %s "$PATH"`), wantStdout: os.Getenv("PATH"), wantStdoutTotal: int64(len(os.Getenv("PATH")))},
		{name: "looked up in the PATH of Env", cmd: Command{Path: "hf-echo", Args: []string{"hi"}, Env: []string{"PATH=/nowhere:" + dir}}, wantStdout: "hi\n", wantStdoutTotal: 3},
		{name: "Dir respected", cmd: Command{Path: "sh", Args: []string{"-c", "pwd -P"}, Dir: dir}, wantStdout: realDir + "\n", wantStdoutTotal: int64(len(realDir) + 1)},
		{name: "relative Path is relative to Dir", cmd: Command{Path: "./hf-echo", Args: []string{"rel"}, Dir: dir}, wantStdout: "rel\n", wantStdoutTotal: 4},
		{name: "stdin is empty", cmd: sh("cat; printf done"), wantStdout: "done", wantStdoutTotal: 4},
		// More than a pipe holds, written at once: the command waits for
		// the readers that start after readerDelay; a drain alone would
		// never see its exit.
		{name: "more than a pipe holds", cmd: Command{Path: "sh", Args: []string{"-c", "head -c 1000000 /dev/zero | tr '\\0' x; printf end"}, TailSize: 5}, wantStdout: "xxend", wantStdoutTotal: 1000003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := Run(context.Background(), tt.cmd)
			if res.ExitStatus != 0 || res.Err != nil {
				t.Fatalf("Run() = status %d, err %v; want 0, nil (stderr %q)", res.ExitStatus, res.Err, res.Stderr)
			}
			if res.Stdout != tt.wantStdout {
				t.Errorf("Stdout = %q, want %q", res.Stdout, tt.wantStdout)
			}
			if res.Stderr != tt.wantStderr {
				t.Errorf("Stderr = %q, want %q", res.Stderr, tt.wantStderr)
			}
			if res.StdoutTotal != tt.wantStdoutTotal {
				t.Errorf("StdoutTotal = %d, want %d", res.StdoutTotal, tt.wantStdoutTotal)
			}
			if want := int64(len(tt.wantStderr)); tt.cmd.TailSize == 0 && res.StderrTotal != want {
				t.Errorf("StderrTotal = %d, want %d", res.StderrTotal, want)
			}
		})
	}
}

func TestRunNotFoundWithExecutorPATH(t *testing.T) {
	t.Parallel()
	// hf-echo exists only in a PATH given through Env.
	res := Run(context.Background(), Command{Path: "hf-echo"})
	if res.ExitStatus != -1 || !errors.Is(res.Err, exec.ErrNotFound) {
		t.Errorf("Run() = status %d, err %v; want -1, exec.ErrNotFound", res.ExitStatus, res.Err)
	}
}

func TestRunTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		script      string
		timeout     time.Duration
		grace       time.Duration
		minDuration time.Duration // SIGKILL only after the grace period
	}{
		{name: "killed by SIGTERM", script: "sleep 300", timeout: 200 * time.Millisecond, grace: time.Minute},
		{name: "grandchild holding stdout", script: "sleep 300 & sleep 300", timeout: 200 * time.Millisecond, grace: time.Minute},
		{name: "SIGTERM ignored gets SIGKILL", script: `trap "" TERM; sleep 300`, timeout: 200 * time.Millisecond, grace: 300 * time.Millisecond, minDuration: 500 * time.Millisecond},
		{name: "SIGTERM ignored, grandchild too", script: `trap "" TERM; sleep 300 & sleep 300`, timeout: 200 * time.Millisecond, grace: 300 * time.Millisecond, minDuration: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res := Run(context.Background(), Command{Path: "sh", Args: []string{"-c", tt.script}, Timeout: tt.timeout, Grace: tt.grace})
			elapsed := time.Since(start)
			if res.ExitStatus != -3 {
				t.Errorf("ExitStatus = %d, want -3", res.ExitStatus)
			}
			if want := "timed out after " + tt.timeout.String(); res.Err == nil || res.Err.Error() != want {
				t.Errorf("Err = %v, want %q", res.Err, want)
			}
			if elapsed < tt.timeout || elapsed < tt.minDuration {
				t.Errorf("Run returned after %v, before the timeout %v or %v", elapsed, tt.timeout, tt.minDuration)
			}
			// Far below a grace period of a minute even on a loaded machine:
			// the group was killed, not waited for.
			if limit := max(tt.timeout, tt.minDuration) + 30*time.Second; elapsed > limit {
				t.Errorf("Run returned after %v, want less than %v", elapsed, limit)
			}
		})
	}
}

// TestRunKillsGroup checks that processes the command started in the
// background are gone once Run returns, whether the command timed out, was
// canceled or exited on its own.
func TestRunKillsGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		script     string
		timeout    time.Duration
		cancel     time.Duration // cancel ctx after this (0 = never)
		wantStatus int
	}{
		{name: "timeout", script: "sleep 300 & echo $! > pid; sleep 300", timeout: 200 * time.Millisecond, wantStatus: -3},
		{name: "timeout, TERM ignored", script: `trap "" TERM; sleep 300 & echo $! > pid; sleep 300`, timeout: 200 * time.Millisecond, wantStatus: -3},
		{name: "cancel", script: "sleep 300 & echo $! > pid; sleep 300", cancel: 200 * time.Millisecond, wantStatus: 128 + 15},
		{name: "command exits, leftover holds stdout", script: "sleep 300 & echo $! > pid", wantStatus: 0},
		{name: "command exits, leftover ignores TERM", script: `trap "" TERM; sleep 300 >/dev/null 2>&1 & echo $! > pid`, wantStatus: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ctx := context.Background()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(tt.cancel, cancel)
			}
			// The grace is long: a prompt return shows the group was killed
			// rather than waited for.
			grace := time.Minute
			if strings.Contains(tt.script, "trap") && tt.timeout > 0 {
				grace = 300 * time.Millisecond
			}
			start := time.Now()
			res := Run(ctx, Command{Path: "sh", Args: []string{"-c", tt.script}, Dir: dir, Timeout: tt.timeout, Grace: grace})
			elapsed := time.Since(start)
			if res.ExitStatus != tt.wantStatus {
				t.Errorf("ExitStatus = %d, want %d (err %v, stderr %q)", res.ExitStatus, tt.wantStatus, res.Err, res.Stderr)
			}
			if elapsed > 30*time.Second {
				t.Errorf("Run returned after %v", elapsed)
			}
			pid := runnerReadPID(t, filepath.Join(dir, "pid"))
			runnerWaitGone(t, pid, 10*time.Second)
		})
	}
}

// A process that left the command's group and session (setsid) and keeps
// stdout open is ended with the command (it carries the command's marker):
// Run returns at once, not after the sleep nor only after the grace.
func TestRunDetachedOutputHolder(t *testing.T) {
	t.Parallel()
	// The leftover must have left the group before the command exits:
	// wait until it says so.
	res, elapsed, pid := runWithHolder(t,
		"setsid sh -c 'echo > ready; exec sleep 300' & echo $! > pid; until [ -e ready ]; do sleep 0.01; done; echo started",
		time.Minute)
	if res.ExitStatus != 0 || res.Err != nil {
		t.Errorf("Run() = status %d, err %v; want 0, nil", res.ExitStatus, res.Err)
	}
	if res.Stdout != "started\n" {
		t.Errorf("Stdout = %q, want %q", res.Stdout, "started\n")
	}
	if elapsed > 30*time.Second {
		t.Errorf("Run returned after %v: it waited for the detached process or the grace (1m)", elapsed)
	}
	if res.ProcessesEnded != 1 {
		t.Errorf("ProcessesEnded = %d, want 1", res.ProcessesEnded)
	}
	if len(alive([]int{pid})) != 0 {
		t.Errorf("detached process %d still runs", pid)
	}
}

// An empty Env gives the command only its marker.
func TestRunEmptyEnvHasOnlyTheMarker(t *testing.T) {
	t.Parallel()
	res := Run(context.Background(), Command{Path: "/usr/bin/env", Env: []string{}})
	if res.ExitStatus != 0 || !regexp.MustCompile(`^HYPERFLOW_JOB_MARKER=[0-9a-f]{16}\n$`).MatchString(res.Stdout) {
		t.Fatalf("Run() = status %d, stdout %q; want 0 and the marker alone", res.ExitStatus, res.Stdout)
	}
}

func TestRunCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		grace  time.Duration
		want   int
	}{
		{name: "SIGTERM", script: "sleep 300", grace: time.Minute, want: 128 + 15},
		{name: "SIGTERM ignored gets SIGKILL", script: `trap "" TERM; sleep 300`, grace: 200 * time.Millisecond, want: 128 + 9},
		{name: "SIGTERM caught, exit 0 still fails", script: `trap "exit 0" TERM; sleep 300`, grace: time.Minute, want: 128 + 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(200*time.Millisecond, cancel)
			start := time.Now()
			res := Run(ctx, Command{Path: "sh", Args: []string{"-c", tt.script}, Grace: tt.grace, Timeout: time.Minute})
			elapsed := time.Since(start)
			if res.ExitStatus != tt.want {
				t.Errorf("ExitStatus = %d, want %d", res.ExitStatus, tt.want)
			}
			if !errors.Is(res.Err, context.Canceled) {
				t.Errorf("Err = %v, want one wrapping context.Canceled", res.Err)
			}
			if elapsed > 30*time.Second {
				t.Errorf("Run returned after %v", elapsed)
			}
		})
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	res := Run(ctx, Command{Path: "sh", Args: []string{"-c", "touch ran"}, Dir: dir})
	if res.ExitStatus != -1 || !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Run() = status %d, err %v; want -1, context.Canceled", res.ExitStatus, res.Err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("the command ran")
	}
}

func TestRunResourceUsage(t *testing.T) {
	t.Parallel()
	t.Run("cpu", func(t *testing.T) {
		t.Parallel()
		res := Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"}})
		if res.ExitStatus != 0 || res.Err != nil {
			t.Fatalf("Run() = status %d, err %v", res.ExitStatus, res.Err)
		}
		if res.CPUUser <= 0 || res.CPUSystem < 0 {
			t.Errorf("CPUUser = %v, CPUSystem = %v; want CPUUser > 0", res.CPUUser, res.CPUSystem)
		}
		if wall := res.Finished.Sub(res.Started); res.CPUUser > 2*wall {
			t.Errorf("CPUUser = %v, more than twice the wall time %v of a single-threaded loop", res.CPUUser, wall)
		}
	})
	t.Run("max rss of a waited-for descendant", func(t *testing.T) {
		t.Parallel()
		// tail buffers its whole input: about 50 MB resident.
		res := Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "head -c 50000000 /dev/zero | tail -c 50000000 >/dev/null"}})
		if res.ExitStatus != 0 || res.Err != nil {
			t.Fatalf("Run() = status %d, err %v (stderr %q)", res.ExitStatus, res.Err, res.Stderr)
		}
		if res.MaxRSS <= 40_000_000 {
			t.Errorf("MaxRSS = %d, want more than 40 MB", res.MaxRSS)
		}
		if res.MaxRSS > 1<<30 {
			t.Errorf("MaxRSS = %d, implausibly large (KiB not converted once?)", res.MaxRSS)
		}
	})
}

// TestRunHugeOutputBoundedMemory is not parallel so that other tests do not
// disturb the heap measurement.
func TestRunHugeOutputBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GB through a pipe")
	}
	const total = 1_000_000_000
	const tailSize = 65536

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Sample the heap while the command runs, to catch a peak.
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var high uint64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- high
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				high = max(high, m.HeapInuse)
			}
		}
	}()

	res := Run(context.Background(), Command{Path: "head", Args: []string{"-c", strconv.Itoa(total), "/dev/zero"}})
	close(stop)
	high := <-peak
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	high = max(high, after.HeapInuse)

	if res.ExitStatus != 0 || res.Err != nil {
		t.Fatalf("Run() = status %d, err %v (stderr %q)", res.ExitStatus, res.Err, res.Stderr)
	}
	if res.StdoutTotal != total {
		t.Errorf("StdoutTotal = %d, want %d", res.StdoutTotal, total)
	}
	if len(res.Stdout) != tailSize || strings.Trim(res.Stdout, "\x00") != "" {
		t.Errorf("Stdout has %d bytes (want %d zero bytes)", len(res.Stdout), tailSize)
	}
	const limit = 32 << 20
	if grown := int64(high) - int64(before.HeapInuse); grown > limit {
		t.Errorf("heap in use grew by %d bytes during the run, want at most %d", grown, limit)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > limit {
		t.Errorf("%d bytes allocated during the run, want at most %d", allocated, limit)
	}
	t.Logf("1 GB in %v; heap peak +%d KiB, allocated %d KiB",
		res.Finished.Sub(res.Started), (int64(high)-int64(before.HeapInuse))>>10, (after.TotalAlloc-before.TotalAlloc)>>10)
}

func BenchmarkRunTrue(b *testing.B) {
	ctx := context.Background()
	c := Command{Path: "/bin/true"}
	for b.Loop() {
		if res := Run(ctx, c); res.ExitStatus != 0 {
			b.Fatalf("Run() = status %d, err %v", res.ExitStatus, res.Err)
		}
	}
}

// runnerReadPID reads the pid a test command wrote to file.
func runnerReadPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read pid: %v", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s holds %q", file, b)
	}
	return pid
}

// runnerWaitGone waits until process pid no longer runs. A zombie counts as
// gone: it is dead, only not yet reaped by init (which, in a container, may
// never reap it).
func runnerWaitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if !runnerProcessRunning(pid) {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs %v after Run returned", pid, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runnerProcessRunning(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false // gone between the two checks
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	return stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// failingWriter fails every write, as a full disk would.
type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) { w.calls++; return 0, errors.New("disk full") }

// Stdout and Stderr writers get the whole output, beyond the tails, and a
// writer that fails stops neither the command nor the tails.
func TestRunAlsoWritesTo(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	res := Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "printf 0123456789; printf abcdef >&2"},
		TailSize: 4, Stdout: &out, Stderr: &errOut})
	if res.ExitStatus != 0 || res.Err != nil {
		t.Fatalf("Run() = status %d, err %v", res.ExitStatus, res.Err)
	}
	if out.String() != "0123456789" || errOut.String() != "abcdef" {
		t.Errorf("writers got %q and %q, want the whole output", out.String(), errOut.String())
	}
	if res.Stdout != "6789" || res.Stderr != "cdef" {
		t.Errorf("tails %q and %q, want %q and %q", res.Stdout, res.Stderr, "6789", "cdef")
	}

	bad := &failingWriter{}
	res = Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "printf a; sleep 0.05; printf b; exit 3"}, Stdout: bad})
	if res.ExitStatus != 3 || res.Stdout != "ab" || bad.calls == 0 {
		t.Errorf("with a failing writer: status %d, stdout %q, %d writes; want 3, \"ab\", some", res.ExitStatus, res.Stdout, bad.calls)
	}
}

// A process that escapes the look for leftovers (setsid, then an exec with
// an empty environment, so without the marker) and keeps stdout open does
// not hold the command's answer: Run stops reading Grace after the exit,
// with the output read so far.
func TestRunOutputHolderEscapedCut(t *testing.T) {
	t.Parallel()
	res, elapsed, pid := runWithHolder(t,
		"setsid env -i /bin/sh -c 'echo $$ > pid; exec sleep 120' & until [ -s pid ]; do sleep 0.01; done; echo out",
		time.Second)
	if res.ExitStatus != 0 || res.Err != nil || res.Stdout != "out\n" {
		t.Errorf("Run() = status %d, err %v, stdout %q; want 0, nil, \"out\\n\"", res.ExitStatus, res.Err, res.Stdout)
	}
	if elapsed > 60*time.Second {
		t.Errorf("Run returned after %v: it waited for the process holding stdout (120 s)", elapsed)
	}
	if len(alive([]int{pid})) != 1 {
		t.Skip("the holder was found and ended after all: the cut was not needed")
	}
}

// runWithHolder runs the shell script, which starts a process that keeps
// stdout open and writes its pid to the file "pid" of the work directory,
// with the given grace. It returns Run's result, how long Run took and the
// holder's pid (killed when the test ends). Skipped without setsid.
func runWithHolder(t *testing.T, script string, grace time.Duration) (Result, time.Duration, int) {
	t.Helper()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid:", err)
	}
	dir := t.TempDir()
	start := time.Now()
	res := Run(context.Background(), Command{Path: "sh", Args: []string{"-c", script}, Dir: dir, Grace: grace})
	elapsed := time.Since(start)
	pid := runnerReadPID(t, filepath.Join(dir, "pid"))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return res, elapsed, pid
}

// Output written after the command exited, by a process that escaped the
// look for leftovers (no marker) and ends by itself within the grace, is
// kept: the pipe read once the command exited (drain) is handed to a
// reader that goes on until the holder closes it.
func TestRunOutputAfterExitKept(t *testing.T) {
	t.Parallel()
	res, elapsed, _ := runWithHolder(t,
		"setsid env -i /bin/sh -c 'echo $$ > pid; sleep 0.3; echo late' & until [ -s pid ]; do sleep 0.01; done; echo early",
		time.Minute)
	if res.ExitStatus != 0 || res.Err != nil {
		t.Errorf("Run() = status %d, err %v; want 0, nil", res.ExitStatus, res.Err)
	}
	if res.Stdout != "early\nlate\n" || res.StdoutTotal != 11 {
		t.Errorf("Stdout = %q (%d bytes), want %q", res.Stdout, res.StdoutTotal, "early\nlate\n")
	}
	if res.ProcessesEnded != 0 {
		t.Errorf("ProcessesEnded = %d, want 0 (the holder has no marker)", res.ProcessesEnded)
	}
	if elapsed > 30*time.Second {
		t.Errorf("Run returned after %v: it waited for the grace (1m), not for the holder's end", elapsed)
	}
}

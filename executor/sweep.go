package executor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
)

// What a dead executor leaves behind, and how it is cleared.
//
// Work directories are named hyperflow-job-<first 8 hex of the executor
// id>-<random>, and each running executor keeps a file
// hyperflow-executor-<same 8>.pid holding its PID in the temporary
// directory. Every process a job starts inherits the variable
// HYPERFLOW_EXECUTOR_ID=<executor id> (jobMarker), which a process keeps in
// /proc/<pid>/environ whatever it does to its own environment later, even
// after leaving the job's process group.
//
// When an executor dies without its shutdown (SIGKILL, OOM, power), the
// direct child of each job gets SIGKILL at once (the runner's parent-death
// signal). Its other processes (grandchildren, daemons) are ended by the
// next executor that starts on the same temporary directory, and again by
// every running executor now and then (sweepInterval): for each pid file
// whose process is gone (or a zombie), the processes carrying that
// executor's marker get SIGTERM, then SIGKILL after orphanGrace; then its
// work directories are removed, each only when no process works in it any
// more (none has its current directory inside), else left for the next
// sweep. The pid file goes when nothing of that executor is left.

const (
	pidPrefix = "hyperflow-executor-"
	jobPrefix = "hyperflow-job-"
	// jobMarker is the variable every job's processes inherit.
	jobMarker = "HYPERFLOW_EXECUTOR_ID"
)

// Sweeping while running, and the time orphans get between SIGTERM and
// SIGKILL.
const (
	sweepInterval = time.Minute
	orphanGrace   = 2 * time.Second
)

// claimTmpDir sweeps what dead executors left and marks this executor's own
// directories. The returned function removes the mark.
func (e *Executor) claimTmpDir() func() {
	root := e.tmpRoot()
	e.sweepStale(root)
	pidFile := filepath.Join(root, pidPrefix+e.id[:8]+".pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		e.log.Warn("write pid file (stale work directories of this run will not be swept)", "file", pidFile, "err", err)
		return func() {}
	}
	return func() { os.Remove(pidFile) }
}

// sweepLoop sweeps every sweepInterval until ctx is done (an executor of
// the same directory may die while this one runs).
func (e *Executor) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.sweepStale(e.tmpRoot())
		}
	}
}

func (e *Executor) tmpRoot() string {
	if e.cfg.TmpDir != "" {
		return e.cfg.TmpDir
	}
	return os.TempDir()
}

// sweepStale ends the processes and removes the work directories of the
// executors of root that are gone.
func (e *Executor) sweepStale(root string) {
	pids, _ := filepath.Glob(filepath.Join(root, pidPrefix+"*.pid"))
	for _, pf := range pids {
		owner := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pf), pidPrefix), ".pid")
		data, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || processAlive(pid) || len(owner) != 8 {
			continue
		}
		if n := endMarked(jobMarker+"="+owner, orphanGrace); n > 0 {
			e.log.Warn("ended processes left running by a dead executor's jobs", "executor", owner, "processes", n)
		}
		dirs, _ := filepath.Glob(filepath.Join(root, jobPrefix+owner+"-*"))
		kept := 0
		for _, d := range dirs {
			if pid, busy := workingIn(d); busy {
				kept++
				e.log.Warn("stale work directory kept: a process still works in it", "dir", d, "pid", pid)
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				kept++
				e.log.Warn("remove stale work directory", "dir", d, "err", err)
			} else {
				e.log.Info("removed stale work directory of a stopped executor", "dir", d)
			}
		}
		if kept == 0 {
			os.Remove(pf)
		}
	}
}

// processAlive says whether pid runs: a zombie (dead, not yet reaped by its
// parent) counts as dead.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	st, err := procfs.ReadStat(pid)
	if err != nil {
		_, noProc := os.Stat("/proc/self")
		return noProc != nil // without /proc, trust kill(0)
	}
	return !st.Dead()
}

// marked lists the live processes whose initial environment holds the
// variable kv ("NAME=value", matched as a prefix of an entry).
func marked(kv string) []int {
	var out []int
	want := []byte(kv)
	pids, _ := procfs.Pids()
	self := os.Getpid()
	var env []byte
	for _, pid := range pids {
		var err error
		if env, err = procfs.Environ(pid, env); err != nil || pid == self {
			continue
		}
		if procfs.HasEntry(env, want, false) && processAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// endMarked ends the processes marked with kv: SIGTERM, then SIGKILL to
// those left after grace. It returns how many there were.
func endMarked(kv string, grace time.Duration) int {
	pids := marked(kv)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for left := pids; len(left) > 0; {
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
		left = left[:0:0]
		for _, pid := range pids {
			if processAlive(pid) {
				left = append(left, pid)
			}
		}
	}
	return len(pids)
}

// workingIn says whether a process has its current directory in dir (or
// below), and which.
func workingIn(dir string) (int, bool) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return 0, false
	}
	pids, _ := procfs.Pids()
	for _, pid := range pids {
		if pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
		if err != nil {
			continue
		}
		if cwd == real || strings.HasPrefix(cwd, real+"/") {
			if processAlive(pid) {
				return pid, true
			}
		}
	}
	return 0, false
}

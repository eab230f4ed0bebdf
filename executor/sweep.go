package executor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Work directories are named hyperflow-job-<first 8 hex of the executor
// id>-<random>, and each running executor keeps a file
// hyperflow-executor-<same 8>.pid holding its PID in the temporary
// directory. A later start removes the work directories of executors whose
// PID is gone (crashed or killed), so nothing accumulates.

const (
	pidPrefix = "hyperflow-executor-"
	jobPrefix = "hyperflow-job-"
)

// claimTmpDir sweeps stale work directories and marks this executor's own.
// The returned function removes the mark.
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

func (e *Executor) tmpRoot() string {
	if e.cfg.TmpDir != "" {
		return e.cfg.TmpDir
	}
	return os.TempDir()
}

// sweepStale removes the work directories of executors that are gone.
func (e *Executor) sweepStale(root string) {
	pids, _ := filepath.Glob(filepath.Join(root, pidPrefix+"*.pid"))
	for _, pf := range pids {
		owner := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(pf), pidPrefix), ".pid")
		data, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || processAlive(pid) {
			continue
		}
		dirs, _ := filepath.Glob(filepath.Join(root, jobPrefix+owner+"-*"))
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				e.log.Warn("remove stale work directory", "dir", d, "err", err)
			} else {
				e.log.Info("removed stale work directory of a stopped executor", "dir", d)
			}
		}
		os.Remove(pf)
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/job"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/runner"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// stderrTailSize is how much of stderr job.finished carries for a failed job.
const stderrTailSize = 2048

// jobRun is one job going through the pipeline on one worker slot. It is
// owned by the goroutine running the job.
type jobRun struct {
	id          string
	slot        int
	redelivered bool
	job         *job.Job
	storage     string // the backend's name, once known
	ps          phaseState
	held        []heldEvent // events not published yet (events.go), under ps.mu
	metrics     eventbus.Metrics
	reply       eventbus.Reply
}

// runPipeline runs a parsed job through the five steps of docs/storage.md and
// fills in the reply. Events are published in order along the way; the
// caller publishes job.finished and the reply.
func (e *Executor) runPipeline(ctx context.Context, r *jobRun) {
	job := r.job
	fail := func(status int, err error) {
		r.reply.ExitStatus = status
		r.reply.Exceptions = append(r.reply.Exceptions, err.Error())
	}

	name := job.Storage
	if name == "" {
		name = e.cfg.Storage
	}
	backend, err := e.storages.Get(name)
	if err != nil {
		fail(eventbus.ExitJobError, fmt.Errorf("options.storage: %w", err))
		return
	}
	r.storage = backend.Name()
	sess, err := backend.Open(ctx, storage.Options(job.Options))
	if err != nil {
		fail(eventbus.ExitJobError, fmt.Errorf("storage %s: %w", backend.Name(), err))
		return
	}

	dir := sess.SharedDir()
	staged := dir == ""
	if staged {
		dir, err = e.newWorkdir()
		if err != nil {
			fail(eventbus.ExitJobError, err)
			return
		}
		defer func() {
			if err := os.RemoveAll(dir); err != nil {
				e.log.Warn("remove work directory", "job", r.id, "dir", dir, "err", err)
			}
		}()
		if err := os.WriteFile(filepath.Join(dir, "signals.json"), job.Signals, 0o600); err != nil {
			fail(eventbus.ExitJobError, fmt.Errorf("write signals.json: %w", err))
			return
		}
	}

	// 2. Stage in.
	if staged {
		tr := &storage.Transfer{}
		start := time.Now()
		r.metrics.Timestamps.StageInStarted = eventbus.Timestamp(start)
		e.enterPhase(ctx, r, eventbus.PhaseStageIn, &eventbus.Event{Type: eventbus.TypeStageInStarted}, tr)
		n, err := storage.Staging{Concurrency: e.cfg.StagingConcurrency, Transfer: tr}.In(ctx, sess, dir, job.InputFiles)
		end := time.Now()
		r.metrics.Timestamps.StageInFinished = eventbus.Timestamp(end)
		r.metrics.StageIn = end.Sub(start).Seconds()
		r.metrics.InputSize = n
		e.leavePhase(r, &eventbus.Event{Type: eventbus.TypeStageInFinished,
			Time: eventbus.Ptr(r.metrics.StageIn), Bytes: eventbus.Ptr(n)})
		if err != nil {
			fail(eventbus.ExitJobError, err)
			return
		}
	} else {
		r.metrics.InputSize = storage.LocalSizes(dir, job.InputFiles)
	}

	// 3. Run.
	e.enterPhase(ctx, r, eventbus.PhaseExecution,
		&eventbus.Event{Type: eventbus.TypeExecStarted, Executable: job.Executable}, nil)
	timeout := job.Timeout
	if timeout == 0 {
		timeout = e.cfg.JobTimeout
	}
	res := runner.Run(ctx, runner.Command{
		Path:     job.Executable,
		Args:     job.Args,
		Env:      e.jobEnv(job.Env),
		Dir:      dir,
		Timeout:  timeout,
		TailSize: e.cfg.OutputTail,
		OnStart:  func(pid int) { r.ps.pid.Store(int64(pid)) },
		Reaper:   e.reaper,
	})
	r.metrics.Timestamps.ExecutionStarted = eventbus.Timestamp(res.Started)
	r.metrics.Timestamps.ExecutionFinished = eventbus.Timestamp(res.Finished)
	r.metrics.Execution = res.Finished.Sub(res.Started).Seconds()
	r.metrics.CPUUser = res.CPUUser.Seconds()
	r.metrics.CPUSystem = res.CPUSystem.Seconds()
	r.metrics.MaxRSS = res.MaxRSS
	r.metrics.ProcessesEnded = int64(res.ProcessesEnded)
	r.reply.ExitStatus = res.ExitStatus
	r.reply.Stdout = res.Stdout
	r.reply.Stderr = res.Stderr
	m := r.metrics
	e.leavePhase(r, &eventbus.Event{Type: eventbus.TypeExecFinished, Executable: job.Executable,
		ExitStatus: eventbus.Ptr(res.ExitStatus), Time: eventbus.Ptr(m.Execution), Metrics: &m})
	if res.ExitStatus != 0 {
		r.reply.Exceptions = append(r.reply.Exceptions, commandError(res))
		// Outputs of a failed command are not staged out: they may be
		// missing or partial, and a stage-out error would hide the
		// command's own exit status.
		return
	}

	// 4. Stage out.
	if !staged {
		n, err := storage.LocalOutputs(dir, job.OutputFiles)
		r.metrics.OutputSize = n
		if err != nil {
			fail(eventbus.ExitJobError, fmt.Errorf("stage out: %w", err))
		}
		return
	}
	tr := &storage.Transfer{}
	start := time.Now()
	r.metrics.Timestamps.StageOutStarted = eventbus.Timestamp(start)
	e.enterPhase(ctx, r, eventbus.PhaseStageOut, &eventbus.Event{Type: eventbus.TypeStageOutStarted}, tr)
	n, err := storage.Staging{Concurrency: e.cfg.StagingConcurrency, Transfer: tr}.Out(ctx, sess, dir, job.OutputFiles)
	end := time.Now()
	r.metrics.Timestamps.StageOutFinished = eventbus.Timestamp(end)
	r.metrics.StageOut = end.Sub(start).Seconds()
	r.metrics.OutputSize = n
	e.leavePhase(r, &eventbus.Event{Type: eventbus.TypeStageOutFinished,
		Time: eventbus.Ptr(r.metrics.StageOut), Bytes: eventbus.Ptr(n)})
	if err != nil {
		fail(eventbus.ExitJobError, err)
	}
}

// commandError is the exception of a command that did not exit with 0.
func commandError(res runner.Result) string {
	switch {
	case res.ExitStatus == eventbus.ExitNotStarted, res.ExitStatus == eventbus.ExitTimeout:
		if res.Err != nil {
			return "command " + res.Err.Error()
		}
		return fmt.Sprintf("command failed with status %d", res.ExitStatus)
	case res.ExitStatus > 128:
		sig := syscall.Signal(res.ExitStatus - 128)
		return fmt.Sprintf("command killed by signal %d (%s)", int(sig), sig)
	default:
		return fmt.Sprintf("command exited with status %d", res.ExitStatus)
	}
}

// newWorkdir creates a job's private work directory (mode 0700).
func (e *Executor) newWorkdir() (string, error) {
	root := e.tmpRoot()
	dir, err := os.MkdirTemp(root, e.workdirPrefix())
	if err != nil {
		return "", fmt.Errorf("create work directory in %s: %w", root, err)
	}
	return dir, nil
}

func (e *Executor) workdirPrefix() string { return jobPrefix + e.id[:8] + "-" }

// jobEnv is the executor's environment (minus the broker URL) with the
// job's variables added.
func (e *Executor) jobEnv(extra map[string]string) []string {
	if len(extra) == 0 {
		return e.baseEnv
	}
	env := make([]string, 0, len(e.baseEnv)+len(extra))
	for _, kv := range e.baseEnv {
		k, _, _ := strings.Cut(kv, "=")
		if _, overridden := extra[k]; !overridden || k == jobMarker {
			env = append(env, kv)
		}
	}
	for k, v := range extra {
		if k == jobMarker {
			continue // the marker that ends a dead executor's processes stays
		}
		env = append(env, k+"="+v)
	}
	return env
}

package workerpool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/runner"
)

// outcome is how a task ended.
type outcome struct {
	code       int      // the exit code written to Redis
	exceptions []string // why it failed, for events and logs
	stderr     string   // tail of the last attempt's stderr
	skipped    bool     // already completed: nothing run, nothing written
	killed     bool     // stopped by a shutdown: not answered, requeued
	metrics    eventbus.Metrics
}

// runTask runs one task on a slot, as the listener's handleJob does: skip
// it if the engine has it completed already, check its message, wait for
// its inputs if asked to, then run its command up to TaskAttempts times
// with a random backoff between attempts. It never writes the completion
// (the caller does) and never panics.
func (p *Pool) runTask(t Task, slot int, redelivered bool, deliveries int) (out outcome) {
	ctx := p.jobCtx
	started := time.Now()
	out.metrics = eventbus.Metrics{Executor: p.id, Thread: int64(slot), Hostname: p.hostname}
	out.metrics.Timestamps.JobStarted = eventbus.Timestamp(started)
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic while running a task", "task", t.ID, "panic", r)
			out.code = eventbus.ExitJobError
			out.exceptions = append(out.exceptions, fmt.Sprintf("executor error: %v", r))
		}
		out.metrics.Timestamps.JobFinished = eventbus.Timestamp(time.Now())
	}()

	tr := p.openTrace(t.ID)
	defer func() {
		if !out.killed && !out.skipped {
			tr.info("handler finished, code= %d", out.code)
		}
		if err := tr.close(); err != nil {
			p.log.Warn("task trace file", "task", t.ID, "err", err)
		}
	}()
	tr.start(p.baseEnv, p.handler)
	done, err := p.store.Completed(ctx, t.ID)
	if err != nil {
		if ctx.Err() != nil {
			out.killed = true
			return out
		}
		// Redis refuses the check (not an outage): run the task as if
		// it were not completed; its completion decides the rest.
		p.log.Warn("cannot tell whether the task was completed already; running it", "task", t.ID, "err", err)
	}
	if done {
		p.log.Warn("task already completed by the engine: not run again", "task", t.ID)
		tr.warn("Warning: unexpected restart of job %s (already succesfully completed)!", t.ID)
		out.skipped = true
		return out
	}
	tr.info("jobMessage:  %s", t.Raw)

	executable, name := "", ""
	if t.Job != nil {
		executable, name = t.Job.Executable, t.Job.Name
	}
	p.setRunning(slot, eventbus.RunningJob{ID: string(t.ID), Thread: int64(slot), Phase: eventbus.PhaseExecution,
		Since: eventbus.Timestamp(started), Executable: executable})
	defer p.clearRunning(slot)
	p.emit(ctx, slot, t.ID, &eventbus.Event{Type: eventbus.TypeJobStarted, Executable: executable,
		Name: name, Queue: p.cfg.PoolQueue, Redelivered: eventbus.Ptr(redelivered), DeliveryCount: deliveredBefore(deliveries)})

	if t.Err != nil {
		out.code = eventbus.ExitJobError
		out.exceptions = []string{"job message refused: " + t.Err.Error()}
		tr.line("ERROR", "%s", out.exceptions[0])
		return out
	}
	job := t.Job
	if p.cfg.WaitForInputFiles && len(job.Inputs) > 0 {
		if err := waitForInputs(ctx, p.workDir, p.cfg.InputDir, job.Inputs, p.cfg.FileWatchRetries, p.waitDelay); err != nil {
			if ctx.Err() != nil {
				out.killed = true
				return out
			}
			out.code = eventbus.ExitJobError
			out.exceptions = []string{err.Error()}
			tr.info("Error waiting for input files: %v", err)
			return out
		}
		tr.info("All input files ready!")
	}
	out.metrics.InputSize = p.sizeOf(job.Inputs, true)
	tr.info("Job command: '%s'", commandLine(job))

	logs := p.openTaskLogs(t.ID)
	defer logs.close(p)
	for attempt := 1; ; attempt++ {
		res, err := p.attempt(ctx, slot, t.ID, job, logs, tr, attempt)
		out.metrics.Timestamps.ExecutionStarted = eventbus.Timestamp(res.Started)
		out.metrics.Timestamps.ExecutionFinished = eventbus.Timestamp(res.Finished)
		out.metrics.Execution += res.Finished.Sub(res.Started).Seconds()
		out.metrics.CPUUser += res.CPUUser.Seconds()
		out.metrics.CPUSystem += res.CPUSystem.Seconds()
		out.metrics.MaxRSS = max(out.metrics.MaxRSS, res.MaxRSS)
		out.metrics.ProcessesEnded += int64(res.ProcessesEnded)
		out.code, out.stderr = res.ExitStatus, res.Stderr
		out.exceptions = nil
		if err != nil {
			out.code = eventbus.ExitJobError
			out.exceptions = []string{err.Error()}
		} else if res.Err != nil {
			out.exceptions = []string{res.Err.Error()}
		}
		if ctx.Err() != nil {
			out.killed = true
			return out
		}
		if out.code == 0 || attempt >= p.cfg.TaskAttempts {
			break
		}
		pause := p.backoff(attempt)
		tr.info("Retrying job, number of retries left: %d", p.cfg.TaskAttempts-attempt)
		tr.info("Backoff delay: %d s", int(pause.Seconds()))
		p.log.Info("task failed; retrying", "task", t.ID, "attempt", attempt, "exit_status", out.code,
			"attempts_left", p.cfg.TaskAttempts-attempt, "backoff", pause)
		if !eventbus.Sleep(ctx, pause) {
			out.killed = true
			return out
		}
	}
	if out.code != 0 && len(out.exceptions) == 0 {
		out.exceptions = []string{fmt.Sprintf("command exited with status %d", out.code)}
	}
	out.metrics.OutputSize = p.sizeOf(job.Outputs, false)
	tr.info("Job inputs: %s", fileSizes(job.Inputs, func(s Signal) string { return inputPath(p.workDir, p.cfg.InputDir, s) }))
	tr.info("Job outputs: %s", fileSizes(job.Outputs, func(s Signal) string { return outputPath(p.workDir, p.cfg.OutputDir, s) }))
	return out
}

// attempt runs the command once. The error is set when the attempt could
// not be made (an output file of the message cannot be opened).
func (p *Pool) attempt(ctx context.Context, slot int, id TaskID, job *JobMessage, logs *taskLogs, tr *trace, n int) (runner.Result, error) {
	var stdout, stderr *sink
	var err error
	if job.Stdout != "" {
		if stdout, err = openSink(absIn(p.workDir, job.Stdout), job.StdoutAppend); err != nil {
			return notRun(), fmt.Errorf("stdout: %w", err)
		}
	}
	if job.Stderr != "" {
		if stderr, err = openSink(absIn(p.workDir, job.Stderr), job.StderrAppend); err != nil {
			if stdout != nil {
				stdout.Close()
			}
			return notRun(), fmt.Errorf("stderr: %w", err)
		}
	}
	path, args := job.Executable, rewriteInputArgs(job.Args, job.Inputs, p.cfg.InputDir)
	if job.Shell {
		// Node's spawn with {shell: true}: the words joined with spaces.
		path, args = "/bin/sh", []string{"-c", strings.Join(append([]string{path}, args...), " ")}
	}
	p.emit(ctx, slot, id, &eventbus.Event{Type: eventbus.TypeExecStarted, Executable: job.Executable})
	res := runner.Run(ctx, runner.Command{
		Path: path, Args: args, Env: p.baseEnv, Dir: p.workDir, Reaper: p.reaper,
		Timeout: p.cfg.JobTimeout, TailSize: p.cfg.OutputTail,
		Stdout: teeWriter(stdout, logs.stdout), Stderr: teeWriter(stderr, logs.stderr),
		OnStart: func(pid int) {
			tr.info("command: %s", mustJSON(map[string]any{"pid": pid, "name": job.Name, "command": append([]string{path}, args...)}))
			tr.info("job started: %s", job.Name)
		},
	})
	if res.Err != nil && res.ExitStatus == eventbus.ExitNotStarted {
		tr.line("ERROR", "%v", res.Err)
	}
	if res.ExitStatus != 0 {
		tr.info("job failed (try %d): '%s'", n, commandLine(job))
	} else {
		tr.info("job successful (try %d): %s", n, job.Name)
	}
	tr.info("job exit code: %d", res.ExitStatus)
	for _, s := range []*sink{stdout, stderr} {
		if s != nil {
			if err := s.Close(); err != nil {
				p.log.Warn("task output file", "task", id, "err", err)
			}
		}
	}
	p.log.Debug("attempt finished", "task", id, "attempt", n, "exit_status", res.ExitStatus)
	p.emit(ctx, slot, id, &eventbus.Event{Type: eventbus.TypeExecFinished, Executable: job.Executable,
		ExitStatus: eventbus.Ptr(res.ExitStatus), Time: eventbus.Ptr(res.Finished.Sub(res.Started).Seconds()),
		Metrics: &eventbus.Metrics{CPUUser: res.CPUUser.Seconds(), CPUSystem: res.CPUSystem.Seconds(), MaxRSS: res.MaxRSS,
			ProcessesEnded: int64(res.ProcessesEnded)}})
	return res, nil
}

func notRun() runner.Result {
	now := time.Now()
	return runner.Result{ExitStatus: eventbus.ExitJobError, Started: now, Finished: now}
}

// backoff is the listener's pause before attempt n+1: a whole number of
// seconds drawn below seed * min(n, 5).
func (p *Pool) backoff(n int) time.Duration {
	limit := p.cfg.BackoffSeed * min(n, 5)
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.N(limit)) * time.Second
}

// sizeOf adds up the sizes of the signals' files that exist.
func (p *Pool) sizeOf(sigs []Signal, inputs bool) int64 {
	var n int64
	for _, s := range sigs {
		path := outputPath(p.workDir, p.cfg.OutputDir, s)
		if inputs {
			path = inputPath(p.workDir, p.cfg.InputDir, s)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// taskLogs are a task's logs-hf files, shared by its attempts.
type taskLogs struct{ stdout, stderr *sink }

// openTaskLogs opens the task's stdout and stderr files in the log
// directory; a file that cannot be opened is logged and left out (the
// task still runs).
func (p *Pool) openTaskLogs(id TaskID) *taskLogs {
	l := &taskLogs{}
	var err error
	if l.stdout, err = openSink(StdoutLogName(p.logDir, id, p.handler), false); err != nil {
		p.log.Warn("task log file", "task", id, "err", err)
	}
	if l.stderr, err = openSink(StderrLogName(p.logDir, id, p.handler), false); err != nil {
		p.log.Warn("task log file", "task", id, "err", err)
	}
	return l
}

func (l *taskLogs) close(p *Pool) {
	for _, s := range []*sink{l.stdout, l.stderr} {
		if s != nil {
			if err := s.Close(); err != nil {
				p.log.Warn("task log file", "err", err)
			}
		}
	}
}

// deliveredBefore is job.started's delivery_count: the deliveries of the
// message before this one (the tracker's count, or the broker's
// x-delivery-count when higher), nil for a first delivery.
func deliveredBefore(deliveries int) *int64 {
	if deliveries <= 1 {
		return nil
	}
	return eventbus.Ptr(int64(deliveries - 1))
}

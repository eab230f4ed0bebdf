package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// Defaults for the zero values of Command.TailSize and Command.Grace.
const (
	runnerDefaultTailSize = 64 << 10
	runnerDefaultGrace    = 5 * time.Second
)

// Command is what to run. It is never run through a shell.
type Command struct {
	// Path is the executable. Without a slash it is looked up in PATH with
	// exec.LookPath semantics: the PATH of Env if Env is given (none there
	// means not found), else the executor's own. A relative path with a
	// slash is relative to Dir. argv[0] is Path as given.
	Path string
	// Args are the arguments after the executable (argv[1:]).
	Args []string
	// Env is the full environment, "K=V" each (nil: the executor's own).
	Env []string
	// Dir is the working directory ("" = the executor's).
	Dir string
	// Timeout bounds the run (0 = none). When it expires the process group
	// is terminated as described at Run, and ExitStatus is eventbus.ExitTimeout.
	Timeout time.Duration
	// TailSize is how many bytes of stdout and of stderr are kept: the last
	// TailSize bytes of each (0 = 65536).
	TailSize int
	// Grace is how long a SIGTERM to the process group has before SIGKILL
	// (0 = 5s). It also bounds how long Run waits, after the command and
	// its group are gone, for output still held open by processes that
	// left the group.
	Grace time.Duration
	// OnStart, when set, is called with the process id (which is also its
	// process group id) once the command has started.
	OnStart func(pid int)
	// Stdout and Stderr, when set, also receive everything the command
	// writes to its stdout and stderr (besides the tails), for example
	// files. A write error there is ignored (the writer should keep it):
	// it never stops the command or the tails.
	Stdout, Stderr io.Writer
	// Reaper, when set, registers the command while it runs so that the
	// orphan reaper never reaps it (see package reaper).
	Reaper *reaper.Reaper
}

// Result is the outcome of Run.
type Result struct {
	// ExitStatus is the exit code 0..255; 128+N if the command was killed
	// by signal N; eventbus.ExitNotStarted (-1) if it could not be started (or
	// its end could not be observed); eventbus.ExitTimeout (-3) if it ran past
	// Command.Timeout and was killed.
	ExitStatus int
	// Stdout and Stderr are the kept tails as valid UTF-8 (see Tail.String).
	Stdout, Stderr string
	// StdoutTotal and StderrTotal count every byte the command wrote.
	StdoutTotal, StderrTotal int64
	// Started and Finished bracket the run (equal when nothing started).
	Started, Finished time.Time
	// CPUUser and CPUSystem are the CPU times of the command and of the
	// descendants it waited for (the wait4 rusage of the child).
	CPUUser, CPUSystem time.Duration
	// MaxRSS is the largest resident set size, in bytes, of the command or
	// of any descendant it waited for.
	MaxRSS int64
	// ProcessesEnded counts the processes the command left running when
	// it exited (in its group, or carrying its marker after leaving it),
	// ended by Run (see leftovers.go).
	ProcessesEnded int
	// Err says why the command could not start, that it timed out or that
	// ctx was canceled. It is nil for a normal exit, even a non-zero one.
	Err error
}

// Run runs c and waits for it. It never panics and always returns a Result.
//
// The command runs in its own process group (Setpgid), with stdin from
// /dev/null and stdout and stderr written into Tails, so memory stays
// bounded whatever it prints.
//
// Termination: when c.Timeout expires or ctx is done, the whole group gets
// SIGTERM (and SIGCONT, so that stopped processes see it), then SIGKILL if
// the command itself has not exited after c.Grace. A timeout gives
// ExitStatus eventbus.ExitTimeout; a cancellation gives the signal status, 128+15 or 128+9
// (128+15 as well if the command caught SIGTERM and exited by itself, so a
// canceled command never reads as a success).
//
// Death of the caller: the command gets SIGKILL when the process that
// started it dies (a parent-death signal), so that a job does not outlive a
// killed executor. Its children are not reached by that signal; the
// executor ends them at its next start (see package executor, sweep.go).
//
// Leftovers: once the command (the group leader) has exited, for whatever
// reason, whatever remains of its process group, and every process that
// left the group but carries the command's marker (JobMarker), gets
// SIGTERM, then SIGKILL after LeftoverGrace (leftovers.go). A job's
// background processes must not outlive it: they would hold its work
// directory and its output pipes. If something still keeps stdout or
// stderr open, Run stops reading c.Grace after the command's exit and
// the later output is lost.
//
// The group is signalled only while the leader is not yet reaped (it is
// watched with waitid(WNOWAIT) and reaped afterwards), so its process group
// id cannot have been recycled for other processes. This is why Run does
// its own signalling instead of exec.CommandContext's Cancel, which may run
// after the reap.
func Run(ctx context.Context, c Command) (res Result) {
	var pgid int // set once the process has started
	defer func() {
		if r := recover(); r != nil {
			if pgid > 1 {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
			now := time.Now()
			if res.Started.IsZero() {
				res.Started = now
			}
			res.Finished = now
			res.ExitStatus = eventbus.ExitNotStarted
			res.Err = fmt.Errorf("run %s: internal error: %v\n%s", c.Path, r, debug.Stack())
		}
	}()
	return run(ctx, c, &pgid)
}

func run(ctx context.Context, c Command, pgid *int) Result {
	if ctx == nil {
		ctx = context.Background()
	}
	tailSize := c.TailSize
	if tailSize <= 0 {
		tailSize = runnerDefaultTailSize
	}
	grace := c.Grace
	if grace <= 0 {
		grace = runnerDefaultGrace
	}

	notStarted := func(err error) Result {
		now := time.Now()
		return Result{ExitStatus: eventbus.ExitNotStarted, Started: now, Finished: now, Err: err}
	}
	path, err := resolveExecutable(c.Path, c.Env)
	if err != nil {
		return notStarted(fmt.Errorf("could not start %q: %w", c.Path, err))
	}
	if c.Dir != "" {
		// Checked here for a clear message: a failed chdir in the child is
		// reported as if the executable were missing.
		if fi, err := os.Stat(c.Dir); err != nil {
			return notStarted(fmt.Errorf("could not start %q: working directory: %w", c.Path, err))
		} else if !fi.IsDir() {
			return notStarted(fmt.Errorf("could not start %q: working directory %s: %w", c.Path, c.Dir, syscall.ENOTDIR))
		}
	}
	if ctx.Err() != nil {
		return notStarted(fmt.Errorf("could not start %q: %w", c.Path, context.Cause(ctx)))
	}

	stdout, stderr := NewTail(tailSize), NewTail(tailSize)
	outPipe, err := newOutputPipe("stdout", alsoTo(stdout, c.Stdout))
	if err != nil {
		return notStarted(fmt.Errorf("could not start %q: %w", c.Path, err))
	}
	errPipe, err := newOutputPipe("stderr", alsoTo(stderr, c.Stderr))
	if err != nil {
		outPipe.abandon()
		return notStarted(fmt.Errorf("could not start %q: %w", c.Path, err))
	}
	pidfd := -1
	marker := newMarker()
	cmd := &exec.Cmd{
		Path:   path,
		Args:   append([]string{c.Path}, c.Args...),
		Env:    withMarker(c.Env, marker),
		Dir:    c.Dir,
		Stdout: outPipe.w,
		Stderr: errPipe.w,
		// PidFD: a descriptor of the process, to watch its exit
		// (exitWatch).
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, PidFD: &pidfd},
	}
	if f := devNull(); f != nil {
		cmd.Stdin = f // else exec opens /dev/null itself
	}

	started := time.Now()
	err = c.Reaper.Start(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		outPipe.abandon()
		errPipe.abandon()
		return notStarted(fmt.Errorf("could not start %q: %w", c.Path, err))
	}
	outPipe.childHasIt()
	errPipe.childHasIt()
	defer c.Reaper.Done(cmd.Process.Pid) // after cmd.Wait
	*pgid = cmd.Process.Pid              // Setpgid with Pgid 0: the group id is the pid
	if c.OnStart != nil {
		c.OnStart(cmd.Process.Pid)
	}

	// Watch the leader's exit without reaping it, so that its pid, and so
	// its process group id, stay reserved until cmd.Wait below. With a
	// pidfd the job's goroutine waits through the runtime's poller (no
	// goroutine, no thread blocked in waitid); without one (old kernels) a
	// goroutine blocks in waitid(WNOWAIT), or, if that cannot be used,
	// reaps with cmd.Wait itself (reaped), and the group is then signalled
	// after the reap, which is only safe as long as the pid is not
	// recycled meanwhile.
	var (
		watch   exitWaiter
		reaped  bool
		waitErr error
	)
	if w, err := newPidfdWatch(pidfd); err == nil {
		watch = w
	} else {
		if pidfd >= 0 {
			syscall.Close(pidfd)
		}
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			if waitExitNoReap(*pgid) != nil {
				reaped, waitErr = true, cmd.Wait()
			}
		}()
		watch = chanWatch(exited)
	}
	defer watch.close()

	var deadline time.Time
	if c.Timeout > 0 {
		deadline = started.Add(c.Timeout)
	}
	// A command that exits within readerDelay has its output read
	// afterwards (finishPipes); a longer one gets readers now (pipes.go).
	first := started.Add(readerDelay)
	if !deadline.IsZero() && deadline.Before(first) {
		first = deadline
	}
	why := watch.wait(ctx, first)
	if why != waitExited {
		outPipe.start()
		errPipe.start()
		if why == waitDeadline {
			why = watch.wait(ctx, deadline)
		}
	}
	var timedOut, canceled bool
	switch why {
	case waitExited:
	case waitDeadline:
		timedOut = terminateGroup(*pgid, grace, watch)
	case waitCanceled:
		canceled = terminateGroup(*pgid, grace, watch)
	}

	// The leader has exited: end what remains of it (see Run).
	ended := endLeftovers(*pgid, marker, LeftoverGrace, started, c.Reaper)
	if !reaped {
		waitErr = cmd.Wait()
	}
	// Output pipes still held by processes outside the group (which
	// escaped the look for leftovers) are read for grace more at most.
	finishPipes(grace, outPipe, errPipe)

	res := Result{
		Started:     started,
		Finished:    time.Now(),
		Stdout:      stdout.String(),
		Stderr:      stderr.String(),
		StdoutTotal: stdout.Total(),
		StderrTotal: stderr.Total(),

		ProcessesEnded: ended,
	}
	state := cmd.ProcessState
	if state == nil {
		res.ExitStatus = eventbus.ExitNotStarted
		res.Err = fmt.Errorf("wait for %q: %w", c.Path, waitErr)
		return res
	}
	ws, _ := state.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		res.ExitStatus = 128 + int(ws.Signal())
	default:
		res.ExitStatus = state.ExitCode()
	}
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.CPUUser = time.Duration(ru.Utime.Nano())
		res.CPUSystem = time.Duration(ru.Stime.Nano())
		res.MaxRSS = int64(ru.Maxrss) * 1024 // Linux reports KiB
	}
	switch {
	case timedOut:
		res.ExitStatus = eventbus.ExitTimeout
		res.Err = fmt.Errorf("timed out after %v", c.Timeout)
	case canceled:
		if !ws.Signaled() {
			res.ExitStatus = 128 + int(syscall.SIGTERM)
		}
		res.Err = fmt.Errorf("canceled: %w", context.Cause(ctx))
	}
	return res
}

var (
	devNullOnce sync.Once
	devNullFile *os.File
)

// devNull is /dev/null opened once, the stdin of every command (exec would
// open and close it for each), or nil if it cannot be opened.
func devNull() *os.File {
	devNullOnce.Do(func() {
		if f, err := os.Open(os.DevNull); err == nil {
			devNullFile = f
		}
	})
	return devNullFile
}

// terminateGroup sends SIGTERM (and SIGCONT) to the group, then SIGKILL if
// the leader has not exited after grace, and returns once it has exited. It
// reports false, doing nothing, if the leader had already exited.
func terminateGroup(pgid int, grace time.Duration, watch exitWaiter) bool {
	if watch.exited() {
		return false // the exit won the race with the timer or ctx
	}
	signalGroup(pgid, syscall.SIGTERM)
	signalGroup(pgid, syscall.SIGCONT)
	if watch.wait(nil, time.Now().Add(grace)) != waitExited {
		signalGroup(pgid, syscall.SIGKILL)
		watch.wait(nil, time.Time{})
	}
	return true
}

// signalGroup sends sig to process group pgid. Errors are ignored: ESRCH
// means the group is already gone, and nothing better can be done on EPERM
// (a member that changed its credentials).
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid <= 1 {
		return // never signal our own group (0) or every process (-1)
	}
	_ = syscall.Kill(-pgid, sig)
}

// waitExitNoReap blocks until process pid has exited, without reaping it:
// its pid, and so its process group id, stay reserved until cmd.Wait.
func waitExitNoReap(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("waitid %d: %w", pid, err)
			}
			return nil
		}
	}
}

// resolveExecutable returns the path to execute for name: name itself if it
// has a slash, else its exec.LookPath resolution in the PATH of env (if env
// is not nil) or of the executor.
func resolveExecutable(name string, env []string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("no executable given")
	case strings.Contains(name, "/"):
		return name, nil
	case env == nil:
		return exec.LookPath(name)
	}
	pathList := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathList = v // the last one wins, as in exec.Cmd
		}
	}
	return lookPathIn(name, pathList)
}

// lookPathIn is exec.LookPath with pathList in place of $PATH.
func lookPathIn(name, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "." // an empty element means the current directory
		}
		p := filepath.Join(dir, name)
		if isExecutableFile(p) == nil {
			if !filepath.IsAbs(p) {
				return p, &exec.Error{Name: name, Err: exec.ErrDot}
			}
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// isExecutableFile is exec's findExecutable: nil if file is a regular
// file the executor may execute.
func isExecutableFile(file string) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	err = unix.Faccessat(unix.AT_FDCWD, file, unix.X_OK, unix.AT_EACCESS)
	if err == nil || (err != unix.ENOSYS && err != unix.EPERM) {
		return err
	}
	if fi.Mode()&0o111 != 0 {
		return nil
	}
	return fs.ErrPermission
}

// alsoTo returns tail itself when extra is nil (so that exec copies into
// it with Tail.ReadFrom), else a writer giving every write to both, the
// errors of extra ignored.
func alsoTo(tail *Tail, extra io.Writer) io.Writer {
	if extra == nil {
		return tail
	}
	return teeWriter{tail: tail, extra: extra}
}

type teeWriter struct {
	tail  *Tail
	extra io.Writer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.tail.Write(p)
	_, _ = w.extra.Write(p)
	return len(p), nil
}

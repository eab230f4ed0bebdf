package runner

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waitResult is why exitWaiter.wait returned.
type waitResult int

const (
	waitExited   waitResult = iota // the command (the group leader) exited
	waitDeadline                   // the deadline passed
	waitCanceled                   // ctx is done
)

// exitWaiter observes the exit of the command without reaping it: its pid,
// and so its process group id, stay reserved until cmd.Wait, so the group
// can be signalled safely until then.
type exitWaiter interface {
	// wait returns once the command exited (checked first), the deadline
	// passed (zero: none) or ctx is done (nil: never).
	wait(ctx context.Context, deadline time.Time) waitResult
	// exited reports whether the command has exited, without waiting.
	exited() bool
	close()
}

// pidfdWatch waits on a pidfd of the command through the runtime's poller
// (a pidfd becomes readable when its process exits): the job's own
// goroutine parks until the exit, with no goroutine or thread of its own,
// and timeouts and cancellation are read deadlines. It checks the exit with
// waitid(P_PIDFD, WNOWAIT), which leaves the reaping to cmd.Wait.
type pidfdWatch struct {
	f  *os.File
	rc syscall.RawConn
}

var (
	pidfdProbe    sync.Once
	pidfdProbeErr error
)

// newPidfdWatch takes over fd, a pidfd of the command (-1: none). On error
// fd is closed and the caller falls back to chanWatch.
func newPidfdWatch(fd int) (*pidfdWatch, error) {
	if fd < 0 {
		return nil, errors.New("no pidfd")
	}
	// Probe, once per process: waitid on a pidfd needs Linux 5.4.
	pidfdProbe.Do(func() {
		var info unix.Siginfo
		pidfdProbeErr = waitidNoHang(fd, &info)
	})
	if pidfdProbeErr != nil {
		syscall.Close(fd)
		return nil, pidfdProbeErr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	rc, err := f.SyscallConn()
	if err == nil {
		// Fails with os.ErrNoDeadline when the poller did not take the
		// descriptor: waiting would then block a thread.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pidfdWatch{f: f, rc: rc}, nil
}

func waitidNoHang(fd int, info *unix.Siginfo) error {
	for {
		err := unix.Waitid(unix.P_PIDFD, fd, info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// check reports whether the command has exited. A failing waitid (the
// process reaped by someone else: ECHILD) counts as an exit: cmd.Wait then
// says what happened.
func (w *pidfdWatch) check(fd uintptr) bool {
	var info unix.Siginfo
	if err := waitidNoHang(int(fd), &info); err != nil {
		return true
	}
	return info.Signo != 0 // zeroed by WNOHANG while the process runs
}

func (w *pidfdWatch) exited() bool {
	done := true
	w.rc.Control(func(fd uintptr) { done = w.check(fd) })
	return done
}

func (w *pidfdWatch) wait(ctx context.Context, deadline time.Time) waitResult {
	for {
		// Read's callback checks the exit first, before any wait.
		w.f.SetReadDeadline(deadline)
		var interrupted chan struct{}
		var stop func() bool
		if ctx != nil {
			interrupted = make(chan struct{})
			stop = context.AfterFunc(ctx, func() {
				w.f.SetReadDeadline(time.Unix(1, 0)) // in the past: Read returns
				close(interrupted)
			})
		}
		err := w.rc.Read(func(fd uintptr) bool { return w.check(fd) })
		if stop != nil && !stop() {
			<-interrupted // its deadline must not cut a later wait short
		}
		if err == nil {
			return waitExited
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			// Not expected from a pidfd in the poller; do not spin.
			return chanWait(ctx, deadline, w.exited)
		}
		if w.exited() {
			return waitExited
		}
		if ctx != nil && ctx.Err() != nil {
			return waitCanceled
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return waitDeadline
		}
	}
}

func (w *pidfdWatch) close() { w.f.Close() }

// chanWatch is closed when the command has exited (a goroutine in waitid,
// for kernels without pidfds).
type chanWatch chan struct{}

func (c chanWatch) exited() bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (c chanWatch) wait(ctx context.Context, deadline time.Time) waitResult {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	select {
	case <-c:
		return waitExited
	case <-timeout:
		return waitDeadline
	case <-done:
		return waitCanceled
	}
}

func (chanWatch) close() {}

// chanWait polls exited every 10 ms until it is true, the deadline passed
// or ctx is done: the last resort of pidfdWatch.
func chanWait(ctx context.Context, deadline time.Time, exited func() bool) waitResult {
	for {
		if exited() {
			return waitExited
		}
		if ctx != nil && ctx.Err() != nil {
			return waitCanceled
		}
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return waitDeadline
		}
		time.Sleep(10 * time.Millisecond)
	}
}

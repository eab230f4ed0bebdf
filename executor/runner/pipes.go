package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// outputPipe carries one output of a command (stdout or stderr) into a
// writer. os/exec would make the same pipe for a writer that is not a file,
// but with both ends non-blocking and registered with the runtime's poller
// (two registrations, two removals and two fcntl per pipe, a visible share
// of the executor's CPU on short jobs), and a goroutine copying from it.
// Here the child's end is a plain blocking descriptor that the executor
// closes once the child has it, and the executor's read end is a raw
// non-blocking descriptor. Most commands are short and print less than a
// pipe holds: Run reads what they wrote once they have exited (drain), with
// no goroutine and no poller. Only a command that runs longer than
// readerDelay gets a goroutine per pipe (start), reading as it writes.
type outputPipe struct {
	rfd  int      // the read end (non-blocking), until start or close
	w    *os.File // the child's end, closed once the child has it
	dst  io.Writer
	r    *os.File      // the read end in the poller, once started
	done chan struct{} // closed when the started copy ends
}

// readerDelay is how long a command's output stays in its pipes before
// goroutines read it: a command that writes more than a pipe holds (64 KiB)
// waits that long at most.
const readerDelay = 5 * time.Millisecond

// newOutputPipe makes the pipe that carries what the command writes to dst.
func newOutputPipe(name string, dst io.Writer) (*outputPipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("%s pipe: %w", name, err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("%s pipe: %w", name, err)
	}
	// A blocking descriptor is not registered with the poller by
	// os.NewFile.
	return &outputPipe{rfd: fds[0], w: os.NewFile(uintptr(fds[1]), name), dst: dst}, nil
}

// childHasIt closes the write end once the child holds its own copy.
func (p *outputPipe) childHasIt() { p.w.Close() }

// start hands the read end to a goroutine that copies what comes from it
// into dst until every writer closed it (or finishPipes sets a deadline).
// It does nothing for a pipe started already.
func (p *outputPipe) start() {
	if p.r != nil {
		return
	}
	p.r = os.NewFile(uintptr(p.rfd), "output") // non-blocking: in the poller
	p.rfd = -1
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		for {
			n, err := p.r.Read(*bp)
			if n > 0 {
				_, _ = p.dst.Write((*bp)[:n])
			}
			if err != nil {
				return // io.EOF, or the deadline set by finishPipes
			}
		}
	}()
}

// drain reads what the pipe holds into dst, without waiting, and reports
// whether it reached the end (no writer left). For a pipe not started.
func (p *outputPipe) drain() (eof bool) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := unix.Read(p.rfd, *bp)
		switch {
		case n > 0:
			_, _ = p.dst.Write((*bp)[:n])
		case err == nil: // n == 0
			return true
		case errors.Is(err, unix.EINTR):
		default: // EAGAIN: a writer is left (a process that escaped the job)
			return false
		}
	}
}

// abandon closes both ends of a pipe whose command did not start.
func (p *outputPipe) abandon() {
	p.w.Close()
	unix.Close(p.rfd)
}

// finishPipes waits for the output of an exited command to reach the end
// of its pipes, at most grace after the first call; then it stops reading
// (the later output is lost) and reports that it had to. A pipe not started
// is drained first: when a writer is still left it is started. It closes
// the read ends.
func finishPipes(grace time.Duration, pipes ...*outputPipe) (cut bool) {
	var started []*outputPipe
	for _, p := range pipes {
		if p.r == nil {
			if p.drain() {
				unix.Close(p.rfd)
				p.rfd = -1
				continue
			}
			p.start()
		}
		started = append(started, p)
	}
	if len(started) == 0 {
		return false
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for _, p := range started {
		select {
		case <-p.done:
		case <-timer.C: // fires once: the later pipes end by their deadline
			cut = true
			for _, q := range started {
				_ = q.r.SetReadDeadline(time.Now()) // Read returns os.ErrDeadlineExceeded
			}
			<-p.done
		}
	}
	for _, p := range started {
		p.r.Close()
	}
	return cut
}

package runner

import (
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
// of the executor's CPU on short jobs). Here the child's end is a plain
// blocking descriptor that the executor closes once the child has it; only
// the executor's read end goes through the poller.
type outputPipe struct {
	r, w *os.File
	done chan struct{}
}

// newOutputPipe makes the pipe; start hands its read end to a goroutine.
func newOutputPipe(name string) (*outputPipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("%s pipe: %w", name, err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, fmt.Errorf("%s pipe: %w", name, err)
	}
	// A non-blocking descriptor is registered with the poller by
	// os.NewFile; the blocking write end is not.
	return &outputPipe{r: os.NewFile(uintptr(fds[0]), name), w: os.NewFile(uintptr(fds[1]), name),
		done: make(chan struct{})}, nil
}

// start closes the write end (the child holds its own copy) and copies
// what comes from the read end into dst until every writer closed it.
func (p *outputPipe) start(dst io.Writer) {
	p.w.Close()
	go func() {
		defer close(p.done)
		bp := copyBuffers.Get().(*[]byte)
		defer copyBuffers.Put(bp)
		for {
			n, err := p.r.Read(*bp)
			if n > 0 {
				_, _ = dst.Write((*bp)[:n])
			}
			if err != nil {
				return // io.EOF, or the deadline set by finish
			}
		}
	}()
}

// abandon closes both ends of a pipe that was never started (the command
// did not start).
func (p *outputPipe) abandon() {
	p.w.Close()
	p.r.Close()
}

// finishPipes waits for the copies to reach the end of their pipes, at most
// grace after the first call; then it stops them (the later output is lost)
// and reports that it had to. It closes the read ends.
func finishPipes(grace time.Duration, pipes ...*outputPipe) (cut bool) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	for _, p := range pipes {
		select {
		case <-p.done:
		case <-timer.C: // fires once: the later pipes end by their deadline
			cut = true
			for _, q := range pipes {
				_ = q.r.SetReadDeadline(time.Now()) // Read returns os.ErrDeadlineExceeded
			}
			<-p.done
		}
	}
	for _, p := range pipes {
		p.r.Close()
	}
	return cut
}

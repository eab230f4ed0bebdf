// Package reaper makes the executor a child subreaper (PR_SET_CHILD_SUBREAPER)
// and reaps the orphans reparented to it, as PID 1 of a container must,
// without stealing the exit status of the children the runner waits for.
//
// Which zombies are reaped: a zombie child of this process is reaped
// (wait4(pid, WNOHANG)) unless
//   - it is registered as a live runner child (Register: the runner holds
//     the registry's read lock around exec.Cmd.Start and registers the pid
//     before releasing it; Reap holds the write lock while it lists and
//     reaps, so a runner child is never seen unregistered), or
//   - it is in this process's own process group: a direct child started by
//     exec.Cmd elsewhere in the executor, whose Wait will reap it; or
//   - it leads a process group of its own in this process's session, as an
//     exec.Cmd with Setpgid does (the gridftp client): such a zombie is left
//     to its Wait for AmbiguousGrace, then reaped (an orphaned job process
//     that called setpgid itself looks the same, and must not stay a
//     zombie for ever).
//
// Everything else that is our child was reparented to us: the leftovers of
// jobs (in a job's process group, or in a session of their own), and, as
// PID 1, any process of the container whose parent died.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
)

// Interval is how often Run reaps even when no SIGCHLD came (signals
// coalesce and may be lost).
const Interval = 10 * time.Second

// AmbiguousGrace is how long a zombie that may be another exec.Cmd's
// child (see the package doc) is left to its Wait.
const AmbiguousGrace = time.Minute

// Reaper reaps orphans and keeps the registry of runner children. The nil
// *Reaper is valid: it registers nothing and reaps nothing.
type Reaper struct {
	// starting is held for reading while runner children start and
	// register, for writing while Reap lists and reaps.
	starting sync.RWMutex
	mu       sync.Mutex // guards the fields below
	live     map[int]struct{}
	reaped   int64
	self     int
	pgrp     int
	sid      int
	// ambiguous: when each zombie leading its own group in our session
	// was first seen (guarded by starting, write lock).
	ambiguous map[int]time.Time

	lastPidOnce sync.Once
	lastPid     *procfs.LastPidReader // nil: none could be opened

	// done: the last recentDone pids given to Done, in a ring (next is
	// the oldest), and as a set (guarded by mu).
	done     [recentDone]int
	doneNext int
	doneSet  map[int]struct{}

	interval time.Duration // Interval; tests set another
}

// recentDone is how many reaped runner children Command still knows.
const recentDone = 256

// New returns a Reaper of the current process. It does not become a
// subreaper until Enable.
func New() *Reaper {
	sid, _ := unix.Getsid(0)
	return &Reaper{live: make(map[int]struct{}), self: os.Getpid(), pgrp: syscall.Getpgrp(), sid: sid,
		ambiguous: make(map[int]time.Time), doneSet: make(map[int]struct{}, recentDone), interval: Interval}
}

// Enable makes this process a child subreaper: orphaned descendants are
// reparented to it instead of to init. PID 1 is one already.
func (r *Reaper) Enable() error {
	if r == nil {
		return errors.New("reaper: nil")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_CHILD_SUBREAPER: %w", err)
	}
	return nil
}

// Start runs start (which starts a child and returns its pid) and registers
// the pid, so that Reap leaves it to the caller until Done. A nil Reaper
// just runs start.
func (r *Reaper) Start(start func() (int, error)) error {
	if r == nil {
		_, err := start()
		return err
	}
	r.starting.RLock()
	defer r.starting.RUnlock()
	pid, err := start()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.live[pid] = struct{}{}
	r.mu.Unlock()
	return nil
}

// Settle returns once the children being started through Start have been
// registered (it waits for the starts in flight, a fork each, and for a
// Reap in progress). The nil Reaper returns at once.
func (r *Reaper) Settle() {
	if r == nil {
		return
	}
	r.starting.Lock()
	r.starting.Unlock()
}

// Done unregisters pid once the caller has reaped it.
func (r *Reaper) Done(pid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, pid)
	if old := r.done[r.doneNext]; old != 0 {
		delete(r.doneSet, old)
	}
	r.done[r.doneNext] = pid
	r.doneNext = (r.doneNext + 1) % recentDone
	r.doneSet[pid] = struct{}{}
}

// Run reaps after a SIGCHLD and every Interval until ctx is done. The
// SIGCHLDs of a busy executor (one per command) are taken together: a
// reap follows a signal by at most Coalesce, and reaps are at least
// Coalesce apart, since each lists the children in /proc.
func (r *Reaper) Run(ctx context.Context) {
	if r == nil {
		return
	}
	ch := make(chan os.Signal, 1)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		// Listening first, then reaping: a child that exits in between
		// is reaped now or signals.
		signal.Notify(ch, syscall.SIGCHLD)
		r.Reap()
		select {
		case <-ctx.Done():
			signal.Stop(ch)
			return
		case <-ch:
			// Not listening while the signals coalesce: the runtime
			// then drops each SIGCHLD in its handler instead of waking
			// a goroutine for it (one per command on a busy executor).
			signal.Stop(ch)
			if !eventbus.Sleep(ctx, Coalesce) {
				return
			}
		case <-t.C:
		}
	}
}

// Coalesce is the longest an orphan stays a zombie after its SIGCHLD, and
// the shortest time between two reaps for signals.
const Coalesce = 100 * time.Millisecond

// Reap reaps the zombie children that are orphans (see the package doc) and
// returns how many it reaped.
func (r *Reaper) Reap() int {
	if r == nil {
		return 0
	}
	r.starting.Lock()
	defer r.starting.Unlock()
	n := 0
	now := time.Now()
	seen := make(map[int]bool)
	for _, pid := range Children(r.self) {
		if r.registered(pid) {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.State != 'Z' || st.Pgrp == r.pgrp {
			continue
		}
		if st.Pgrp == pid && st.Session == r.sid {
			seen[pid] = true
			first, ok := r.ambiguous[pid]
			if !ok {
				r.ambiguous[pid] = now
				continue
			}
			if now.Sub(first) < AmbiguousGrace {
				continue
			}
		}
		var ws syscall.WaitStatus
		for {
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if got == pid {
				n++
			}
			break
		}
	}
	for pid := range r.ambiguous {
		if !seen[pid] {
			delete(r.ambiguous, pid) // reaped by its Wait, or by us
		}
	}
	r.mu.Lock()
	r.reaped += int64(n)
	r.mu.Unlock()
	return n
}

// Registered reports whether pid is a runner child started through Start
// and not yet Done: a command of this executor. The nil Reaper knows none.
func (r *Reaper) Registered(pid int) bool {
	if r == nil {
		return false
	}
	return r.registered(pid)
}

// Command reports whether pid is a runner child started through Start:
// registered, or one of the last reaped (Done). A pid handed out after a
// command's own, and given to another command reaped since, is no process
// of the first command's (it would need the kernel's pids to go round):
// the runner's look for leftovers skips such pids without reading /proc.
// The nil Reaper knows none.
func (r *Reaper) Command(pid int) bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.live[pid]; ok {
		return true
	}
	_, ok := r.doneSet[pid]
	return ok
}

func (r *Reaper) registered(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.live[pid]
	return ok
}

// LastPid is the pid the kernel handed out last (procfs.LastPid), read
// through a descriptor the Reaper keeps open for the life of the process
// (the runner reads it after every command). The nil Reaper reads it
// afresh each time.
func (r *Reaper) LastPid() (int, error) {
	if r == nil {
		return procfs.LastPid()
	}
	r.lastPidOnce.Do(func() {
		r.lastPid, _ = procfs.OpenLastPid() // nil reads afresh, and says why not
	})
	return r.lastPid.Read()
}

// Reaped is how many orphans Reap has reaped so far.
func (r *Reaper) Reaped() int64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

// Children lists the children of process pid (zombies included): from
// /proc/<pid>/task/*/children, or, on kernels without it, by scanning
// /proc/*/stat for the parent.
func Children(pid int) []int {
	if out, ok := procfs.Children(pid); ok {
		return out
	}
	pids, _ := procfs.Pids()
	var out []int
	for _, c := range pids {
		if st, err := procfs.ReadStat(c); err == nil && st.Ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

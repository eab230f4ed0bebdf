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
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
}

// New returns a Reaper of the current process. It does not become a
// subreaper until Enable.
func New() *Reaper {
	sid, _ := unix.Getsid(0)
	return &Reaper{live: make(map[int]struct{}), self: os.Getpid(), pgrp: syscall.Getpgrp(), sid: sid,
		ambiguous: make(map[int]time.Time)}
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

// Done unregisters pid once the caller has reaped it.
func (r *Reaper) Done(pid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.live, pid)
	r.mu.Unlock()
}

// Run reaps on every SIGCHLD and every Interval until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	if r == nil {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		r.Reap()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
		}
	}
}

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
		st, err := ReadStat(pid)
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

func (r *Reaper) registered(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.live[pid]
	return ok
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

// Stat is what is read of /proc/<pid>/stat.
type Stat struct {
	State               byte
	Ppid, Pgrp, Session int
	// StartTime is when the process started, in clock ticks after boot.
	StartTime uint64
}

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	// The command name, in parentheses, may hold anything: the fields
	// follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 4 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	st := Stat{State: f[0][0]}
	st.Ppid, _ = strconv.Atoi(string(f[1]))
	st.Pgrp, _ = strconv.Atoi(string(f[2]))
	st.Session, _ = strconv.Atoi(string(f[3]))
	if len(f) > 19 {
		st.StartTime, _ = strconv.ParseUint(string(f[19]), 10, 64)
	}
	return st, nil
}

// Children lists the children of process pid (zombies included): from
// /proc/<pid>/task/*/children, or, on kernels without it, by scanning
// /proc/*/stat for the parent.
func Children(pid int) []int {
	base := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(base)
	var out []int
	ok := err == nil
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(base, t.Name(), "children"))
		if err != nil {
			if os.IsNotExist(err) {
				ok = false
				break
			}
			continue // the thread ended meanwhile
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	if ok {
		return out
	}
	out = out[:0]
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(c); err == nil && st.Ppid == pid {
			out = append(out, c)
		}
	}
	return out
}

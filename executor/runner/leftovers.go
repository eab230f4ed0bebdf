package runner

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
)

// What a command leaves behind when it exits, and how it is ended.
//
// Every command gets a variable of its own, JobMarker=<random 16 hex
// digits>, in its environment. Its processes inherit it, and the kernel
// keeps it in /proc/<pid>/environ whatever a process does to its
// environment later, after leaving the process group too (setsid, a
// double-forked daemon). Once the command (the group leader) has exited,
// and before it is reaped (so that its process group id cannot be
// recycled), Run ends its leftovers: the members of its process group and
// the processes carrying its marker get SIGTERM (and SIGCONT), and those
// still alive after LeftoverGrace get SIGKILL. Result.ProcessesEnded counts
// them. Their output pipes then close, so the command is answered at once,
// not when a background process ends.
//
// Looking for marked processes reads /proc/<pid>/stat of the processes that
// may be the command's (see candidates; the executor's other commands are
// known without a look), and the environ of those started since the
// command, after every command, straight from /proc (package procfs). It
// is not skipped when the executor (a subreaper) seems to have no adopted
// children: the kernel's list of children (/proc/<pid>/task/*/children)
// may miss some while others are created or reaped, and a leftover was
// seen to survive so.

// JobMarker is the variable that marks every process of one command.
const JobMarker = "HYPERFLOW_JOB_MARKER"

// LeftoverGrace is how long a command's leftovers have between SIGTERM and
// SIGKILL.
const LeftoverGrace = 2 * time.Second

// killWait bounds the wait for SIGKILLed leftovers to be gone (one in
// uninterruptible sleep is left behind).
const killWait = time.Second

// newMarker returns "JobMarker=<random>".
func newMarker() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return JobMarker + "=" + hex.EncodeToString(b[:])
}

// withMarker returns env (nil: the executor's own) with marker added.
func withMarker(env []string, marker string) []string {
	if env == nil {
		env = os.Environ()
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if len(kv) > len(JobMarker) && kv[:len(JobMarker)+1] == JobMarker+"=" {
			continue // a job's own variable of that name does not hide it
		}
		out = append(out, kv)
	}
	return append(out, marker)
}

// endLeftovers ends what is left of the command whose process group is
// pgid (its leader exited, not yet reaped) and returns how many processes
// it ended.
//
// A leftover may fork between the look in /proc and the signal, so the
// look is repeated after each round until it finds nothing new (at most
// leftoverRounds rounds): a process that got SIGKILL forks no more.
func endLeftovers(pgid int, marker string, grace time.Duration, started time.Time, procs processes) int {
	if pgid <= 1 {
		return 0
	}
	var seen map[int]bool // made on the first leftover: most commands leave none
	for round := 0; round < leftoverRounds; round++ {
		var fresh []int
		for _, pid := range leftovers(pgid, marker, started, procs) {
			if !seen[pid] {
				if seen == nil {
					seen = map[int]bool{}
				}
				seen[pid] = true
				fresh = append(fresh, pid)
			}
		}
		if len(fresh) == 0 {
			if round == 0 {
				// Members /proc did not show. The group is never
				// empty here (its leader is an unreaped zombie), so
				// this costs one call and no look first.
				signalGroup(pgid, syscall.SIGKILL)
			}
			break
		}
		endRound(pgid, fresh, grace)
	}
	return len(seen)
}

// leftoverRounds bounds the looks for leftovers of one command.
const leftoverRounds = 5

// endRound sends SIGTERM (and SIGCONT) to the group and to pids, then
// SIGKILL to those alive after grace, and waits (up to killWait) for them
// to be gone.
func endRound(pgid int, pids []int, grace time.Duration) {
	signalGroup(pgid, syscall.SIGTERM)
	signalGroup(pgid, syscall.SIGCONT)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	deadline := time.Now().Add(grace)
	pause := time.Millisecond
	for left := alive(pids); len(left) > 0; left = alive(left) {
		if time.Now().After(deadline) {
			signalGroup(pgid, syscall.SIGKILL)
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			// SIGKILL takes effect at once but not instantly: wait
			// (bounded) for them to be gone.
			for end := time.Now().Add(killWait); len(left) > 0 && time.Now().Before(end); left = alive(left) {
				time.Sleep(5 * time.Millisecond)
			}
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// processes is what the look for leftovers asks of the executor's
// *reaper.Reaper (the nil one knows no command and reads the last pid
// afresh).
type processes interface {
	// Registered says whether pid is a command the executor started
	// itself (another job's), not reaped yet.
	Registered(pid int) bool
	// Command says the same of a command running or reaped lately: true
	// of a pid that may have been handed out again since, so only asked
	// of pids handed out after the leader's (candidates).
	Command(pid int) bool
	// LastPid is the pid the kernel handed out last.
	LastPid() (int, error)
	// Settle returns once the commands being started are registered.
	Settle()
}

// leftovers lists the live processes in group pgid (but its leader) or
// carrying marker. Only processes started no earlier than the leader (its
// descendants all are) have their environment read, and not those that
// procs says are commands of the executor's, children it started itself.
func leftovers(pgid int, marker string, started time.Time, procs processes) []int {
	pids := candidates(pgid, started, procs)
	ours := procs.Command
	if pids == nil {
		ours = procs.Registered
		var err error
		if pids, err = procfs.Pids(); err != nil {
			return nil
		}
	}
	self := os.Getpid()
	var (
		out       []int
		since     uint64 // the leader's start time,
		sinceRead bool   // read when first needed
		settled   bool
		env, want []byte // made for the first environ read
	)
	for _, pid := range pids {
		if pid == self || pid == pgid {
			continue
		}
		if ours(pid) {
			// Another job's command: it leads a group of its own
			// and carries its own marker, or it was reaped (its pid,
			// handed out after the leader's, has not been handed out
			// again: candidates). Known without a look at /proc.
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Dead() {
			continue
		}
		if st.Pgrp == pgid {
			out = append(out, pid)
			continue
		}
		if st.Ppid == 2 || pid == 2 {
			continue // kernel threads: no environment
		}
		if st.Ppid == self && !settled {
			// A child of the executor's that is no command of it: a
			// command being started (another job's, between its fork
			// and its registration: its environ is read slowly, if at
			// all, while it execs), or a leftover of this one that
			// was reparented to the executor. Once the starts in
			// flight are registered, the first kind is known.
			procs.Settle()
			settled = true
			if ours(pid) {
				continue
			}
		}
		if !sinceRead {
			lst, err := procfs.ReadStat(pgid)
			if err != nil {
				return out // the leader is unreaped: not expected
			}
			since, sinceRead = lst.StartTime, true
		}
		if st.StartTime < since {
			continue // older than the command
		}
		if env == nil {
			env, want = make([]byte, 0, 8<<10), []byte(marker)
		}
		var match, known bool
		env, match, known = hasEnv(pid, want, env)
		for wait, pause := time.Duration(0), time.Millisecond; !known && wait < environWait; wait, pause = wait+pause, min(2*pause, 50*time.Millisecond) {
			// An empty environment: the process is in execve (a
			// leftover leaving the group with setsid and exec'ing
			// was seen so, for tens of ms on a loaded machine). Look
			// again once it is through.
			time.Sleep(pause)
			env, match, known = hasEnv(pid, want, env)
		}
		if match {
			out = append(out, pid)
		}
	}
	return out
}

// Bounds of the short look (candidates).
const (
	// probeFor: a command that ran longer than this gets the full look,
	// since the kernel's pids may have gone round since its own.
	probeFor = time.Second
	// probeMax: more pids than this handed out since the command's gets
	// the full look.
	probeMax = 1024
)

// candidates returns the pids the processes of the command whose pid is
// pgid can have, or nil for every process. The kernel hands out pids in
// increasing order from the last one handed out (ns_last_pid), going round
// at pid_max: every process the command started, however it left the
// group, got a pid after the command's and up to ns_last_pid. So a short
// command that started no other process costs no look at /proc at all (the
// usual case), and one with THREADS commands around it a few. When the
// count may have gone round (ns_last_pid below pgid, or the command ran
// longer than probeFor) or too many pids were handed out, or ns_last_pid
// cannot be read, every process is looked at.
func candidates(pgid int, started time.Time, procs processes) []int {
	if time.Since(started) > probeFor {
		return nil
	}
	last, err := procs.LastPid()
	if err != nil || last < pgid || last-pgid > probeMax {
		return nil
	}
	pids := make([]int, 0, last-pgid)
	for pid := pgid + 1; pid <= last; pid++ {
		pids = append(pids, pid)
	}
	return pids
}

// environWait bounds the wait for a process whose environment reads empty
// (in execve) to show it.
const environWait = 2 * time.Second

// hasEnv says whether the initial environment of pid holds the entry kv;
// known is false when it read empty (a process in execve, or gone). buf is
// reused for the read and returned.
func hasEnv(pid int, kv, buf []byte) (_ []byte, match, known bool) {
	env, err := procfs.Environ(pid, buf)
	if err != nil {
		// Another user's process (EACCES) is not ours; a process that
		// is gone has nothing left to end.
		return buf, false, true
	}
	if len(env) == 0 {
		if st, err := procfs.ReadStat(pid); err != nil || st.Dead() {
			return env, false, true
		}
		return env, false, false
	}
	return env, procfs.HasEntry(env, kv, true), true
}

// alive returns the pids of list that still run (a zombie is dead).
func alive(list []int) []int {
	var out []int
	for _, pid := range list {
		if st, err := procfs.ReadStat(pid); err == nil && !st.Dead() {
			out = append(out, pid)
		}
	}
	return out
}

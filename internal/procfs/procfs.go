// Package procfs reads the few things the executor needs from Linux's
// /proc: a process's stat line, its children, its initial environment, the
// list of processes and the last pid handed out.
//
// The executor reads /proc after every command (its leftovers), on every
// SIGCHLD (orphans to reap) and on every progress tick, so the reads go
// straight through open/read/close: os.Open also tries to register every
// file with the runtime's poller and makes it non-blocking, which cost
// more than the read itself (about a fifth of the executor's CPU on trivial
// jobs).
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadFile reads the file at path into buf (from its start, growing it when
// it is too small) and returns the bytes read.
func ReadFile(path string, buf []byte) ([]byte, error) {
	fd, err := openRead(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if cap(buf) < 512 {
		buf = make([]byte, 0, 512)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func openRead(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// Stat is what is read of /proc/<pid>/stat.
type Stat struct {
	State               byte // R, S, D, Z, X, ...
	Ppid, Pgrp, Session int
	// UTime and STime are the CPU time used, in clock ticks (USER_HZ).
	UTime, STime int64
	// StartTime is when the process started, in clock ticks after boot.
	StartTime uint64
	// RSS is the resident set, in pages.
	RSS int64
}

// Dead reports whether the process has ended (a zombie or being reaped).
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	var arr [512]byte
	b, err := ReadFile(pidPath(pid, "stat"), arr[:0])
	if err != nil {
		return Stat{}, err
	}
	// The command name, in parentheses, may hold anything: the fields
	// follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	// Fields after the name: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime priority
	// nice threads itrealvalue starttime vsize rss.
	var f [22][]byte
	n := 0
	for rest := b[i+1:]; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		f[n], rest = rest[:end], rest[end:]
	}
	if n < 4 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	st := Stat{State: f[0][0], Ppid: atoi(f[1]), Pgrp: atoi(f[2]), Session: atoi(f[3])}
	if n == len(f) {
		st.UTime, st.STime = int64(atoi(f[11])), int64(atoi(f[12]))
		st.StartTime = uint64(atoi(f[19]))
		st.RSS = int64(atoi(f[21]))
	}
	return st, nil
}

// atoi reads a decimal number without allocating; not a number reads 0.
func atoi(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

func pidPath(pid int, file string) string {
	var b [32]byte
	p := append(b[:0], "/proc/"...)
	p = strconv.AppendInt(p, int64(pid), 10)
	p = append(p, '/')
	p = append(p, file...)
	return string(p)
}

// Children lists the children of process pid (zombies included), from
// /proc/<pid>/task/*/children; ok is false on kernels without those files
// (a process that is gone has no children: ok).
func Children(pid int) (children []int, ok bool) {
	base := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(base)
	if err != nil {
		return nil, errors.Is(err, fs.ErrNotExist)
	}
	var buf [256]byte
	for _, t := range tasks {
		b, err := ReadFile(base+t.Name()+"/children", buf[:0])
		if err != nil {
			if errors.Is(err, unix.ENOENT) && t.Name() == strconv.Itoa(pid) {
				return nil, false // the leader is there: no children files
			}
			continue // the thread ended meanwhile
		}
		for _, f := range bytes.Fields(b) {
			if c := atoi(f); c > 0 {
				children = append(children, c)
			}
		}
	}
	return children, true
}

// Pids lists the processes in /proc.
func Pids() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

const lastPidPath = "/proc/sys/kernel/ns_last_pid"

// LastPid is the pid the kernel handed out last in this pid namespace
// (/proc/sys/kernel/ns_last_pid).
func LastPid() (int, error) {
	var arr [32]byte
	b, err := ReadFile(lastPidPath, arr[:0])
	if err != nil {
		return 0, err
	}
	return parseLastPid(b)
}

func parseLastPid(b []byte) (int, error) {
	n := atoi(bytes.TrimSpace(b))
	if n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a pid", lastPidPath, b)
	}
	return n, nil
}

// LastPidReader reads LastPid through a descriptor kept open: one pread
// per read instead of an open, two reads and a close (a sysctl file is
// dear to open: a read this way costs a fifth). It is safe for concurrent
// use.
type LastPidReader struct{ fd int }

// OpenLastPid opens ns_last_pid for LastPidReader.Read.
func OpenLastPid() (*LastPidReader, error) {
	fd, err := openRead(lastPidPath)
	if err != nil {
		return nil, err
	}
	return &LastPidReader{fd: fd}, nil
}

// Read returns the pid handed out last. The nil reader reads it with
// LastPid.
func (r *LastPidReader) Read() (int, error) {
	if r == nil {
		return LastPid()
	}
	var arr [32]byte
	for {
		n, err := unix.Pread(r.fd, arr[:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: lastPidPath, Err: err}
		}
		return parseLastPid(arr[:n])
	}
}

// Close closes the descriptor.
func (r *LastPidReader) Close() error { return unix.Close(r.fd) }

// Environ reads the initial environment of pid into buf (NUL-separated
// entries); it reads empty while the process is in execve.
func Environ(pid int, buf []byte) ([]byte, error) {
	return ReadFile(pidPath(pid, "environ"), buf)
}

// HasEntry says whether the NUL-separated environment env has an entry
// that starts with prefix (a whole "NAME=value" matches only itself when
// whole is true).
func HasEntry(env, prefix []byte, whole bool) bool {
	for len(env) > 0 {
		entry := env
		if i := bytes.IndexByte(env, 0); i >= 0 {
			entry, env = env[:i], env[i+1:]
		} else {
			env = nil
		}
		if whole && bytes.Equal(entry, prefix) || !whole && bytes.HasPrefix(entry, prefix) {
			return true
		}
	}
	return false
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// proc is a child process the bench started (an executor or a baseline
// consumer). Its output is kept (the last 64 KiB) for error messages.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{} // closed when the process has exited
	err  error         // of Wait, valid once done is closed
}

// running holds the live children, so that an interrupted bench stops them.
var running struct {
	sync.Mutex
	set map[*proc]bool
}

// startProc starts path with args and exactly env. Its stdout goes to
// stdout when not nil, else with stderr into the kept output. The child is
// killed if the bench dies (Pdeathsig).
func startProc(name, path string, args, env []string, stdout io.Writer) (*proc, error) {
	p := &proc{name: name, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Stderr = p.out
	p.cmd.Stdout = p.out
	if stdout != nil {
		p.cmd.Stdout = io.MultiWriter(stdout, p.out)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	running.Lock()
	if running.set == nil {
		running.set = map[*proc]bool{}
	}
	running.set[p] = true
	running.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		running.Lock()
		delete(running.set, p)
		running.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace for the exit, then kills. It
// returns the exit error, with the end of the output when the exit was not
// clean.
func (p *proc) stop(grace time.Duration) error {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM: killed", p.name, grace)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %v; its output ends with:\n%s", p.name, p.err, p.out.tail(2000))
	}
	return nil
}

// stopAll kills every child still running (interrupted bench).
func stopAll() {
	running.Lock()
	var ps []*proc
	for p := range running.set {
		ps = append(ps, p)
	}
	running.Unlock()
	for _, p := range ps {
		_ = p.stop(5 * time.Second)
	}
}

// tailBuffer keeps the last max bytes written to it. Safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

// tail returns the last n bytes written.
func (t *tailBuffer) tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// lineSignal is an io.Writer that closes seen the first time a whole line
// equal to want is written.
type lineSignal struct {
	want string
	seen chan struct{}
	mu   sync.Mutex
	line []byte
	once sync.Once
}

func newLineSignal(want string) *lineSignal {
	return &lineSignal{want: want, seen: make(chan struct{})}
}

func (l *lineSignal) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range b {
		if c != '\n' {
			if len(l.line) < 256 {
				l.line = append(l.line, c)
			}
			continue
		}
		if strings.TrimSpace(string(l.line)) == l.want {
			l.once.Do(func() { close(l.seen) })
		}
		l.line = l.line[:0]
	}
	return len(b), nil
}

// ------------------------------------------------------------- /proc ---

// statusKiB reads a "Name:   N kB" line of /proc/PID/status.
func statusKiB(pid int, name string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}

// cpuTicks is utime+stime of a process (all its threads, also those that
// ended), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	self, _, err := cpuTicksChildren(pid)
	return self, err
}

// cpuTicksChildren is cpuTicks, and the cutime+cstime of the children the
// process waited for.
func cpuTicksChildren(pid int) (self, children int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: the fields
	// start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are fields
	// 14 to 17.
	if len(f) < 15 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	var v [4]int64
	for k := range v {
		if v[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, err
		}
	}
	return v[0] + v[1], v[2] + v[3], nil
}

// machineTicks is the whole machine's CPU time from /proc/stat, in clock
// ticks: busy (user, nice, system, irq, softirq, steal) and idle (idle,
// iowait).
func machineTicks() (busy, idle int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected first line of /proc/stat: %q", line)
	}
	var v [8]int64
	for k := range v {
		if v[k], err = strconv.ParseInt(f[1+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	return v[0] + v[1] + v[2] + v[5] + v[6] + v[7], v[3] + v[4], nil
}

// brokerPID finds the beam.smp of the private broker of
// scripts/rabbitmq.sh (its command line carries "-hyperflow_testenv_dir
// DIR", and DIR/rabbitmqctl is $HYPERFLOW_TEST_RABBITMQCTL); 0 if none.
func brokerPID() int {
	ctl := os.Getenv("HYPERFLOW_TEST_RABBITMQCTL")
	if ctl == "" {
		return 0
	}
	marker := "\x00-hyperflow_testenv_dir\x00" + filepath.Dir(ctl) + "\x00"
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("beam.smp")) || !bytes.Contains(b, []byte(marker)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		return pid
	}
	return 0
}

// threadsCPU sums, over the live threads of a process, the nanoseconds
// spent on a CPU (/proc/PID/task/TID/schedstat) and the context switches
// (voluntary and not, /proc/PID/task/TID/status): finer than clock ticks,
// for the idle figures.
func threadsCPU(pid int) (ns, switches int64) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, t := range tasks {
		if b, err := os.ReadFile(t + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				ns += v
			}
		}
		b, err := os.ReadFile(t + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if rest, ok := strings.CutPrefix(line, k); ok {
					v, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
					switches += v
				}
			}
		}
	}
	return ns, switches
}

// rssSampler records the largest VmRSS of a process every period until
// stopped.
type rssSampler struct {
	stopc chan struct{}
	done  chan struct{}
	max   int64 // KiB, valid after stop
}

func sampleRSS(pid int, period time.Duration) *rssSampler {
	s := &rssSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			s.max = max(s.max, statusKiB(pid, "VmRSS"))
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() int64 {
	close(s.stopc)
	<-s.done
	return s.max
}

package reaper_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/runner"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// newReaper makes the test process a subreaper with a running reaper.
func newReaper(t *testing.T) *reaper.Reaper { return newReaperEvery(t, reaper.Interval) }

// newReaperEvery is newReaper with the periodic reap every interval.
func newReaperEvery(t *testing.T, interval time.Duration) *reaper.Reaper {
	t.Helper()
	r := reaper.New()
	if err := r.Enable(); err != nil {
		t.Skip("cannot become a child subreaper:", err)
	}
	reaper.SetInterval(r, interval)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// eventually polls cond until it holds or a generous bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still not %s after 60 s", what)
		}
	}
}

func zombieChildren() []int {
	var out []int
	for _, pid := range reaper.Children(os.Getpid()) {
		if st, err := procfs.ReadStat(pid); err == nil && st.State == 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

func waitZombie(t *testing.T, pid int) {
	eventually(t, fmt.Sprintf("process %d a zombie", pid), func() bool {
		st, err := procfs.ReadStat(pid)
		return err == nil && st.State == 'Z'
	})
}

// An orphan reparented to the subreaper is reaped when it exits.
func TestSubreaperReapsOrphans(t *testing.T) {
	r := newReaper(t)
	orphan := leaveOrphans(t, r, "sleep 0.3 & echo $! > pids")[0]
	if st, err := procfs.ReadStat(orphan); err == nil && st.Ppid != os.Getpid() {
		t.Fatalf("orphan %d has parent %d, not the subreaper %d", orphan, st.Ppid, os.Getpid())
	}
	eventually(t, "the orphan reaped", gone([]int{orphan}))
	if r.Reaped() < 1 {
		t.Errorf("Reaped() = %d, want at least the orphan", r.Reaped())
	}
}

// leaveOrphans runs script (a registered command in a group of its own)
// to its end and returns the pids it wrote to the file pids: its
// background processes, now orphans reparented to the test process.
func leaveOrphans(t *testing.T, r *reaper.Reaper, script string) []int {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.Start(func() (int, error) { err := cmd.Start(); return pidOf(cmd), err }); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	r.Done(cmd.Process.Pid)
	b, err := os.ReadFile(dir + "/pids")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pids: %v", err)
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		t.Fatal("the script wrote no pid")
	}
	return pids
}

// gone reports whether none of pids exists any more.
func gone(pids []int) func() bool {
	return func() bool {
		for _, pid := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				return false
			}
		}
		return true
	}
}

func pidOf(cmd *exec.Cmd) int {
	if cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}

// Reap leaves alone a registered child, a child in the executor's own
// process group, and an unregistered child leading its own group (an
// exec.Cmd with Setpgid, as the gridftp client's): their exit status stays
// for their Wait.
func TestReapLeavesOwnChildren(t *testing.T) {
	r := newReaper(t)
	registered := exec.Command("/bin/sh", "-c", "exit 3")
	registered.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.Start(func() (int, error) { err := registered.Start(); return pidOf(registered), err }); err != nil {
		t.Fatal(err)
	}
	plain := exec.Command("/bin/sh", "-c", "exit 4") // in our group
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	leader := exec.Command("/bin/sh", "-c", "exit 5") // unregistered, own group
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	waitZombie(t, leader.Process.Pid)
	waitZombie(t, registered.Process.Pid)
	waitZombie(t, plain.Process.Pid)
	r.Reap()
	if err := registered.Wait(); registered.ProcessState == nil || registered.ProcessState.ExitCode() != 3 {
		t.Errorf("registered child: Wait() = %v, state %v; want exit status 3", err, registered.ProcessState)
	}
	r.Done(registered.Process.Pid)
	if err := plain.Wait(); plain.ProcessState == nil || plain.ProcessState.ExitCode() != 4 {
		t.Errorf("child in the executor's group: Wait() = %v, state %v; want exit status 4", err, plain.ProcessState)
	}
	r.Reap() // twice: the first sighting is not a reason to wait any less
	if err := leader.Wait(); leader.ProcessState == nil || leader.ProcessState.ExitCode() != 5 {
		t.Errorf("child leading its own group: Wait() = %v, state %v; want exit status 5", err, leader.ProcessState)
	}
}

// Settle waits for a start in flight to register its child.
func TestSettleWaitsForStarts(t *testing.T) {
	r := reaper.New()
	forked := make(chan struct{})
	cmd := exec.Command("true")
	go r.Start(func() (int, error) {
		err := cmd.Start()
		close(forked)
		time.Sleep(100 * time.Millisecond) // a slow registration
		return pidOf(cmd), err
	})
	<-forked
	t.Cleanup(func() { cmd.Wait() })
	if r.Registered(cmd.Process.Pid) {
		t.Fatal("registered before its start returned")
	}
	r.Settle()
	if !r.Registered(cmd.Process.Pid) {
		t.Error("Settle returned before the start in flight registered its child")
	}
	(*reaper.Reaper)(nil).Settle()
}

// Command knows a runner child while it runs and for the last recentDone
// reaped ones; Registered only while it runs.
func TestCommandRemembersRecentlyDone(t *testing.T) {
	r := reaper.New()
	cmd := exec.Command("true")
	if err := r.Start(func() (int, error) { err := cmd.Start(); return pidOf(cmd), err }); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if !r.Registered(pid) || !r.Command(pid) {
		t.Fatalf("a running command: Registered %v, Command %v; want both", r.Registered(pid), r.Command(pid))
	}
	cmd.Wait()
	r.Done(pid)
	if r.Registered(pid) || !r.Command(pid) {
		t.Errorf("a command just reaped: Registered %v, Command %v; want false, true", r.Registered(pid), r.Command(pid))
	}
	for i := range 255 {
		r.Done(1<<30 + i) // pids in no use
	}
	if !r.Command(pid) {
		t.Error("forgotten before 256 later commands were reaped")
	}
	r.Done(1<<30 + 255)
	if r.Command(pid) {
		t.Error("still known after 256 later commands were reaped")
	}
	if (*reaper.Reaper)(nil).Command(pid) {
		t.Error("the nil Reaper knows a command")
	}
}

// 1000 jobs through the runner, a third leaving a background process and
// a third a daemon that left the group, with the reaper running all along:
// every exit status is the job's own (none stolen by the reaper), every
// leftover is ended and counted, and no zombie remains.
func TestThousandJobsNoZombies(t *testing.T) {
	r := newReaper(t)
	tag := fmt.Sprintf("HYPERFLOW_TEST_TAG=%s-%d", t.Name(), os.Getpid())
	env := append(os.Environ(), tag)
	const jobs, parallel = 1000, 8
	scripts := []string{
		"exit %d",
		"sleep 300 & exit %d",
		"setsid sh -c 'sleep 300' </dev/null >/dev/null 2>&1 & sleep 0.01; exit %d",
	}
	var ended, wrong atomic.Int64
	var mu sync.Mutex
	var errs []string
	start := time.Now()
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			code := i % 7
			res := runner.Run(context.Background(), runner.Command{Path: "/bin/sh",
				Args: []string{"-c", fmt.Sprintf(scripts[i%len(scripts)], code)}, Env: env, Reaper: r})
			ended.Add(int64(res.ProcessesEnded))
			if res.ExitStatus != code || res.Err != nil {
				wrong.Add(1)
				mu.Lock()
				errs = append(errs, fmt.Sprintf("job %d: status %d err %v, want %d", i, res.ExitStatus, res.Err, code))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	eventually(t, "free of zombie children", func() bool { return len(zombieChildren()) == 0 })
	var left []int
	for _, pid := range reaper.Children(os.Getpid()) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if strings.Contains(string(b), tag) {
			left = append(left, pid)
		}
	}
	t.Logf("%d jobs in %v (%v each, %d at a time); processes ended %d; orphans reaped %d; zombies left %d",
		jobs, took.Round(time.Millisecond), (took / jobs).Round(time.Microsecond), parallel,
		ended.Load(), r.Reaped(), len(zombieChildren()))
	if wrong.Load() > 0 {
		t.Errorf("%d jobs with a wrong result, first: %v", wrong.Load(), errs[:min(len(errs), 5)])
	}
	// Every job of the second and third kind leaves at least one process.
	if want := int64(2 * jobs / 3); ended.Load() < want {
		t.Errorf("processes ended = %d, want at least %d", ended.Load(), want)
	}
	if len(left) > 0 {
		t.Errorf("processes of the jobs still running: %v", left)
	}
}

// Orphans are reaped on their SIGCHLD, not only by the periodic reap
// (set to an hour here): one that exits while Run is not listening (the
// signals coalescing after the first) is reaped after the pause, and Run
// listens again afterwards.
func TestOrphansReapedOnSignal(t *testing.T) {
	r := newReaperEvery(t, time.Hour)
	time.Sleep(100 * time.Millisecond) // the first Reap, at start, is over

	// The second exits 30 ms after the first, within the pause.
	first := leaveOrphans(t, r, "sleep 0.3 & echo $! > pids; sleep 0.33 & echo $! >> pids")
	eventually(t, "the first two orphans reaped", gone(first))
	time.Sleep(2 * reaper.Coalesce)
	second := leaveOrphans(t, r, "sleep 0.2 & echo $! > pids")
	eventually(t, "the third orphan reaped", gone(second))
	if r.Reaped() != 3 {
		t.Errorf("Reaped() = %d, want 3", r.Reaped())
	}
}

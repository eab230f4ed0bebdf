package runner

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestPidfdWatch: the exit is seen through the poller without reaping the
// process; deadlines and cancellation interrupt the wait, and a
// cancellation does not cut the next wait short.
func TestPidfdWatch(t *testing.T) {
	pidfd := -1
	cmd := exec.Command("/bin/sleep", "0.3")
	cmd.SysProcAttr = &syscall.SysProcAttr{PidFD: &pidfd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w, err := newPidfdWatch(pidfd)
	if err != nil {
		cmd.Wait()
		t.Skipf("no pidfd watch on this kernel (%v): the waitid goroutine is used", err)
	}
	defer w.close()
	if w.exited() {
		t.Fatal("exited() true while the command runs")
	}
	start := time.Now()
	if got := w.wait(nil, time.Now().Add(50*time.Millisecond)); got != waitDeadline {
		t.Fatalf("wait with a 50 ms deadline = %v, want waitDeadline", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if got := w.wait(ctx, time.Time{}); got != waitCanceled {
		t.Fatalf("wait with a cancelled ctx = %v, want waitCanceled", got)
	}
	if got := w.wait(ctx, time.Time{}); got != waitCanceled {
		t.Fatalf("wait with a done ctx = %v, want waitCanceled", got)
	}
	if got := w.wait(nil, time.Time{}); got != waitExited {
		t.Fatalf("wait = %v, want waitExited", got)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("the exit was seen after %v, before the command could end", d)
	}
	if !w.exited() {
		t.Error("exited() false after the exit")
	}
	// Not reaped: the pid is still ours to wait for.
	if err := cmd.Wait(); err != nil {
		t.Errorf("cmd.Wait after the watch: %v", err)
	}
}

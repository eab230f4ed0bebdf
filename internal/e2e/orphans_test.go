package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// What a job starts does not outlive it, through the broker and the real
// executor binary (a child subreaper): a background sleep and a daemon that
// left the job's session are ended when the command exits, the job is
// answered at once, its metrics count them, and nothing of the jobs is
// left running nor as a zombie of the executor.
func TestJobLeftoversEndedLive(t *testing.T) {
	e := startExecutorProcess(t)
	flags := []string{"--workdir", t.TempDir()}

	start := time.Now()
	bg := e.submit(t, flags, "/bin/sh", "-c", "sleep 300 & echo started")
	took := time.Since(start)
	if *bg.reply.ExitStatus != 0 || bg.reply.Stdout != "started\n" {
		t.Fatalf("background job: reply %+v", bg.reply)
	}
	if took > 30*time.Second {
		t.Errorf("background job answered after %v: it waited for the sleep", took)
	}
	if n := bg.reply.metric(t, "processes_ended"); n != 1 {
		t.Errorf("background job: processes_ended = %d, want 1", n)
	}

	start = time.Now()
	daemon := e.submit(t, flags, "/bin/sh", "-c",
		"setsid sh -c 'sleep 300 & sleep 300' </dev/null >/dev/null 2>&1 & sleep 0.2; echo spawned")
	tookDaemon := time.Since(start)
	if *daemon.reply.ExitStatus != 0 || daemon.reply.Stdout != "spawned\n" {
		t.Fatalf("daemon job: reply %+v", daemon.reply)
	}
	n := daemon.reply.metric(t, "processes_ended")
	if n < 2 {
		t.Errorf("daemon job: processes_ended = %d, want at least 2 (the daemon shell and its sleeps)", n)
	}
	t.Logf("background job answered in %v (1 ended), daemon job in %v (%d ended)", took, tookDaemon, n)

	// Every job process has the test's private HOME in its environment.
	self := e.cmd.Process.Pid
	var left []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/environ")
		if err == nil && strings.Contains("\x00"+string(b), "\x00HOME="+e.home+"\x00") {
			if st, err := procfs.ReadStat(pid); err == nil && st.State != 'Z' {
				left = append(left, pid)
			}
		}
	}
	if len(left) > 0 {
		t.Errorf("processes of the jobs still running: %v", left)
	}
	// The executor reaped what came back to it (the reaper runs on SIGCHLD;
	// wait for it rather than for a fixed time).
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var zombies []int
		for _, c := range reaper.Children(self) {
			if st, err := procfs.ReadStat(c); err == nil && st.State == 'Z' {
				zombies = append(zombies, c)
			}
		}
		if len(zombies) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("zombie children of the executor: %v", zombies)
		}
	}
}

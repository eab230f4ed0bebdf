package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperRunAndWait is not a test: run by TestCommandDiesWithItsCaller
// in a process of its own, it starts a command, prints its pid and waits.
func TestHelperRunAndWait(t *testing.T) {
	if os.Getenv("RUNNER_HELPER") != "1" {
		t.Skip("helper process only")
	}
	Run(context.Background(), Command{Path: "/bin/sleep", Args: []string{"300"},
		OnStart: func(pid int) { fmt.Printf("pid %d\n", pid) }})
}

// When the process that runs a command is killed (SIGKILL: no shutdown),
// the command does not outlive it.
func TestCommandDiesWithItsCaller(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperRunAndWait$")
	helper.Env = append(os.Environ(), "RUNNER_HELPER=1")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		helper.Process.Kill()
		t.Fatalf("helper: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the command (pid %d) still runs after its caller was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running says whether pid exists and is not a zombie.
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

package procfs_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/procfs"
)

func TestReadFileGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	want := bytes.Repeat([]byte("0123456789"), 10000)
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := procfs.ReadFile(path, make([]byte, 0, 16))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, err %v; want %d bytes", len(got), err, len(want))
	}
	if _, err := procfs.ReadFile(filepath.Join(t.TempDir(), "missing"), nil); !os.IsNotExist(err) {
		t.Errorf("missing file: err %v, want not-exist", err)
	}
}

func TestStatChildrenEnviron(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "30")
	cmd.Env = []string{"A=1", "HYPERFLOW_TEST_MARK=xyz", "B=2"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid

	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ppid != os.Getpid() || st.Dead() || st.StartTime == 0 || st.Pgrp <= 0 {
		t.Errorf("stat of the child: %+v", st)
	}
	self, err := procfs.ReadStat(os.Getpid())
	if err != nil || self.RSS <= 0 || self.UTime+self.STime < 0 {
		t.Errorf("stat of the test: %+v, %v", self, err)
	}
	if st.StartTime < self.StartTime {
		t.Errorf("the child started (%d) before its parent (%d)", st.StartTime, self.StartTime)
	}

	children, ok := procfs.Children(os.Getpid())
	if !ok || !slices.Contains(children, pid) {
		t.Errorf("children %v (ok %v) lack %d", children, ok, pid)
	}
	// A pid that is in no use: no children, known (not a kernel without
	// the children files).
	if gone, ok := procfs.Children(1 << 30); !ok || gone != nil {
		t.Errorf("children of a pid in no use: %v (ok %v), want none, ok", gone, ok)
	}
	if last, err := procfs.LastPid(); err != nil || last < pid {
		t.Errorf("last pid %d (%v), below the child's %d", last, err, pid)
	}
	// The reader kept open sees the pids handed out after it was opened.
	lr, err := procfs.OpenLastPid()
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	later := exec.Command("true")
	if err := later.Run(); err != nil {
		t.Fatal(err)
	}
	if last, err := lr.Read(); err != nil || last < later.Process.Pid {
		t.Errorf("kept-open last pid %d (%v), below the later child's %d", last, err, later.Process.Pid)
	}
	if last, err := (*procfs.LastPidReader)(nil).Read(); err != nil || last < later.Process.Pid {
		t.Errorf("nil reader: last pid %d (%v), below %d", last, err, later.Process.Pid)
	}

	env, err := procfs.Environ(pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !procfs.HasEntry(env, []byte("HYPERFLOW_TEST_MARK=xyz"), true) {
		t.Errorf("environ %q lacks the whole entry", env)
	}
	if procfs.HasEntry(env, []byte("HYPERFLOW_TEST_MARK=xy"), true) {
		t.Error("a part of an entry matched as whole")
	}
	if !procfs.HasEntry(env, []byte("HYPERFLOW_TEST_MARK="), false) || procfs.HasEntry(env, []byte("C="), false) {
		t.Errorf("prefix matches wrong in %q", env)
	}
}

func TestStatOddName(t *testing.T) {
	// The command name may hold spaces and parentheses: the fields are
	// read after the last ')'.
	dir := t.TempDir()
	odd := filepath.Join(dir, "a) b (c")
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	st, err := procfs.ReadStat(cmd.Process.Pid)
	if err != nil || st.Ppid != os.Getpid() {
		t.Errorf("stat %+v, %v", st, err)
	}
	pids, err := procfs.Pids()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("pids lack the child (%v)", err)
	}
	if _, err := procfs.ReadStat(1 << 30); err == nil || !strings.Contains(err.Error(), "/proc/") {
		t.Errorf("no such pid: err %v", err)
	}
}

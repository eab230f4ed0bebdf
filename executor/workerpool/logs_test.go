package workerpool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Log file names are the Node listener's (handler.js).
func TestLogNames(t *testing.T) {
	if got, want := StdoutLogName("/w/logs-hf", "a1:2:3:4", "h1"), "/w/logs-hf/task-a1__2__3__4@h1__stdout.log"; got != want {
		t.Errorf("stdout log %q, want %q", got, want)
	}
	if got, want := StderrLogName("/w/logs-hf", "a1:2:3:4", "h1"), "/w/logs-hf/task-a1__2__3__4@h1__stderr.log"; got != want {
		t.Errorf("stderr log %q, want %q", got, want)
	}
	id := newHandlerID()
	if !regexp.MustCompile(`^[0-9A-Za-z_-]{9}$`).MatchString(id) || id == newHandlerID() {
		t.Errorf("handler id %q", id)
	}
}

func TestSink(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "sub", "out.txt")
	s, err := openSink(name, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("one\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, _ = openSink(name, true)
	s.Write([]byte("two\n"))
	s.Close()
	if b, _ := os.ReadFile(name); string(b) != "one\ntwo\n" {
		t.Errorf("appended file %q", b)
	}
	s, _ = openSink(name, false)
	s.Write([]byte("three\n"))
	s.Close()
	if b, _ := os.ReadFile(name); string(b) != "three\n" {
		t.Errorf("truncated file %q", b)
	}
	// A write error is kept for Close, never returned to the command.
	s, _ = openSink(name, false)
	s.f.Close()
	if n, err := s.Write([]byte("x")); n != 1 || err != nil {
		t.Errorf("Write = %d, %v", n, err)
	}
	if err := s.Close(); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Close = %v, want the write error", err)
	}
	if _, err := openSink(filepath.Join(name, "under-a-file"), false); err == nil {
		t.Error("openSink under a file succeeded")
	}
	var a, b bytes.Buffer
	var none *sink
	teeWriter(&a, none, &b).Write([]byte("z"))
	if a.String() != "z" || b.String() != "z" || teeWriter(none) != nil {
		t.Errorf("teeWriter: %q %q", a.String(), b.String())
	}
}

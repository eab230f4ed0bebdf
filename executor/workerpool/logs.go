package workerpool

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Per-task output files, named as the Node listener names them (handler.js):
//
//	<log dir>/task-<taskId, ':' replaced by "__">@<handler id>__stdout.log
//	<log dir>/task-<taskId, ':' replaced by "__">@<handler id>__stderr.log
//
// The log dir is HF_VAR_LOG_DIR, else <work dir>/logs-hf. The handler id is
// a short random id per process (the listener's shortid), so two workers
// writing to one shared directory never share a file. Every attempt of a
// task appends to the same two files.

// logFileBase returns the common part of a task's log file names.
func logFileBase(dir string, id TaskID, handler string) string {
	return filepath.Join(dir, "task-"+strings.ReplaceAll(string(id), ":", "__")+"@"+handler)
}

// StdoutLogName and StderrLogName are the paths of a task's output files.
func StdoutLogName(dir string, id TaskID, handler string) string {
	return logFileBase(dir, id, handler) + "__stdout.log"
}

// StderrLogName: see StdoutLogName.
func StderrLogName(dir string, id TaskID, handler string) string {
	return logFileBase(dir, id, handler) + "__stderr.log"
}

// newHandlerID returns a random id of 9 characters of the listener's
// shortid alphabet.
func newHandlerID() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// sink is a file a command's output is copied to. Writes never fail, so
// that a full disk or a vanished file never stops the command: the first
// error is kept and reported when the sink is closed.
type sink struct {
	mu   sync.Mutex
	name string
	f    *os.File
	err  error
}

// openSink opens name for writing, appending or truncating, creating its
// directory if needed.
func openSink(name string, appendTo bool) (*sink, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("create directory of %s: %w", name, err)
	}
	flags := os.O_WRONLY | os.O_CREATE
	if appendTo {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return &sink{name: name, f: f}, nil
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if _, err := s.f.Write(p); err != nil {
			s.err = fmt.Errorf("write %s: %w", s.name, err)
		}
	}
	return len(p), nil
}

// Close closes the file and returns the first error of any write or of
// the close.
func (s *sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.f.Close(); err != nil && s.err == nil {
		s.err = fmt.Errorf("close %s: %w", s.name, err)
	}
	return s.err
}

// teeWriter joins sinks (nil ones are skipped) into one writer.
func teeWriter(ws ...io.Writer) io.Writer {
	var out []io.Writer
	for _, w := range ws {
		if s, ok := w.(*sink); ok && s == nil {
			continue
		}
		if w != nil {
			out = append(out, w)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return io.MultiWriter(out...)
}

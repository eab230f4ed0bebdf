// Package storage moves a job's files between its work directory and where
// they live (docs/storage.md). A Backend is one kind of storage, shared by all jobs;
// Open turns a job's options into a Session, the job's view of that storage.
// The generic StageIn and StageOut do what every backend has in common (file
// name checks, directories, no partial files, no symlink escapes, byte
// counts) and call the Session's Get and Put for one file at a time.
//
// Backends are registered in one place, New in registry.go.
package storage

import (
	"context"
	"errors"
	"fmt"
)

// Options is a job's "options" object as decoded from JSON (numbers as
// json.Number).
type Options map[string]any

// Backend is one kind of storage. Implementations are safe for concurrent use.
type Backend interface {
	// Name is the backend's name as used in settings and job options.
	Name() string
	// Open checks a job's options and returns the job's session. Errors name
	// the option at fault.
	Open(ctx context.Context, opts Options) (Session, error)
}

// Session is one job's view of a storage.
type Session interface {
	// SharedDir is the directory a job runs in when the backend works in
	// place (local); then nothing is staged. It is "" for staging backends,
	// whose jobs run in a new directory the executor creates.
	SharedDir() string
	// Get copies the stored file name into the local file dst, which does not
	// exist yet (its directory does), and returns the bytes written. On
	// error the caller removes whatever was written to dst. A missing file is
	// an error wrapping ErrNotExist.
	Get(ctx context.Context, name, dst string) (int64, error)
	// Put copies the local regular file src to the stored file name and
	// returns the bytes sent.
	Put(ctx context.Context, name, src string) (int64, error)
	// String describes where files go ("s3://bucket/prefix", "/data/run").
	String() string
}

// SmallFiles is implemented by a Session for which moving a small file
// costs little more than the latency of one request (the HTTP object
// stores: cloud, plgdata), so that more of them at a time pay off: Staging
// then moves up to SmallFileFactor × its Concurrency files at a time while
// they are at most SmallFileSize bytes (their memory is a few KiB each), and
// Concurrency files at a time when they are larger or of unknown size.
type SmallFiles interface {
	// Sizes returns the stored sizes of those of names it can learn with a
	// few requests (cloud: one LIST per 1000 keys), or nil. It is asked
	// before a stage-in of more files than the concurrency; what it does not
	// return counts as large.
	Sizes(ctx context.Context, names []string) map[string]int64
}

const (
	// SmallFileSize is the size up to which a file counts as small for a
	// SmallFiles session.
	SmallFileSize = 1 << 20
	// SmallFileFactor is how many small files take the place of one
	// large one in the staging concurrency.
	SmallFileFactor = 4
)

// ErrNotExist is wrapped by errors for a stored file that does not exist.
var ErrNotExist = errors.New("storage: file does not exist")

// OptionError is an invalid job option.
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return "options." + e.Option + ": " + e.Msg }

// StringOption returns opts[key] as a string, "" when absent; other types are
// an *OptionError.
func StringOption(opts Options, key string) (string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", &OptionError{Option: key, Msg: fmt.Sprintf("must be a string, got %T", v)}
	}
	return s, nil
}

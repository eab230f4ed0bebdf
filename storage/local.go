package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Local runs jobs in place, in the existing directory options.workdir (a
// local disk or a share every node mounts). Nothing is staged; the input and
// output sizes are the sizes of the named files.
type Local struct{}

var _ Backend = Local{}

// Name implements Backend.
func (Local) Name() string { return "local" }

// Open implements Backend: options.workdir must name an existing directory.
func (Local) Open(_ context.Context, opts Options) (Session, error) {
	dir, err := workdirOption(opts)
	if err != nil {
		return nil, err
	}
	return localSession(dir), nil
}

type localSession string

func (s localSession) SharedDir() string { return string(s) }
func (s localSession) String() string    { return string(s) }
func (s localSession) Get(context.Context, string, string) (int64, error) {
	return 0, errors.New("local storage does not stage files")
}
func (s localSession) Put(context.Context, string, string) (int64, error) {
	return 0, errors.New("local storage does not stage files")
}

// workdirOption reads options.workdir, which must be an existing directory.
func workdirOption(opts Options) (string, error) {
	dir, err := StringOption(opts, "workdir")
	if err != nil {
		return "", err
	}
	if dir == "" {
		return "", &OptionError{Option: "workdir", Msg: "missing (the directory shared by the jobs)"}
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", &OptionError{Option: "workdir", Msg: fmt.Sprintf("work directory %s does not exist", dir)}
	case err != nil:
		return "", &OptionError{Option: "workdir", Msg: fmt.Sprintf("work directory %s: %v", dir, err)}
	case !fi.IsDir():
		return "", &OptionError{Option: "workdir", Msg: fmt.Sprintf("work directory %s is not a directory", dir)}
	}
	return dir, nil
}

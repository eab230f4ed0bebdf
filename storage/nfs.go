package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// NFS copies inputs from options.workdir (a slow shared file system: NFS,
// SSHFS) into the job's own work directory and copies outputs back. workdir
// is joined with file names as a path (the original concatenated strings).
type NFS struct{}

var _ Backend = NFS{}

// Name implements Backend.
func (NFS) Name() string { return "nfs" }

// Open implements Backend: options.workdir must name an existing directory.
func (NFS) Open(_ context.Context, opts Options) (Session, error) {
	dir, err := workdirOption(opts)
	if err != nil {
		return nil, err
	}
	return nfsSession(dir), nil
}

type nfsSession string

func (s nfsSession) SharedDir() string { return "" }
func (s nfsSession) String() string    { return string(s) }

func (s nfsSession) Get(ctx context.Context, name, dst string) (int64, error) {
	src, err := inside(string(s), name)
	if err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", src, ErrNotExist)
	}
	if err != nil {
		return 0, err
	}
	defer in.Close()
	return copyToNew(ctx, in, dst)
}

func (s nfsSession) Put(ctx context.Context, name, src string) (int64, error) {
	dst, err := inside(string(s), name)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("create directory: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	// Write next to the target and rename, so readers of the shared
	// directory never see a half-written output.
	tmp := filepath.Join(filepath.Dir(dst), partialPrefix+filepath.Base(dst))
	n, err := copyToNew(ctx, in, tmp)
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	return n, nil
}

// copyToNew copies r into a new file dst, in chunks so that ctx is checked
// between them; between two files io.Copy lets the kernel copy with
// copy_file_range.
func copyToNew(ctx context.Context, r io.Reader, dst string) (int64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	var total int64
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		var n int64
		n, err = io.CopyN(out, r, copyChunk)
		total += n
		if err == io.EOF {
			err = nil
			break
		}
		if err != nil {
			break
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return total, err
}

const copyChunk = 32 << 20

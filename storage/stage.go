package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// partialPrefix marks a file being downloaded; it is renamed to its real name
// only once complete, so a failed download leaves nothing half-written.
const partialPrefix = ".hf-partial-"

// Transfer follows the bytes a staging has moved so far, for progress
// reports from another goroutine. The zero value is ready; a nil *Transfer
// is allowed everywhere and counts nothing.
type Transfer struct {
	done    atomic.Int64           // bytes of the files finished
	partial atomic.Pointer[string] // download in progress (its size counts)
	total   atomic.Int64           // bytes to move, -1 when unknown
}

// Bytes returns the bytes moved so far, including the part of the file
// being downloaded.
func (t *Transfer) Bytes() int64 {
	if t == nil {
		return 0
	}
	n := t.done.Load()
	if p := t.partial.Load(); p != nil {
		if fi, err := os.Stat(*p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Total returns the bytes to move when known (stage-out), else -1.
func (t *Transfer) Total() int64 {
	if t == nil {
		return -1
	}
	return t.total.Load()
}

func (t *Transfer) fileDone(n int64) {
	if t != nil {
		t.done.Add(n)
		t.partial.Store(nil)
	}
}

func (t *Transfer) downloading(path string) {
	if t != nil {
		t.partial.Store(&path)
	}
}

// StageIn downloads names from s into dir, creating subdirectories as needed,
// and returns the bytes moved. Names must already be validated relative names.
// A failed file stops staging; its partial download is removed.
func StageIn(ctx context.Context, s Session, dir string, names []string, tr *Transfer) (int64, error) {
	if tr != nil {
		tr.total.Store(-1)
	}
	var total int64
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("stage in %s: %w", name, err)
		}
		n, err := getOne(ctx, s, dir, name, tr)
		if err != nil {
			return total, fmt.Errorf("stage in %s from %s: %w", name, s, err)
		}
		total += n
		tr.fileDone(n)
	}
	return total, nil
}

func getOne(ctx context.Context, s Session, dir, name string, tr *Transfer) (int64, error) {
	dst, err := inside(dir, name)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, fmt.Errorf("create directory: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(dst), partialPrefix+filepath.Base(dst))
	tr.downloading(tmp)
	n, err := s.Get(ctx, name, tmp)
	if err != nil {
		os.Remove(tmp)
		return n, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("rename download into place: %w", err)
	}
	return n, nil
}

// StageOut uploads names from dir to s and returns the bytes moved. Each
// must be a regular file inside dir; a symlink is followed only when its
// target stays inside dir.
func StageOut(ctx context.Context, s Session, dir string, names []string, tr *Transfer) (int64, error) {
	// Check every output first: nothing is uploaded when one is missing
	// or refused, and the total is known for progress reports.
	srcs := make([]string, len(names))
	var size int64
	for i, name := range names {
		src, err := OutputPath(dir, name)
		if err != nil {
			return 0, fmt.Errorf("stage out %s: %w", name, err)
		}
		if fi, err := os.Stat(src); err == nil {
			size += fi.Size()
		}
		srcs[i] = src
	}
	if tr != nil {
		tr.total.Store(size)
	}
	var total int64
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("stage out %s: %w", name, err)
		}
		n, err := s.Put(ctx, name, srcs[i])
		if err != nil {
			return total, fmt.Errorf("stage out %s to %s: %w", name, s, err)
		}
		total += n
		tr.fileDone(n)
	}
	return total, nil
}

// OutputPath checks that the output name exists in dir as a regular file
// that does not resolve outside dir, and returns its path.
func OutputPath(dir, name string) (string, error) {
	p, err := inside(dir, name)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("output file %s was not produced by the command (or is a dangling symlink)", name)
	}
	if err != nil {
		return "", fmt.Errorf("resolve output file: %w", err)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("resolve work directory: %w", err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("output file %s resolves to %s, outside the work directory: refused", name, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("output file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("output file %s is not a regular file (%s)", name, fi.Mode().Type())
	}
	return real, nil
}

// inside joins dir and a relative name and checks the result stays in dir.
func inside(dir, name string) (string, error) {
	if name == "" || filepath.IsAbs(name) {
		return "", fmt.Errorf("refused file name %q", name)
	}
	p := filepath.Join(dir, name)
	if !within(filepath.Clean(dir), p) || p == filepath.Clean(dir) {
		return "", fmt.Errorf("refused file name %q: outside the work directory", name)
	}
	return p, nil
}

func within(root, p string) bool {
	if p == root {
		return true
	}
	return strings.HasPrefix(p, root+string(filepath.Separator))
}

// LocalOutputs checks the outputs of a job run in place (local storage,
// which stages nothing) as every backend checks its outputs: each that
// exists must be a regular file that does not resolve outside dir (a
// symlink to /etc/passwd is refused, not counted). A missing output counts
// 0: the engine reads the directory itself. It returns the total size.
func LocalOutputs(dir string, names []string) (int64, error) {
	var total int64
	for _, name := range names {
		p, err := inside(dir, name)
		if err != nil {
			return total, fmt.Errorf("output %s: %w", name, err)
		}
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		real, err := OutputPath(dir, name)
		if err != nil {
			return total, err
		}
		fi, err := os.Stat(real)
		if err != nil {
			return total, fmt.Errorf("output file %s: %w", name, err)
		}
		total += fi.Size()
	}
	return total, nil
}

// LocalSizes sums the sizes of the named files in dir; missing files count 0.
// It gives local storage's input sizes.
func LocalSizes(dir string, names []string) int64 {
	var total int64
	for _, name := range names {
		p, err := inside(dir, name)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	return total
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// partialPrefix marks a file being downloaded; it is renamed to its real name
// only once complete, so a failed download leaves nothing half-written.
const partialPrefix = ".hf-partial-"

// Progress is called after each file with its name and bytes moved.
type Progress func(name string, bytes int64)

// StageIn downloads names from s into dir, creating subdirectories as needed,
// and returns the bytes moved. Names must already be validated relative names.
// A failed file stops staging; its partial download is removed.
func StageIn(ctx context.Context, s Session, dir string, names []string, progress Progress) (int64, error) {
	var total int64
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("stage in %s: %w", name, err)
		}
		n, err := getOne(ctx, s, dir, name)
		if err != nil {
			return total, fmt.Errorf("stage in %s from %s: %w", name, s, err)
		}
		total += n
		if progress != nil {
			progress(name, n)
		}
	}
	return total, nil
}

func getOne(ctx context.Context, s Session, dir, name string) (int64, error) {
	dst, err := inside(dir, name)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, fmt.Errorf("create directory: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(dst), partialPrefix+filepath.Base(dst))
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
func StageOut(ctx context.Context, s Session, dir string, names []string, progress Progress) (int64, error) {
	var total int64
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("stage out %s: %w", name, err)
		}
		src, err := OutputPath(dir, name)
		if err != nil {
			return total, fmt.Errorf("stage out %s: %w", name, err)
		}
		n, err := s.Put(ctx, name, src)
		if err != nil {
			return total, fmt.Errorf("stage out %s to %s: %w", name, s, err)
		}
		total += n
		if progress != nil {
			progress(name, n)
		}
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

// LocalSizes sums the sizes of the named files in dir; missing files count 0.
// It gives local storage's input and output sizes.
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

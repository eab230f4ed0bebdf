package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// partialPrefix marks a file being downloaded; it is renamed to its real name
// only once complete, so a failed download leaves nothing half-written.
const partialPrefix = ".hf-partial-"

// DefaultConcurrency is how many files of a job StageIn and StageOut move
// at a time (the staging_concurrency setting's default).
const DefaultConcurrency = config.DefaultStagingConcurrency

// Transfer follows the bytes a staging has moved so far, for progress
// reports from another goroutine. The zero value is ready; a nil *Transfer
// is allowed everywhere and counts nothing.
type Transfer struct {
	done  atomic.Int64 // bytes of the files finished
	total atomic.Int64 // bytes to move, -1 when unknown

	mu       sync.Mutex
	partials map[string]struct{} // downloads in progress (their sizes count)
}

// Bytes returns the bytes moved so far, including the parts of the files
// being downloaded.
func (t *Transfer) Bytes() int64 {
	if t == nil {
		return 0
	}
	n := t.done.Load()
	t.mu.Lock()
	partials := make([]string, 0, len(t.partials))
	for p := range t.partials {
		partials = append(partials, p)
	}
	t.mu.Unlock()
	for _, p := range partials {
		if fi, err := os.Stat(p); err == nil {
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

// fileDone counts a finished file of n bytes; partial, when not "", is its
// download that is no longer in progress.
func (t *Transfer) fileDone(partial string, n int64) {
	if t == nil {
		return
	}
	t.done.Add(n)
	if partial != "" {
		t.mu.Lock()
		delete(t.partials, partial)
		t.mu.Unlock()
	}
}

func (t *Transfer) downloading(path string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.partials == nil {
		t.partials = map[string]struct{}{}
	}
	t.partials[path] = struct{}{}
	t.mu.Unlock()
}

// Staging moves a job's files: Concurrency of them at a time (at most; 0
// or less means 1), following the bytes in Transfer (nil: not followed).
// For a session that implements SmallFiles, a file known to be at most
// SmallFileSize takes 1/SmallFileFactor of a place: up to SmallFileFactor ×
// Concurrency small files move at a time, which is what many small files
// at an object store's latency need (one request each, nothing buffered).
// Concurrency 1 is one file at a time, whatever their sizes.
//
// Whatever the concurrency, the guarantees are those of one file at a
// time: a download is written under a partial name and renamed only once
// complete, so a failed or cancelled one leaves nothing; the bytes counted
// are those of the files moved, each once (a name given twice is moved
// once); the first file that fails stops the staging: no file is started
// after it, those in flight are cancelled (and cleaned up by their
// backend), and the error names it. StageIn and StageOut return only when
// every transfer they started has ended.
type Staging struct {
	Concurrency int
	Transfer    *Transfer
}

// StageIn downloads names from s into dir, DefaultConcurrency at a time;
// see Staging.In.
func StageIn(ctx context.Context, s Session, dir string, names []string, tr *Transfer) (int64, error) {
	return Staging{Concurrency: DefaultConcurrency, Transfer: tr}.In(ctx, s, dir, names)
}

// StageOut uploads names from dir to s, DefaultConcurrency at a time; see
// Staging.Out.
func StageOut(ctx context.Context, s Session, dir string, names []string, tr *Transfer) (int64, error) {
	return Staging{Concurrency: DefaultConcurrency, Transfer: tr}.Out(ctx, s, dir, names)
}

// In downloads names from s into dir, creating subdirectories as needed,
// and returns the bytes moved. Names must already be validated relative
// names. A failed file stops staging; its partial download is removed.
func (st Staging) In(ctx context.Context, s Session, dir string, names []string) (int64, error) {
	tr := st.Transfer
	if tr != nil {
		tr.total.Store(-1)
	}
	names = uniqueNames(names)
	var weights []int64
	if sf, ok := s.(SmallFiles); ok && len(names) > max(st.Concurrency, 1) {
		if sizes := sf.Sizes(ctx, names); len(sizes) > 0 {
			weights = make([]int64, len(names))
			var total int64
			for i, name := range names {
				size, known := sizes[name]
				weights[i] = fileWeight(size, known)
				if known && total >= 0 {
					total += size
				} else {
					total = -1
				}
			}
			if tr != nil && total >= 0 {
				tr.total.Store(total)
			}
		}
	}
	return forEachFile(ctx, st.Concurrency, weights, len(names), func(ctx context.Context, i int) (int64, error) {
		name := names[i]
		n, partial, err := getOne(ctx, s, dir, name, tr)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && errors.Is(err, cause) {
				return n, fmt.Errorf("stage in %s: %w", name, err)
			}
			return n, fmt.Errorf("stage in %s from %s: %w", name, s, err)
		}
		tr.fileDone(partial, n)
		return n, nil
	})
}

// uniqueNames drops the repetitions of a name (as a cleaned path), which
// would otherwise be moved twice, and concurrently to the same place.
func uniqueNames(names []string) []string {
	if len(names) < 2 {
		return names
	}
	seen := make(map[string]bool, len(names))
	out := names[:0:0]
	for _, n := range names {
		k := filepath.Clean(n)
		if n == "" || !seen[k] {
			seen[k] = true
			out = append(out, n)
		}
	}
	return out
}

// errStopped cancels the files in flight once one failed.
var errStopped = errors.New("staging stopped: another file failed")

// fileWeight is the share of a place in the staging concurrency a file of
// size bytes takes, in 1/SmallFileFactor: see Staging.
func fileWeight(size int64, known bool) int64 {
	if known && size <= SmallFileSize {
		return 1
	}
	return SmallFileFactor
}

// forEachFile runs do(ctx, i) for every i < n, at most limit at a time (or,
// with weights, while the weights of the calls in flight sum to at most
// limit × SmallFileFactor), in order of i, and returns the sum of the bytes
// they moved. The first error stops it: no call starts after it, the calls
// in flight see their ctx cancelled, and that first error is returned (the
// errors of the calls it cancelled are not). It returns once every call has
// returned.
func forEachFile(ctx context.Context, limit int, weights []int64, n int, do func(ctx context.Context, i int) (int64, error)) (int64, error) {
	if limit < 1 {
		limit = 1
	}
	var sem *semaphore.Weighted
	workers := min(limit, n)
	if weights != nil && limit > 1 { // 1: one file at a time, whatever its size
		var small int
		for _, w := range weights {
			if w < SmallFileFactor {
				small++
			}
		}
		if small > 0 {
			sem = semaphore.NewWeighted(int64(limit) * SmallFileFactor)
			workers = min(limit*SmallFileFactor, n)
		}
	}
	if workers <= 1 {
		var total int64
		for i := range n {
			if err := ctx.Err(); err != nil {
				_, err := do(ctx, i) // names the file, as the others do
				return total, err
			}
			k, err := do(ctx, i)
			total += k
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64
		total    atomic.Int64
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	// one moves file i; false: stop this worker.
	one := func(i int) bool {
		if sem != nil {
			// Fails only when ctx ends, which the check below handles as
			// for a call about to start.
			if sem.Acquire(ctx, weights[i]) == nil {
				defer sem.Release(weights[i])
			}
		}
		if ctx.Err() != nil {
			// The job was cancelled: the next file says so, naming
			// itself.
			_, err := do(ctx, i)
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			return false
		}
		k, err := do(ctx, i)
		total.Add(k)
		if err != nil {
			mu.Lock()
			if firstErr == nil && context.Cause(ctx) != errStopped {
				firstErr = err
				cancel(errStopped)
			}
			mu.Unlock()
			return false
		}
		return true
	}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				mu.Lock()
				stop := firstErr != nil
				mu.Unlock()
				if stop || !one(i) {
					return
				}
			}
		})
	}
	wg.Wait()
	return total.Load(), firstErr
}

// getOne downloads one file; it returns the bytes written and the partial
// name the download used.
func getOne(ctx context.Context, s Session, dir, name string, tr *Transfer) (int64, string, error) {
	dst, err := inside(dir, name)
	if err != nil {
		return 0, "", err
	}
	if err := ctx.Err(); err != nil {
		return 0, "", context.Cause(ctx)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, "", fmt.Errorf("create directory: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(dst), partialPrefix+filepath.Base(dst))
	tr.downloading(tmp)
	n, err := s.Get(ctx, name, tmp)
	if err != nil {
		os.Remove(tmp)
		tr.fileDone(tmp, 0)
		return n, tmp, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		tr.fileDone(tmp, 0)
		return n, tmp, fmt.Errorf("rename download into place: %w", err)
	}
	return n, tmp, nil
}

// Out uploads names from dir to s and returns the bytes moved. Each must be
// a regular file inside dir; a symlink is followed only when its target
// stays inside dir. Every output is checked before the first upload:
// nothing is uploaded when one is missing or refused.
func (st Staging) Out(ctx context.Context, s Session, dir string, names []string) (int64, error) {
	tr := st.Transfer
	names = uniqueNames(names)
	srcs := make([]string, len(names))
	var weights []int64
	if _, ok := s.(SmallFiles); ok {
		weights = make([]int64, len(names))
	}
	var size int64
	root, rootErr := filepath.EvalSymlinks(dir) // once, not per output
	for i, name := range names {
		if rootErr != nil {
			root = "" // outputFile says what is wrong with dir, or with name first
		}
		src, n, err := outputFile(root, dir, name)
		if err != nil {
			return 0, fmt.Errorf("stage out %s: %w", name, err)
		}
		size += n
		srcs[i] = src
		if weights != nil {
			weights[i] = fileWeight(n, true)
		}
	}
	if tr != nil {
		tr.total.Store(size)
	}
	return forEachFile(ctx, st.Concurrency, weights, len(names), func(ctx context.Context, i int) (int64, error) {
		name := names[i]
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("stage out %s: %w", name, context.Cause(ctx))
		}
		n, err := s.Put(ctx, name, srcs[i])
		if err != nil {
			return n, fmt.Errorf("stage out %s to %s: %w", name, s, err)
		}
		tr.fileDone("", n)
		return n, nil
	})
}

// OutputPath checks that the output name exists in dir as a regular file
// that does not resolve outside dir, and returns its path.
func OutputPath(dir, name string) (string, error) {
	p, _, err := outputFile("", dir, name)
	return p, err
}

// outputFile is OutputPath that also returns the file's size; root is dir
// with its symlinks resolved, "" to resolve it here (callers checking many
// outputs resolve it once).
func outputFile(root, dir, name string) (string, int64, error) {
	p, err := inside(dir, name)
	if err != nil {
		return "", 0, err
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) {
		return "", 0, fmt.Errorf("output file %s was not produced by the command (or is a dangling symlink)", name)
	}
	if err != nil {
		return "", 0, fmt.Errorf("resolve output file: %w", err)
	}
	if root == "" {
		if root, err = filepath.EvalSymlinks(dir); err != nil {
			return "", 0, fmt.Errorf("resolve work directory: %w", err)
		}
	}
	if !within(root, real) {
		return "", 0, fmt.Errorf("output file %s resolves to %s, outside the work directory: refused", name, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", 0, fmt.Errorf("output file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("output file %s is not a regular file (%s)", name, fi.Mode().Type())
	}
	return real, fi.Size(), nil
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

package storage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// inFlight wraps a real session and records the most Gets or Puts running
// at the same time; each one waits a little, as a request to an object
// store would.
type inFlight struct {
	storage.Session
	sizes map[string]int64 // nil: not a SmallFiles session

	mu       sync.Mutex
	now, max int
}

func (s *inFlight) enter() func() {
	s.mu.Lock()
	s.now++
	s.max = max(s.max, s.now)
	s.mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	return func() { s.mu.Lock(); s.now--; s.mu.Unlock() }
}

func (s *inFlight) Get(ctx context.Context, name, dst string) (int64, error) {
	defer s.enter()()
	return s.Session.Get(ctx, name, dst)
}

func (s *inFlight) Put(ctx context.Context, name, src string) (int64, error) {
	defer s.enter()()
	return s.Session.Put(ctx, name, src)
}

func (s *inFlight) peak() int { s.mu.Lock(); defer s.mu.Unlock(); return s.max }

// smallFiles is inFlight that says it is a SmallFiles session.
type smallFiles struct{ *inFlight }

func (s smallFiles) Sizes(context.Context, []string) map[string]int64 { return s.sizes }

// TestSmallFilesConcurrency: for a SmallFiles session, small files move
// SmallFileFactor × the concurrency at a time, large ones (or of unknown
// size) the concurrency; other sessions always the concurrency.
func TestSmallFilesConcurrency(t *testing.T) {
	const concurrency, files = 3, 40
	small := make([]byte, 1000)
	large := make([]byte, storage.SmallFileSize+1)
	cases := []struct {
		name       string
		data       []byte
		smallFiles bool
		knownSizes bool // stage-in: Sizes answers
		wantIn     int
		wantOut    int
		conc       int // 0: concurrency
	}{
		{"small files, SmallFiles session", small, true, true, concurrency * storage.SmallFileFactor, concurrency * storage.SmallFileFactor, 0},
		{"small files, sizes of inputs unknown", small, true, false, concurrency, concurrency * storage.SmallFileFactor, 0},
		{"large files, SmallFiles session", large, true, true, concurrency, concurrency, 0},
		{"small files, other session", small, false, true, concurrency, concurrency, 0},
		{"small files, concurrency 1", small, true, true, 1, 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			concurrency := concurrency
			if c.conc != 0 {
				concurrency = c.conc
			}
			store := t.TempDir()
			var names []string
			sizes := map[string]int64{}
			for i := range files {
				name := fmt.Sprintf("d/f%02d", i)
				names = append(names, name)
				sizes[name] = int64(len(c.data))
				if err := os.MkdirAll(filepath.Join(store, "d"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(store, name), c.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			real, err := storage.NFS{}.Open(context.Background(), storage.Options{"workdir": store})
			if err != nil {
				t.Fatal(err)
			}
			newSession := func() (storage.Session, *inFlight) {
				f := &inFlight{Session: real}
				if c.knownSizes {
					f.sizes = sizes
				}
				if c.smallFiles {
					return smallFiles{f}, f
				}
				return f, f
			}
			dir := t.TempDir()
			s, f := newSession()
			tr := &storage.Transfer{}
			n, err := storage.Staging{Concurrency: concurrency, Transfer: tr}.In(context.Background(), s, dir, names)
			if err != nil || n != int64(files*len(c.data)) {
				t.Fatalf("stage in: %d bytes, %v", n, err)
			}
			checkPeak(t, "stage in", f.peak(), c.wantIn, concurrency)
			wantTotal := int64(-1)
			if c.smallFiles && c.knownSizes {
				wantTotal = n
			}
			if tr.Total() != wantTotal {
				t.Errorf("stage in: total %d, want %d (known only from a SmallFiles session's sizes)", tr.Total(), wantTotal)
			}

			var outs []string
			for _, name := range names {
				out := strings.Replace(name, "d/", "o/", 1)
				os.MkdirAll(filepath.Join(dir, "o"), 0o755)
				if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, out)); err != nil {
					t.Fatal(err)
				}
				outs = append(outs, out)
			}
			s, f = newSession()
			if n, err := (storage.Staging{Concurrency: concurrency}).Out(context.Background(), s, dir, outs); err != nil || n != int64(files*len(c.data)) {
				t.Fatalf("stage out: %d bytes, %v", n, err)
			}
			checkPeak(t, "stage out", f.peak(), c.wantOut, concurrency)
		})
	}
}

// checkPeak: never more than want at a time, and more than the concurrency
// when want is more (a loaded machine may not reach want exactly).
func checkPeak(t *testing.T, what string, got, want, concurrency int) {
	t.Helper()
	if got > want || (want > concurrency && got <= concurrency) || got < 1 {
		t.Errorf("%s: at most %d files at a time, want %d (concurrency %d)", what, got, want, concurrency)
	}
}

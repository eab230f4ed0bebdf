// Package storagetest is the conformance suite every storage backend passes
// (docs/storage.md). A backend's test builds a Harness that points the backend at
// a fresh, empty location on a real server and calls Run.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// Harness connects the suite to one backend.
type Harness struct {
	Backend storage.Backend
	// Options returns the job options of a new, empty location.
	Options func(t *testing.T) storage.Options
	// Seed stores data as the file name of the location, out of band (not
	// through the backend).
	Seed func(t *testing.T, opts storage.Options, name string, data []byte)
	// Fetch reads the stored file name out of band; ok is false when it
	// does not exist.
	Fetch func(t *testing.T, opts storage.Options, name string) (data []byte, ok bool)
	// BigSize is the size of the large-file test (default 64 MiB).
	BigSize int
}

// Run runs the whole suite. Backends that work in place (SharedDir != "")
// get the in-place checks; staging backends get the transfer checks.
func Run(t *testing.T, h Harness) {
	if h.BigSize == 0 {
		h.BigSize = 64 << 20
	}
	probe, err := h.Backend.Open(context.Background(), h.Options(t))
	if err != nil {
		t.Fatalf("open %s: %v", h.Backend.Name(), err)
	}
	if probe.SharedDir() != "" {
		t.Run("InPlace", func(t *testing.T) { testInPlace(t, h) })
		return
	}
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, h) })
	t.Run("Big", func(t *testing.T) { testBig(t, h) })
	t.Run("MissingInput", func(t *testing.T) { testMissingInput(t, h) })
	t.Run("MissingOutput", func(t *testing.T) { testMissingOutput(t, h) })
	t.Run("RefusedNames", func(t *testing.T) { testRefusedNames(t, h) })
	t.Run("SymlinkOutputs", func(t *testing.T) { testSymlinks(t, h) })
	t.Run("ManyFilesConcurrently", func(t *testing.T) { testManyFiles(t, h) })
	t.Run("ConcurrentMissingInput", func(t *testing.T) { testConcurrentMissingInput(t, h) })
	t.Run("ConcurrentFailures", func(t *testing.T) { testConcurrentFailures(t, h) })
	t.Run("ConcurrentCancel", func(t *testing.T) { testConcurrentCancel(t, h) })
}

func open(t *testing.T, h Harness, opts storage.Options) storage.Session {
	t.Helper()
	s, err := h.Backend.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", h.Backend.Name(), err)
	}
	return s
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testInPlace(t *testing.T, h Harness) {
	opts := h.Options(t)
	s := open(t, h, opts)
	if fi, err := os.Stat(s.SharedDir()); err != nil || !fi.IsDir() {
		t.Fatalf("SharedDir %q is not a directory: %v", s.SharedDir(), err)
	}
	bad := storage.Options{}
	for k, v := range opts {
		bad[k] = v
	}
	bad["workdir"] = filepath.Join(t.TempDir(), "missing")
	if _, err := h.Backend.Open(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("open with a missing workdir: %v, want an error naming it", err)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	ctx := context.Background()
	opts := h.Options(t)
	files := map[string][]byte{
		"a.dat":         randomBytes(t, 1000),
		"sub/b.dat":     randomBytes(t, 70000),
		"sub/deep/c.tx": []byte("hello\n"),
		"empty.dat":     {},
	}
	var names []string
	var want int64
	for _, name := range []string{"a.dat", "sub/b.dat", "sub/deep/c.tx", "empty.dat"} {
		h.Seed(t, opts, name, files[name])
		names = append(names, name)
		want += int64(len(files[name]))
	}
	s := open(t, h, opts)
	dir := t.TempDir()
	n, err := storage.StageIn(ctx, s, dir, names, nil)
	if err != nil {
		t.Fatalf("stage in: %v", err)
	}
	if n != want {
		t.Errorf("stage in moved %d bytes, want %d", n, want)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, files[name]) {
			t.Errorf("staged-in %s: %d bytes, err %v; want %d bytes", name, len(got), err, len(files[name]))
		}
	}
	assertNoPartials(t, dir)

	// Outputs: new names, also in new subdirectories.
	outs := map[string][]byte{"out/x.dat": randomBytes(t, 12345), "y.dat": {}, "out/z/w.dat": []byte("w")}
	var outNames []string
	want = 0
	for name, data := range outs {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		outNames = append(outNames, name)
		want += int64(len(data))
	}
	n, err = storage.StageOut(ctx, s, dir, outNames, nil)
	if err != nil {
		t.Fatalf("stage out: %v", err)
	}
	if n != want {
		t.Errorf("stage out moved %d bytes, want %d", n, want)
	}
	for name, data := range outs {
		got, ok := h.Fetch(t, opts, name)
		if !ok || !bytes.Equal(got, data) {
			t.Errorf("stored %s: %d bytes (exists %v), want %d", name, len(got), ok, len(data))
		}
	}
}

func testBig(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("large file test skipped in -short mode")
	}
	ctx := context.Background()
	opts := h.Options(t)
	data := randomBytes(t, h.BigSize)
	h.Seed(t, opts, "big.bin", data)
	s := open(t, h, opts)
	dir := t.TempDir()
	n, err := storage.StageIn(ctx, s, dir, []string{"big.bin"}, nil)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("stage in big: %d bytes, %v", n, err)
	}
	if err := os.Rename(filepath.Join(dir, "big.bin"), filepath.Join(dir, "big.out")); err != nil {
		t.Fatal(err)
	}
	n, err = storage.StageOut(ctx, s, dir, []string{"big.out"}, nil)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("stage out big: %d bytes, %v", n, err)
	}
	got, ok := h.Fetch(t, opts, "big.out")
	if !ok || !bytes.Equal(got, data) {
		t.Errorf("stored big.out differs: %d bytes, want %d", len(got), len(data))
	}
}

func testMissingInput(t *testing.T, h Harness) {
	opts := h.Options(t)
	h.Seed(t, opts, "there.dat", []byte("x"))
	s := open(t, h, opts)
	dir := t.TempDir()
	_, err := storage.StageIn(context.Background(), s, dir, []string{"there.dat", "sub/not-there.dat"}, nil)
	if err == nil {
		t.Fatal("stage in of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), "not-there.dat") {
		t.Errorf("error %q does not name the file", err)
	}
	if !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("error %q does not wrap storage.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub", "not-there.dat")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing input left a file behind: %v", err)
	}
	assertNoPartials(t, dir)
}

func testMissingOutput(t *testing.T, h Harness) {
	opts := h.Options(t)
	s := open(t, h, opts)
	dir := t.TempDir()
	_, err := storage.StageOut(context.Background(), s, dir, []string{"never-made.dat"}, nil)
	if err == nil || !strings.Contains(err.Error(), "never-made.dat") {
		t.Fatalf("stage out of a missing output: %v, want an error naming it", err)
	}
	if _, ok := h.Fetch(t, opts, "never-made.dat"); ok {
		t.Error("a missing output was stored")
	}
}

func testRefusedNames(t *testing.T, h Harness) {
	opts := h.Options(t)
	s := open(t, h, opts)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.dat"), []byte("x"), 0o644)
	for _, name := range []string{"", "/etc/passwd", "../escape.dat", "sub/../../escape.dat"} {
		if _, err := storage.StageIn(context.Background(), s, dir, []string{name}, nil); err == nil {
			t.Errorf("stage in of %q accepted", name)
		}
		if _, err := storage.StageOut(context.Background(), s, dir, []string{name}, nil); err == nil {
			t.Errorf("stage out of %q accepted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.dat")); err == nil {
		t.Error("a refused name wrote outside the work directory")
	}
}

func testSymlinks(t *testing.T, h Harness) {
	opts := h.Options(t)
	s := open(t, h, opts)
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "leak.dat"))
	_, err := storage.StageOut(context.Background(), s, dir, []string{"leak.dat"}, nil)
	if err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("symlink out of the work directory: %v, want refusal", err)
	}
	if _, ok := h.Fetch(t, opts, "leak.dat"); ok {
		t.Error("the symlink's target was uploaded")
	}
	os.WriteFile(filepath.Join(dir, "real.dat"), []byte("inside"), 0o644)
	os.Symlink("real.dat", filepath.Join(dir, "alias.dat"))
	if _, err := storage.StageOut(context.Background(), s, dir, []string{"alias.dat"}, nil); err != nil {
		t.Errorf("symlink inside the work directory refused: %v", err)
	}
	if got, ok := h.Fetch(t, opts, "alias.dat"); !ok || string(got) != "inside" {
		t.Errorf("alias.dat stored as %q (%v)", got, ok)
	}
}

func assertNoPartials(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".hf-partial-") {
			t.Errorf("partial download left behind: %s", p)
		}
		return nil
	})
}

// concurrency of the staging in the concurrent tests: fewer than the files,
// so that workers take several each.
const concurrency = 8

// seedMany stores n files of varied sizes (some empty) and returns their
// names and contents.
func seedMany(t *testing.T, h Harness, opts storage.Options, n int) ([]string, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("many/f%03d.dat", i)
		if i%3 == 0 {
			name = fmt.Sprintf("many/sub%d/f%03d.dat", i%4, i)
		}
		data := randomBytes(t, []int{0, 1, 4096, 70000, 1 << 20}[i%5])
		h.Seed(t, opts, name, data)
		files[name] = data
		names = append(names, name)
	}
	return names, files
}

func total(files map[string][]byte) int64 {
	var n int64
	for _, d := range files {
		n += int64(len(d))
	}
	return n
}

// testManyFiles stages 40 files in and out, 8 at a time: every byte in its
// place, the bytes counted exactly once (a name given twice is moved once),
// progress at the total, nothing partial.
func testManyFiles(t *testing.T, h Harness) {
	ctx := context.Background()
	opts := h.Options(t)
	names, files := seedMany(t, h, opts, 40)
	s := open(t, h, opts)
	dir := t.TempDir()
	tr := &storage.Transfer{}
	st := storage.Staging{Concurrency: concurrency, Transfer: tr}
	before := stagingGoroutines()
	n, err := st.In(ctx, s, dir, append(names, names[3]))
	if err != nil {
		t.Fatalf("stage in: %v", err)
	}
	if want := total(files); n != want || tr.Bytes() != want {
		t.Errorf("stage in moved %d bytes (progress %d), want %d", n, tr.Bytes(), want)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("staged-in %s: %d bytes, err %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	assertNoPartials(t, dir)

	var outNames []string
	for _, name := range names {
		out := strings.Replace(name, "many/", "out/", 1)
		os.MkdirAll(filepath.Dir(filepath.Join(dir, out)), 0o755)
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, out)); err != nil {
			t.Fatal(err)
		}
		outNames = append(outNames, out)
	}
	tr = &storage.Transfer{}
	n, err = storage.Staging{Concurrency: concurrency, Transfer: tr}.Out(ctx, s, dir, outNames)
	if err != nil {
		t.Fatalf("stage out: %v", err)
	}
	if want := total(files); n != want || tr.Bytes() != want || tr.Total() != want {
		t.Errorf("stage out moved %d bytes (progress %d of %d), want %d", n, tr.Bytes(), tr.Total(), want)
	}
	for _, name := range names {
		out := strings.Replace(name, "many/", "out/", 1)
		if got, ok := h.Fetch(t, opts, out); !ok || !bytes.Equal(got, files[name]) {
			t.Fatalf("stored %s: %d bytes (exists %v), want %d", out, len(got), ok, len(files[name]))
		}
	}
	assertNoLeak(t, before)
}

// testConcurrentMissingInput: one input missing among 40 staged 8 at a
// time: the staging fails naming it, nothing partial remains and no
// goroutine of the staging is left.
func testConcurrentMissingInput(t *testing.T, h Harness) {
	opts := h.Options(t)
	names, _ := seedMany(t, h, opts, 40)
	names = append(names[:20], append([]string{"many/not-there.dat"}, names[20:]...)...)
	s := open(t, h, opts)
	dir := t.TempDir()
	before := stagingGoroutines()
	_, err := storage.Staging{Concurrency: concurrency}.In(context.Background(), s, dir, names)
	if err == nil {
		t.Fatal("stage in with a missing file succeeded")
	}
	if !strings.Contains(err.Error(), "not-there.dat") || !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("error %q does not name the missing file or wrap storage.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "many", "not-there.dat")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing input left a file behind: %v", err)
	}
	assertNoPartials(t, dir)
	assertNoLeak(t, before)
}

// failing wraps a backend's session so that one file fails, while the
// others are real transfers, some in flight when it fails.
type failing struct {
	storage.Session
	name    string
	started atomic.Int32
}

var errInjected = errors.New("injected failure")

func (f *failing) fail(ctx context.Context, name string) error {
	if name != f.name {
		f.started.Add(1)
		return nil
	}
	// Fail once other files are on their way.
	for f.started.Load() < concurrency && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	return errInjected
}

func (f *failing) Get(ctx context.Context, name, dst string) (int64, error) {
	if err := f.fail(ctx, name); err != nil {
		os.WriteFile(dst, []byte("half a file"), 0o644) // the caller must remove it
		return 11, err
	}
	return f.Session.Get(ctx, name, dst)
}

func (f *failing) Put(ctx context.Context, name, src string) (int64, error) {
	if err := f.fail(ctx, name); err != nil {
		return 0, err
	}
	return f.Session.Put(ctx, name, src)
}

// testConcurrentFailures: one file fails among 40 in each direction: the
// staging fails naming it (not one of the transfers it cancelled), no file
// starts after it, nothing partial remains locally, no goroutine is left.
func testConcurrentFailures(t *testing.T, h Harness) {
	opts := h.Options(t)
	names, _ := seedMany(t, h, opts, 40)
	dir := t.TempDir()
	before := stagingGoroutines()
	f := &failing{Session: open(t, h, opts), name: names[12]}
	_, err := storage.Staging{Concurrency: concurrency}.In(context.Background(), f, dir, names)
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), names[12]) {
		t.Fatalf("stage in: %v, want the injected failure naming %s", err, names[12])
	}
	if got := f.started.Load(); got >= int32(len(names)-1) {
		t.Errorf("%d other files started: the failure did not stop the staging", got)
	}
	assertNoPartials(t, dir)
	assertNoLeak(t, before)

	// Stage out, to new names, from a directory holding the outputs.
	var outs []string
	for _, name := range names {
		out := "up/" + name
		p := filepath.Join(dir, "o", out)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, randomBytes(t, 3000), 0o644)
		outs = append(outs, out)
	}
	f = &failing{Session: open(t, h, opts), name: outs[30]}
	_, err = storage.Staging{Concurrency: concurrency}.Out(context.Background(), f, filepath.Join(dir, "o"), outs)
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), outs[30]) {
		t.Fatalf("stage out: %v, want the injected failure naming %s", err, outs[30])
	}
	if _, ok := h.Fetch(t, opts, outs[30]); ok {
		t.Errorf("the failed output %s was stored", outs[30])
	}
	assertNoLeak(t, before)
}

// testConcurrentCancel: the job is cancelled while files are in flight:
// the staging returns the cancellation, nothing partial remains, no
// goroutine is left.
func testConcurrentCancel(t *testing.T, h Harness) {
	opts := h.Options(t)
	names, _ := seedMany(t, h, opts, 40)
	dir := t.TempDir()
	before := stagingGoroutines()
	ctx, cancel := context.WithCancel(context.Background())
	f := &failing{Session: open(t, h, opts), name: "-"}
	go func() {
		for f.started.Load() < concurrency+2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := storage.Staging{Concurrency: concurrency}.In(ctx, f, dir, names)
	cancel()
	if err == nil {
		// Fast enough to finish first: nothing to check.
		t.Log("staging finished before the cancellation")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("stage in cancelled: %v, want context.Canceled", err)
	}
	assertNoPartials(t, dir)
	assertNoLeak(t, before)
}

// stagingGoroutines counts the goroutines running code of package storage
// (staging workers, a backend's helpers): idle HTTP connections and the
// like are not counted.
func stagingGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "hyperflow-amqp-executor/storage.") && !strings.Contains(g, "storagetest.") {
			count++
		}
	}
	return count
}

var leakMu sync.Mutex

// assertNoLeak fails when, 5 s after the staging returned, more goroutines
// run storage code than before it.
func assertNoLeak(t *testing.T, before int) {
	t.Helper()
	leakMu.Lock()
	defer leakMu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := stagingGoroutines()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines of package storage left after the staging (%d before):\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

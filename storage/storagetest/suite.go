// Package storagetest is the conformance suite every storage backend passes
// (docs/storage.md). A backend's test builds a Harness that points the backend at
// a fresh, empty location on a real server and calls Run.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

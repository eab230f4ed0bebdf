package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage/storagetest"
)

// gridftpServer returns the private GridFTP server that scripts/gridftp.sh
// started (through with-servers.sh --gridftp): the URL of its data
// directory and that directory on disk.
func gridftpServer(t *testing.T) (prefix, root string) {
	t.Helper()
	testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_URL")
	root = testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_ROOT")
	prefix = testenv.Require(t, "HYPERFLOW_TEST_GRIDFTP_PREFIX")
	return strings.TrimRight(prefix, "/"), root
}

// gridftpLocation makes a new, empty directory on the server. Directories
// the test creates are world-writable: run as root, the server writes as
// an unprivileged user (see scripts/gridftp.sh).
func gridftpLocation(t *testing.T, prefix, root string) (opts storage.Options, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp(root, "t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return storage.Options{"prefix": prefix + "/" + filepath.Base(dir) + "/"}, dir
}

// mkdirOpen creates dir and its missing parents world-writable.
func mkdirOpen(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	mkdirOpen(t, filepath.Dir(dir))
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
}

func gridftpHarness(t *testing.T) storagetest.Harness {
	prefix, root := gridftpServer(t)
	local := func(opts storage.Options, name string) string {
		loc := strings.TrimSuffix(strings.TrimPrefix(opts["prefix"].(string), prefix+"/"), "/")
		return filepath.Join(root, loc, filepath.FromSlash(name))
	}
	return storagetest.Harness{
		Backend: storage.NewGridFTP(config.GridFTP{}, nil),
		Options: func(t *testing.T) storage.Options {
			opts, _ := gridftpLocation(t, prefix, root)
			return opts
		},
		Seed: func(t *testing.T, opts storage.Options, name string, data []byte) {
			p := local(opts, name)
			mkdirOpen(t, filepath.Dir(p))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Fetch: func(t *testing.T, opts storage.Options, name string) ([]byte, bool) {
			data, err := os.ReadFile(local(opts, name))
			return data, err == nil
		},
	}
}

// TestGridFTP runs the conformance suite against the real server.
func TestGridFTP(t *testing.T) { storagetest.Run(t, gridftpHarness(t)) }

// TestGridFTPOddNames round-trips names that need escaping in URLs, or that
// globus-url-copy would otherwise take as wildcards.
func TestGridFTPOddNames(t *testing.T) {
	prefix, root := gridftpServer(t)
	opts, dir := gridftpLocation(t, prefix, root)
	s, err := storage.NewGridFTP(config.GridFTP{}, nil).Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"sp ace.dat", "star*.dat", "q?.dat", "br[1].dat", "pct%41.dat", "hash#.dat", "sub dir/plus+semi;.dat"}
	work := t.TempDir()
	for _, name := range names {
		p := filepath.Join(work, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("content of "+name), 0o644)
	}
	if _, err := storage.StageOut(context.Background(), s, work, names, nil); err != nil {
		t.Fatalf("stage out: %v", err)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || string(got) != "content of "+name {
			t.Errorf("stored %q: %q, %v", name, got, err)
		}
	}
	back := t.TempDir()
	_, merr := storage.StageIn(context.Background(), s, back, []string{"nope/missing.dat"}, nil)
	if !errors.Is(merr, storage.ErrNotExist) {
		t.Errorf("stage in of a missing file: %v, want ErrNotExist", merr)
	}
	t.Logf("missing file: %v", merr)
	if _, err := storage.StageIn(context.Background(), s, back, names, nil); err != nil {
		t.Fatalf("stage in: %v", err)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(back, filepath.FromSlash(name)))
		if err != nil || string(got) != "content of "+name {
			t.Errorf("staged in %q: %q, %v", name, got, err)
		}
	}
}

func TestGridFTPMissingTool(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := storage.NewGridFTP(config.GridFTP{}, nil).Open(context.Background(), storage.Options{"prefix": "gsiftp://grid.example.org/p"})
	if err == nil || !strings.Contains(err.Error(), "globus-gass-copy-progs") || !strings.Contains(err.Error(), "globus-url-copy") {
		t.Errorf("open without globus-url-copy: %v, want an error naming the tool and its Debian package", err)
	}
}

func TestGridFTPOptions(t *testing.T) {
	fakeGlobusURLCopy(t)
	b := storage.NewGridFTP(config.GridFTP{}, nil)
	for _, prefix := range []any{nil, "", 3, "no-scheme/path", "ftp://user:s3cret@:bad:port/x", "gsiftp://host/p?x=1"} {
		opts := storage.Options{}
		if prefix != nil {
			opts["prefix"] = prefix
		}
		_, err := b.Open(context.Background(), opts)
		var oe *storage.OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "options.prefix") {
			t.Errorf("prefix %v: %v, want an OptionError naming options.prefix", prefix, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	missing := filepath.Join(t.TempDir(), "x509up")
	_, err := storage.NewGridFTP(config.GridFTP{Proxy: missing}, nil).Open(context.Background(), storage.Options{"prefix": "gsiftp://h/p"})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "gridftp.proxy") {
		t.Errorf("open with a missing proxy: %v, want an error naming it and gridftp.proxy", err)
	}
}

// fakeGlobusURLCopy puts a test double of the client tool first in PATH
// (the server side is tested for real in TestGridFTP). It appends its
// X509_USER_PROXY and argv to the returned log file, and acts by
// $FAKE_GUC_MODE: "ok" (writes "data" to a file:// destination), "fail",
// "missing", "noisy" (a megabyte of output, then an error) or "flaky"
// (a connection reset the first time, then ok).
func fakeGlobusURLCopy(t *testing.T) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	script := `#!/bin/sh
{
  echo "X509_USER_PROXY=${X509_USER_PROXY-<unset>}"
  for a in "$@"; do echo "arg=$a"; done
  echo "--"
} >>"$FAKE_GUC_LOG"
last=""
for a in "$@"; do last="$a"; done
ok() {
  case "$last" in file://*) printf data >"${last#file://}" ;; esac
  exit 0
}
case "$FAKE_GUC_MODE" in
ok) ok ;;
fail)
  echo "error: globus_ftp_client: the server responded with an error" >&2
  echo "530 530-Login incorrect. : globus_gss_assist: Error invoking callout" >&2
  exit 1 ;;
missing)
  echo "error: globus_ftp_client: the server responded with an error" >&2
  echo "500 500-globus_xio: System error in open: No such file or directory" >&2
  exit 1 ;;
noisy)
  i=0
  while [ $i -lt 20000 ]; do echo "noise line $i ..............................................."; i=$((i+1)); done >&2
  echo "final error line" >&2
  exit 1 ;;
flaky)
  if [ ! -e "$FAKE_GUC_LOG.flaky" ]; then
    : >"$FAKE_GUC_LOG.flaky"
    echo "error: globus_xio: System error in read: Connection reset by peer" >&2
    exit 1
  fi
  ok ;;
esac
echo "fake globus-url-copy: unknown FAKE_GUC_MODE" >&2
exit 2
`
	if err := os.WriteFile(filepath.Join(dir, "globus-url-copy"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_GUC_LOG", log)
	t.Setenv("FAKE_GUC_MODE", "ok")
	return log
}

// calls returns the fake tool's calls: each a list of "X509_USER_PROXY=..."
// then "arg=..." lines.
func calls(t *testing.T, log string) [][]string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, call := range strings.Split(strings.TrimSuffix(string(data), "--\n"), "--\n") {
		out = append(out, strings.Split(strings.TrimSuffix(call, "\n"), "\n"))
	}
	return out
}

// TestGridFTPCommand checks the command lines and the X509_USER_PROXY the
// tool gets.
func TestGridFTPCommand(t *testing.T) {
	log := fakeGlobusURLCopy(t)
	proxy := filepath.Join(t.TempDir(), "x509up_u1000")
	os.WriteFile(proxy, []byte("not a real proxy"), 0o600)
	t.Setenv("X509_USER_PROXY", "/inherited/must/be/overridden")
	ctx := context.Background()
	s, err := storage.NewGridFTP(config.GridFTP{Proxy: proxy}, nil).
		Open(ctx, storage.Options{"prefix": "gsiftp://grid.example.org/people/plgx/wf/"})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	dst := filepath.Join(work, "in.dat")
	n, err := s.Get(ctx, "sub/a b.dat", dst)
	if err != nil || n != 4 {
		t.Fatalf("get: %d bytes, %v; want the 4 bytes the tool wrote", n, err)
	}
	src := filepath.Join(work, "r.dat")
	os.WriteFile(src, []byte("result"), 0o644)
	n, err = s.Put(ctx, "out/r*.dat", src)
	if err != nil || n != 6 {
		t.Fatalf("put: %d bytes, %v; want 6", n, err)
	}
	want := [][]string{
		{"X509_USER_PROXY=" + proxy, "arg=gsiftp://grid.example.org/people/plgx/wf/sub/a%20b.dat", "arg=file://" + dst},
		{"X509_USER_PROXY=" + proxy, "arg=-cd", "arg=file://" + src, "arg=gsiftp://grid.example.org/people/plgx/wf/out/r%2A.dat"},
	}
	if got := calls(t, log); !equalCalls(got, want) {
		t.Errorf("calls:\n%q\nwant:\n%q", got, want)
	}

	// Without gridftp.proxy the tool's environment is the executor's.
	os.Remove(log)
	s, err = storage.NewGridFTP(config.GridFTP{}, nil).Open(ctx, storage.Options{"prefix": "ftp://127.0.0.1:1/d"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "x", filepath.Join(work, "x")); err != nil {
		t.Fatal(err)
	}
	if got := calls(t, log); len(got) != 1 || got[0][0] != "X509_USER_PROXY=/inherited/must/be/overridden" {
		t.Errorf("calls without gridftp.proxy: %q", got)
	}
}

func equalCalls(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\n") != strings.Join(b[i], "\n") {
			return false
		}
	}
	return true
}

func TestGridFTPErrors(t *testing.T) {
	log := fakeGlobusURLCopy(t)
	ctx := context.Background()
	s, err := storage.NewGridFTP(config.GridFTP{}, nil).Open(ctx, storage.Options{"prefix": "ftp://user:pw-s3cret@127.0.0.1:1/d"})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	src := filepath.Join(work, "o.dat")
	os.WriteFile(src, []byte("o"), 0o644)

	t.Run("stderr", func(t *testing.T) {
		os.Remove(log)
		t.Setenv("FAKE_GUC_MODE", "fail")
		_, err := s.Get(ctx, "a.dat", filepath.Join(work, "a"))
		if err == nil || !strings.Contains(err.Error(), "530-Login incorrect") || errors.Is(err, storage.ErrNotExist) {
			t.Errorf("error %v: want the tool's stderr, not ErrNotExist", err)
		}
		if err != nil && strings.Contains(err.Error(), "pw-s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
		if n := len(calls(t, log)); n != 1 {
			t.Errorf("%d calls, want 1 (a login failure is not retried)", n)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Setenv("FAKE_GUC_MODE", "missing")
		_, err := s.Get(ctx, "a.dat", filepath.Join(work, "a"))
		if !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), "No such file") {
			t.Errorf("download of a missing file: %v, want ErrNotExist and the tool's message", err)
		}
		_, err = s.Put(ctx, "a.dat", src)
		if err == nil || errors.Is(err, storage.ErrNotExist) {
			t.Errorf("a failed upload: %v, want an error not wrapping ErrNotExist", err)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		t.Setenv("FAKE_GUC_MODE", "noisy")
		_, err := s.Put(ctx, "a.dat", src)
		if err == nil || !strings.Contains(err.Error(), "final error line") || len(err.Error()) > 6<<10 {
			t.Errorf("error of %d bytes; want the end of the output, at most 6 KiB", len(err.Error()))
		}
	})
	t.Run("transient", func(t *testing.T) {
		os.Remove(log)
		t.Setenv("FAKE_GUC_MODE", "flaky")
		if _, err := s.Put(ctx, "a.dat", src); err != nil {
			t.Errorf("put with a connection reset once: %v", err)
		}
		if n := len(calls(t, log)); n != 2 {
			t.Errorf("%d calls, want 2", n)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		t.Setenv("FAKE_GUC_MODE", "ok")
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Get(ctx, "a.dat", filepath.Join(work, "c")); !errors.Is(err, context.Canceled) {
			t.Errorf("get with a cancelled context: %v", err)
		}
	})
}

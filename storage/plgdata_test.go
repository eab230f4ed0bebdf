package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/plgdatatest"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage/storagetest"
)

// plgSetup returns a server, the backend pointed at it and the path of the
// proxy certificate file.
func plgSetup(t *testing.T, log *slog.Logger) (*plgdatatest.Server, *storage.PLGData, string) {
	t.Helper()
	cert := plgdatatest.FakeProxy(t)
	srv := plgdatatest.New(t, cert)
	proxy := plgdatatest.WriteProxy(t, cert)
	return srv, storage.NewPLGData(config.PLGData{Proxy: proxy, Endpoint: srv.URL}, log), proxy
}

func plgOpen(t *testing.T, b storage.Backend, prefix string) storage.Session {
	t.Helper()
	s, err := b.Open(context.Background(), storage.Options{"prefix": prefix})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestPLGData(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	var n atomic.Int64
	local := func(opts storage.Options, name string) string {
		return filepath.Join(srv.Root, filepath.FromSlash(opts["prefix"].(string)), filepath.FromSlash(name))
	}
	storagetest.Run(t, storagetest.Harness{
		Backend: backend,
		Options: func(t *testing.T) storage.Options {
			// A leading and a trailing slash: neither may double one.
			return storage.Options{"prefix": fmt.Sprintf("/people/plgtest/run-%d/", n.Add(1))}
		},
		Seed: func(t *testing.T, opts storage.Options, name string, data []byte) {
			p := local(opts, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Fetch: func(t *testing.T, opts storage.Options, name string) ([]byte, bool) {
			data, err := os.ReadFile(local(opts, name))
			return data, err == nil
		},
	})
}

// TestPLGDataRequests checks the requests themselves: paths, escaping, the
// upload directory of a top-level file, the multipart filename.
func TestPLGDataRequests(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "people/plg user/wf")
	ctx := context.Background()
	dir := t.TempDir()
	for name, data := range map[string]string{"top.dat": "top", "sub dir/a b%#?.dat": "odd"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	if _, err := s.Put(ctx, "top.dat", filepath.Join(dir, "top.dat")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "sub dir/a b%#?.dat", filepath.Join(dir, "sub dir", "a b%#?.dat")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "got")
	if n, err := s.Get(ctx, "sub dir/a b%#?.dat", dst); err != nil || n != 3 {
		t.Fatalf("get: %d bytes, %v", n, err)
	}
	want := []plgdatatest.Request{
		{Method: "POST", EscapedPath: "/upload/people/plg%20user/wf", Filename: "top.dat"},
		{Method: "POST", EscapedPath: "/upload/people/plg%20user/wf/sub%20dir", Filename: "a b%#?.dat"},
		{Method: "GET", EscapedPath: "/download/people/plg%20user/wf/sub%20dir/a%20b%25%23%3F.dat", Length: 0},
	}
	got := srv.Requests()
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Method != want[i].Method || got[i].EscapedPath != want[i].EscapedPath || got[i].Filename != want[i].Filename {
			t.Errorf("request %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got[0].Length <= int64(len("top")) {
		t.Errorf("upload Content-Length %d: want the whole form", got[0].Length)
	}
	if data, err := os.ReadFile(filepath.Join(srv.Root, "people", "plg user", "wf", "top.dat")); err != nil || string(data) != "top" {
		t.Errorf("stored top.dat: %q, %v", data, err)
	}
}

func TestPLGDataUploadLimit(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	src := filepath.Join(t.TempDir(), "huge.out")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk space used.
	if err := f.Truncate(storage.PLGDataUploadLimit + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = s.Put(context.Background(), "results/huge.out", src)
	if err == nil {
		t.Fatal("an output over 256 MiB was accepted")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"results/huge.out", "256 MiB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := srv.Count(http.MethodPost); n != 0 {
		t.Errorf("the server got %d upload requests, want none", n)
	}
}

// TestPLGDataRetry: transient failures (503, a connection cut in the middle
// of a download) are retried; the retried download starts from scratch.
func TestPLGDataRetry(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	p := filepath.Join(srv.Root, "people", "plgtest", "wf", "in.dat")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, data, 0o644)

	srv.SetHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		switch {
		case n == 1:
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return true
		case n == 2 && r.Method == http.MethodGet:
			// Half the file, then the connection breaks.
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data[:len(data)/2])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
		return false
	})
	dst := filepath.Join(t.TempDir(), "in.dat")
	n, err := s.Get(context.Background(), "in.dat", dst)
	if err != nil {
		t.Fatalf("get with transient failures: %v", err)
	}
	got, _ := os.ReadFile(dst)
	if n != int64(len(data)) || !bytes.Equal(got, data) {
		t.Errorf("downloaded %d bytes (file %d), want %d, same content", n, len(got), len(data))
	}
	if c := srv.Count(http.MethodGet); c != 3 {
		t.Errorf("%d GET requests, want 3", c)
	}

	if _, err := s.Put(context.Background(), "out.dat", dst); err != nil {
		t.Fatalf("put after a 503: %v", err)
	}
	if c := srv.Count(http.MethodPost); c != 2 {
		t.Errorf("%d POST requests, want 2", c)
	}
	if stored, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "out.dat")); !bytes.Equal(stored, data) {
		t.Errorf("stored out.dat: %d bytes, want %d", len(stored), len(data))
	}
}

func TestPLGDataNoRetryOn4xx(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	srv.SetHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Error(w, "proxy expired", http.StatusForbidden)
		return true
	})
	_, err := s.Get(context.Background(), "in.dat", filepath.Join(t.TempDir(), "in.dat"))
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "proxy expired") {
		t.Errorf("error %v: want the status and the body's excerpt", err)
	}
	if errors.Is(err, storage.ErrNotExist) {
		t.Errorf("a 403 wraps ErrNotExist: %v", err)
	}
	if c := srv.Count(http.MethodGet); c != 1 {
		t.Errorf("%d GET requests for a 403, want 1 (no retry)", c)
	}
}

func TestPLGDataNotFound(t *testing.T) {
	_, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	_, err := s.Get(context.Background(), "missing.dat", filepath.Join(t.TempDir(), "m"))
	if !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("error %v does not wrap storage.ErrNotExist", err)
	}
	if err != nil && !strings.Contains(err.Error(), "/download/people/plgtest/wf/missing.dat") {
		t.Errorf("error %q does not name the URL", err)
	}
}

func TestPLGDataOptions(t *testing.T) {
	_, backend, _ := plgSetup(t, nil)
	for _, opts := range []storage.Options{{}, {"prefix": ""}, {"prefix": 7}, {"prefix": "/a/../b"}} {
		_, err := backend.Open(context.Background(), opts)
		var oe *storage.OptionError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "options.prefix") {
			t.Errorf("open %v: %v, want an OptionError naming options.prefix", opts, err)
		}
	}
}

func TestPLGDataProxyFile(t *testing.T) {
	srv, backend, proxy := plgSetup(t, nil)
	ctx := context.Background()

	// Unset: the error names both ways of setting it.
	unset := storage.NewPLGData(config.PLGData{Endpoint: srv.URL}, nil)
	_, err := unset.Open(ctx, storage.Options{"prefix": "/p"})
	if err == nil || !strings.Contains(err.Error(), "plgdata.proxy") || !strings.Contains(err.Error(), "X509_USER_PROXY") {
		t.Errorf("open without a proxy: %v", err)
	}
	// Unreadable: the error names the path.
	missing := filepath.Join(t.TempDir(), "no-proxy")
	_, err = storage.NewPLGData(config.PLGData{Proxy: missing, Endpoint: srv.URL}, nil).Open(ctx, storage.Options{"prefix": "/p"})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("open with a missing proxy file: %v, want an error naming %s", err, missing)
	}

	// Read at transfer time: a renewed proxy is used at once, a removed one
	// fails the transfer, naming it.
	s := plgOpen(t, backend, "/people/plgtest/wf")
	src := filepath.Join(t.TempDir(), "o.dat")
	os.WriteFile(src, []byte("o"), 0o644)
	renewed := plgdatatest.FakeProxy(t)
	os.WriteFile(proxy, []byte(renewed), 0o600)
	srv.SetCert(renewed)
	if _, err := s.Put(ctx, "o.dat", src); err != nil {
		t.Errorf("put with a renewed proxy: %v", err)
	}
	os.Remove(proxy)
	if _, err := s.Put(ctx, "o.dat", src); err == nil || !strings.Contains(err.Error(), proxy) {
		t.Errorf("put with the proxy file gone: %v, want an error naming it", err)
	}
}

// TestPLGDataRedaction: neither errors nor logs show the certificate or a
// URL carrying it, even when the server echoes the request.
func TestPLGDataRedaction(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, backend, _ := plgSetup(t, log)
	cert := srv.Cert()
	s := plgOpen(t, backend, "/people/plgtest/wf")
	ctx := context.Background()

	echo := func(status int) plgdatatest.Hook {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			fmt.Fprintf(w, "<html>rejected %s %s\n%s\n%s</html>", r.Method, r.URL.String(), cert, body)
			return true
		}
	}
	// A cut echo: the certificate's first half only, as a truncated page.
	cut := func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad proxy %s", cert[40:len(cert)/2])
		return true
	}
	src := filepath.Join(t.TempDir(), "o.dat")
	os.WriteFile(src, []byte("o"), 0o644)

	var errs []error
	for _, hook := range []plgdatatest.Hook{echo(http.StatusBadRequest), cut} {
		srv.SetHook(hook)
		_, err := s.Get(ctx, "in.dat", filepath.Join(t.TempDir(), "in.dat"))
		errs = append(errs, err)
		_, err = s.Put(ctx, "o.dat", src)
		errs = append(errs, err)
	}
	// A 5xx is retried (and each retry logged with its error); a download
	// only, to keep the test short.
	srv.SetHook(echo(http.StatusBadGateway))
	_, err := s.Get(ctx, "in.dat", filepath.Join(t.TempDir(), "in.dat"))
	errs = append(errs, err)
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("no retry was logged:\n%s", logs.String())
	}

	for i, err := range errs {
		if err == nil {
			t.Errorf("transfer %d succeeded against a rejecting server", i)
			continue
		}
		if leak := proxyLeak(err.Error(), cert); leak != "" {
			t.Errorf("error %d shows the proxy certificate (%q): %v", i, leak, err)
		}
		if strings.Contains(strings.ReplaceAll(err.Error(), "proxy=[proxy certificate]", ""), "proxy=") {
			t.Errorf("error %d shows the URL with its proxy parameter: %v", i, err)
		}
	}
	if leak := proxyLeak(logs.String(), cert); leak != "" {
		t.Errorf("the log shows the proxy certificate (%q):\n%s", leak, logs.String())
	}
	if !strings.Contains(errs[0].Error(), "400 Bad Request") || !strings.Contains(errs[0].Error(), "rejected GET") {
		t.Errorf("error %q lacks the status and the redacted excerpt", errs[0])
	}
}

// TestPLGDataTLS: certificates are verified, and a verification failure is
// not retried.
func TestPLGDataTLS(t *testing.T) {
	cert := plgdatatest.FakeProxy(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b := storage.NewPLGData(config.PLGData{Proxy: plgdatatest.WriteProxy(t, cert), Endpoint: srv.URL}, nil)
	s := plgOpen(t, b, "/p")
	_, err := s.Get(context.Background(), "a.dat", filepath.Join(t.TempDir(), "a"))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("get from an untrusted TLS server: %v, want a certificate error", err)
	}
	t.Logf("error: %v", err)
	if proxyLeak(err.Error(), cert) != "" || strings.Contains(err.Error(), "proxy=") {
		t.Errorf("error shows the proxy: %v", err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: a TLS verification failure is not retried", n)
	}
}

// proxyLeak returns a piece of cert (16 characters or more, in any of the
// forms it could be sent in) found in text, or "".
func proxyLeak(text, cert string) string {
	forms := []string{cert, url.QueryEscape(cert), url.PathEscape(cert)}
	for _, f := range forms {
		for i := 0; i+16 <= len(f); i += 4 {
			if piece := f[i : i+16]; strings.Contains(text, piece) {
				return piece
			}
		}
	}
	return ""
}

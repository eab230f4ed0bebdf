package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage/storagetest"
)

// plgServer implements the PL-Grid Data protocol of storage.md over a
// directory. There is no public server to test against, so this is the
// reference: it checks everything the real service relies on and answers
// 4xx when a request is off.
//
//	GET  /download/{path}?proxy={certificate}  -> the file, 404 if missing
//	POST /upload/{dir}  multipart/form-data: "proxy" = certificate, then
//	     "file" whose filename is the base name, stored as {dir}/{filename}
type plgServer struct {
	root string
	srv  *httptest.Server

	mu       sync.Mutex
	cert     string         // the certificate text requests must carry
	requests []plgRequest   // every request, in order
	hook     plgHook        // when set, may answer a request instead
	calls    map[string]int // requests per method, hook included
}

// plgHook answers a request itself and returns true, or returns false to
// let the server handle it. n counts the requests of that method so far,
// this one included.
type plgHook func(w http.ResponseWriter, r *http.Request, n int) bool

type plgRequest struct {
	Method      string
	EscapedPath string
	Filename    string // uploads: the "file" part's filename
	Length      int64  // Content-Length as sent
}

func newPLGServer(t *testing.T, cert string) *plgServer {
	t.Helper()
	s := &plgServer{root: t.TempDir(), cert: cert, calls: map[string]int{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *plgServer) setCert(cert string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = cert
}

func (s *plgServer) setHook(h plgHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

func (s *plgServer) seen() []plgRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plgRequest(nil), s.requests...)
}

func (s *plgServer) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *plgServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[r.Method]++
	n, hook, cert := s.calls[r.Method], s.hook, s.cert
	s.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}
	req := plgRequest{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Length: r.ContentLength}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, req)
		s.mu.Unlock()
	}()

	p := r.URL.Path
	if strings.Contains(p, "//") || strings.HasSuffix(p, "/.") || strings.Contains(p, "/./") || strings.HasSuffix(p, "/") {
		http.Error(w, "malformed path "+r.URL.EscapedPath(), http.StatusBadRequest)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/download/"):
		if got := r.URL.Query().Get("proxy"); got != cert {
			http.Error(w, "proxy parameter is not the certificate", http.StatusForbidden)
			return
		}
		local, ok := s.local(strings.TrimPrefix(p, "/download/"))
		if !ok {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		f, err := os.Open(local)
		if err != nil {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.Error(w, "no such file", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		io.Copy(w, f)

	case r.Method == http.MethodPost && strings.HasPrefix(p, "/upload/"):
		if r.ContentLength < 0 {
			http.Error(w, "Content-Length required", http.StatusLengthRequired)
			return
		}
		dir, ok := s.local(strings.TrimPrefix(p, "/upload/"))
		if !ok {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, "not multipart/form-data: "+err.Error(), http.StatusBadRequest)
			return
		}
		part, err := mr.NextPart()
		if err != nil || part.FormName() != "proxy" {
			http.Error(w, "first field must be proxy", http.StatusBadRequest)
			return
		}
		got, _ := io.ReadAll(part)
		if string(got) != cert {
			http.Error(w, "proxy field is not the certificate", http.StatusForbidden)
			return
		}
		part, err = mr.NextPart()
		if err != nil || part.FormName() != "file" || part.FileName() == "" || strings.ContainsAny(part.FileName(), `/\`) {
			http.Error(w, "second field must be file, with a base name", http.StatusBadRequest)
			return
		}
		req.Filename = part.FileName()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tmp, err := os.CreateTemp(dir, ".upload-")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.Remove(tmp.Name())
		_, err = io.Copy(tmp, part)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, "upload: "+err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := mr.NextPart(); err != io.EOF {
			http.Error(w, "unexpected extra field", http.StatusBadRequest)
			return
		}
		if err := os.Rename(tmp.Name(), filepath.Join(dir, part.FileName())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "OK")

	default:
		http.Error(w, "unknown operation", http.StatusNotFound)
	}
}

// local maps a request path (decoded, relative) into the root directory.
func (s *plgServer) local(rel string) (string, bool) {
	clean := path.Clean("/" + rel)
	if clean != "/"+rel {
		return "", false
	}
	return filepath.Join(s.root, filepath.FromSlash(clean)), true
}

// fakeProxy returns a proxy-certificate-like text: PEM blocks whose base64
// holds '+', '/' and '=', all of which need URL encoding.
func fakeProxy(t *testing.T) string {
	t.Helper()
	block := func(kind string, n int) string {
		raw := make([]byte, n)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		var b strings.Builder
		b.WriteString("-----BEGIN " + kind + "-----\n")
		for len(enc) > 64 {
			b.WriteString(enc[:64] + "\n")
			enc = enc[64:]
		}
		b.WriteString(enc + "\n-----END " + kind + "-----\n")
		return b.String()
	}
	return block("CERTIFICATE", 700) + block("RSA PRIVATE KEY", 600) + block("CERTIFICATE", 900)
}

func writeProxy(t *testing.T, cert string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x509up_u1000")
	if err := os.WriteFile(p, []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// plgSetup returns a server, the backend pointed at it and the path of the
// proxy certificate file.
func plgSetup(t *testing.T, log *slog.Logger) (*plgServer, *storage.PLGData, string) {
	t.Helper()
	cert := fakeProxy(t)
	srv := newPLGServer(t, cert)
	proxy := writeProxy(t, cert)
	return srv, storage.NewPLGData(config.PLGData{Proxy: proxy, Endpoint: srv.srv.URL}, log), proxy
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
		return filepath.Join(srv.root, filepath.FromSlash(opts["prefix"].(string)), filepath.FromSlash(name))
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
	want := []plgRequest{
		{Method: "POST", EscapedPath: "/upload/people/plg%20user/wf", Filename: "top.dat"},
		{Method: "POST", EscapedPath: "/upload/people/plg%20user/wf/sub%20dir", Filename: "a b%#?.dat"},
		{Method: "GET", EscapedPath: "/download/people/plg%20user/wf/sub%20dir/a%20b%25%23%3F.dat", Length: 0},
	}
	got := srv.seen()
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
	if data, err := os.ReadFile(filepath.Join(srv.root, "people", "plg user", "wf", "top.dat")); err != nil || string(data) != "top" {
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
	if n := srv.count(http.MethodPost); n != 0 {
		t.Errorf("the server got %d upload requests, want none", n)
	}
}

// TestPLGDataRetry: transient failures (503, a connection cut in the middle
// of a download) are retried; the retried download starts from scratch.
func TestPLGDataRetry(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	p := filepath.Join(srv.root, "people", "plgtest", "wf", "in.dat")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, data, 0o644)

	srv.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
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
	if c := srv.count(http.MethodGet); c != 3 {
		t.Errorf("%d GET requests, want 3", c)
	}

	if _, err := s.Put(context.Background(), "out.dat", dst); err != nil {
		t.Fatalf("put after a 503: %v", err)
	}
	if c := srv.count(http.MethodPost); c != 2 {
		t.Errorf("%d POST requests, want 2", c)
	}
	if stored, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "out.dat")); !bytes.Equal(stored, data) {
		t.Errorf("stored out.dat: %d bytes, want %d", len(stored), len(data))
	}
}

func TestPLGDataNoRetryOn4xx(t *testing.T) {
	srv, backend, _ := plgSetup(t, nil)
	s := plgOpen(t, backend, "/people/plgtest/wf")
	srv.setHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
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
	if c := srv.count(http.MethodGet); c != 1 {
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
	unset := storage.NewPLGData(config.PLGData{Endpoint: srv.srv.URL}, nil)
	_, err := unset.Open(ctx, storage.Options{"prefix": "/p"})
	if err == nil || !strings.Contains(err.Error(), "plgdata.proxy") || !strings.Contains(err.Error(), "X509_USER_PROXY") {
		t.Errorf("open without a proxy: %v", err)
	}
	// Unreadable: the error names the path.
	missing := filepath.Join(t.TempDir(), "no-proxy")
	_, err = storage.NewPLGData(config.PLGData{Proxy: missing, Endpoint: srv.srv.URL}, nil).Open(ctx, storage.Options{"prefix": "/p"})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("open with a missing proxy file: %v, want an error naming %s", err, missing)
	}

	// Read at transfer time: a renewed proxy is used at once, a removed one
	// fails the transfer, naming it.
	s := plgOpen(t, backend, "/people/plgtest/wf")
	src := filepath.Join(t.TempDir(), "o.dat")
	os.WriteFile(src, []byte("o"), 0o644)
	renewed := fakeProxy(t)
	os.WriteFile(proxy, []byte(renewed), 0o600)
	srv.setCert(renewed)
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
	cert := srv.cert
	s := plgOpen(t, backend, "/people/plgtest/wf")
	ctx := context.Background()

	echo := func(status int) plgHook {
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
	for _, hook := range []plgHook{echo(http.StatusBadRequest), cut} {
		srv.setHook(hook)
		_, err := s.Get(ctx, "in.dat", filepath.Join(t.TempDir(), "in.dat"))
		errs = append(errs, err)
		_, err = s.Put(ctx, "o.dat", src)
		errs = append(errs, err)
	}
	// A 5xx is retried (and each retry logged with its error); a download
	// only, to keep the test short.
	srv.setHook(echo(http.StatusBadGateway))
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
	cert := fakeProxy(t)
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
	b := storage.NewPLGData(config.PLGData{Proxy: writeProxy(t, cert), Endpoint: srv.URL}, nil)
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

// Package plgdatatest is a reference server of the PL-Grid Data protocol
// (docs/storage.md, row plgdata) for tests. There is no public server to
// test against, so this is the reference: it serves a directory, checks
// everything the real service relies on and answers 4xx when a request is
// off.
//
//	GET  /download/{path}?proxy={certificate}  -> the file, 404 if missing
//	POST /upload/{dir}  multipart/form-data: "proxy" = certificate, then
//	     "file" whose filename is the base name, stored as {dir}/{filename}
//
// The server listens on 127.0.0.1 only (httptest).
package plgdatatest

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a running reference server. URL is its endpoint (http on
// 127.0.0.1, no trailing slash) and Root the directory it serves: the file
// Root/a/b is /download/a/b.
type Server struct {
	URL  string
	Root string

	srv *httptest.Server

	mu       sync.Mutex
	cert     string         // the certificate text requests must carry
	requests []Request      // every request the server handled, in order
	hook     Hook           // when set, may answer a request instead
	calls    map[string]int // requests per method, hook included
}

// Hook answers a request itself and returns true, or returns false to let
// the server handle it. n counts the requests of that method so far, this
// one included.
type Hook func(w http.ResponseWriter, r *http.Request, n int) bool

// Request is what the server saw of a request it handled (not of one a Hook
// answered).
type Request struct {
	Method      string
	EscapedPath string
	Filename    string // uploads: the "file" part's filename
	Length      int64  // Content-Length as sent
}

// New starts a server over a new temporary directory that accepts requests
// carrying cert; it is closed when the test ends.
func New(t testing.TB, cert string) *Server {
	t.Helper()
	s := &Server{Root: t.TempDir(), cert: cert, calls: map[string]int{}}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Cert returns the certificate text requests must carry.
func (s *Server) Cert() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// SetCert changes the certificate text requests must carry (a renewed
// proxy).
func (s *Server) SetCert(cert string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cert = cert
}

// SetHook installs h (nil removes it).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Requests returns the requests the server handled so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count returns the number of requests of method so far, those a Hook
// answered included.
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Path returns the file on disk of the service path p (slash-separated,
// e.g. "/people/plgjdoe/run-1/in.dat").
func (s *Server) Path(p string) string {
	return filepath.Join(s.Root, filepath.FromSlash(path.Clean("/"+p)))
}

// Seed stores data as the service path p, creating its directories.
func (s *Server) Seed(t testing.TB, p string, data []byte) {
	t.Helper()
	local := s.Path(p)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ServeHTTP implements the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[r.Method]++
	n, hook, cert := s.calls[r.Method], s.hook, s.cert
	s.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}
	req := Request{Method: r.Method, EscapedPath: r.URL.EscapedPath(), Length: r.ContentLength}
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
func (s *Server) local(rel string) (string, bool) {
	clean := path.Clean("/" + rel)
	if clean != "/"+rel {
		return "", false
	}
	return filepath.Join(s.Root, filepath.FromSlash(clean)), true
}

// FakeProxy returns a proxy-certificate-like text: PEM blocks whose base64
// holds '+', '/' and '=', all of which need URL encoding.
func FakeProxy(t testing.TB) string {
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

// WriteProxy writes cert to a new file (mode 0600) in a temporary
// directory and returns its path, for X509_USER_PROXY / plgdata.proxy.
func WriteProxy(t testing.TB, cert string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x509up_u1000")
	if err := os.WriteFile(p, []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

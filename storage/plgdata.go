package storage

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// PLGDataUploadLimit is the PL-Grid Data service's limit on one uploaded
// file (256 MiB). A larger output is refused before any byte is sent.
const PLGDataUploadLimit = 256 << 20

// Network behaviour of the plgdata backend. There is deliberately no overall
// request timeout, which would cut large transfers: each phase has its own
// bound, and a transfer that moves no byte for plgStallTimeout is aborted
// (and retried, as a transient failure).
const (
	plgDialTimeout      = 30 * time.Second
	plgTLSTimeout       = 30 * time.Second
	plgHeaderTimeout    = 2 * time.Minute // response headers, after the request was sent
	plgStallTimeout     = 2 * time.Minute // no progress while moving a body
	plgContinueTimeout  = 2 * time.Second // wait for "100 Continue" before sending an upload
	plgAttempts         = 4               // tries of one file, the first included
	plgBackoff          = 500 * time.Millisecond
	plgMaxBackoff       = 30 * time.Second
	plgMaxProxySize     = 1 << 20  // a proxy certificate is a few KiB
	plgErrorBodyWindow  = 64 << 10 // bytes of an error response read for its excerpt
	plgErrorExcerptSize = 200      // characters of it shown
)

// errStalled cancels a transfer that stopped making progress.
var errStalled = errors.New("no data moved for " + plgStallTimeout.String())

// PLGData stores files in the PL-Grid Data service (docs/storage.md, row
// plgdata). A download is GET {endpoint}/download/{prefix}/{name} with the
// user's proxy certificate as the query parameter "proxy", as the original
// sent it; an upload is a multipart/form-data POST to
// {endpoint}/upload/{prefix}/{dir of name} with the fields "proxy" and
// "file". The proxy certificate file is read for every file transferred, so
// a renewed proxy is picked up; its content never appears in errors or logs
// (URLs are shown without the query).
//
// Transient failures (network errors, stalls, 5xx, 429) are retried with
// exponential backoff, up to plgAttempts tries per file; a download then
// starts over. Other 4xx statuses and TLS verification failures are not
// retried. TLS certificates are verified against the system roots
// (SSL_CERT_FILE / SSL_CERT_DIR add others).
type PLGData struct {
	proxyPath string
	endpoint  string
	log       *slog.Logger
	client    *http.Client
	attempts  int
	backoff   time.Duration
}

var _ Backend = (*PLGData)(nil)

// NewPLGData returns the plgdata backend for the settings cfg
// (plgdata.proxy, plgdata.endpoint). Nothing is read or contacted until a
// job uses it. A nil log discards the backend's messages.
func NewPLGData(cfg config.PLGData, log *slog.Logger) *PLGData {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = config.DefaultPLGDataEndpoint
	}
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		log.Warn("plgdata.endpoint is plain http: proxy certificates would travel unencrypted",
			"endpoint", redact.URL(endpoint))
	}
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   plgDialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   plgTLSTimeout,
		ResponseHeaderTimeout: plgHeaderTimeout,
		ExpectContinueTimeout: plgContinueTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   32, // staging_concurrency files at a time (HTTP/1.1)
		ForceAttemptHTTP2:     true,
	}
	return &PLGData{
		proxyPath: cfg.Proxy,
		endpoint:  endpoint,
		log:       log.With("storage", "plgdata"),
		client:    &http.Client{Transport: transport},
		attempts:  plgAttempts,
		backoff:   plgBackoff,
	}
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name implements Backend.
func (*PLGData) Name() string { return "plgdata" }

// Open implements Backend: options.prefix is the job's directory on PL-Grid
// Data. The proxy certificate must be readable.
func (p *PLGData) Open(_ context.Context, opts Options) (Session, error) {
	prefix, err := StringOption(opts, "prefix")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(prefix) == "" {
		return nil, &OptionError{Option: "prefix", Msg: "missing (the directory on PL-Grid Data, e.g. /people/plglogin/workflow)"}
	}
	segs, err := prefixSegments(prefix)
	if err != nil {
		return nil, &OptionError{Option: "prefix", Msg: err.Error()}
	}
	base, err := url.Parse(p.endpoint)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("plgdata.endpoint %s: not an http:// or https:// URL", redact.URL(p.endpoint))
	}
	base.RawQuery, base.Fragment = "", ""
	if _, err := p.readProxy(); err != nil {
		return nil, err
	}
	return &plgSession{b: p, base: base, prefix: segs}, nil
}

// readProxy reads the proxy certificate's text from plgdata.proxy.
func (p *PLGData) readProxy() (config.Secret, error) {
	if p.proxyPath == "" {
		return "", errors.New("plgdata: no proxy certificate configured: set plgdata.proxy or X509_USER_PROXY to its path")
	}
	fail := func(err error) (config.Secret, error) {
		return "", fmt.Errorf("plgdata: proxy certificate %s (plgdata.proxy / X509_USER_PROXY): %w", p.proxyPath, err)
	}
	f, err := os.Open(p.proxyPath)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the message already names the path
		}
		return fail(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, plgMaxProxySize+1))
	switch {
	case err != nil:
		return fail(err)
	case len(data) > plgMaxProxySize:
		return fail(fmt.Errorf("larger than %d bytes: not a proxy certificate", plgMaxProxySize))
	case len(bytes.TrimSpace(data)) == 0:
		return fail(errors.New("file is empty"))
	}
	return config.Secret(data), nil
}

// prefixSegments splits a prefix into path segments, dropping empty and "."
// ones (so "/a//b/" is a/b); ".." is refused.
func prefixSegments(prefix string) ([]string, error) {
	var segs []string
	for _, s := range strings.Split(prefix, "/") {
		switch s {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%q must not contain \"..\"", prefix)
		default:
			segs = append(segs, s)
		}
	}
	return segs, nil
}

// nameSegments splits a relative file name (already checked by StageIn and
// StageOut) into cleaned path segments.
func nameSegments(name string) []string {
	clean := path.Clean(strings.TrimPrefix(name, "/"))
	if clean == "." {
		return nil
	}
	return strings.Split(clean, "/")
}

type plgSession struct {
	b      *PLGData
	base   *url.URL
	prefix []string
}

func (s *plgSession) SharedDir() string { return "" }

var _ SmallFiles = (*plgSession)(nil)

// Sizes implements SmallFiles: a file is one HTTP request, so small outputs
// go SmallFileFactor times as many at a time; the sizes of inputs are not
// asked for (nil), so inputs move Concurrency at a time.
func (s *plgSession) Sizes(context.Context, []string) map[string]int64 { return nil }

func (s *plgSession) String() string {
	return "plgdata " + redact.URL(s.base.String()) + " prefix /" + strings.Join(s.prefix, "/")
}

// url returns {endpoint}/{op}/{prefix}/{rel}, each segment escaped, without
// a query.
func (s *plgSession) url(op string, rel []string) *url.URL {
	elems := make([]string, 0, 1+len(s.prefix)+len(rel))
	elems = append(elems, op)
	for _, seg := range append(append([]string{}, s.prefix...), rel...) {
		elems = append(elems, url.PathEscape(seg))
	}
	// JoinPath takes escaped elements and never doubles a slash.
	return s.base.JoinPath(elems...)
}

// Get implements Session: GET {endpoint}/download/{prefix}/{name}?proxy=...
func (s *plgSession) Get(ctx context.Context, name, dst string) (int64, error) {
	u := s.url("download", nameSegments(name))
	shown := u.String() // the query with the certificate is added to the request only
	cert, err := s.b.readProxy()
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.b.retry(ctx, shown, func(ctx context.Context) error {
		var err error
		n, err = s.b.download(ctx, shown, cert, dst)
		return err
	})
	if err != nil {
		return n, err
	}
	s.b.log.Debug("downloaded", "url", shown, "bytes", n)
	return n, nil
}

// download makes one attempt: dst is created or truncated, so a retry
// starts from scratch.
func (p *PLGData) download(ctx context.Context, shown string, cert config.Secret, dst string) (n int64, err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()

	ctx, watch := newStallWatch(ctx, plgStallTimeout)
	defer watch.stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, shown, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", shown, err)
	}
	req.URL.RawQuery = url.Values{"proxy": {cert.Reveal()}}.Encode()
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, requestError(ctx, "GET", shown, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, "GET", shown, cert, true); err != nil {
		return 0, err
	}
	watch.arm()
	body := &progressReader{r: resp.Body, watch: watch}
	n, err = io.Copy(out, body)
	switch {
	case body.err != nil:
		return n, requestError(ctx, "GET", shown, body.err)
	case err != nil:
		return n, fmt.Errorf("write %s: %w", dst, err)
	}
	return n, nil
}

// Put implements Session: POST multipart/form-data to
// {endpoint}/upload/{prefix}/{dir of name}.
func (s *plgSession) Put(ctx context.Context, name, src string) (int64, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", src)
	}
	size := fi.Size()
	if size > PLGDataUploadLimit {
		return 0, fmt.Errorf("output file %s is %d bytes, over PL-Grid Data's upload limit of %d MiB (%d bytes) per file: refused, not uploaded",
			name, size, PLGDataUploadLimit>>20, PLGDataUploadLimit)
	}
	segs := nameSegments(name)
	if len(segs) == 0 {
		return 0, fmt.Errorf("refused file name %q", name)
	}
	u := s.url("upload", segs[:len(segs)-1])
	shown := u.String()
	cert, err := s.b.readProxy()
	if err != nil {
		return 0, err
	}
	err = s.b.retry(ctx, shown, func(ctx context.Context) error {
		return s.b.upload(ctx, shown, cert, src, segs[len(segs)-1], size)
	})
	if err != nil {
		return 0, err
	}
	s.b.log.Debug("uploaded", "url", shown, "file", name, "bytes", size)
	return size, nil
}

// upload makes one attempt. The form is streamed through a pipe: the file
// is never held in memory. Its exact length is known in advance (the
// multipart framing is computed with the same boundary), so the request has
// a Content-Length, as a form built in memory would.
func (p *PLGData) upload(ctx context.Context, shown string, cert config.Secret, src, filename string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()

	boundary := multipart.NewWriter(io.Discard).Boundary()
	var framing countingWriter
	if err := writeUploadForm(&framing, boundary, cert.Reveal(), filename, strings.NewReader(""), 0); err != nil {
		return fmt.Errorf("POST %s: build form: %w", shown, err)
	}

	ctx, watch := newStallWatch(ctx, plgStallTimeout)
	defer watch.stop()
	file := &progressReader{r: io.LimitReader(f, size), watch: watch, disarmAtEOF: true}
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	go func() {
		err := writeUploadForm(pw, boundary, cert.Reveal(), filename, file, size)
		pw.CloseWithError(err)
		written <- err
	}()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, shown, pr)
	if err != nil {
		pr.Close()
		<-written
		return fmt.Errorf("POST %s: %w", shown, err)
	}
	req.ContentLength = framing.n + size
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Expect", "100-continue") // lets the server refuse before the upload
	watch.arm()
	resp, err := p.client.Do(req)
	pr.CloseWithError(errors.New("upload request ended")) // unblocks the writer if it is still going
	werr := <-written
	if file.err != nil { // reading the local file failed: not worth a retry
		return fmt.Errorf("read %s: %w", src, file.err)
	}
	if werr != nil && errors.Is(werr, errSizeChanged) {
		return fmt.Errorf("read %s: %w", src, werr)
	}
	if err != nil {
		return requestError(ctx, "POST", shown, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp, "POST", shown, cert, false); err != nil {
		return err
	}
	if werr != nil {
		return &transientError{err: fmt.Errorf("POST %s: the server answered %s before the whole file was sent", shown, resp.Status)}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return nil
}

var errSizeChanged = errors.New("file changed size during the upload")

// writeUploadForm writes the upload form: the field "proxy" with the
// certificate's text, then the field "file" with size bytes of content
// under the name filename.
func writeUploadForm(w io.Writer, boundary, cert, filename string, content io.Reader, size int64) error {
	mw := multipart.NewWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return err
	}
	if err := mw.WriteField("proxy", cert); err != nil {
		return err
	}
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		return err
	}
	n, err := io.Copy(fw, content)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: %d bytes read, %d expected", errSizeChanged, n, size)
	}
	return mw.Close()
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// ----------------------------------------------------------------- retry --

// transientError marks a failure worth retrying; retryAfter is the server's
// Retry-After, if any.
type transientError struct {
	err        error
	retryAfter time.Duration
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// retry runs attempt until it succeeds, fails permanently, or has failed
// p.attempts times, sleeping with exponential backoff (or the server's
// Retry-After, capped) in between.
func (p *PLGData) retry(ctx context.Context, shown string, attempt func(context.Context) error) error {
	for i := 1; ; i++ {
		err := attempt(ctx)
		var te *transientError
		if err == nil || !errors.As(err, &te) {
			return err
		}
		if i >= p.attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, i)
		}
		delay := min(p.backoff<<(i-1), plgMaxBackoff)
		if te.retryAfter > delay {
			delay = min(te.retryAfter, plgMaxBackoff)
		}
		p.log.Warn("transfer failed, retrying", "url", shown, "attempt", i, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (not retried: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// requestError classifies an error of a request or of reading its response
// body. The url.Error of net/http is unwrapped: it quotes the full URL,
// query included.
func requestError(ctx context.Context, method, shown string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, errStalled) {
			return &transientError{err: fmt.Errorf("%s %s: %w", method, shown, errStalled)}
		}
		return fmt.Errorf("%s %s: %w", method, shown, cause)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cerr  x509.CertificateInvalidError
		rerr  tls.RecordHeaderError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return fmt.Errorf("%s %s: TLS certificate not trusted: %w", method, shown, err)
	}
	if errors.As(err, &rerr) {
		return fmt.Errorf("%s %s: %w", method, shown, err)
	}
	return &transientError{err: fmt.Errorf("%s %s: %w", method, shown, err)}
}

// statusError turns a non-2xx response into an error with the status and a
// short excerpt of the body (never containing the certificate). 404 on a
// download wraps ErrNotExist; 5xx and 429 are transient.
func statusError(resp *http.Response, method, shown string, cert config.Secret, download bool) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	if download && resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%s %s: %s: %w", method, shown, resp.Status, ErrNotExist)
	}
	err := fmt.Errorf("%s %s: %s%s", method, shown, resp.Status, bodyExcerpt(resp.Body, cert.Reveal()))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		return &transientError{err: err, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	return err
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// bodyExcerpt returns ": " and the start of an error response's body, on one
// line, or "" for an empty body. Whatever could be (part of) the proxy
// certificate is removed: a server may echo the request.
func bodyExcerpt(body io.Reader, cert string) string {
	data, _ := io.ReadAll(io.LimitReader(body, plgErrorBodyWindow))
	text := redactProxy(string(data), cert)
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if r := []rune(text); len(r) > plgErrorExcerptSize {
		text = string(r[:plgErrorExcerptSize]) + "…"
	}
	if text == "" {
		return ""
	}
	if sharesProxyText(text, cert) {
		return ": (response body not shown: it echoes the proxy certificate)"
	}
	return ": " + text
}

// proxyForms are the ways a certificate's text may appear in a response.
func proxyForms(cert string) []string {
	forms := []string{cert, strings.TrimSpace(cert), url.QueryEscape(cert), url.PathEscape(cert)}
	for _, line := range strings.Split(cert, "\n") {
		if line = strings.TrimSpace(line); len(line) >= 16 {
			forms = append(forms, line)
		}
	}
	return forms
}

func redactProxy(text, cert string) string {
	if cert == "" {
		return text
	}
	for _, f := range proxyForms(cert) {
		if f != "" {
			text = strings.ReplaceAll(text, f, "[proxy certificate]")
		}
	}
	return text
}

// sharesProxyText reports whether text holds 16 or more consecutive
// characters of the certificate (in any of its forms): a fragment that
// redaction missed, e.g. cut at the end of the window read.
func sharesProxyText(text, cert string) bool {
	const window = 16
	if cert == "" {
		return false
	}
	forms := proxyForms(cert)
	for i := 0; i+window <= len(text); i++ {
		for _, f := range forms {
			if strings.Contains(f, text[i:i+window]) {
				return true
			}
		}
	}
	return false
}

// ------------------------------------------------------------ stall watch --

// stallWatch cancels its context with errStalled when armed and no progress
// is reported for idle.
type stallWatch struct {
	idle   time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
}

func newStallWatch(parent context.Context, idle time.Duration) (context.Context, *stallWatch) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &stallWatch{idle: idle, cancel: cancel}
	w.timer = time.AfterFunc(idle, func() { cancel(errStalled) })
	w.timer.Stop()
	return ctx, w
}

func (w *stallWatch) arm()    { w.timer.Reset(w.idle) }
func (w *stallWatch) disarm() { w.timer.Stop() }
func (w *stallWatch) stop()   { w.timer.Stop(); w.cancel(nil) }

// progressReader reports progress to a stallWatch and remembers the first
// read error (as opposed to errors of the writer it is copied to).
type progressReader struct {
	r           io.Reader
	watch       *stallWatch
	disarmAtEOF bool
	err         error
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.watch.arm()
	}
	switch {
	case err == io.EOF:
		if r.disarmAtEOF {
			// Sent: the wait for the answer is bounded by the
			// transport's response header timeout.
			r.watch.disarm()
		}
	case err != nil && r.err == nil:
		r.err = err
	}
	return n, err
}

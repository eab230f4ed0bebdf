package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

const (
	// gridftpTool is the GridFTP client; gridftpPackage is the Debian
	// package that has it.
	gridftpTool    = "globus-url-copy"
	gridftpPackage = "globus-gass-copy-progs"

	gridftpOutputLimit = 4 << 10          // bytes of the tool's output kept for errors
	gridftpAttempts    = 3                // tries of one file, the first included
	gridftpBackoff     = 1 * time.Second  // doubled after each failure
	gridftpStopGrace   = 10 * time.Second // SIGTERM to SIGKILL when a job is cancelled
)

var (
	// gridftpMissing matches the tool's output for a source that does not
	// exist (the GridFTP server's "No such file or directory", an FTP 550).
	gridftpMissing = regexp.MustCompile(`(?i)no such file|file not found|does not exist|\b550\b`)
	// gridftpTransient matches failures worth another try.
	gridftpTransient = regexp.MustCompile(`(?i)connection reset|broken pipe|timed out|connection refused|connection closed|\b42[156]\b`)
)

// GridFTP stores files on a GridFTP (or plain FTP) server through the
// globus-url-copy tool (docs/storage.md, row gridftp): stage-in runs
// `globus-url-copy {prefix}/{name} file://{work dir}/{name}`, stage-out
// `globus-url-copy -cd file://... {prefix}/{name}`, creating remote
// directories as needed. The tool is run directly (no shell), with
// X509_USER_PROXY set to gridftp.proxy when that is set. File names are
// escaped in both URLs (globus-url-copy decodes %XX and would otherwise
// expand * ? [ ] as wildcards).
//
// A failure whose output looks transient (connection reset or refused,
// timeouts, FTP 421/425/426) is retried with backoff.
type GridFTP struct {
	proxy string
	log   *slog.Logger
}

var _ Backend = (*GridFTP)(nil)

// NewGridFTP returns the gridftp backend for the settings cfg
// (gridftp.proxy). Nothing is checked until a job uses it. A nil log
// discards the backend's messages.
func NewGridFTP(cfg config.GridFTP, log *slog.Logger) *GridFTP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GridFTP{proxy: cfg.Proxy, log: log.With("storage", "gridftp")}
}

// Name implements Backend.
func (*GridFTP) Name() string { return "gridftp" }

// Open implements Backend: options.prefix is the URL of the job's
// directory, e.g. gsiftp://host/path or ftp://host:port/path.
// globus-url-copy must be installed, and gridftp.proxy, when set, must
// exist.
func (g *GridFTP) Open(_ context.Context, opts Options) (Session, error) {
	prefix, err := StringOption(opts, "prefix")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(prefix) == "" {
		return nil, &OptionError{Option: "prefix", Msg: "missing (the URL of the directory, e.g. gsiftp://host/people/plglogin/workflow)"}
	}
	u, err := url.Parse(prefix) // err quotes prefix, which may hold a password
	if err != nil || u.Scheme == "" || u.Opaque != "" || (u.Host == "" && u.Scheme != "file") || u.RawQuery != "" || u.Fragment != "" {
		return nil, &OptionError{Option: "prefix", Msg: fmt.Sprintf("%s is not a URL such as gsiftp://host/path or ftp://host:port/path", redact.URL(prefix))}
	}
	tool, err := exec.LookPath(gridftpTool)
	if err != nil {
		return nil, fmt.Errorf("gridftp: %s is not installed (%w): install the Debian package %s", gridftpTool, err, gridftpPackage)
	}
	if g.proxy != "" {
		if _, err := os.Stat(g.proxy); err != nil {
			return nil, fmt.Errorf("gridftp: proxy certificate (gridftp.proxy / X509_USER_PROXY): %w", err)
		}
	}
	s := &gridftpSession{g: g, tool: tool, prefix: strings.TrimRight(prefix, "/")}
	if u.User != nil {
		s.password, _ = u.User.Password()
	}
	return s, nil
}

type gridftpSession struct {
	g        *GridFTP
	tool     string // absolute path of globus-url-copy
	prefix   string // without a trailing slash
	password string // of the prefix's user information, hidden in output
}

func (s *gridftpSession) SharedDir() string { return "" }
func (s *gridftpSession) String() string    { return redact.URL(s.prefix) }

// remote returns the URL of a file name: the prefix, "/", the name's
// segments escaped.
func (s *gridftpSession) remote(name string) string {
	return s.prefix + "/" + escapeSegments(nameSegments(name))
}

// fileURL returns the file:// URL of a local path (file:///abs/path).
func fileURL(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return "file:///" + escapeSegments(strings.Split(strings.TrimPrefix(filepath.ToSlash(abs), "/"), "/")), nil
}

func escapeSegments(segs []string) string {
	esc := make([]string, len(segs))
	for i, s := range segs {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

// Get implements Session.
func (s *gridftpSession) Get(ctx context.Context, name, dst string) (int64, error) {
	src := s.remote(name)
	local, err := fileURL(dst)
	if err != nil {
		return 0, err
	}
	if err := s.copy(ctx, src, local, true); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, fmt.Errorf("%s reported success, but: %w", gridftpTool, err)
	}
	s.g.log.Debug("downloaded", "url", redact.URL(src), "bytes", fi.Size())
	return fi.Size(), nil
}

// Put implements Session.
func (s *gridftpSession) Put(ctx context.Context, name, src string) (int64, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", src)
	}
	local, err := fileURL(src)
	if err != nil {
		return 0, err
	}
	dst := s.remote(name)
	if err := s.copy(ctx, local, dst, false, "-cd"); err != nil {
		return 0, err
	}
	s.g.log.Debug("uploaded", "url", redact.URL(dst), "bytes", fi.Size())
	return fi.Size(), nil
}

// copy runs globus-url-copy [flags] from to, retrying transient failures.
// download says whether from is the remote side (a missing source then
// wraps ErrNotExist).
func (s *gridftpSession) copy(ctx context.Context, from, to string, download bool, flags ...string) error {
	args := append(append([]string{}, flags...), from, to)
	shown := gridftpTool + " " + strings.Join(append(append([]string{}, flags...), redact.URL(from), redact.URL(to)), " ")
	delay := gridftpBackoff
	for attempt := 1; ; attempt++ {
		out, err := s.run(ctx, args)
		if err == nil {
			return nil
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return fmt.Errorf("%s: %w", shown, cerr)
		}
		out = s.hide(out)
		msg := err.Error()
		if out != "" {
			msg += ": " + out
		}
		switch {
		case download && gridftpMissing.MatchString(out):
			return fmt.Errorf("%s: %s: %w", shown, msg, ErrNotExist)
		case !gridftpTransient.MatchString(out) || attempt >= gridftpAttempts:
			if attempt > 1 {
				msg += fmt.Sprintf(" (gave up after %d attempts)", attempt)
			}
			return fmt.Errorf("%s: %s", shown, msg)
		}
		s.g.log.Warn("transfer failed, retrying", "command", shown, "attempt", attempt, "retry_in", delay, "err", msg)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %s (not retried: %w)", shown, msg, context.Cause(ctx))
		case <-t.C:
		}
		delay *= 2
	}
}

// run runs the tool once in its own process group (cancelling ctx stops the
// whole group) and returns its output, bounded, on one line.
func (s *gridftpSession) run(ctx context.Context, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, s.tool, args...)
	cmd.Env = os.Environ()
	if s.g.proxy != "" {
		cmd.Env = append(cmd.Env, "X509_USER_PROXY="+s.g.proxy) // the last value wins
	}
	out := &tailBuffer{limit: gridftpOutputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = gridftpStopGrace
	err := cmd.Run()
	return strings.Join(strings.Fields(out.String()), " "), err
}

// hide masks the prefix's password in the tool's output.
func (s *gridftpSession) hide(out string) string {
	if s.password == "" {
		return out
	}
	return strings.ReplaceAll(out, s.password, "***")
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	limit   int
	buf     []byte
	dropped bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped = true
	}
	return n, nil
}

func (b *tailBuffer) String() string {
	if b.dropped {
		return "… " + string(b.buf)
	}
	return string(b.buf)
}

package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// ErrNoTerminal is Run's error when the terminal UI is asked for without a
// terminal.
var ErrNoTerminal = errors.New("standard input and output are not a terminal: the live view needs one " +
	"(run it in a terminal, or collect without one: hyperflow-top --csv FILE [--trace FILE] [--chrome-trace FILE] [--duration D])")

// Env is what Run needs of the process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal: standard input and output are a terminal.
	Terminal bool
	// Log receives the headless mode's messages (nil: discarded). The
	// terminal UI never logs: it would garble the screen.
	Log *slog.Logger
}

// Run runs hyperflow-top until ctx is done, the user quits, --duration
// passes, or (headless) a replay ends: headless collection with --csv,
// --trace or --chrome-trace, the terminal UI otherwise. Without a terminal
// and without those it returns ErrNoTerminal at once.
func Run(ctx context.Context, cfg Config, env Env) error {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if cfg.Headless() {
		return runHeadless(ctx, cfg, env)
	}
	if !env.Terminal {
		return ErrNoTerminal
	}
	return runUI(ctx, cfg, env)
}

// startSource starts the replay or the subscription, recording to rec.
func startSource(ctx context.Context, cfg Config, rec *record.Recorder, failFast bool) (*Source, error) {
	if cfg.Replay != "" {
		return StartReplay(ctx, cfg.Replay, cfg.Speed, rec)
	}
	src := AMQPSource{URL: cfg.AMQPURL, Order: cfg.Order, TLS: cfg.TLS, Exchange: cfg.Exchange, Bindings: cfg.Bindings, FailFast: failFast}
	if cfg.History {
		src.Stream = cfg.HistoryStream
		if cfg.Since > 0 {
			src.From.Since = time.Now().Add(-cfg.Since)
		}
	}
	return StartAMQP(ctx, src, rec, nil), nil
}

// openRecording opens the recording of --record, or of --resume with the
// events recorded in it before (to apply first).
func openRecording(cfg Config) (*record.Recorder, []eventbus.Message, error) {
	switch {
	case cfg.Resume != "":
		msgs, rec, err := record.OpenResume(cfg.Resume)
		if err != nil {
			return nil, nil, fmt.Errorf("--resume %s: %w", cfg.Resume, err)
		}
		return rec, msgs, nil
	case cfg.Record != "":
		rec, err := record.Create(cfg.Record)
		return rec, nil, err
	}
	return nil, nil, nil
}

func closeRecorder(rec *record.Recorder, cfg Config, env Env, err error) error {
	if rec == nil {
		return err
	}
	if cerr := rec.Close(); cerr != nil {
		return errors.Join(err, cerr)
	}
	if cfg.Resume != "" {
		fmt.Fprintf(env.Stderr, "hyperflow-top: recorded %d more events to %s\n", rec.Count(), cfg.Resume)
	} else {
		fmt.Fprintf(env.Stderr, "hyperflow-top: recorded %d events to %s\n", rec.Count(), cfg.Record)
	}
	return err
}

// newState makes the state model of cfg with the events of history (a
// resumed recording) applied, aged to now.
func newState(cfg Config, history []eventbus.Message, now time.Time) *state.Model {
	st := state.New(cfg.stateOptions())
	for i := range history {
		_ = st.Apply(history[i])
	}
	if len(history) > 0 {
		st.Tick(now)
	}
	return st
}

func runUI(ctx context.Context, cfg Config, env Env) (err error) {
	rec, history, err := openRecording(cfg)
	if err != nil {
		return err
	}
	defer func() { err = closeRecorder(rec, cfg, env, err) }()
	srcCtx, stop := context.WithCancel(ctx)
	defer stop()
	src, err := startSource(srcCtx, cfg, rec, false)
	if err != nil {
		return err
	}
	st := newState(cfg, history, time.Now())
	status := ""
	if cfg.Resume != "" {
		status = fmt.Sprintf("resumed %d events from %s; recording to it", len(history), cfg.Resume)
	}
	var poller *QueuePoller
	if cfg.Replay == "" {
		// The queue view's own connection to the broker.
		poller = NewQueuePoller(cfg.AMQPURL, cfg.Order, cfg.TLS, nil)
		defer poller.Close()
	}
	m := New(Options{State: st, Source: src, Window: cfg.Window, Duration: cfg.Duration, Status: status,
		Queues: poller, Context: srcCtx, Theme: cfg.Theme})
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(env.Stdout)}
	if env.Stdin != nil {
		opts = append(opts, tea.WithInput(env.Stdin))
	}
	if env.Getenv("NO_COLOR") != "" {
		// no-color.org: any non-empty value (colorprofile only reads
		// true/false values).
		opts = append(opts, tea.WithColorProfile(colorprofile.ASCII))
	}
	_, err = tea.NewProgram(m, opts...).Run()
	stop()
	srcErr := src.Wait()
	if err != nil && (ctx.Err() != nil || errors.Is(err, tea.ErrInterrupted)) {
		err = nil // a signal: a normal end
	}
	return errors.Join(err, srcErr)
}

// outputs are the files headless collection writes, with their flags.
func (c *Config) outputs() []output {
	var out []output
	for _, o := range []output{{"--csv", c.CSV, FormatCSV}, {"--trace", c.Trace, FormatNextflow}, {"--chrome-trace", c.ChromeTrace, FormatChrome}} {
		if o.path != "" {
			out = append(out, o)
		}
	}
	return out
}

type output struct {
	flag, path string
	format     Format
}

// runHeadless collects into the state model without a terminal and writes
// the jobs (CSV, Nextflow trace, Chrome trace) when ctx is done, --duration
// passes or a replay ends.
func runHeadless(ctx context.Context, cfg Config, env Env) (err error) {
	outputs := cfg.outputs()
	for _, o := range outputs {
		if err := checkWritable(o.flag, o.path); err != nil {
			return err
		}
	}
	rec, history, err := openRecording(cfg)
	if err != nil {
		return err
	}
	defer func() { err = closeRecorder(rec, cfg, env, err) }()
	// The source stops at ctx's end (SIGINT) or at the end of --duration,
	// but not before its first connection attempt ended, so that a run
	// that never connected can say why (a broker delays its refusal of a
	// wrong password by seconds).
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	src, err := startSource(srcCtx, cfg, rec, true)
	if err != nil {
		return err
	}
	var durationEnd, graceEnd <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		durationEnd = t.C
	}
	var waitUp <-chan struct{} // while the duration passed before a connection
	interrupted := ctx.Done()
	st := newState(cfg, history, time.Now())
	now := time.Now
	if src.Replay {
		now = func() time.Time {
			if t := st.Latest(); !t.IsZero() {
				return t
			}
			return time.Now()
		}
	}
	files := make([]any, 0, 2*len(outputs))
	for _, o := range outputs {
		files = append(files, o.flag[2:], o.path)
	}
	env.Log.Info("collecting events without a terminal", append(files, "source", src.Label)...)
	if cfg.Resume != "" {
		env.Log.Info("resumed a recording", "file", cfg.Resume, "events", len(history))
	}
	ticker := time.NewTicker(TickEvery)
	defer ticker.Stop()
	var events int64
loop:
	for {
		select {
		case msg, ok := <-src.Events:
			if !ok {
				break loop
			}
			events++
			_ = st.Apply(msg)
		case <-ticker.C:
			st.Tick(now())
		case n := <-src.Notices:
			if n.Err != nil {
				env.Log.Warn(n.Text)
			} else {
				env.Log.Info(n.Text)
			}
		case <-durationEnd:
			durationEnd = nil
			if src.Connected() {
				stopSource()
				break
			}
			env.Log.Info("--duration passed before a connection; waiting for the attempt to end", "grace", connectGrace)
			waitUp = src.Up()
			t := time.NewTimer(connectGrace)
			defer t.Stop()
			graceEnd = t.C
		case <-waitUp:
			waitUp = nil
			stopSource()
		case <-graceEnd:
			stopSource()
			if !src.Connected() {
				// The attempt may block for its dial's timeout: not
				// waited for.
				return neverConnected(src, fmt.Sprintf("no answer within %s", cfg.Duration+connectGrace))
			}
		case <-interrupted:
			interrupted = nil // the source ends with srcCtx
			if !src.Connected() {
				return neverConnected(src, "interrupted while connecting")
			}
		}
	}
	if err := src.Wait(); err != nil {
		return err
	}
	if !src.Connected() {
		return neverConnected(src, "interrupted while connecting")
	}
	end := now()
	st.Tick(end)
	jobs, _ := st.Jobs(state.JobQuery{Sort: state.SortStarted}, 0, -1)
	var errs []error
	for _, o := range outputs {
		if err := WriteExportFile(o.path, o.format, jobs, end); err != nil {
			errs = append(errs, err)
			continue
		}
		if o.format == FormatCSV {
			fmt.Fprintf(env.Stderr, "hyperflow-top: wrote %d jobs to %s (%d events received)\n", len(jobs), o.path, events)
		} else {
			fmt.Fprintf(env.Stderr, "hyperflow-top: wrote %d jobs to %s (%s, %d events received)\n", len(jobs), o.path, o.format, events)
		}
	}
	return errors.Join(errs...)
}

// neverConnected is the error of headless collection whose source never
// connected (nothing was collected, and no file is written): its last
// connection error, else why.
func neverConnected(src *Source, why string) error {
	if e := src.LastErr(); e != nil {
		why = e.Error()
	}
	return fmt.Errorf("never connected to %s: %s", src.Label, why)
}

// checkWritable fails early when an output cannot be written where asked,
// rather than after hours of collecting.
func checkWritable(flag, path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		// The error without the temporary file's name, which would only
		// confuse: the user's path says where.
		return fmt.Errorf("%s %s: %w", flag, path, withoutPath(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// connectGrace is how long headless collection waits, past --duration,
// for the first connection attempt to succeed or fail (its cause is then
// known): longer than the dial's timeout.
var connectGrace = 15 * time.Second

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

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// ErrNoTerminal is Run's error when the terminal UI is asked for without a
// terminal.
var ErrNoTerminal = errors.New("standard input and output are not a terminal: the live view needs one " +
	"(run it in a terminal, or collect without one: hyperflow-top --csv FILE [--duration D])")

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
// passes, or (headless) a replay ends: headless collection with --csv, the
// terminal UI otherwise. Without a terminal and without --csv it returns
// ErrNoTerminal at once.
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
	if cfg.CSV != "" {
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
	return StartAMQP(ctx, AMQPSource{URL: cfg.AMQPURL, Exchange: cfg.Exchange, Bindings: cfg.Bindings, FailFast: failFast}, rec, nil), nil
}

func openRecorder(cfg Config) (*record.Recorder, error) {
	if cfg.Record == "" {
		return nil, nil
	}
	return record.Create(cfg.Record)
}

func closeRecorder(rec *record.Recorder, cfg Config, env Env, err error) error {
	if rec == nil {
		return err
	}
	if cerr := rec.Close(); cerr != nil {
		return errors.Join(err, cerr)
	}
	fmt.Fprintf(env.Stderr, "hyperflow-top: recorded %d events to %s\n", rec.Count(), cfg.Record)
	return err
}

func runUI(ctx context.Context, cfg Config, env Env) (err error) {
	rec, err := openRecorder(cfg)
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
	m := New(Options{MaxJobs: cfg.MaxJobs, Source: src, Window: cfg.Window, Duration: cfg.Duration})
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

// runHeadless collects into the state model without a terminal and writes
// the jobs as CSV when ctx is done, --duration passes or a replay ends.
func runHeadless(ctx context.Context, cfg Config, env Env) (err error) {
	if err := checkWritable(cfg.CSV); err != nil {
		return err
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	rec, err := openRecorder(cfg)
	if err != nil {
		return err
	}
	defer func() { err = closeRecorder(rec, cfg, env, err) }()
	src, err := startSource(ctx, cfg, rec, true)
	if err != nil {
		return err
	}
	st := state.New(state.Options{MaxJobs: cfg.MaxJobs})
	now := time.Now
	if src.Replay {
		now = func() time.Time {
			if t := st.Latest(); !t.IsZero() {
				return t
			}
			return time.Now()
		}
	}
	env.Log.Info("collecting events without a terminal", "csv", cfg.CSV, "source", src.Label)
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
		}
	}
	if err := src.Wait(); err != nil {
		return err
	}
	st.Tick(now())
	jobs, _ := st.Jobs(state.JobQuery{Sort: state.SortStarted}, 0, -1)
	if err := WriteCSVFile(cfg.CSV, jobs); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "hyperflow-top: wrote %d jobs to %s (%d events received)\n", len(jobs), cfg.CSV, events)
	return nil
}

// checkWritable fails early when the CSV cannot be written where asked,
// rather than after hours of collecting.
func checkWritable(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--csv %s: %w", path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

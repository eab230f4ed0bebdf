package tui

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/amqpflags"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// DefaultAMQPURL is the broker used without --amqp-url and AMQP_URL.
const DefaultAMQPURL = "amqp://guest:guest@localhost:5672/"

// Config is hyperflow-top's command line.
type Config struct {
	AMQPURL  string
	Order    string // how a list of URLs is tried: eventbus.OrderShuffle or OrderOrdered
	TLS      eventbus.TLSFiles
	Exchange string
	Bindings []string
	// History: read the executors' events stream (HistoryStream) from its
	// first retained event, or from Since ago, then follow it live.
	History       bool
	HistoryStream string
	Since         time.Duration
	MaxJobs       int
	Window        time.Duration

	// Headless: collect without a terminal and write the jobs to these
	// files on exit (any of them set): CSV, Nextflow trace, Chrome trace.
	CSV         string
	Trace       string
	ChromeTrace string
	Duration    time.Duration // stop after this long (0: until SIGINT or q)

	Record string  // write every event received here
	Replay string  // play this recording instead of subscribing
	Speed  float64 // replay speed (0: as fast as possible)
	// Resume loads this recording, then records to it what follows.
	Resume string

	// StallAfter: a transfer that moved no byte for this long is stalled.
	StallAfter time.Duration
	// GoneAfter: a stopped executor, or a silent one with nothing running,
	// is gone this long after its last sign of life (0: never).
	GoneAfter time.Duration

	// Theme: ThemeDark, ThemeLight or ThemeAuto (--theme).
	Theme string

	Version bool
}

func newFlagSet(c *Config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hyperflow-top", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&c.AMQPURL, "amqp-url", DefaultAMQPURL, "broker URL, or a cluster's URLs comma-separated (env AMQP_URL)")
	amqpflags.AddOrder(fs, &c.Order)
	amqpflags.AddTLS(fs, &c.TLS)
	fs.StringVar(&c.Exchange, "exchange", eventbus.DefaultExchange, "events exchange")
	fs.StringArrayVar(&c.Bindings, "binding", []string{"#"}, "binding key of the private queue, to narrow what is received, e.g. 'job.*.finished' (repeatable)")
	fs.BoolVar(&c.History, "history", false, "read the events kept in the executors' events stream (their events_stream setting) from the first retained one, then follow it live")
	fs.StringVar(&c.HistoryStream, "history-stream", eventbus.DefaultHistoryStream, "the stream --history reads")
	fs.DurationVar(&c.Since, "since", 0, "with --history: start at the events of this long ago (2h) instead of the first retained one")
	fs.IntVar(&c.MaxJobs, "max-jobs", state.DefaultMaxJobs, "finished jobs kept in memory (running jobs are always kept; totals stay exact)")
	fs.DurationVar(&c.Window, "window", DefaultWindow, "time span of the threads view's lanes at start (30s to 10m; + and - change it)")
	fs.DurationVar(&c.StallAfter, "stall-after", state.DefaultStallAfter, "mark a transfer stalled when it moved no byte for this long (needs the executors' progress events)")
	fs.DurationVar(&c.GoneAfter, "gone-after", state.DefaultGoneAfter, "call a stopped executor, or a silent one with nothing running, gone this long after its last sign of life (h hides the gone ones; 0: never)")
	fs.StringVar(&c.CSV, "csv", "", "headless: collect without a terminal and write the jobs to this CSV file on exit, SIGINT or the end of --duration")
	fs.StringVar(&c.Trace, "trace", "", "headless: collect without a terminal and write the jobs as a Nextflow trace (tab-separated) to this file on exit")
	fs.StringVar(&c.ChromeTrace, "chrome-trace", "", "headless: collect without a terminal and write the jobs' stages on the thread lanes as Chrome trace-event JSON (Perfetto, chrome://tracing) to this file on exit")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: until SIGINT, or q in the terminal)")
	fs.StringVar(&c.Record, "record", "", "write every event received, with its routing key and receive time, to this file (JSON lines)")
	fs.StringVar(&c.Replay, "replay", "", "play a recording made with --record instead of connecting to a broker")
	fs.Float64Var(&c.Speed, "speed", 1, "replay speed: 1 real time, 10 ten times faster, 0 as fast as possible")
	fs.StringVar(&c.Resume, "resume", "", "load this recording (made with --record or --resume), then go on recording to it: the history survives a restart of the monitor")
	fs.StringVar(&c.Theme, "theme", ThemeAuto, "colours for the terminal's background: dark, light, or auto (asked of the terminal; dark if it does not answer)")
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")
	return fs
}

// Usage is the synopsis printed before the flags.
const Usage = `usage: hyperflow-top [flags]

A live terminal monitor of hyperflow-amqp-executor workers, from the events
they publish: executors, threads as lanes of stage-in, execution and
stage-out bars, the jobs table, and each job's timeline.

  hyperflow-top                           watch the broker of AMQP_URL
  hyperflow-top --record run.jsonl        ... and keep every event received
  hyperflow-top --history --since 2h      the events of the last 2 hours kept in
                                          the executors' events stream, then live
  hyperflow-top --replay run.jsonl        play a recording, no broker needed
  hyperflow-top --resume run.jsonl        load a recording, then keep recording
                                          to it (history survives a restart)
  hyperflow-top --csv jobs.csv --duration 1h
                                          collect without a terminal; write
                                          the jobs as CSV at the end or on SIGINT
  hyperflow-top --trace trace.tsv --chrome-trace lanes.json
                                          ... as a Nextflow trace, and as a
                                          Chrome trace of the thread lanes

views: 1 executors (utilisation, diagnosis, storage rates), 2 threads,
3 jobs, 4 job detail, 5 failures (failed jobs grouped alike), 6 queues
(ready, unacked, consumers, rates, time to drain, why nothing runs).
keys: tab or 1-6 views, arrows or j/k move, enter detail, esc back,
/ filter (id, executable, host, thread, state, exit status, the first
line of stderr), s sort column, r reverse, f failed only, t state
filter, m marks (stalled, near deadline, redelivered), h hide the gone
executors, p pause the display, e export the jobs table (the file
name picks the format: .csv CSV, .tsv or .trace Nextflow trace, .json
Chrome trace; tab in the prompt switches), ? all keys, q quit. The
mouse wheel scrolls. NO_COLOR (any value) turns the colours off;
--theme light suits a light background.

flags:
`

// Headless says whether the command line asks for headless collection:
// any of --csv, --trace and --chrome-trace.
func (c *Config) Headless() bool { return c.CSV != "" || c.Trace != "" || c.ChromeTrace != "" }

// stateOptions are the state model's options of the command line.
func (c *Config) stateOptions() state.Options {
	gone := c.GoneAfter
	if gone == 0 {
		gone = -1 // never
	}
	return state.Options{MaxJobs: c.MaxJobs, StallAfter: c.StallAfter, GoneAfter: gone}
}

// WriteUsage prints the synopsis and the flags.
func WriteUsage(w io.Writer) {
	var c Config
	fmt.Fprint(w, Usage)
	fmt.Fprint(w, newFlagSet(&c).FlagUsages())
}

// ParseArgs reads the command line (without the program name); getenv
// supplies AMQP_URL, AMQP_URL_ORDER and AMQP_TLS_*, which the flags
// override. It returns pflag.ErrHelp
// for -h/--help.
func ParseArgs(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := newFlagSet(&c)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if v := getenv("AMQP_URL"); v != "" && !fs.Changed("amqp-url") {
		c.AMQPURL = v
	}
	amqpflags.TLSFromEnv(fs, getenv, &c.TLS)
	if err := amqpflags.OrderFromEnv(fs, getenv, &c.Order); err != nil {
		return c, err
	}
	return c, c.validate(fs)
}

func (c *Config) validate(fs *pflag.FlagSet) error {
	switch {
	case c.Exchange == "":
		return errors.New("--exchange: must not be empty")
	case c.AMQPURL == "" && c.Replay == "":
		return errors.New("--amqp-url: must not be empty")
	case c.MaxJobs < 1:
		return fmt.Errorf("--max-jobs %d: must be at least 1", c.MaxJobs)
	case c.Duration < 0:
		return fmt.Errorf("--duration %s: must not be negative", c.Duration)
	case c.Window < 30*time.Second || c.Window > state.DefaultHistoryWindow:
		return fmt.Errorf("--window %s: must be between 30s and %s", c.Window, state.DefaultHistoryWindow)
	case c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0):
		return fmt.Errorf("--speed %v: must be 0 (as fast as possible) or more", c.Speed)
	case c.StallAfter <= 0:
		return fmt.Errorf("--stall-after %s: must be positive", c.StallAfter)
	case c.GoneAfter < 0:
		return fmt.Errorf("--gone-after %s: must not be negative (0: never)", c.GoneAfter)
	case c.Resume != "" && (c.Record != "" || c.Replay != ""):
		return errors.New("--resume: not with --record or --replay (it records to its own file)")
	case c.Theme != ThemeDark && c.Theme != ThemeLight && c.Theme != ThemeAuto:
		return fmt.Errorf("--theme %q: must be dark, light or auto", c.Theme)
	case fs.Changed("speed") && c.Replay == "":
		return errors.New("--speed: only with --replay")
	case c.History && (c.Replay != "" || c.Resume != ""):
		return errors.New("--history: not with --replay or --resume (it reads the broker's events stream)")
	case c.History && fs.Changed("binding"):
		return errors.New("--history: not with --binding (the stream holds every event)")
	case (fs.Changed("since") || fs.Changed("history-stream")) && !c.History:
		return errors.New("--since and --history-stream: only with --history")
	case c.Since < 0:
		return fmt.Errorf("--since %s: must not be negative", c.Since)
	case c.History && strings.TrimSpace(c.HistoryStream) == "":
		return errors.New("--history-stream: must not be empty")
	}
	// No file given twice.
	files := []struct{ flag, path string }{{"--replay", c.Replay}, {"--record", c.Record}, {"--resume", c.Resume},
		{"--csv", c.CSV}, {"--trace", c.Trace}, {"--chrome-trace", c.ChromeTrace}}
	for i, a := range files {
		for _, b := range files[i+1:] {
			if a.path != "" && a.path == b.path {
				return fmt.Errorf("%s and %s: the same file", a.flag, b.flag)
			}
		}
	}
	for _, b := range c.Bindings {
		if strings.TrimSpace(b) == "" {
			return errors.New("--binding: must not be empty")
		}
	}
	return nil
}

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
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// DefaultAMQPURL is the broker used without --amqp-url and AMQP_URL.
const DefaultAMQPURL = "amqp://guest:guest@localhost:5672/"

// Config is hyperflow-top's command line.
type Config struct {
	AMQPURL  string
	Exchange string
	Bindings []string
	MaxJobs  int
	Window   time.Duration

	CSV      string        // headless: collect and write the jobs here
	Duration time.Duration // stop after this long (0: until SIGINT or q)

	Record string  // write every event received here
	Replay string  // play this recording instead of subscribing
	Speed  float64 // replay speed (0: as fast as possible)

	Version bool
}

func newFlagSet(c *Config) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hyperflow-top", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&c.AMQPURL, "amqp-url", DefaultAMQPURL, "broker URL (env AMQP_URL)")
	fs.StringVar(&c.Exchange, "exchange", eventbus.DefaultExchange, "events exchange")
	fs.StringArrayVar(&c.Bindings, "binding", []string{"#"}, "binding key of the private queue, to narrow what is received, e.g. 'job.*.finished' (repeatable)")
	fs.IntVar(&c.MaxJobs, "max-jobs", state.DefaultMaxJobs, "finished jobs kept in memory (running jobs are always kept; totals stay exact)")
	fs.DurationVar(&c.Window, "window", DefaultWindow, "time span of the threads view's lanes at start (30s to 10m; + and - change it)")
	fs.StringVar(&c.CSV, "csv", "", "headless: collect without a terminal and write the jobs to this CSV file on exit, SIGINT or the end of --duration")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long (0: until SIGINT, or q in the terminal)")
	fs.StringVar(&c.Record, "record", "", "write every event received, with its routing key and receive time, to this file (JSON lines)")
	fs.StringVar(&c.Replay, "replay", "", "play a recording made with --record instead of connecting to a broker")
	fs.Float64Var(&c.Speed, "speed", 1, "replay speed: 1 real time, 10 ten times faster, 0 as fast as possible")
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
  hyperflow-top --replay run.jsonl        play a recording, no broker needed
  hyperflow-top --csv jobs.csv --duration 1h
                                          collect without a terminal; write
                                          the jobs as CSV at the end or on SIGINT

keys: tab or 1-4 views, arrows or j/k move, enter detail, esc back,
/ filter, s sort column, r reverse, f failed only, t state filter,
p pause the display, e export CSV, ? all keys, q quit. The mouse wheel
scrolls. NO_COLOR (any value) turns the colours off.

flags:
`

// WriteUsage prints the synopsis and the flags.
func WriteUsage(w io.Writer) {
	var c Config
	fmt.Fprint(w, Usage)
	fmt.Fprint(w, newFlagSet(&c).FlagUsages())
}

// ParseArgs reads the command line (without the program name); getenv
// supplies AMQP_URL, which --amqp-url overrides. It returns pflag.ErrHelp
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
	case fs.Changed("speed") && c.Replay == "":
		return errors.New("--speed: only with --replay")
	case c.Record != "" && c.Record == c.Replay:
		return errors.New("--record and --replay: the same file")
	case c.CSV != "" && (c.CSV == c.Replay || c.CSV == c.Record):
		return errors.New("--csv: the same file as --record or --replay")
	}
	for _, b := range c.Bindings {
		if strings.TrimSpace(b) == "" {
			return errors.New("--binding: must not be empty")
		}
	}
	return nil
}

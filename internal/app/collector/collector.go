package collector

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/amqpflags"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// Defaults of the settings.
const (
	DefaultAMQPURL  = "amqp://guest:guest@localhost:5672/"
	DefaultExchange = eventbus.DefaultExchange
	// BindingKey selects the finished-job events.
	BindingKey = "job.*.finished"

	// TimeFormat is the format of the first column (always UTC).
	TimeFormat = "2006-01-02T15:04:05.000Z07:00"
	// Header is the line printed first with --header.
	Header = "time\texecutor\tthread\tjob\texecutable\texecution\tinput_size\toutput_size"
	// NA stands for a missing value.
	NA = "NA"
)

// Options are the settings of the collector.
type Options struct {
	AMQPURL  string
	Order    string // how a list of URLs is tried: eventbus.OrderShuffle or OrderOrdered
	TLS      eventbus.TLSFiles
	Exchange string
	Header   bool
}

func newFlagSet(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hyperflow-amqp-metric-collector", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&o.AMQPURL, "amqp-url", DefaultAMQPURL, "broker URL, or a cluster's URLs comma-separated (env AMQP_URL)")
	amqpflags.AddOrder(fs, &o.Order)
	amqpflags.AddTLS(fs, &o.TLS)
	fs.StringVar(&o.Exchange, "exchange", DefaultExchange, "events exchange")
	fs.BoolVar(&o.Header, "header", false, "print a first line naming the columns")
	return fs
}

// Usage is the synopsis printed before the flags.
const Usage = `usage: hyperflow-amqp-metric-collector [flags]

Prints one tab-separated line per finished job:
time executor thread job executable execution input_size output_size
(NA for a missing value). Stops on SIGINT or SIGTERM.

flags:
`

// WriteUsage prints the synopsis and the flags.
func WriteUsage(w io.Writer) {
	var o Options
	fmt.Fprint(w, Usage)
	fmt.Fprint(w, newFlagSet(&o).FlagUsages())
}

// ParseArgs reads the command line (without the program name); getenv
// supplies AMQP_URL, AMQP_URL_ORDER and AMQP_TLS_*, which the flags
// override. It returns pflag.ErrHelp
// for -h/--help.
func ParseArgs(args []string, getenv func(string) string) (Options, error) {
	var o Options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if v := getenv("AMQP_URL"); v != "" && !fs.Changed("amqp-url") {
		o.AMQPURL = v
	}
	amqpflags.TLSFromEnv(fs, getenv, &o.TLS)
	if err := amqpflags.OrderFromEnv(fs, getenv, &o.Order); err != nil {
		return o, err
	}
	if o.Exchange == "" {
		return o, errors.New("--exchange: must not be empty")
	}
	return o, nil
}

// Collector prints the finished jobs' lines to Out.
type Collector struct {
	Opts Options
	Out  io.Writer
	Log  *slog.Logger
}

// Run prints lines until ctx is done (then it returns nil) or the output
// fails. See the package documentation for reconnection.
func (c *Collector) Run(ctx context.Context) error {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := bufio.NewWriter(c.Out)
	if c.Opts.Header {
		if err := writeLine(out, Header); err != nil {
			return err
		}
	}
	f := &eventbus.Follower{
		URL: c.Opts.AMQPURL, Order: c.Opts.Order, TLS: c.Opts.TLS, Name: "hyperflow-amqp-metric-collector", Exchange: c.Opts.Exchange,
		Bindings: []string{BindingKey}, FailFast: true, Log: log,
		Notify: func(n eventbus.FollowNotice) {
			if n.State == eventbus.FollowUp {
				log.Info("collecting finished jobs", "exchange", c.Opts.Exchange, "url", redact.URL(c.Opts.AMQPURL))
			}
		},
	}
	return f.Run(ctx, func(msg eventbus.Message) error {
		line, err := FormatLine(msg.Received, msg.Body)
		if err != nil {
			log.Warn("malformed event skipped", "routing_key", msg.RoutingKey, "err", err)
			return nil
		}
		return writeLine(out, line)
	})
}

type outputError struct{ err error }

func (e *outputError) Error() string { return "write output: " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

func writeLine(w *bufio.Writer, line string) error {
	w.WriteString(line)
	w.WriteByte('\n')
	if err := w.Flush(); err != nil {
		return &outputError{err}
	}
	return nil
}

// finishedEvent holds the fields of job.finished the line needs, raw.
type finishedEvent struct {
	Executor   json.RawMessage `json:"executor"`
	Thread     json.RawMessage `json:"thread"`
	ID         json.RawMessage `json:"id"`
	Job        json.RawMessage `json:"job"`
	Executable json.RawMessage `json:"executable"`
	Metrics    json.RawMessage `json:"metrics"`
}

type finishedMetrics struct {
	Executor   json.RawMessage `json:"executor"`
	Thread     json.RawMessage `json:"thread"`
	Execution  json.RawMessage `json:"execution"`
	InputSize  json.RawMessage `json:"input_size"`
	OutputSize json.RawMessage `json:"output_size"`
}

// FormatLine makes the line (without its newline) for a job.finished event
// received at received; see the package documentation for the columns. It
// fails only when body is not a JSON object.
func FormatLine(received time.Time, body []byte) (string, error) {
	var ev finishedEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return "", fmt.Errorf("event is not a JSON object: %w", err)
	}
	if t := strings.TrimSpace(string(body)); !strings.HasPrefix(t, "{") {
		return "", errors.New("event is not a JSON object")
	}
	var m finishedMetrics
	if len(ev.Metrics) > 0 && ev.Metrics[0] == '{' {
		// An object that decodes into m cannot fail but for a field of a
		// type RawMessage rejects, which none is.
		_ = json.Unmarshal(ev.Metrics, &m)
	}
	cols := [8]string{
		received.UTC().Format(TimeFormat),
		value(firstPresent(ev.Executor, m.Executor)),
		value(firstPresent(ev.Thread, m.Thread)),
		value(firstPresent(ev.ID, ev.Job)),
		value(ev.Executable),
		value(m.Execution),
		value(m.InputSize),
		value(m.OutputSize),
	}
	return strings.Join(cols[:], "\t"), nil
}

// firstPresent returns the first value that would not print as NA.
func firstPresent(raws ...json.RawMessage) json.RawMessage {
	for _, r := range raws {
		if value(r) != NA {
			return r
		}
	}
	return nil
}

// value renders one JSON value for a column.
func value(raw json.RawMessage) string {
	if len(raw) == 0 {
		return NA
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return NA
		}
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' ' // a line keeps its eight columns
			}
			return r
		}, s)
		if strings.TrimSpace(s) == "" {
			return NA
		}
		return s
	case c == '-' || (c >= '0' && c <= '9'):
		return number(string(raw))
	case c == 't' || c == 'f':
		return string(raw)
	default: // null, objects, arrays
		return NA
	}
}

// number prints a JSON number in plain decimal notation: an integer exactly
// as sent (however large), anything else as the shortest decimal form of
// its float64 value.
func number(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return lit // out of float64 range: as sent
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

package submit

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/amqpflags"
)

// Defaults of the settings.
const (
	DefaultAMQPURL          = "amqp://guest:guest@localhost:5672/"
	DefaultQueue            = "hyperflow.jobs"
	DefaultInflight         = 100
	DefaultLoadReplyTimeout = 5 * time.Minute
	DefaultLinger           = 500 * time.Millisecond
)

// Options are the settings of one run of hyperflow-submit.
type Options struct {
	AMQPURL string
	Order   string // how a list of URLs is tried: eventbus.OrderShuffle or OrderOrdered
	TLS     eventbus.TLSFiles
	Queue   string
	// ReplyTimeout bounds the wait for a reply; 0 = forever, as the engine
	// waits. In load mode it counts from each job's publication, and the
	// default is DefaultLoadReplyTimeout.
	ReplyTimeout time.Duration
	Quiet        bool

	// Count > 0 selects load mode: Count copies, Inflight outstanding.
	Count    int
	Inflight int
	// Linger is how long load mode keeps listening after the last
	// expected reply, to catch duplicates and strays.
	Linger time.Duration
	JSON   bool

	// JobFile is a job message file ("-" = stdin); when empty the job is
	// built from Job.
	JobFile string
	Job     JobSpec
}

// Usage is the synopsis printed before the flags.
const Usage = `usage:
  hyperflow-submit [flags] JOB.json | -            send a job message from a file or stdin
  hyperflow-submit [flags] --file JOB.json
  hyperflow-submit [flags] [job flags] -- EXECUTABLE [ARG...]
  add --count N [--inflight K] [--json] for load mode

exit status (single mode): the job's exit_status when 0..255; 127 when it is
-1 (not started), 125 when -2 (failed outside the command) or when
hyperflow-submit itself fails, 124 when -3 (timed out) or no reply came within
--timeout-reply, 130 when interrupted.
exit status (load mode): 0 all replies well-formed and matched once; 1 a reply
missing, malformed, duplicated, late or unknown; 125 failure; 130 interrupted.

flags:
`

func newFlagSet(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hyperflow-submit", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	fs.StringVar(&o.AMQPURL, "amqp-url", DefaultAMQPURL, "broker URL, or a cluster's URLs comma-separated (env AMQP_URL)")
	amqpflags.AddOrder(fs, &o.Order)
	amqpflags.AddTLS(fs, &o.TLS)
	fs.StringVar(&o.Queue, "queue", DefaultQueue, "job queue (env AMQP_QUEUE)")
	fs.DurationVar(&o.ReplyTimeout, "timeout-reply", 0, "how long to wait for a reply; 0 = forever (load mode: per job, default 5m)")
	fs.BoolVar(&o.Quiet, "quiet", false, "single mode: do not print the reply; load mode: do not print the text summary")
	fs.StringVar(&o.JobFile, "file", "", "job message file (- = stdin)")

	fs.StringVar(&o.Job.Storage, "storage", "", "job flags: options.storage")
	fs.StringVar(&o.Job.Workdir, "workdir", "", "job flags: options.workdir")
	fs.StringArrayVar(&o.Job.Inputs, "input", nil, "job flags: input signal NAME or NAME=FILE[:FILE...] (repeatable)")
	fs.StringArrayVar(&o.Job.Outputs, "output", nil, "job flags: output signal, as --input (repeatable)")
	fs.StringArrayVar(&o.Job.Env, "env", nil, "job flags: environment variable K=V (repeatable)")
	fs.Float64Var(&o.Job.Timeout, "timeout", 0, "job flags: options.timeout in seconds")
	fs.StringArrayVar(&o.Job.Options, "option", nil, "job flags: option k=v (string) or k:=JSON (repeatable)")

	fs.IntVar(&o.Count, "count", 0, "load mode: number of copies of the job to send")
	fs.IntVar(&o.Inflight, "inflight", DefaultInflight, "load mode: at most this many jobs without a reply")
	fs.DurationVar(&o.Linger, "linger", DefaultLinger, "load mode: keep listening this long after the last reply, for duplicates")
	fs.BoolVar(&o.JSON, "json", false, "load mode: print the summary as JSON on stdout (the text summary goes to stderr)")
	return fs
}

// WriteUsage prints the synopsis and the flags.
func WriteUsage(w io.Writer) {
	var o Options
	fs := newFlagSet(&o)
	fmt.Fprint(w, Usage)
	fmt.Fprint(w, fs.FlagUsages())
}

// ParseArgs reads the command line (without the program name); getenv
// supplies AMQP_URL, AMQP_URL_ORDER, AMQP_TLS_* and AMQP_QUEUE, which flags
// override. It returns
// pflag.ErrHelp for -h/--help.
func ParseArgs(args []string, getenv func(string) string) (Options, error) {
	var o Options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if v := getenv("AMQP_URL"); v != "" && !fs.Changed("amqp-url") {
		o.AMQPURL = v
	}
	amqpflags.TLSFromEnv(fs, getenv, &o.TLS)
	if err := amqpflags.OrderFromEnv(fs, getenv, &o.Order); err != nil {
		return o, err
	}
	if v := getenv("AMQP_QUEUE"); v != "" && !fs.Changed("queue") {
		o.Queue = v
	}

	// Positional arguments: before "--" a job file, after it the command.
	rest := fs.Args()
	var before, command []string
	if dash := fs.ArgsLenAtDash(); dash >= 0 {
		before, command = rest[:dash], rest[dash:]
	} else {
		before = rest
	}
	switch {
	case len(before) > 1:
		return o, fmt.Errorf("more than one job file: %q (put the command after --)", before)
	case len(before) == 1 && o.JobFile != "":
		return o, fmt.Errorf("job file given twice: --file %q and %q", o.JobFile, before[0])
	case len(before) == 1:
		o.JobFile = before[0]
	}
	jobFlags := []string{"storage", "workdir", "input", "output", "env", "timeout", "option"}
	switch {
	case o.JobFile != "" && len(command) > 0:
		return o, errors.New("give either a job file or a command after --, not both")
	case o.JobFile != "":
		for _, f := range jobFlags {
			if fs.Changed(f) {
				return o, fmt.Errorf("--%s builds a job from flags; it cannot be used with a job file", f)
			}
		}
	case len(command) == 0:
		return o, errors.New("no job: give a job file, - for stdin, or -- EXECUTABLE [ARG...]")
	default:
		o.Job.Executable, o.Job.Args = command[0], command[1:]
	}

	if o.ReplyTimeout < 0 {
		return o, fmt.Errorf("--timeout-reply %v: must not be negative", o.ReplyTimeout)
	}
	if fs.Changed("count") {
		if o.Count < 1 {
			return o, fmt.Errorf("--count %d: must be at least 1", o.Count)
		}
		if o.Inflight < 1 {
			return o, fmt.Errorf("--inflight %d: must be at least 1", o.Inflight)
		}
		if o.Linger < 0 {
			return o, fmt.Errorf("--linger %v: must not be negative", o.Linger)
		}
		if !fs.Changed("timeout-reply") {
			o.ReplyTimeout = DefaultLoadReplyTimeout
		}
	} else {
		for _, f := range []string{"inflight", "linger", "json"} {
			if fs.Changed(f) {
				return o, fmt.Errorf("--%s is for load mode: add --count N", f)
			}
		}
	}
	return o, nil
}

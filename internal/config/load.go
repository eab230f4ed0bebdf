package config

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// ProgramName is the name --help shows.
const ProgramName = "hyperflow-amqp-executor"

// Flags is what Load learnt from the command line besides the settings.
type Flags struct {
	Help    bool // --help or -h: print Usage and exit
	Version bool // --version: print the version and exit
	Check   bool // --check: the settings were loaded and are valid; exit
	// Warnings are problems that do not stop the executor (unknown keys,
	// an unsupported cloud_storage.provider, half-set AWS keys), each one
	// line naming the file and line or the setting. Log them.
	Warnings []string
	File     string // the settings file, "" when none was given
	Usage    string // the --help text, always filled in
}

// Load builds the settings from, each overriding the one before: Default(),
// the YAML file given as the only positional argument (optional), the
// environment, and the flags that were given. The result is validated.
//
// args are the command-line arguments without the program name; getenv
// looks up environment variables (os.Getenv in production; nil means an
// empty environment). An empty value, in the file or the environment,
// counts as unset. A flag given with an empty value does set the setting
// (--metrics-addr= turns metrics off).
//
// With --help or --version, Load returns Default() and the Flags at once,
// reading neither the file nor the environment, so that both work whatever
// the configuration. On a command-line error (unknown flag, more than one
// file) Load also writes the usage to stderr (nil discards it). Load
// prints nothing else: the caller prints Flags.Usage for --help and logs
// Flags.Warnings.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Settings, Flags, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if stderr == nil {
		stderr = io.Discard
	}
	s := Default()
	fl := Flags{Usage: usage(s)}

	fs := pflag.NewFlagSet(ProgramName, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, the usage written below
	fs.Usage = func() {}
	fs.SortFlags = false
	fs.BoolVarP(&fl.Help, "help", "h", false, "show this help and exit")
	fs.BoolVar(&fl.Version, "version", false, "print the version and exit")
	fs.BoolVar(&fl.Check, "check", false, "load and validate the settings, then exit")
	table := settingTable()
	values := make([]string, len(table))
	for i := range table {
		if table[i].flag != "" {
			fs.StringVar(&values[i], table[i].flag, "", table[i].desc)
			if _, isBool := table[i].field(&s).(*bool); isBool {
				// --worker-pool alone means true; --worker-pool=false works too.
				fs.Lookup(table[i].flag).NoOptDefVal = "true"
			}
		}
	}

	if err := fs.Parse(args); err != nil {
		fmt.Fprint(stderr, fl.Usage)
		return s, fl, fmt.Errorf("command line: %w", err)
	}
	if fl.Help || fl.Version {
		return s, fl, nil
	}
	switch fs.NArg() {
	case 0:
	case 1:
		fl.File = fs.Arg(0)
	default:
		fmt.Fprint(stderr, fl.Usage)
		return s, fl, fmt.Errorf("command line: expected at most one settings file, got %d arguments: %s",
			fs.NArg(), strings.Join(fs.Args(), " "))
	}

	warn := func(w string) { fl.Warnings = append(fl.Warnings, w) }
	given := map[string]bool{} // keys set by the file, the environment or a flag
	if fl.File != "" {
		if err := applyFile(&s, fl.File, getenv, warn, given); err != nil {
			return s, fl, err
		}
	}
	for i := range table {
		st := &table[i]
		if st.env == "" {
			continue
		}
		v := getenv(st.env)
		if v == "" {
			continue
		}
		if err := st.set(&s, v); err != nil {
			return s, fl, fmt.Errorf("environment variable %s: %w", st.env, err)
		}
		given[st.key] = true
		if st.onEnv != nil {
			st.onEnv(&s)
		}
	}
	for i := range table {
		st := &table[i]
		if st.flag == "" || !fs.Changed(st.flag) {
			continue
		}
		if err := st.set(&s, values[i]); err != nil {
			return s, fl, fmt.Errorf("flag --%s: %w", st.flag, err)
		}
		given[st.key] = true
	}
	if s.WorkerPool {
		resolvePoolThreads(&s, given["threads"], warn)
	}

	if (s.Cloud.AccessKeyID == "") != (s.Cloud.SecretAccessKey == "") {
		warn("cloud_storage: only one of aws_access_key_id and aws_secret_access_key is set; " +
			"the AWS SDK needs both to use them")
	}
	if err := s.Validate(); err != nil {
		return s, fl, err
	}
	return s, fl, nil
}

// usage returns the --help text; def gives the defaults shown.
func usage(def Settings) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [flags] [settings.yml]\n\n", ProgramName)
	b.WriteString("Runs HyperFlow jobs taken from a RabbitMQ queue.\n\n")
	b.WriteString("Each source of settings overrides the ones before it: built-in defaults, the\n" +
		"YAML settings file, environment variables, flags. An empty value in the file\n" +
		"or the environment counts as unset. Durations are Go durations (90s, 10m) or\n" +
		"numbers of seconds; sizes are bytes.\n\n")
	b.WriteString("Flags:\n" +
		"  -h, --help     show this help and exit\n" +
		"      --version  print the version and exit\n" +
		"      --check    load and validate the settings, then exit\n\n")
	table := settingTable()
	var common, pool []*setting
	for i := range table {
		if table[i].pool {
			pool = append(pool, &table[i])
		} else {
			common = append(common, &table[i])
		}
	}
	b.WriteString("Settings:\n")
	writeSettingRows(&b, common, def)
	b.WriteString("\nWorker-pool mode (the environment of HyperFlow's Node job listener):\n")
	writeSettingRows(&b, pool, def)
	return b.String()
}

// resolvePoolThreads gives the worker-pool mode the Node listener's
// concurrency when threads was not set: the prefetch (RABBIT_PREFETCH_SIZE),
// 1 when that is not set either; the prefetch defaults to threads.
func resolvePoolThreads(s *Settings, threadsGiven bool, warn func(string)) {
	if !threadsGiven {
		s.Threads = max(s.Prefetch, 1)
	}
	if s.Prefetch > 0 && s.Prefetch < s.Threads {
		warn(fmt.Sprintf("rabbit_prefetch_size %d is below threads %d: at most %d tasks run at once",
			s.Prefetch, s.Threads, s.Prefetch))
	}
}

// writeSettingRows writes one aligned row per setting (flag, env, YAML key,
// default) followed by its description.
func writeSettingRows(b *strings.Builder, settings []*setting, def Settings) {
	rows := [][]string{{"FLAG", "ENV", "YAML KEY", "DEFAULT"}}
	for _, st := range settings {
		flag, env, dflt := "-", "-", st.def
		if st.flag != "" {
			flag = "--" + st.flag
		}
		if st.env != "" {
			env = st.env
		}
		if dflt == "" {
			dflt = st.display(&def)
		}
		rows = append(rows, []string{flag, env, st.key, dflt})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for c, cell := range r {
			widths[c] = max(widths[c], len(cell))
		}
	}
	for i, r := range rows {
		b.WriteString(" ")
		for c, cell := range r {
			b.WriteString(" ")
			if c == len(r)-1 {
				b.WriteString(cell)
			} else {
				b.WriteString(cell + strings.Repeat(" ", widths[c]-len(cell)+1))
			}
		}
		b.WriteString("\n")
		if i > 0 {
			b.WriteString("      " + settings[i-1].desc + "\n")
		}
	}
}

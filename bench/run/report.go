package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	verdictOK      = "ok"
	verdictMissed  = "MISSED"
	verdictInfo    = "-"
	verdictSkipped = "skipped"
	verdictError   = "ERROR"
)

func verdict(ok bool) string {
	if ok {
		return verdictOK
	}
	return verdictMissed
}

func ptr(v float64) *float64 { return &v }

func sortStrings(s []string) { slices.Sort(s) }

// row is one figure of the table.
type row struct {
	Section  string   `json:"section"`
	Figure   string   `json:"figure"`
	Value    *float64 `json:"value,omitempty"`
	Baseline *float64 `json:"baseline,omitempty"`
	Unit     string   `json:"unit,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Goal     string   `json:"goal,omitempty"`
	Verdict  string   `json:"verdict"` // ok, MISSED, -, skipped, ERROR
	// Text replaces the value when there is no number (skipped, error).
	Text string `json:"text,omitempty"`
	// Cmp is what the ratio/goal column shows.
	Cmp  string `json:"compare,omitempty"`
	Note string `json:"note,omitempty"`
}

type machine struct {
	Hostname     string     `json:"hostname"`
	Cores        int        `json:"cores"`
	CPUModel     string     `json:"cpu_model"`
	MemoryMiB    int64      `json:"memory_mib"`
	Kernel       string     `json:"kernel"`
	OS           string     `json:"os"`
	GoVersion    string     `json:"go_version"`
	RabbitMQ     string     `json:"rabbitmq_version"`
	Erlang       string     `json:"erlang"`
	LoadBefore   [3]float64 `json:"load_average_before"`
	LoadAfter    [3]float64 `json:"load_average_after"`
	GitRevision  string     `json:"git_revision"`
	ExecutorSize int64      `json:"executor_binary_bytes"`
}

type settingsJSON struct {
	Jobs         int     `json:"jobs"`
	Inflight     int     `json:"inflight"`
	Threads      []int   `json:"threads"`
	Reps         int     `json:"reps"`
	UnloadedJobs int     `json:"unloaded_jobs"`
	Startups     int     `json:"startups"`
	IdleSeconds  float64 `json:"idle_s"`
	CloudSize    string  `json:"cloud_size"`
	CloudRuns    int     `json:"cloud_runs"`
	Benchtime    string  `json:"monitor_benchtime"`
	// ExecutorEnv: extra settings of the overhead runs' executors
	// (--executor-env); empty for a standard run.
	ExecutorEnv []string `json:"executor_env,omitempty"`
}

// report is what the JSON file holds.
type report struct {
	Schema    int            `json:"schema"`
	Date      string         `json:"date"` // UTC, RFC 3339
	Machine   machine        `json:"machine"`
	Settings  settingsJSON   `json:"settings"`
	DurationS float64        `json:"duration_s"`
	Rows      []row          `json:"rows"`
	Overhead  *overheadData  `json:"overhead,omitempty"`
	Footprint *footprintData `json:"footprint,omitempty"`
	Profile   *profileData   `json:"profile,omitempty"`
	Staging   *stagingData   `json:"staging,omitempty"`
	ManyFiles *manyFiles     `json:"many_files,omitempty"`
	Monitor   *monitorData   `json:"monitor,omitempty"`

	started time.Time
	// rawFiles are copied next to the JSON: name suffix -> source file.
	rawFiles map[string]string
}

func newReport(o options, ctl *control) *report {
	r := &report{Schema: 1, started: time.Now().UTC()}
	r.Date = r.started.Format(time.RFC3339)
	r.Settings = settingsJSON{Jobs: o.jobs, Inflight: o.inflight, Threads: o.threads, Reps: o.reps,
		UnloadedJobs: o.unloadedJobs, Startups: o.startups, IdleSeconds: o.idle.Seconds(),
		CloudSize: o.cloudSize, CloudRuns: o.cloudRuns, Benchtime: o.benchtime, ExecutorEnv: o.executorEnv}
	m := &r.Machine
	m.Hostname, _ = os.Hostname()
	m.Cores = runtime.NumCPU()
	m.CPUModel = procField("/proc/cpuinfo", "model name", ":")
	if kib, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal", ":"), " kB"), 10, 64); err == nil {
		m.MemoryMiB = kib / 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = strings.Trim(procField("/etc/os-release", "PRETTY_NAME", "="), `"`)
	if out, err := exec.Command("go", "version").Output(); err == nil {
		m.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	} else {
		m.GoVersion = runtime.Version()
	}
	m.RabbitMQ, m.Erlang = ctl.version, ctl.erlang
	m.LoadBefore = loadAverage()
	if out, err := exec.Command("git", "-C", o.repo, "describe", "--always", "--dirty").Output(); err == nil {
		m.GitRevision = strings.TrimSpace(string(out))
	}
	if fi, err := os.Stat(filepath.Join(o.binDir, "hyperflow-amqp-executor")); err == nil {
		m.ExecutorSize = fi.Size()
	}
	return r
}

// procField reads the value of the first "key<sep>value" line of a file.
func procField(file, key, sep string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadAverage() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

func (r *report) add(x row) { r.Rows = append(r.Rows, x) }

func (r *report) count(verdict string) int {
	n := 0
	for _, x := range r.Rows {
		if x.Verdict == verdict {
			n++
		}
	}
	return n
}

func (r *report) finish(d time.Duration) {
	r.DurationS = math.Round(d.Seconds()*10) / 10
	r.Machine.LoadAfter = loadAverage()
}

// sectionOf names the section of a skipped step.
func sectionOf(step string) string { return step }

// num formats a figure with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func withUnit(v *float64, unit string) string {
	if v == nil {
		return ""
	}
	if unit == "" {
		return num(*v)
	}
	return num(*v) + " " + unit
}

// table renders the rows, grouped by section, and a summary line.
func (r *report) table() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "\nHyperFlow executor benchmarks, %s on %s (%d cores, %s, %d MiB), %s, RabbitMQ %s, load average before %.2f\n",
		r.Date, m.Hostname, m.Cores, m.CPUModel, m.MemoryMiB, m.GoVersion, m.RabbitMQ, m.LoadBefore[0])
	fmt.Fprintf(&b, "revision %s, kernel %s\n", m.GitRevision, m.Kernel)
	if len(r.Settings.ExecutorEnv) > 0 {
		fmt.Fprintf(&b, "NOT a standard run: executors of the overhead runs with %s\n", strings.Join(r.Settings.ExecutorEnv, " "))
	}
	b.WriteString("\n")
	cells := [][]string{{"figure", "value", "baseline", "ratio/goal", "verdict"}}
	for _, x := range r.Rows {
		val := x.Text
		if val == "" {
			val = withUnit(x.Value, x.Unit)
		}
		cells = append(cells, []string{"  " + x.Figure, val, withUnit(x.Baseline, x.Unit), x.Cmp, x.Verdict})
	}
	width := make([]int, len(cells[0]))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], utf8.RuneCountInString(s))
		}
	}
	line := func(c []string) {
		var l strings.Builder
		for i, s := range c {
			l.WriteString(s)
			if i < len(c)-1 {
				l.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(s)+2))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(cells[0])
	section := ""
	for i, x := range r.Rows {
		if x.Section != section {
			section = x.Section
			fmt.Fprintf(&b, "[%s]\n", section)
		}
		line(cells[i+1])
	}
	var goals []string
	for _, x := range r.Rows {
		if x.Goal != "" {
			goals = append(goals, x.Verdict)
		}
	}
	met := 0
	for _, g := range goals {
		if g == verdictOK {
			met++
		}
	}
	fmt.Fprintf(&b, "\ngoals met: %d of %d; errors: %d; skipped: %d; took %.0fs; load average after %.2f\n",
		met, len(goals), r.count(verdictError), r.count(verdictSkipped), r.DurationS, m.LoadAfter[0])
	for _, x := range r.Rows {
		if x.Verdict == verdictError && x.Note != "" {
			fmt.Fprintf(&b, "\nERROR %s / %s:\n%s\n", x.Section, x.Figure, x.Note)
		}
	}
	return b.String()
}

// write stores the JSON report, the table and the profile reports under
// dir, named by the UTC date and time and the host name.
func (r *report) write(dir, table string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	host := strings.NewReplacer("/", "_", " ", "_").Replace(r.Machine.Hostname)
	prefix := filepath.Join(dir, r.started.Format("2006-01-02T150405Z")+"-"+host)
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{prefix + ".json": append(js, '\n'), prefix + ".txt": []byte(strings.TrimLeft(table, "\n"))}
	if p := r.Profile; p != nil && p.CPUTop != "" {
		files[prefix+"-cpu.txt"] = []byte(p.CPUTop)
		files[prefix+"-alloc.txt"] = []byte(p.AllocTop)
	}
	for suffix, src := range r.rawFiles {
		content, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		files[prefix+suffix] = content
	}
	var names []string
	for name, content := range files {
		if err := writeAtomic(name, content); err != nil {
			return names, err
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func writeAtomic(name string, content []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

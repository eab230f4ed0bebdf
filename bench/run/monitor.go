package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchResult is one line of go test -bench output.
type benchResult struct {
	Package string             `json:"package"`
	Name    string             `json:"name"` // without "Benchmark" and the -GOMAXPROCS suffix
	N       int64              `json:"n"`
	Metrics map[string]float64 `json:"metrics"` // by unit: ns/op, B/op, events/s, ...
}

type monitorData struct {
	Command string        `json:"command"`
	Results []benchResult `json:"results,omitempty"`
	Failed  []string      `json:"failed,omitempty"` // packages that failed to build or run
	Output  string        `json:"output,omitempty"` // when nothing could be read
}

// monitorGoals are the goals of the monitor's issue, by benchmark name (a
// regular expression on Name). units lists the metrics the goal applies to,
// in order of preference: the first one reported is judged (the CPU-time
// variants, when a benchmark reports them, do not depend on how loaded the
// machine is); limits are in the unit shown (ns/op is shown in ms).
var monitorGoals = []struct {
	name   *regexp.Regexp
	units  []string
	atMost bool
	limit  float64
	text   string
}{
	{regexp.MustCompile(`^Apply$`), []string{"events/cpu-s", "events/s"}, false, 200_000, "≥ 200k events/s"},
	{regexp.MustCompile(`^JobsSorted10k/`), []string{"cpu-ns/op", "ns/op"}, true, 5, "≤ 5 ms"},
}

var benchLineRe = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

func (b *bench) monitor(ctx context.Context) {
	sec := "monitor (go test -bench ./tui/...)"
	d := &monitorData{}
	b.rep.Monitor = d
	if !hasBenchmarks(filepath.Join(b.opt.repo, "tui")) {
		b.rep.add(row{Section: sec, Figure: "monitor benchmarks", Text: "skipped (no benchmarks in ./tui yet)",
			Verdict: verdictSkipped})
		return
	}
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", b.opt.benchtime,
		"-timeout", "4m", "./tui/..."}
	d.Command = "go " + strings.Join(args, " ")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", args...)
	cmd.Dir = b.opt.repo
	cmd.WaitDelay = 5 * time.Second
	out, runErr := cmd.CombinedOutput()
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if strings.HasPrefix(line, "FAIL\t") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				d.Failed = append(d.Failed, strings.Join(f[1:], " "))
			}
			continue
		}
		m := benchLineRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := benchResult{Package: pkg, Name: m[1], Metrics: map[string]float64{}}
		r.N, _ = strconv.ParseInt(m[2], 10, 64)
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				r.Metrics[f[i+1]] = v
			}
		}
		d.Results = append(d.Results, r)
	}
	for _, r := range d.Results {
		b.monitorRows(sec, r)
	}
	for _, f := range d.Failed {
		b.rep.add(row{Section: sec, Figure: "package " + path.Base(strings.Fields(f)[0]), Text: "failed: " + f,
			Verdict: verdictError, Note: "see the JSON output"})
	}
	if len(d.Results) == 0 {
		d.Output = string(out)
		b.rep.add(row{Section: sec, Figure: "monitor benchmarks", Text: "error: no benchmark ran", Verdict: verdictError,
			Note: fmt.Sprintf("%v", runErr)})
	}
	if len(d.Failed) > 0 {
		d.Output = string(out)
	}
}

func (b *bench) monitorRows(sec string, r benchResult) {
	std := map[string]bool{"ns/op": true, "B/op": true, "allocs/op": true, "MB/s": true}
	var units []string
	for u := range r.Metrics {
		if !std[u] {
			units = append(units, u)
		}
	}
	if len(units) == 0 {
		units = []string{"ns/op"}
	}
	sortStrings(units)
	judged := map[string]bool{} // unit -> its goal
	for _, g := range monitorGoals {
		if !g.name.MatchString(r.Name) {
			continue
		}
		for _, u := range g.units {
			if _, ok := r.Metrics[u]; ok {
				judged[u] = true
				if !slices.Contains(units, u) {
					units = append(units, u)
				}
				break
			}
		}
	}
	for _, u := range units {
		v, unit := r.Metrics[u], u
		if base, ok := strings.CutSuffix(u, "ns/op"); ok {
			v, unit = v/1e6, base+"ms/op"
		}
		row := row{Section: sec, Figure: path.Base(r.Package) + " " + r.Name, Unit: unit, Value: ptr(v), Verdict: verdictInfo}
		if a, ok := r.Metrics["allocs/op"]; ok && strings.HasSuffix(u, "ns/op") {
			row.Note = fmt.Sprintf("%.0f B/op, %.0f allocs/op", r.Metrics["B/op"], a)
		}
		for _, g := range monitorGoals {
			if !judged[u] || !g.name.MatchString(r.Name) || !slices.Contains(g.units, u) {
				continue
			}
			ok := v >= g.limit
			if g.atMost {
				ok = v <= g.limit
			}
			row.Goal, row.Cmp, row.Verdict = g.text, "goal "+g.text, verdict(ok)
		}
		b.rep.add(row)
	}
}

// hasBenchmarks reports whether a _test.go file under dir defines a
// benchmark.
func hasBenchmarks(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || found || de.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "func Benchmark") {
			found = true
		}
		return nil
	})
	return found
}

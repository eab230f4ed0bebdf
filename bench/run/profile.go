package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// profileData: the executor under the load of the overhead runs (THREADS
// = 2), with the CPU and allocation profiles it writes on exit when
// HYPERFLOW_CPUPROFILE and HYPERFLOW_MEMPROFILE are set.
type profileData struct {
	Threads  int      `json:"threads"`
	Run      *loadRun `json:"run"`
	Hook     bool     `json:"hook"` // the executor wrote both profiles
	CPUTotal string   `json:"cpu_total,omitempty"`
	// AllocTotalBytes: every allocation of the executor's life (alloc_space).
	AllocTotalBytes float64 `json:"alloc_total_bytes,omitempty"`
	AllocPerJob     float64 `json:"alloc_bytes_per_job,omitempty"`
	// The text reports (go tool pprof -top), also written next to the JSON.
	CPUTop   string `json:"cpu_top,omitempty"`
	AllocTop string `json:"alloc_top,omitempty"`
}

func (b *bench) profile(ctx context.Context) {
	const threads = 2
	sec := fmt.Sprintf("profiles: executor THREADS=%d under the load above (profiling on)", threads)
	d := &profileData{Threads: threads}
	b.rep.Profile = d
	dir := filepath.Join(b.tmp, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.rep.add(row{Section: sec, Figure: "profiles", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "allocs.pprof")
	r, err := b.load(ctx, progExecutor, threads, b.opt.jobs, b.opt.inflight,
		"HYPERFLOW_CPUPROFILE="+cpu, "HYPERFLOW_MEMPROFILE="+mem)
	d.Run = r
	if err != nil {
		r.Error = err.Error()
		b.rep.add(row{Section: sec, Figure: "profile run", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	b.rep.add(row{Section: sec, Figure: "jobs/s with profiling on", Unit: "jobs/s",
		Value: ptr(r.Summary.JobsPerSecond), Verdict: verdictInfo})
	if !nonEmpty(cpu) || !nonEmpty(mem) {
		b.rep.add(row{Section: sec, Figure: "CPU and allocation profiles", Verdict: verdictSkipped,
			Text: "skipped (the executor wrote no profile)",
			Note: "needs the executor to honour HYPERFLOW_CPUPROFILE and HYPERFLOW_MEMPROFILE (written on exit)"})
		return
	}
	d.Hook = true
	if b.opt.keepProfiles {
		b.rep.rawFiles = map[string]string{"-cpu.pprof": cpu, "-allocs.pprof": mem}
	}
	var report strings.Builder
	for _, v := range []struct{ title, file string }{
		{"CPU, flat (go tool pprof -top -nodecount=15)", ""},
		{"CPU, cumulative (go tool pprof -top -cum -nodecount=15)", "-cum"},
	} {
		out, err := pprofTop(ctx, cpu, v.file)
		if err != nil {
			b.rep.add(row{Section: sec, Figure: "CPU profile", Text: "error", Verdict: verdictError, Note: err.Error()})
			return
		}
		fmt.Fprintf(&report, "### %s\n\n%s\n\n", v.title, out)
		if d.CPUTotal == "" {
			if m := regexp.MustCompile(`Total samples = (\S+)`).FindStringSubmatch(out); m != nil {
				d.CPUTotal = m[1]
			}
		}
	}
	d.CPUTop = report.String()
	report.Reset()
	for _, v := range []struct{ title, arg string }{
		{"allocated bytes (go tool pprof -sample_index=alloc_space -top -nodecount=15)", "-sample_index=alloc_space"},
		{"allocated objects (go tool pprof -sample_index=alloc_objects -top -nodecount=15)", "-sample_index=alloc_objects"},
	} {
		out, err := pprofTop(ctx, mem, v.arg)
		if err != nil {
			b.rep.add(row{Section: sec, Figure: "allocation profile", Text: "error", Verdict: verdictError, Note: err.Error()})
			return
		}
		fmt.Fprintf(&report, "### %s\n\n%s\n\n", v.title, out)
		if d.AllocTotalBytes == 0 {
			d.AllocTotalBytes = pprofTotal(out)
		}
	}
	d.AllocTop = report.String()
	if d.CPUTotal != "" {
		secs, _ := time.ParseDuration(d.CPUTotal)
		b.rep.add(row{Section: sec, Figure: "CPU samples per job", Unit: "ms",
			Value: ptr(secs.Seconds() * 1000 / float64(r.Summary.Replies)), Verdict: verdictInfo,
			Note: "total " + d.CPUTotal + " for the whole run; top 15 in the -cpu.txt file"})
	}
	if d.AllocTotalBytes > 0 {
		d.AllocPerJob = d.AllocTotalBytes / float64(r.Summary.Replies)
		b.rep.add(row{Section: sec, Figure: "allocated per job", Unit: "KiB",
			Value: ptr(d.AllocPerJob / 1024), Verdict: verdictInfo,
			Note: "alloc_space of the whole life ÷ jobs; top 15 in the -alloc.txt file"})
	}
}

func nonEmpty(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() > 0
}

// pprofTop runs go tool pprof -top -nodecount=15 [arg] on a profile.
func pprofTop(ctx context.Context, profile, arg string) (string, error) {
	args := []string{"tool", "pprof", "-top", "-nodecount=15"}
	if arg != "" {
		args = append(args, arg)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, profile)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// pprofTotal reads "... of 37.50MB total" from a pprof -top header, in bytes.
func pprofTotal(top string) float64 {
	m := regexp.MustCompile(`of ([0-9.]+)([kMGT]?B) total`).FindStringSubmatch(top)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	mult := map[string]float64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m[2]]
	return v * mult
}

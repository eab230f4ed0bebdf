package main

import (
	"bufio"
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

// stagingLine is one line of bench/cloud's table: a backend against its
// baseline in one direction.
type stagingLine struct {
	Backend      string  `json:"backend"`   // cloud or nfs
	Direction    string  `json:"direction"` // stage-out, stage-in or both
	MBps         float64 `json:"mb_s"`
	PeakMiB      float64 `json:"peak_rss_mib,omitempty"`
	Baseline     string  `json:"baseline"` // sdk or cp
	BaseMBps     float64 `json:"baseline_mb_s"`
	BasePeakMiB  float64 `json:"baseline_peak_rss_mib,omitempty"`
	Ratio        float64 `json:"ratio"`
	peakKnown    bool
	basePeakKnow bool
}

type stagingData struct {
	Size    string        `json:"size"`
	Runs    int           `json:"runs"`
	Skipped string        `json:"skipped,omitempty"`
	Lines   []stagingLine `json:"lines,omitempty"`
	Output  string        `json:"output,omitempty"` // bench/cloud's stdout
}

// stagingRe matches a row of bench/cloud's table, e.g.
// "cloud  stage-out  412  18.2 MiB  sdk  450  40.1 MiB  0.92".
var stagingRe = regexp.MustCompile(`^\s*(cloud|nfs)\s+(stage-out|stage-in|both)\s+([0-9.]+)\s+(?:([0-9.]+) MiB\s+)?` +
	`(sdk|cp)\s+([0-9.]+)\s+(?:([0-9.]+) MiB\s+)?([0-9.]+)\s*$`)

func (b *bench) staging(ctx context.Context) {
	sec := "staging (bench/cloud): backend vs its baseline, one file each way"
	d := &stagingData{Size: b.opt.cloudSize, Runs: b.opt.cloudRuns}
	b.rep.Staging = d
	skip := func(why string) {
		d.Skipped = why
		for _, f := range []string{"cloud vs transfer manager", "nfs vs cp"} {
			b.rep.add(row{Section: sec, Figure: f, Text: "skipped (" + why + ")", Verdict: verdictSkipped})
		}
	}
	if _, err := os.Stat(filepath.Join(b.opt.repo, "bench", "cloud", "main.go")); err != nil {
		skip("bench/cloud not in the tree yet")
		return
	}
	if os.Getenv("HYPERFLOW_TEST_S3_ENDPOINT") == "" {
		skip("no S3 server")
		return
	}
	bin := filepath.Join(b.tmp, "cloud")
	if err := goBuild(ctx, b.opt.repo, bin, "./bench/cloud"); err != nil {
		b.rep.add(row{Section: sec, Figure: "bench/cloud", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(3*b.opt.cloudRuns)*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "-size", b.opt.cloudSize, "-runs", strconv.Itoa(b.opt.cloudRuns), "-dir", b.tmp)
	cmd.Stderr = os.Stderr // its progress
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	d.Output = string(out)
	if err != nil {
		b.rep.add(row{Section: sec, Figure: "bench/cloud -size " + b.opt.cloudSize + " -runs " + strconv.Itoa(b.opt.cloudRuns), Text: "error", Verdict: verdictError,
			Note: fmt.Sprintf("%v\n%s", err, out)})
		return
	}
	sc := bufio.NewScanner(strings.NewReader(d.Output))
	for sc.Scan() {
		m := stagingRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		d.Lines = append(d.Lines, stagingLine{Backend: m[1], Direction: m[2], MBps: f(m[3]), PeakMiB: f(m[4]),
			Baseline: m[5], BaseMBps: f(m[6]), BasePeakMiB: f(m[7]), Ratio: f(m[8]),
			peakKnown: m[4] != "", basePeakKnow: m[7] != ""})
	}
	if len(d.Lines) == 0 {
		b.rep.add(row{Section: sec, Figure: "bench/cloud", Text: "error: its table could not be read", Verdict: verdictError,
			Note: d.Output})
		return
	}
	sec = fmt.Sprintf("staging (bench/cloud -size %s, best of %d runs): backend vs its baseline", b.opt.cloudSize, b.opt.cloudRuns)
	for _, l := range d.Lines {
		name := map[string]string{"sdk": "transfer manager", "cp": "cp"}[l.Baseline]
		r := row{Section: sec, Figure: fmt.Sprintf("%s vs %s, %s", l.Backend, name, l.Direction), Unit: "MB/s",
			Value: ptr(l.MBps), Baseline: ptr(l.BaseMBps), Ratio: ptr(l.Ratio),
			Cmp: fmt.Sprintf("%.2f", l.Ratio), Verdict: verdictInfo}
		if l.Direction == "both" {
			r.Goal, r.Cmp, r.Verdict = "ratio ≥ 0.85", r.Cmp+" (goal ≥ 0.85)", verdict(l.Ratio >= 0.85)
		}
		b.rep.add(r)
		if l.peakKnown {
			p := row{Section: sec, Figure: fmt.Sprintf("%s peak RSS, %s", l.Backend, l.Direction), Unit: "MiB",
				Value: ptr(l.PeakMiB), Verdict: verdictInfo}
			if l.basePeakKnow {
				p.Baseline = ptr(l.BasePeakMiB)
			}
			if l.Backend == "cloud" {
				p.Goal, p.Cmp, p.Verdict = "< 64 MiB", "goal < 64 MiB", verdict(l.PeakMiB < 64)
			}
			b.rep.add(p)
		}
	}
}

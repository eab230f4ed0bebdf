package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// manyFiles is bench/manyfiles's output (see its package comment).
type manyFiles struct {
	DelayMS     float64 `json:"delay_ms"`
	Concurrency int     `json:"concurrency"`
	Also        int     `json:"also,omitempty"`
	Reps        int     `json:"reps"`
	Sets        []struct {
		Name  string `json:"name"`
		Files int    `json:"files"`
		Size  int64  `json:"size"`
	} `json:"sets"`
	S5cmd   string            `json:"s5cmd,omitempty"`
	Runs    []json.RawMessage `json:"runs"`
	Figures []struct {
		Set       string  `json:"set"`
		Direction string  `json:"direction"`
		Way       string  `json:"way"`
		Median    float64 `json:"median_s"`
		Min       float64 `json:"min_s"`
		Max       float64 `json:"max_s"`
		MBps      float64 `json:"mb_s"`
		Requests  int64   `json:"requests"`
	} `json:"figures"`
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// stagingMany runs bench/manyfiles: many files staged through a proxy that
// adds 20 ms per request, by the executor's code with the default
// staging_concurrency, by the same code one file at a time, and by s5cmd.
func (b *bench) stagingMany(ctx context.Context) {
	sec := "staging many files (bench/manyfiles)"
	d := &manyFiles{}
	b.rep.ManyFiles = d
	skip := func(why string) {
		d.Skipped = why
		b.rep.add(row{Section: sec, Figure: "many files", Text: "skipped (" + why + ")", Verdict: verdictSkipped})
	}
	if os.Getenv("HYPERFLOW_TEST_S3_ENDPOINT") == "" {
		skip("no S3 server")
		return
	}
	bin := filepath.Join(b.tmp, "manyfiles")
	if err := goBuild(ctx, b.opt.repo, bin, "./bench/manyfiles"); err != nil {
		b.rep.add(row{Section: sec, Figure: "bench/manyfiles", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	args := []string{"-reps", strconv.Itoa(b.opt.manyReps), "-dir", b.tmp}
	if b.opt.s5cmd != "" {
		args = append(args, "-s5cmd", b.opt.s5cmd)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Stderr = os.Stderr // its progress
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err == nil {
		err = json.Unmarshal(out, d)
	}
	if err != nil {
		d.Error = err.Error()
		b.rep.add(row{Section: sec, Figure: "bench/manyfiles", Text: "error", Verdict: verdictError, Note: fmt.Sprintf("%v\n%s", err, out)})
		return
	}
	sec = fmt.Sprintf("staging many files (bench/manyfiles): %.0f ms per request (proxy) before versitygw, staging_concurrency %d, median of %d",
		d.DelayMS, d.Concurrency, d.Reps)
	fig := map[figKey]int{}
	for i, f := range d.Figures {
		fig[figKey{f.Set, f.Direction, f.Way}] = i
	}
	for _, set := range d.Sets {
		label := fmt.Sprintf("%d × %s", set.Files, humanSize(set.Size))
		// seconds of a way for a direction ("both": the sum of the medians).
		secs := func(way, dirn string) (float64, bool) {
			if dirn == "both" {
				o, ok1 := secsOf(d, fig, set.Name, "out", way)
				i, ok2 := secsOf(d, fig, set.Name, "in", way)
				return o + i, ok1 && ok2
			}
			return secsOf(d, fig, set.Name, dirn, way)
		}
		mb := float64(int64(set.Files)*set.Size) / 1e6
		for _, dirn := range []string{"out", "in", "both"} {
			name := map[string]string{"out": "stage-out", "in": "stage-in", "both": "both directions"}[dirn]
			mult := 1.0
			if dirn == "both" {
				mult = 2
			}
			e, ok := secs("executor", dirn)
			if !ok {
				continue
			}
			if s, ok := secs("sequential", dirn); ok {
				r := row{Section: sec, Figure: fmt.Sprintf("%s, %s: concurrent vs one at a time", label, name), Unit: "s",
					Value: ptr(e), Baseline: ptr(s), Ratio: ptr(s / e), Cmp: fmt.Sprintf("%.1f× faster", s/e), Verdict: verdictInfo}
				if set.Name == "small" && dirn == "both" {
					r.Goal, r.Cmp, r.Verdict = "≥ 10× faster", r.Cmp+" (goal ≥ 10×)", verdict(s/e >= 10)
				}
				b.rep.add(r)
			}
			if s, ok := secs("s5cmd", dirn); ok {
				ev, sv := mult*mb/e, mult*mb/s
				r := row{Section: sec, Figure: fmt.Sprintf("%s, %s: executor vs s5cmd", label, name), Unit: "MB/s",
					Value: ptr(ev), Baseline: ptr(sv), Ratio: ptr(ev / sv), Cmp: fmt.Sprintf("%.2f", ev/sv), Verdict: verdictInfo}
				if dirn == "both" {
					r.Goal, r.Cmp, r.Verdict = "ratio ≥ 0.90", r.Cmp+" (goal ≥ 0.90)", verdict(ev/sv >= 0.9)
				}
				b.rep.add(r)
				if d.Also > 0 && dirn == "both" {
					way := fmt.Sprintf("executor-%d", d.Also)
					if a, ok := secs(way, dirn); ok {
						av := mult * mb / a
						b.rep.add(row{Section: sec, Figure: fmt.Sprintf("%s, %s: staging_concurrency %d vs s5cmd", label, name, d.Also),
							Unit: "MB/s", Value: ptr(av), Baseline: ptr(sv), Ratio: ptr(av / sv), Cmp: fmt.Sprintf("%.2f", av/sv),
							Verdict: verdictInfo, Note: "for information: the setting raised"})
					}
				}
			}
		}
		// The spread of every way, for judging the medians.
		for _, way := range []string{"executor", "sequential", "s5cmd", fmt.Sprintf("executor-%d", d.Also)} {
			text := ""
			for _, dirn := range []string{"out", "in"} {
				if i, ok := fig[figKey{set.Name, dirn, way}]; ok {
					f := d.Figures[i]
					text += fmt.Sprintf("%s %.2f-%.2f s ", dirn, f.Min, f.Max)
				}
			}
			if text != "" {
				b.rep.add(row{Section: sec, Figure: fmt.Sprintf("%s, %s: spread (min-max)", label, way), Text: text, Verdict: verdictInfo})
			}
		}
	}
	if d.S5cmd == "" {
		b.rep.add(row{Section: sec, Figure: "s5cmd", Text: "skipped (no s5cmd: give --s5cmd)", Verdict: verdictSkipped})
	}
}

type figKey struct{ set, dirn, way string }

func secsOf(d *manyFiles, fig map[figKey]int, set, dirn, way string) (float64, bool) {
	i, ok := fig[figKey{set, dirn, way}]
	if !ok {
		return 0, false
	}
	return d.Figures[i].Median, true
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

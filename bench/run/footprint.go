package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

type idleFigures struct {
	RSSKiB int64 `json:"rss_kib"` // VmRSS after 2 s idle
	// Over the idle window: utime+stime in clock ticks (all threads), the
	// nanoseconds on a CPU and the context switches of the live threads.
	CPUTicks    int64   `json:"cpu_ticks"`
	CPUMillis   float64 `json:"cpu_ms"` // from the nanoseconds
	CtxSwitches int64   `json:"ctx_switches"`
}

type footprintData struct {
	Threads int `json:"threads"`
	// StartupMS: from just before the fork to the timestamp in the
	// executor's executor.ready event; ReceivedMS: to its receipt.
	StartupMS       []float64   `json:"startup_ms"`
	ReceivedMS      []float64   `json:"startup_received_ms"`
	StartupMedianMS float64     `json:"startup_median_ms"`
	IdleSeconds     float64     `json:"idle_s"`
	Executor        idleFigures `json:"executor_idle"`
	Baseline        idleFigures `json:"baseline_idle"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (b *bench) footprint(ctx context.Context) {
	const threads = 2
	d := &footprintData{Threads: threads, IdleSeconds: b.opt.idle.Seconds()}
	b.rep.Footprint = d
	sec := fmt.Sprintf("footprint: executor THREADS=%d (under load: the runs above), broker up", threads)

	// Start to ready.
	var errs []error
	for range b.opt.startups {
		if ctx.Err() != nil {
			return
		}
		q := b.queue("startup")
		c, err := b.startExecutor(ctx, threads, q)
		if err == nil {
			d.StartupMS = append(d.StartupMS, float64(c.ready.Stamp.Sub(c.started).Microseconds())/1000)
			d.ReceivedMS = append(d.ReceivedMS, float64(c.ready.Received.Sub(c.started).Microseconds())/1000)
			err = c.stop(30 * time.Second)
		}
		b.ctl.deleteQueue(q)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(d.StartupMS) == 0 {
		b.rep.add(row{Section: sec, Figure: "start to executor.ready", Text: "error", Verdict: verdictError,
			Note: errors.Join(errs...).Error()})
	} else {
		d.StartupMedianMS = median(d.StartupMS)
		r := row{Section: sec, Figure: fmt.Sprintf("start to executor.ready (median of %d)", len(d.StartupMS)),
			Unit: "ms", Value: ptr(d.StartupMedianMS), Goal: "≤ 200 ms", Cmp: "goal ≤ 200 ms",
			Verdict: verdict(d.StartupMedianMS <= 200),
			Note:    fmt.Sprintf("each: %v ms (event received: %v ms)", d.StartupMS, d.ReceivedMS)}
		if len(errs) > 0 {
			r.Verdict, r.Note = verdictError, errors.Join(errs...).Error()
		}
		b.rep.add(r)
	}

	b.underLoadRows(sec)

	// Idle: the executor and the baseline side by side.
	if ctx.Err() != nil {
		return
	}
	qe, qb := b.queue("idle"), b.queue("idle")
	defer b.ctl.deleteQueue(qe)
	defer b.ctl.deleteQueue(qb)
	e, err := b.startExecutor(ctx, threads, qe)
	if err != nil {
		b.rep.add(row{Section: sec, Figure: "idle RSS and CPU", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	defer e.stop(30 * time.Second)
	base, err := b.startBaseline(ctx, threads, qb)
	if err != nil {
		b.rep.add(row{Section: sec, Figure: "idle RSS and CPU", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	defer base.stop(30 * time.Second)
	logf("   idle: 2s settle, then %v", b.opt.idle)
	if !sleep(ctx, 2*time.Second) {
		return
	}
	type snap struct {
		ticks, ns, sw int64
	}
	take := func(c *consumer) snap {
		t, _ := cpuTicks(c.pid())
		ns, sw := threadsCPU(c.pid())
		return snap{t, ns, sw}
	}
	d.Executor.RSSKiB = statusKiB(e.pid(), "VmRSS")
	d.Baseline.RSSKiB = statusKiB(base.pid(), "VmRSS")
	e0, b0 := take(e), take(base)
	if !sleep(ctx, b.opt.idle) {
		return
	}
	e1, b1 := take(e), take(base)
	fill := func(f *idleFigures, a, z snap) {
		f.CPUTicks = z.ticks - a.ticks
		f.CPUMillis = float64(z.ns-a.ns) / 1e6
		f.CtxSwitches = z.sw - a.sw
	}
	fill(&d.Executor, e0, e1)
	fill(&d.Baseline, b0, b1)

	rss := float64(d.Executor.RSSKiB) / 1024
	b.rep.add(row{Section: sec, Figure: "RSS idle (2 s after ready)", Unit: "MiB",
		Value: ptr(rss), Baseline: ptr(float64(d.Baseline.RSSKiB) / 1024),
		Goal: "≤ 20 MiB", Cmp: "goal ≤ 20 MiB", Verdict: verdict(rss <= 20)})
	idle := b.opt.idle.Seconds()
	pct := d.Executor.CPUMillis / 10 / idle // ms over idle s, in % of one core
	b.rep.add(row{Section: sec, Figure: fmt.Sprintf("CPU while idle for %.0f s", idle), Unit: "ms",
		Value: ptr(d.Executor.CPUMillis), Baseline: ptr(d.Baseline.CPUMillis),
		Goal: "≈ 0: ≤ 0.2 % of a core", Cmp: fmt.Sprintf("%.3f %% of a core (goal ≤ 0.2 %%)", pct),
		Verdict: verdict(pct <= 0.2),
		Note:    fmt.Sprintf("clock ticks: %d (baseline %d); heartbeats every 5 s", d.Executor.CPUTicks, d.Baseline.CPUTicks)})
	b.rep.add(row{Section: sec, Figure: fmt.Sprintf("context switches while idle for %.0f s", idle), Unit: "",
		Value: ptr(float64(d.Executor.CtxSwitches)), Baseline: ptr(float64(d.Baseline.CtxSwitches)),
		Cmp: fmt.Sprintf("%.1f/s", float64(d.Executor.CtxSwitches)/idle), Verdict: verdictInfo,
		Note: "wake-ups of all threads: a busy loop or a fast ticker shows here"})
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// underLoadRows reports the peak RSS of the overhead runs (the largest
// over THREADS and repetitions, of the executor and of the baseline).
func (b *bench) underLoadRows(sec string) {
	d := b.rep.Overhead
	if d == nil {
		return
	}
	peak := map[string]int64{}
	per := map[int]int64{}
	for _, r := range d.Runs {
		if r.Error != "" {
			continue
		}
		peak[r.Program] = max(peak[r.Program], r.PeakRSSKiB)
		if r.Program == progExecutor {
			per[r.Threads] = max(per[r.Threads], r.PeakRSSKiB)
		}
	}
	if peak[progExecutor] == 0 || peak[progBaseline] == 0 {
		return
	}
	var each []string
	for _, t := range b.opt.threads {
		each = append(each, fmt.Sprintf("THREADS=%d: %.1f", t, float64(per[t])/1024))
	}
	e, base := float64(peak[progExecutor])/1024, float64(peak[progBaseline])/1024
	b.rep.add(row{Section: sec, Figure: fmt.Sprintf("peak RSS under load (%d jobs, %d in flight)", d.Jobs, d.Inflight),
		Unit: "MiB", Value: ptr(e), Baseline: ptr(base), Cmp: fmt.Sprintf("%.1f×", e/base), Verdict: verdictInfo,
		Note: "largest VmRSS/VmHWM over the overhead runs; MiB " + strings.Join(each, ", ")})
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/app/submit"
)

const (
	progExecutor = "executor"
	progBaseline = "baseline"
	// progConfirmed is the baseline with --confirm: it acknowledges a job
	// only once the broker confirmed its reply, as the executor must.
	progConfirmed = "baseline-confirm"
	// progTx is the baseline with --tx (bench/run --tx-baseline): the reply
	// and the ack in one transaction, one broker round trip per job. Not
	// the executor's contract (docs/benchmarks.md says why); it tells what
	// the confirm round trip costs.
	progTx = "baseline-tx"
)

// loadRun is one run of hyperflow-submit's load mode against one consumer.
type loadRun struct {
	Program  string `json:"program"` // executor, baseline, baseline-confirm or baseline-tx
	Threads  int    `json:"threads"` // THREADS, or the baseline's prefetch
	Inflight int    `json:"inflight"`
	Rep      int    `json:"rep"`
	// Events is the executor's events setting ("" = the default, all).
	Events string `json:"events,omitempty"`
	// Summary is hyperflow-submit's JSON summary as printed.
	Summary submit.Summary `json:"summary"`
	// PeakRSSKiB: the consumer's largest VmRSS sampled every 50 ms during
	// the load, or its VmHWM at the end if larger.
	PeakRSSKiB int64 `json:"peak_rss_kib"`
	// CPUSeconds: the consumer process's own utime+stime during the load
	// (not its children's).
	CPUSeconds float64 `json:"cpu_s"`
	// ChildrenCPUSeconds: the CPU of the commands it ran and waited for.
	ChildrenCPUSeconds float64 `json:"children_cpu_s"`
	// BrokerCPUSeconds: the broker's (beam.smp) during the load, when the
	// broker is the private one of scripts/rabbitmq.sh.
	BrokerCPUSeconds *float64 `json:"broker_cpu_s,omitempty"`
	// CPUsIdle: the share of the machine's CPU time that was idle during
	// the load (/proc/stat), when it could be read.
	CPUsIdle *float64 `json:"cpus_idle,omitempty"`
	// SubmitCPUSeconds: hyperflow-submit's (publishing the jobs, reading
	// the replies).
	SubmitCPUSeconds float64 `json:"submit_cpu_s"`
	Error            string  `json:"error,omitempty"`
}

type overheadData struct {
	Jobs     int        `json:"jobs"`
	Inflight int        `json:"inflight"`
	Reps     int        `json:"reps"`
	Runs     []*loadRun `json:"runs"`
	// Unloaded: one job at a time (inflight 1) at UnloadedThreads.
	UnloadedJobs    int        `json:"unloaded_jobs"`
	UnloadedThreads int        `json:"unloaded_threads"`
	Unloaded        []*loadRun `json:"unloaded_runs"`
	// EventsRuns: the executor with the events setting lifecycle and off
	// (Events of each run) at every THREADS, against the baseline runs of
	// the same THREADS above.
	EventsRuns []*loadRun `json:"events_runs,omitempty"`
}

// load starts prog, sends it jobs trivial jobs with inflight in flight,
// measures it and stops it.
func (b *bench) load(ctx context.Context, prog string, threads, jobs, inflight int, env ...string) (*loadRun, error) {
	return b.loadCmd(ctx, prog, threads, jobs, inflight, []string{"/bin/true"}, env...)
}

// baselineFlags are the baseline's flags for a baseline program.
func baselineFlags(prog string) []string {
	switch prog {
	case progConfirmed:
		return []string{"--confirm"}
	case progTx:
		return []string{"--tx"}
	}
	return nil
}

// loadCmd is load with another command than /bin/true.
func (b *bench) loadCmd(ctx context.Context, prog string, threads, jobs, inflight int, argv []string, env ...string) (*loadRun, error) {
	r := &loadRun{Program: prog, Threads: threads, Inflight: inflight}
	queue := b.queue(prog)
	defer b.ctl.deleteQueue(queue)
	var c *consumer
	var err error
	if bin, ok := b.opt.ab[prog]; ok {
		c, err = b.startExecutorBin(ctx, bin, threads, queue, env...)
	} else if prog == progExecutor {
		c, err = b.startExecutor(ctx, threads, queue, env...)
	} else {
		c, err = b.startBaseline(ctx, threads, queue, baselineFlags(prog)...)
	}
	if err != nil {
		return r, err
	}
	ticks0, children0, _ := cpuTicksChildren(c.pid())
	var broker0 int64
	if b.broker > 0 {
		broker0, _ = cpuTicks(b.broker)
	}
	busy0, idle0, merr := machineTicks()
	sampler := sampleRSS(c.pid(), 50*time.Millisecond)
	r.Summary, r.SubmitCPUSeconds, err = b.submit(ctx, queue, jobs, inflight, argv...)
	sampled := sampler.stop()
	if busy1, idle1, merr1 := machineTicks(); merr == nil && merr1 == nil && busy1+idle1 > busy0+idle0 {
		r.CPUsIdle = ptr(float64(idle1-idle0) / float64(busy1-busy0+idle1-idle0))
	}
	ticks1, children1, _ := cpuTicksChildren(c.pid())
	if b.broker > 0 {
		if broker1, berr := cpuTicks(b.broker); berr == nil {
			r.BrokerCPUSeconds = ptr(float64(broker1-broker0) / clockTicks)
		}
	}
	r.PeakRSSKiB = max(sampled, statusKiB(c.pid(), "VmHWM"))
	r.CPUSeconds = float64(ticks1-ticks0) / clockTicks
	r.ChildrenCPUSeconds = float64(children1-children0) / clockTicks
	if serr := c.stop(30 * time.Second); err == nil {
		err = serr
	}
	if c.exited() && err == nil && c.err != nil {
		err = c.err
	}
	return r, err
}

// submit runs hyperflow-submit's load mode on queue and returns its summary
// and the CPU seconds it used.
func (b *bench) submit(ctx context.Context, queue string, jobs, inflight int, argv ...string) (s submit.Summary, cpu float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"--amqp-url", b.opt.amqpURL, "--queue", queue,
		"--count", strconv.Itoa(jobs), "--inflight", strconv.Itoa(inflight),
		"--json", "--linger", "0", "--timeout-reply", "60s",
		"--storage", "local", "--workdir", b.work, "--"}
	cmd := exec.CommandContext(ctx, filepath.Join(b.opt.binDir, "hyperflow-submit"), append(args, argv...)...)
	cmd.Env = childEnv()
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if st := cmd.ProcessState; st != nil {
		cpu = (st.UserTime() + st.SystemTime()).Seconds()
	}
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		return s, cpu, fmt.Errorf("hyperflow-submit: %v; no JSON summary (%v):\n%s", runErr, err, stderr.tail(2000))
	}
	if !s.OK || runErr != nil {
		return s, cpu, fmt.Errorf("hyperflow-submit: %v: %d of %d replies, %d malformed, %d duplicates; problems: %q",
			runErr, s.Replies, s.Jobs, s.Malformed, s.Duplicates, s.Problems)
	}
	if s.Failed > 0 {
		return s, cpu, fmt.Errorf("%d jobs failed (exit statuses %v)", s.Failed, s.ExitStatuses)
	}
	return s, cpu, nil
}

func (b *bench) overhead(ctx context.Context) {
	o := b.opt
	d := &overheadData{Jobs: o.jobs, Inflight: o.inflight, Reps: o.reps,
		UnloadedJobs: o.unloadedJobs, UnloadedThreads: 2}
	b.rep.Overhead = d
	sec := fmt.Sprintf("executor overhead: %d × /bin/true, local storage, %d in flight, best of %d (alternating order)",
		o.jobs, o.inflight, o.reps)

	// run measures prog (the executor with the events setting events, ""
	// for the default), alternating which program goes first per rep.
	run := func(prog, events string, threads, jobs, inflight, rep int, into *[]*loadRun) {
		if ctx.Err() != nil {
			return
		}
		name := prog
		switch prog {
		case progConfirmed:
			name = "base+cfm"
		case progTx:
			name = "base+tx"
		}
		var env []string
		if prog == progExecutor {
			env = slices.Clone(b.opt.executorEnv)
			if events != "" {
				env = append(env, "EVENTS="+events)
				name = "exec/" + events
			}
		}
		r, err := b.load(ctx, prog, threads, jobs, inflight, env...)
		r.Rep, r.Events = rep, events
		if err != nil {
			r.Error = err.Error()
			logf("   %s THREADS=%d inflight=%d: ERROR %v", name, threads, inflight, err)
		} else {
			logf("   %-14s THREADS=%d inflight=%-3d rep %d: %7.1f jobs/s  p50 %7.2f ms  p99 %7.2f ms  peak RSS %5.1f MiB  CPU %.2fs",
				name, threads, inflight, rep+1, r.Summary.JobsPerSecond, r.Summary.LatencyMS.P50, r.Summary.LatencyMS.P99,
				float64(r.PeakRSSKiB)/1024, r.CPUSeconds)
		}
		*into = append(*into, r)
	}
	// The executor with the events settings lifecycle and off takes turns
	// with the others too (eventsSetting).
	type turn struct{ prog, events string }
	for _, t := range o.threads {
		for rep := range o.reps {
			order := []turn{{progExecutor, ""}, {progBaseline, ""}, {progConfirmed, ""}}
			if o.txBaseline {
				order = append(order, turn{progTx, ""})
			}
			order = append(order, turn{progExecutor, "lifecycle"}, turn{progExecutor, "off"})
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, p := range order {
				into := &d.Runs
				if p.events != "" {
					into = &d.EventsRuns
				}
				run(p.prog, p.events, t, o.jobs, o.inflight, rep, into)
			}
		}
		if ctx.Err() != nil {
			return
		}
		b.overheadRows(sec, t, d.Runs)
		b.eventsSetting(sec, t, d)
	}
	for rep := range o.reps {
		order := []string{progExecutor, progBaseline}
		if rep%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, p := range order {
			run(p, "", d.UnloadedThreads, o.unloadedJobs, 1, rep, &d.Unloaded)
		}
	}
	if ctx.Err() == nil {
		b.unloadedRows(d)
	}
}

// best returns the run of prog at threads with the most jobs/s, and the
// error of a failed run if every one failed.
func best(runs []*loadRun, prog string, threads int, better func(a, b *loadRun) bool) (*loadRun, error) {
	var top *loadRun
	var errs []error
	for _, r := range runs {
		if r.Program != prog || r.Threads != threads {
			continue
		}
		if r.Error != "" {
			errs = append(errs, errors.New(r.Error))
			continue
		}
		if top == nil || better(r, top) {
			top = r
		}
	}
	if top == nil {
		if len(errs) == 0 {
			errs = append(errs, errors.New("not run"))
		}
		return nil, errors.Join(errs...)
	}
	return top, nil
}

// allCPUPerJob is the CPU of every process per job answered, in ms: the
// consumer, its commands, the broker and hyperflow-submit. BrokerCPUSeconds
// must be known.
func (r *loadRun) allCPUPerJob() float64 {
	return perJobMS(r, r.CPUSeconds+r.ChildrenCPUSeconds+*r.BrokerCPUSeconds+r.SubmitCPUSeconds)
}

// perJobMS is seconds (of CPU) per job answered in r, in ms.
func perJobMS(r *loadRun, seconds float64) float64 {
	return seconds * 1000 / float64(r.Summary.Replies)
}

// cpuRow is a row of a CPU figure per job (ms) against the baseline's, with
// their ratio.
func cpuRow(sec, figure string, v, base float64, note string) row {
	r := row{Section: sec, Figure: figure, Unit: "ms", Value: ptr(v), Baseline: ptr(base), Verdict: verdictInfo, Note: note}
	if base > 0 {
		r.Cmp = fmt.Sprintf("%.1f×", v/base)
	}
	return r
}

// jobsRatioRow is a row of run's jobs/s against base's, with their ratio.
func jobsRatioRow(sec, figure string, run, base *loadRun) row {
	ratio := run.Summary.JobsPerSecond / base.Summary.JobsPerSecond
	return row{Section: sec, Figure: figure, Unit: "jobs/s",
		Value: ptr(run.Summary.JobsPerSecond), Baseline: ptr(base.Summary.JobsPerSecond), Ratio: ptr(ratio),
		Cmp: fmt.Sprintf("%.2f", ratio), Verdict: verdictInfo}
}

func moreJobsPerSecond(a, b *loadRun) bool { return a.Summary.JobsPerSecond > b.Summary.JobsPerSecond }
func lowerP50(a, b *loadRun) bool          { return a.Summary.LatencyMS.P50 < b.Summary.LatencyMS.P50 }

func (b *bench) overheadRows(sec string, t int, runs []*loadRun) {
	th := fmt.Sprintf("THREADS=%d", t)
	e, eerr := best(runs, progExecutor, t, moreJobsPerSecond)
	base, berr := best(runs, progBaseline, t, moreJobsPerSecond)
	if err := errors.Join(eerr, berr); err != nil {
		b.rep.add(row{Section: sec, Figure: th + ": jobs/s", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	r := jobsRatioRow(sec, th+": jobs/s", e, base)
	// Goal of issue 14: at every THREADS measured (1, 2 and 8).
	r.Goal = "ratio ≥ 0.90"
	r.Cmp += " (goal ≥ 0.90)"
	r.Verdict = verdict(*r.Ratio >= 0.90)
	b.rep.add(r)
	if c, err := best(runs, progConfirmed, t, moreJobsPerSecond); err == nil {
		cr := jobsRatioRow(sec, th+": jobs/s vs baseline with confirms", e, c)
		cr.Cmp += fmt.Sprintf(" (baseline with confirms ÷ baseline %.2f)", c.Summary.JobsPerSecond/base.Summary.JobsPerSecond)
		cr.Note = "baseline --confirm: acknowledges a job once the broker confirmed its reply, as wire.md requires of the executor"
		b.rep.add(cr)
		if c.BrokerCPUSeconds != nil {
			b.rep.add(row{Section: sec, Figure: th + ": broker CPU per job, baseline with confirms", Unit: "ms",
				Value: ptr(perJobMS(c, *c.BrokerCPUSeconds)), Verdict: verdictInfo,
				Note: "persistent replies, confirmed"})
		}
	}
	if x, err := best(runs, progTx, t, moreJobsPerSecond); err == nil {
		xr := jobsRatioRow(sec, th+": baseline in a transaction vs baseline", x, base)
		xr.Note = "baseline --tx: reply and ack in one transaction, one round trip per job; not the executor's contract (a refused reply's ack still applies)"
		b.rep.add(xr)
	}
	for _, q := range []struct {
		name   string
		ev, bv float64
	}{
		{"p50", e.Summary.LatencyMS.P50, base.Summary.LatencyMS.P50},
		{"p99", e.Summary.LatencyMS.P99, base.Summary.LatencyMS.P99},
	} {
		b.rep.add(row{Section: sec, Figure: fmt.Sprintf("%s: latency %s", th, q.name), Unit: "ms",
			Value: ptr(q.ev), Baseline: ptr(q.bv), Cmp: fmt.Sprintf("%+.2f ms", q.ev-q.bv), Verdict: verdictInfo,
			Note: fmt.Sprintf("mostly queueing: %d jobs wait for %d slots (≈ %d ÷ jobs/s)", b.opt.inflight, t, b.opt.inflight)})
	}
	b.rep.add(cpuRow(sec, th+": CPU per job (consumer process)", perJobMS(e, e.CPUSeconds), perJobMS(base, base.CPUSeconds),
		"utime+stime of the consumer itself (not of /bin/true) ÷ jobs"))
	if e.BrokerCPUSeconds != nil && base.BrokerCPUSeconds != nil {
		b.rep.add(cpuRow(sec, th+": broker CPU per job", perJobMS(e, *e.BrokerCPUSeconds), perJobMS(base, *base.BrokerCPUSeconds),
			"beam.smp utime+stime ÷ jobs: the executor also publishes 4 events and confirms its replies"))
		b.rep.add(cpuRow(sec, th+": CPU per job, the commands", perJobMS(e, e.ChildrenCPUSeconds), perJobMS(base, base.ChildrenCPUSeconds),
			"cutime+cstime of the consumer: the /bin/true it ran and reaped"))
		b.rep.add(cpuRow(sec, th+": CPU per job, hyperflow-submit", perJobMS(e, e.SubmitCPUSeconds), perJobMS(base, base.SubmitCPUSeconds),
			"publishing the jobs and reading the replies (the executor's replies carry metrics and output tails)"))
		ea, ba := e.allCPUPerJob(), base.allCPUPerJob()
		b.rep.add(row{Section: sec, Figure: th + ": CPU per job, all processes", Unit: "ms",
			Value: ptr(ea), Baseline: ptr(ba), Cmp: fmt.Sprintf("%.2f", ba/ea), Verdict: verdictInfo,
			Note: "consumer + its commands + broker + hyperflow-submit; when they fill the cores, jobs/s ratio ≈ this baseline ÷ executor"})
	}
	if e.CPUsIdle != nil && base.CPUsIdle != nil {
		b.rep.add(row{Section: sec, Figure: th + ": CPUs idle", Unit: "%",
			Value: ptr(100 * *e.CPUsIdle), Baseline: ptr(100 * *base.CPUsIdle),
			Cmp: fmt.Sprintf("%+.1f points", 100*(*e.CPUsIdle-*base.CPUsIdle)), Verdict: verdictInfo,
			Note: "share of the machine's CPU time idle during the load (/proc/stat): idle CPUs while jobs wait mean waiting, not work, bounds the jobs/s"})
	}
}

func (b *bench) unloadedRows(d *overheadData) {
	t := d.UnloadedThreads
	sec := fmt.Sprintf("added latency: %d × /bin/true one at a time (1 in flight), THREADS=%d, best of %d",
		d.UnloadedJobs, t, b.opt.reps)
	e, eerr := best(d.Unloaded, progExecutor, t, lowerP50)
	base, berr := best(d.Unloaded, progBaseline, t, lowerP50)
	if err := errors.Join(eerr, berr); err != nil {
		b.rep.add(row{Section: sec, Figure: "latency p50", Text: "error", Verdict: verdictError, Note: err.Error()})
		return
	}
	added := e.Summary.LatencyMS.P50 - base.Summary.LatencyMS.P50
	b.rep.add(row{Section: sec, Figure: "latency p50", Unit: "ms",
		Value: ptr(e.Summary.LatencyMS.P50), Baseline: ptr(base.Summary.LatencyMS.P50),
		Goal: "added p50 ≤ 2 ms", Cmp: fmt.Sprintf("%+.2f ms (goal ≤ +2 ms)", added), Verdict: verdict(added <= 2),
		Note: "the executor's added latency per job: replies confirmed, 4 events, output capture, rusage"})
	b.rep.add(row{Section: sec, Figure: "latency p99", Unit: "ms",
		Value: ptr(e.Summary.LatencyMS.P99), Baseline: ptr(base.Summary.LatencyMS.P99),
		Cmp: fmt.Sprintf("%+.2f ms", e.Summary.LatencyMS.P99-base.Summary.LatencyMS.P99), Verdict: verdictInfo})
	b.rep.add(row{Section: sec, Figure: "jobs/s", Unit: "jobs/s",
		Value: ptr(e.Summary.JobsPerSecond), Baseline: ptr(base.Summary.JobsPerSecond),
		Cmp: fmt.Sprintf("%.2f", e.Summary.JobsPerSecond/base.Summary.JobsPerSecond), Verdict: verdictInfo})
}

// progressCost measures what job.progress events cost: jobs that run long
// enough to be reported on (sleep 0.3 s, THREADS=8), with progress every
// 50 ms (six reports per job, each reading /proc) against progress off.
func (b *bench) progressCost(ctx context.Context) {
	const jobs, threads, inflight = 400, 8, 16
	sec := fmt.Sprintf("cost of progress events: %d × sleep 0.3 s, THREADS=%d, %d in flight, best of %d", jobs, threads, inflight, b.opt.reps)
	argv := []string{"/bin/sleep", "0.3"}
	var on, off []*loadRun
	for rep := range b.opt.reps {
		for i, interval := range []string{"50ms", "0"} {
			if rep%2 == 1 {
				interval = []string{"0", "50ms"}[i]
			}
			if ctx.Err() != nil {
				return
			}
			r, err := b.loadCmd(ctx, progExecutor, threads, jobs, inflight, argv, "PROGRESS_INTERVAL="+interval)
			if err != nil {
				r.Error = err.Error()
				logf("   progress %s: ERROR %v", interval, err)
			} else {
				logf("   progress %-5s rep %d: %7.1f jobs/s  CPU %.2fs", interval, rep+1, r.Summary.JobsPerSecond, r.CPUSeconds)
			}
			if interval == "0" {
				off = append(off, r)
			} else {
				on = append(on, r)
			}
		}
	}
	pick := func(runs []*loadRun) *loadRun {
		var top *loadRun
		for _, r := range runs {
			if r.Error == "" && (top == nil || r.Summary.JobsPerSecond > top.Summary.JobsPerSecond) {
				top = r
			}
		}
		return top
	}
	a, z := pick(on), pick(off)
	if a == nil || z == nil {
		b.rep.add(row{Section: sec, Figure: "jobs/s", Text: "error", Verdict: verdictError, Note: "a run failed"})
		return
	}
	b.rep.add(row{Section: sec, Figure: "jobs/s, progress every 50 ms vs off", Unit: "jobs/s",
		Value: ptr(a.Summary.JobsPerSecond), Baseline: ptr(z.Summary.JobsPerSecond),
		Cmp: fmt.Sprintf("%.2f", a.Summary.JobsPerSecond/z.Summary.JobsPerSecond), Verdict: verdictInfo})
	perJob := func(r *loadRun) float64 { return r.CPUSeconds / float64(jobs) * 1000 }
	b.rep.add(row{Section: sec, Figure: "executor CPU per job, progress vs off", Unit: "ms",
		Value: ptr(perJob(a)), Baseline: ptr(perJob(z)),
		Cmp: fmt.Sprintf("%+.3f ms", perJob(a)-perJob(z)), Verdict: verdictInfo,
		Note: "six progress events per job, each summing the process group's /proc entries"})
}

// eventsSetting reports the executor with fewer events per job at threads:
// the events setting lifecycle (job.started and job.finished) and off
// (none), in turn with the runs of the executor and the baselines at that
// THREADS; and from the broker's CPU per job with all and off, what one
// event costs the broker.
func (b *bench) eventsSetting(sec string, threads int, d *overheadData) {
	base, berr := best(d.Runs, progBaseline, threads, moreJobsPerSecond)
	all, aerr := best(d.Runs, progExecutor, threads, moreJobsPerSecond)
	if err := errors.Join(berr, aerr); err != nil {
		return // the THREADS rows say why
	}
	brokerPerJob := map[string]float64{}
	if all.BrokerCPUSeconds != nil {
		brokerPerJob["all"] = perJobMS(all, *all.BrokerCPUSeconds)
	}
	for _, ev := range []string{"lifecycle", "off"} {
		var runs []*loadRun
		for _, r := range d.EventsRuns {
			if r.Events == ev {
				runs = append(runs, r)
			}
		}
		th := fmt.Sprintf("THREADS=%d, events=%s", threads, ev)
		e, err := best(runs, progExecutor, threads, moreJobsPerSecond)
		if err != nil {
			b.rep.add(row{Section: sec, Figure: th + ": jobs/s", Text: "error", Verdict: verdictError, Note: err.Error()})
			continue
		}
		er := jobsRatioRow(sec, th+": jobs/s", e, base)
		er.Note = map[string]string{"lifecycle": "job.started and job.finished only", "off": "no job events"}[ev]
		b.rep.add(er)
		if ev == "lifecycle" {
			continue // the CPU rows of off say where the events' cost goes
		}
		// Off: the same broker work per job as the baseline with
		// confirms; what is left is the executor's own cost.
		if c, err := best(d.Runs, progConfirmed, threads, moreJobsPerSecond); err == nil {
			cr := jobsRatioRow(sec, th+": jobs/s vs baseline with confirms", e, c)
			cr.Note = "both answer with a confirmed, persistent reply and no events: the executor's own cost"
			b.rep.add(cr)
		}
		b.rep.add(cpuRow(sec, th+": CPU per job (consumer process)", perJobMS(e, e.CPUSeconds), perJobMS(base, base.CPUSeconds), ""))
		if e.BrokerCPUSeconds != nil && base.BrokerCPUSeconds != nil {
			brokerPerJob[ev] = perJobMS(e, *e.BrokerCPUSeconds)
			b.rep.add(cpuRow(sec, th+": broker CPU per job", brokerPerJob[ev], perJobMS(base, *base.BrokerCPUSeconds), ""))
			ea, ba := e.allCPUPerJob(), base.allCPUPerJob()
			b.rep.add(row{Section: sec, Figure: th + ": CPU per job, all processes", Unit: "ms",
				Value: ptr(ea), Baseline: ptr(ba), Cmp: fmt.Sprintf("%.2f", ba/ea), Verdict: verdictInfo})
		}
	}
	// The broker's cost of one event: all (4 job events for these jobs)
	// against off (none).
	if a, ok := brokerPerJob["all"]; ok {
		if off, ok := brokerPerJob["off"]; ok {
			v := (a - off) / 4
			b.rep.add(row{Section: sec, Figure: fmt.Sprintf("THREADS=%d: broker CPU per event", threads), Unit: "ms",
				Value: ptr(v), Cmp: fmt.Sprintf("%.0f %% of the broker's CPU per job with all", 100*(a-off)/a), Verdict: verdictInfo,
				Note: "(broker CPU per job with all − with off) ÷ 4 events per job (local storage: no stage events)"})
		}
	}
}

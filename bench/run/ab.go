package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// compareBuilds is the --ab mode: the executor builds given run in turn
// with the bare baseline and the baseline with confirms, round after round
// (--reps rounds at each of --threads, the order rotated every round), on
// trivial jobs as in the overhead step. Each build is judged by its ratios
// to the baselines of the same round, so that the machine's drift between
// rounds (±10-20 % on a VM) cancels out; the table gives their mean,
// median and spread, and the CPU per job and idle CPUs of every program.
// This is how a change to the executor's cost should be measured
// (docs/benchmarks.md): one make bench moves by as much as most changes.
func (b *bench) compareBuilds(ctx context.Context) int {
	o := b.opt
	progs := append(slices.Clone(o.abOrder), progBaseline, progConfirmed)
	fmt.Printf("\nA/B of executor builds: %d × /bin/true per run, %d in flight, %d rounds, in turn\n",
		o.jobs, o.inflight, o.reps)
	for _, name := range o.abOrder {
		fmt.Printf("  %s = %s\n", name, o.ab[name])
	}
	if len(o.executorEnv) > 0 {
		fmt.Printf("  every build with %s\n", strings.Join(o.executorEnv, " "))
	}
	failed := false
	for _, t := range o.threads {
		// runs[round][prog]
		runs := make([]map[string]*loadRun, o.reps)
		for round := range o.reps {
			runs[round] = map[string]*loadRun{}
			order := slices.Clone(progs)
			k := round % len(order)
			order = append(order[k:], order[:k]...)
			for _, p := range order {
				if ctx.Err() != nil {
					return 1
				}
				var env []string
				if _, ok := o.ab[p]; ok {
					env = o.executorEnv
				}
				r, err := b.load(ctx, p, t, o.jobs, o.inflight, env...)
				if err != nil {
					logf("   %-16s THREADS=%d round %d: ERROR %v", p, t, round+1, err)
					failed = true
					continue
				}
				runs[round][p] = r
				logf("   %-16s THREADS=%d round %d: %7.1f jobs/s  CPU per job %.3f ms, broker %s, CPUs idle %s",
					p, t, round+1, r.Summary.JobsPerSecond, perJobMS(r, r.CPUSeconds), brokerMS(r), idlePct(r))
			}
		}
		printAB(t, progs, runs)
	}
	if failed {
		return 1
	}
	return 0
}

// brokerMS is the broker's CPU per job of r, or "-".
func brokerMS(r *loadRun) string {
	if r.BrokerCPUSeconds == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f ms", perJobMS(r, *r.BrokerCPUSeconds))
}

// idlePct is the idle CPUs during r, or "-".
func idlePct(r *loadRun) string {
	if r.CPUsIdle == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f %%", 100**r.CPUsIdle)
}

// printAB prints, for every program at THREADS t, its jobs/s ratio to each
// baseline over the rounds where both ran, and its mean CPU figures.
func printAB(t int, progs []string, runs []map[string]*loadRun) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nTHREADS=%d\tjobs/s (mean)\t÷ bare: mean\tmedian\tsd\t÷ with confirms: mean\tmedian\tsd\tCPU/job\tbroker/job\tall/job\tCPUs idle\trounds\n", t)
	for _, p := range progs {
		var jps, own, broker, all, idle []float64
		var toBare, toCfm []float64
		for _, round := range runs {
			r, ok := round[p]
			if !ok {
				continue
			}
			jps = append(jps, r.Summary.JobsPerSecond)
			own = append(own, perJobMS(r, r.CPUSeconds))
			if r.BrokerCPUSeconds != nil {
				broker = append(broker, perJobMS(r, *r.BrokerCPUSeconds))
				all = append(all, r.allCPUPerJob())
			}
			if r.CPUsIdle != nil {
				idle = append(idle, 100**r.CPUsIdle)
			}
			if base, ok := round[progBaseline]; ok {
				toBare = append(toBare, r.Summary.JobsPerSecond/base.Summary.JobsPerSecond)
			}
			if c, ok := round[progConfirmed]; ok {
				toCfm = append(toCfm, r.Summary.JobsPerSecond/c.Summary.JobsPerSecond)
			}
		}
		if len(jps) == 0 {
			fmt.Fprintf(w, "%s\tno run\n", p)
			continue
		}
		name := map[string]string{progBaseline: "bare baseline", progConfirmed: "baseline with confirms"}[p]
		if name == "" {
			name = p
		}
		cells := []string{name, fmt.Sprintf("%.1f", mean(jps))}
		for _, v := range [][]float64{toBare, toCfm} {
			if len(v) == 0 {
				cells = append(cells, "-", "-", "-")
				continue
			}
			cells = append(cells, fmt.Sprintf("%.3f", mean(v)), fmt.Sprintf("%.3f", median(v)), fmt.Sprintf("%.3f", stddev(v)))
		}
		cells = append(cells, meanOrDash(own, "ms"), meanOrDash(broker, "ms"), meanOrDash(all, "ms"), meanOrDash(idle, "%"), fmt.Sprint(len(jps)))
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	w.Flush()
}

// meanOrDash is the mean of v with its unit (ms: 3 decimals, %: 1), or "-".
func meanOrDash(v []float64, unit string) string {
	if len(v) == 0 {
		return "-"
	}
	if unit == "%" {
		return fmt.Sprintf("%.1f %%", mean(v))
	}
	return fmt.Sprintf("%.3f %s", mean(v), unit)
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// stddev is the population standard deviation of v.
func stddev(v []float64) float64 {
	m, s := mean(v), 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return math.Sqrt(s / float64(len(v)))
}

// Command run is what `make bench` runs (through scripts/bench.sh): every
// benchmark of the project in one go, against the real private broker, with
// one table on stdout and the figures as JSON under bench/results/
// (docs/benchmarks.md explains each figure).
//
//   - executor overhead: trivial jobs (/bin/true, local storage) sent by
//     hyperflow-submit's load mode to the executor at THREADS = 1, 2, 8, and
//     the same jobs to the bare baseline consumer (bench/baseline) with the
//     same prefetch; jobs/s, latency, peak RSS and CPU per job of both;
//     then the latency one job at a time (nothing queued);
//   - footprint: start to executor.ready, RSS and CPU while idle;
//   - profiles: CPU and allocation profiles of the executor under the load
//     (HYPERFLOW_CPUPROFILE, HYPERFLOW_MEMPROFILE), top 15 of each;
//   - staging: bench/cloud (cloud vs the transfer manager, nfs vs cp) when an
//     S3 server is given (HYPERFLOW_TEST_S3_*);
//   - staging-many: bench/manyfiles (500 small and 50 larger files through a
//     proxy adding 20 ms per request: staging_concurrency against one file
//     at a time and against s5cmd);
//   - monitor: the benchmarks of ./tui/... (go test -bench).
//
// Usage (from the repository root, after make build):
//
//	scripts/with-servers.sh --rabbitmq --s3 -- go run ./bench/run
//
// With --ab it compares executor builds instead (compareBuilds), e.g. the
// build before a change against the build after it:
//
//	scripts/with-servers.sh --rabbitmq -- go run ./bench/run --ab old=/tmp/exec-old --ab new=bin/hyperflow-amqp-executor --threads 8 --jobs 3000 --reps 6
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	amqpURL      string
	binDir       string
	baseline     string
	repo         string
	results      string
	jobs         int
	inflight     int
	threads      []int
	reps         int
	unloadedJobs int
	startups     int
	idle         time.Duration
	cloudSize    string
	cloudRuns    int
	benchtime    string
	keepProfiles bool
	txBaseline   bool
	s5cmd        string
	manyReps     int
	executorEnv  []string
	// ab: executor builds to compare in turn (--ab), by name; abOrder
	// keeps the order given.
	ab      map[string]string
	abOrder []string
	skip    map[string]bool
	timeout time.Duration
}

// steps, in the order they run.
var steps = []string{"overhead", "progress", "footprint", "profile", "staging", "staging-many", "monitor"}

func parseFlags() (options, error) {
	var o options
	var threads, skip string
	flag.StringVar(&o.amqpURL, "amqp-url", os.Getenv("HYPERFLOW_TEST_AMQP_URL"), "broker URL (default $HYPERFLOW_TEST_AMQP_URL)")
	flag.StringVar(&o.binDir, "bin", "bin", "directory of the built commands (make build)")
	flag.StringVar(&o.baseline, "baseline", "", "baseline consumer binary (default: built from ./bench/baseline)")
	flag.StringVar(&o.repo, "repo", ".", "repository root (for go build and go test)")
	flag.StringVar(&o.results, "results", "bench/results", "where the JSON, the table and the profiles go")
	flag.IntVar(&o.jobs, "jobs", 2000, "jobs per load run")
	flag.IntVar(&o.inflight, "inflight", 64, "jobs in flight during a load run")
	flag.StringVar(&threads, "threads", "1,2,8", "THREADS values (and baseline prefetch) of the load runs")
	flag.IntVar(&o.reps, "reps", 2, "load runs of each program and THREADS, in alternating order; the best counts")
	flag.IntVar(&o.unloadedJobs, "unloaded-jobs", 300, "jobs of the one-at-a-time latency runs")
	flag.IntVar(&o.startups, "startups", 3, "starts measured for the time to executor.ready (the median counts)")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "idle time over which CPU use is measured")
	flag.StringVar(&o.cloudSize, "cloud-size", "1GiB", "file size for bench/cloud")
	flag.IntVar(&o.cloudRuns, "cloud-runs", 2, "runs of each bench/cloud phase (the best counts)")
	flag.StringVar(&o.benchtime, "benchtime", "300ms", "go test -benchtime of the monitor benchmarks")
	flag.StringVar(&o.s5cmd, "s5cmd", os.Getenv("HYPERFLOW_S5CMD"), "s5cmd binary for the staging-many comparison (scripts/bench.sh installs it; default $HYPERFLOW_S5CMD)")
	flag.IntVar(&o.manyReps, "many-reps", 5, "runs of every way in staging-many (the median counts)")
	flag.BoolVar(&o.keepProfiles, "keep-profiles", false, "also keep the raw pprof profiles next to the JSON")
	flag.Func("executor-env", "K=V for the executor of the overhead runs (repeatable; for experiments such as OUTPUT_TAIL=4096)",
		func(kv string) error {
			if !strings.Contains(kv, "=") {
				return fmt.Errorf("want K=V")
			}
			o.executorEnv = append(o.executorEnv, kv)
			return nil
		})
	flag.Func("ab", "NAME=BINARY: compare executor builds in turn, round after round, with both baselines, instead of the standard run (repeatable; --threads, --jobs, --reps = rounds)",
		func(v string) error {
			name, bin, ok := strings.Cut(v, "=")
			if !ok || name == "" || bin == "" || strings.ContainsAny(name, " /") {
				return fmt.Errorf("want NAME=BINARY, got %q", v)
			}
			if slices.Contains([]string{progExecutor, progBaseline, progConfirmed, progTx}, name) {
				return fmt.Errorf("name %q is taken by the bench", name)
			}
			if _, dup := o.ab[name]; dup {
				return fmt.Errorf("name %q given twice", name)
			}
			if o.ab == nil {
				o.ab = map[string]string{}
			}
			o.ab[name] = bin
			o.abOrder = append(o.abOrder, name)
			return nil
		})
	flag.BoolVar(&o.txBaseline, "tx-baseline", false, "also run the baseline answering in a transaction (one broker round trip per job) in the overhead runs")
	flag.StringVar(&skip, "skip", "", "comma-separated steps to skip: "+strings.Join(steps, ","))
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "limit for the whole run")
	flag.Parse()
	if o.amqpURL == "" {
		return o, fmt.Errorf("no broker: give --amqp-url or run under scripts/with-servers.sh --rabbitmq")
	}
	for _, f := range strings.Split(threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return o, fmt.Errorf("--threads %q: want positive integers", threads)
		}
		o.threads = append(o.threads, n)
	}
	o.skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.skip[s] = true
		}
	}
	if o.jobs < 1 || o.inflight < 1 || o.reps < 1 || o.unloadedJobs < 1 || o.startups < 1 || o.cloudRuns < 1 || o.manyReps < 1 {
		return o, fmt.Errorf("--jobs, --inflight, --reps, --unloaded-jobs, --startups and --cloud-runs must be at least 1")
	}
	return o, nil
}

// bench is the state of one run.
type bench struct {
	opt  options
	ctl  *control
	tmp  string // scratch directory, removed at the end
	work string // options.workdir of the jobs (local storage)
	seq  int    // makes queue names unique
	// broker is the pid of the private broker's beam.smp (0: unknown).
	broker int
	rep    *report
}

func main() {
	opt, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, opt.timeout)
	defer cancel()
	code := run(ctx, opt)
	stopAll()
	os.Exit(code)
}

func run(ctx context.Context, opt options) int {
	started := time.Now()
	for _, c := range []string{"hyperflow-amqp-executor", "hyperflow-submit"} {
		if _, err := os.Stat(filepath.Join(opt.binDir, c)); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s not found in %s: run make build first\n", c, opt.binDir)
			return 2
		}
	}
	b := &bench{opt: opt}
	var err error
	if b.tmp, err = os.MkdirTemp("", "hyperflow-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(b.tmp)
	b.work = filepath.Join(b.tmp, "work")
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if b.ctl, err = dialControl(opt.amqpURL); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer b.ctl.close()
	b.rep = newReport(opt, b.ctl)
	b.broker = brokerPID()
	if opt.baseline == "" {
		opt.baseline = filepath.Join(b.tmp, "baseline")
		b.opt.baseline = opt.baseline
		if err := goBuild(ctx, opt.repo, opt.baseline, "./bench/baseline"); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}

	if len(opt.ab) > 0 {
		return b.compareBuilds(ctx)
	}
	for _, s := range steps {
		if opt.skip[s] {
			b.rep.add(row{Section: sectionOf(s), Figure: s, Text: "skipped (--skip)", Verdict: verdictSkipped})
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== %s", s)
		t0 := time.Now()
		switch s {
		case "overhead":
			b.overhead(ctx)
		case "progress":
			b.progressCost(ctx)
		case "footprint":
			b.footprint(ctx)
		case "profile":
			b.profile(ctx)
		case "staging":
			b.staging(ctx)
		case "staging-many":
			b.stagingMany(ctx)
		case "monitor":
			b.monitor(ctx)
		}
		logf("   %s took %.1fs", s, time.Since(t0).Seconds())
	}
	interrupted := ctx.Err() != nil
	if interrupted {
		b.rep.add(row{Section: "run", Figure: "bench", Text: "interrupted: " + context.Cause(ctx).Error(), Verdict: verdictError})
	}
	b.rep.finish(time.Since(started))
	table := b.rep.table()
	fmt.Print(table)
	if interrupted {
		fmt.Println("interrupted: nothing written to " + opt.results)
		return 1
	}
	files, err := b.rep.write(opt.results, table)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the results:", err)
		return 1
	}
	for _, f := range files {
		fmt.Printf("wrote %s\n", f)
	}
	if b.rep.count(verdictError) > 0 {
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func goBuild(ctx context.Context, repo, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// queue returns a new job queue name.
func (b *bench) queue(what string) string {
	b.seq++
	return fmt.Sprintf("hyperflow.bench.%d.%s.%d", os.Getpid(), what, b.seq)
}

// childEnv is the environment of the programs the bench starts: a bare
// one, plus kv.
func childEnv(kv ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return append(env, kv...)
}

// consumer is an executor or a baseline consumer, started and ready.
type consumer struct {
	*proc
	started time.Time  // just before the fork
	ready   readyEvent // executor only
}

// startExecutor starts the executor on queue with THREADS = threads and
// waits for its executor.ready event.
func (b *bench) startExecutor(ctx context.Context, threads int, queue string, env ...string) (*consumer, error) {
	return b.startExecutorBin(ctx, filepath.Join(b.opt.binDir, "hyperflow-amqp-executor"), threads, queue, env...)
}

// startExecutorBin is startExecutor with another executor binary.
func (b *bench) startExecutorBin(ctx context.Context, bin string, threads int, queue string, env ...string) (*consumer, error) {
	readyc := b.ctl.expectReady(queue)
	defer b.ctl.forget(queue)
	env = childEnv(append([]string{
		"AMQP_URL=" + b.opt.amqpURL, "AMQP_QUEUE=" + queue, "STORAGE=local",
		"THREADS=" + strconv.Itoa(threads), "LOG_LEVEL=warn", "CONNECT_ATTEMPTS=3",
		"SHUTDOWN_GRACE=20s", "HYPERFLOW_TMPDIR=" + b.tmp,
	}, env...)...)
	c := &consumer{started: time.Now()}
	p, err := startProc("executor", bin, nil, env, nil)
	if err != nil {
		return nil, err
	}
	c.proc = p
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case c.ready = <-readyc:
		return c, nil
	case <-p.done:
		return nil, fmt.Errorf("executor exited before executor.ready: %v\n%s", p.err, p.out.tail(2000))
	case <-t.C:
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("no executor.ready within 15s; executor output:\n%s", p.out.tail(2000))
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// startBaseline starts the baseline consumer and waits until it consumes.
func (b *bench) startBaseline(ctx context.Context, prefetch int, queue string, flags ...string) (*consumer, error) {
	sig := newLineSignal("ready")
	c := &consumer{started: time.Now()}
	args := []string{"--amqp-url", b.opt.amqpURL, "--queue", queue, "--prefetch", strconv.Itoa(prefetch)}
	args = append(args, flags...)
	p, err := startProc("baseline", b.opt.baseline, args, childEnv(), sig)
	if err != nil {
		return nil, err
	}
	c.proc = p
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-sig.seen:
		return c, nil
	case <-p.done:
		return nil, fmt.Errorf("baseline exited before it was ready: %v\n%s", p.err, p.out.tail(2000))
	case <-t.C:
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("baseline not ready within 15s:\n%s", p.out.tail(2000))
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, ctx.Err()
	}
}

// Command hyperflow-amqp-executor runs HyperFlow jobs taken from a RabbitMQ
// queue. Settings come from defaults, the YAML file given as the only
// argument, the environment and flags, in that order; see --help.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/metrics"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/procs"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/systemd"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, flags, err := config.Load(args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "hyperflow-amqp-executor: %v\n", err)
		return 2
	}
	switch {
	case flags.Help:
		fmt.Fprint(stdout, flags.Usage)
		return 0
	case flags.Version:
		fmt.Fprintf(stdout, "hyperflow-amqp-executor %s\n", version)
		return 0
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "hyperflow-amqp-executor: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	for _, w := range flags.Warnings {
		log.Warn(w)
	}
	if !flags.Check {
		// One P per procs.JobsPerProc slots (rounded up), unless GOMAXPROCS is set.
		n, chosen := procs.Set(cfg.Threads, os.Getenv)
		log.Debug("Go threads running at once", "gomaxprocs", n, "from_environment", !chosen)
	}
	reap, stopReaper := startReaper(log)
	defer stopReaper()
	if cfg.WorkerPool {
		return runWorkerPool(cfg, flags, log, stdout, reap)
	}
	storages, err := storage.NewRegistry(cfg, log)
	if err != nil {
		log.Error("storage setup", "err", err)
		return 1
	}
	if flags.Check {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !executor.PrintCheck(stdout, executor.Check(ctx, cfg, storages)) {
			return 1
		}
		return 0
	}
	var ex *executor.Executor
	met := metrics.New(func() executor.Stats { return ex.Stats() }, cfg.HeartbeatInterval)
	ex, err = executor.New(cfg, executor.Params{
		Logger: log, Version: version, Storages: storages,
		Ready: systemd.Ready, Stopping: systemd.Stopping, JobFinished: met.JobFinished,
		Reaper: reap,
	})
	if err != nil {
		log.Error("executor setup", "err", err)
		return 2
	}

	// First SIGINT/SIGTERM: stop taking jobs and let running ones finish
	// (up to shutdown_grace). A second one: kill them now (they are
	// requeued).
	ctx, stop := onSignals(log, ex.Kill)
	defer stop()

	stopMetrics, err := serveMetrics(cfg, met, log)
	if err != nil {
		log.Error("metrics endpoint", "addr", cfg.MetricsAddr, "err", err)
		return 1
	}
	defer stopMetrics()

	stopProfiles := startProfiles(log)
	defer stopProfiles()
	if err := ex.Run(ctx); err != nil {
		log.Error("executor failed", "err", err)
		return 1
	}
	return 0
}

// startReaper makes the executor a child subreaper (it may be PID 1 in a
// container, and a job's orphans come back to it rather than to init) and
// reaps orphans until the function returned is called. Where the kernel
// refuses, the executor runs on without: a job's leftovers are still
// found by their marker (see package runner).
func startReaper(log *slog.Logger) (*reaper.Reaper, func()) {
	r := reaper.New()
	if err := r.Enable(); err != nil {
		log.Warn("not a child subreaper: orphans of jobs go to init", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	return r, func() {
		cancel()
		<-done
	}
}

// serveMetrics serves /metrics and /healthz on metrics_addr (when set) and
// pings the systemd watchdog while healthy; the function returned stops
// both.
func serveMetrics(cfg config.Settings, met *metrics.Metrics, log *slog.Logger) (func(), error) {
	stops := []func(){}
	if cfg.MetricsAddr != "" {
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: met.Handler(), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, err
		}
		go srv.Serve(ln)
		stops = append(stops, func() { srv.Close() })
		log.Info("metrics endpoint listening", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	go systemd.Watchdog(wdCtx, met.Healthy)
	stops = append(stops, stopWatchdog)
	return func() {
		for _, stop := range stops {
			stop()
		}
	}, nil
}

// onSignals returns a context cancelled by the first SIGINT or SIGTERM
// (stop taking work, let running work finish); the second one calls kill
// (stop it now, it goes back to the queue). stop ends the watch.
func onSignals(log *slog.Logger, kill func()) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		log.Info("stopping: no new jobs; running jobs may finish (signal again to stop them now)", "signal", sig.String())
		cancel()
		if sig, ok = <-sigs; ok {
			log.Warn("stopping now: running jobs are killed and go back to the queue", "signal", sig.String())
			kill()
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(sigs); cancel() }
}

// startProfiles writes a CPU profile to $HYPERFLOW_CPUPROFILE and a heap
// (allocations) profile to $HYPERFLOW_MEMPROFILE when the executor stops,
// for the benchmarks (docs/benchmarks.md).
func startProfiles(log *slog.Logger) func() {
	cpuFile, memFile := os.Getenv("HYPERFLOW_CPUPROFILE"), os.Getenv("HYPERFLOW_MEMPROFILE")
	var cpu *os.File
	if cpuFile != "" {
		f, err := os.Create(cpuFile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			log.Warn("cpu profile", "file", cpuFile, "err", err)
		} else {
			cpu = f
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if memFile != "" {
			f, err := os.Create(memFile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				log.Warn("memory profile", "file", memFile, "err", err)
			}
		}
	}
}

func newLogger(cfg config.Settings, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel)))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

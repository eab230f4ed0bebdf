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
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/systemd"
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
	})
	if err != nil {
		log.Error("executor setup", "err", err)
		return 2
	}

	// First SIGINT/SIGTERM: stop taking jobs and let running ones finish
	// (up to shutdown_grace). A second one: kill them now (they are
	// requeued).
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		sig := <-sigs
		log.Info("stopping: no new jobs; running jobs may finish (signal again to stop them now)", "signal", sig.String())
		stop()
		sig = <-sigs
		log.Warn("stopping now: running jobs are killed and go back to the queue", "signal", sig.String())
		ex.Kill()
	}()

	if cfg.MetricsAddr != "" {
		srv := &http.Server{Addr: cfg.MetricsAddr, Handler: met.Handler(), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			log.Error("metrics endpoint", "addr", cfg.MetricsAddr, "err", err)
			return 1
		}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("metrics endpoint listening", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go systemd.Watchdog(wdCtx, met.Healthy)

	stopProfiles := startProfiles(log)
	defer stopProfiles()
	if err := ex.Run(ctx); err != nil {
		log.Error("executor failed", "err", err)
		return 1
	}
	return 0
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

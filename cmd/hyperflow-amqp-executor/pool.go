package main

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/workerpool"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/metrics"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/daemon/systemd"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// runWorkerPool is run in the worker-pool mode (--worker-pool): a drop-in
// for HyperFlow's Node job listener, see executor/workerpool.
func runWorkerPool(cfg config.Settings, flags config.Flags, log *slog.Logger, stdout io.Writer, reap *reaper.Reaper) int {
	redis.SetLogger(workerpool.RedisLibraryLogger(log))
	if flags.Check {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if !executor.PrintCheck(stdout, workerpool.Check(ctx, cfg)) {
			return 1
		}
		return 0
	}
	var pool *workerpool.Pool
	met := metrics.New(func() executor.Stats {
		s := pool.Stats()
		return executor.Stats{Threads: s.Threads, Busy: s.Busy, JobsDone: s.TasksDone, JobsFailed: s.TasksFailed,
			Reconnects: s.Reconnects, Connected: s.Connected, LastHeartbeat: s.LastHeartbeat}
	}, cfg.HeartbeatInterval)
	pool, err := workerpool.New(cfg, workerpool.Params{
		Logger: log, Version: version, Ready: systemd.Ready, Stopping: systemd.Stopping, TaskFinished: met.JobFinished,
		Reaper: reap,
	})
	if err != nil {
		log.Error("worker pool setup", "err", err)
		return 2
	}
	ctx, stop := onSignals(log, pool.Kill)
	defer stop()
	stopMetrics, err := serveMetrics(cfg, met, log)
	if err != nil {
		log.Error("metrics endpoint", "addr", cfg.MetricsAddr, "err", err)
		return 1
	}
	defer stopMetrics()
	stopProfiles := startProfiles(log)
	defer stopProfiles()
	if err := pool.Run(ctx); err != nil {
		log.Error("worker pool failed", "err", err)
		return 1
	}
	return 0
}

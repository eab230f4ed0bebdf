// Command hyperflow-amqp-executor runs HyperFlow jobs taken from a RabbitMQ
// queue. Settings come from defaults, the YAML file given as the only
// argument, the environment and flags, in that order; see --help.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
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
	storages, err := storage.NewRegistry(cfg)
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
	ex, err := executor.New(cfg, executor.Params{Logger: log, Version: version, Storages: storages})
	if err != nil {
		log.Error("executor setup", "err", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := ex.Run(ctx); err != nil {
		log.Error("executor failed", "err", err)
		return 1
	}
	return 0
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

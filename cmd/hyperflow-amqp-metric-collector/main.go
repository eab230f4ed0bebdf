// Command hyperflow-amqp-metric-collector prints one tab-separated line per
// finished job seen on the events exchange, as the original executor's
// collector did. See package internal/app/collector.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/app/collector"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts, err := collector.ParseArgs(os.Args[1:], os.Getenv)
	if errors.Is(err, pflag.ErrHelp) {
		collector.WriteUsage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hyperflow-amqp-metric-collector: %v\n\n", err)
		collector.WriteUsage(os.Stderr)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &collector.Collector{Opts: opts, Out: os.Stdout, Log: log}
	if err := c.Run(ctx); err != nil {
		log.Error("metric collector failed", "err", err)
		return 1
	}
	return 0
}

// Command hyperflow-submit sends jobs to hyperflow-amqp-executor workers the
// way the HyperFlow engine does, for one job (its reply printed, its exit
// status returned) or as a load test (--count). See package internal/app/submit.
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

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/app/submit"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts, err := submit.ParseArgs(os.Args[1:], os.Getenv)
	if errors.Is(err, pflag.ErrHelp) {
		submit.WriteUsage(os.Stdout)
		return submit.ExitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hyperflow-submit: %v\n\n", err)
		submit.WriteUsage(os.Stderr)
		return submit.ExitFailure
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &submit.Runner{Opts: opts, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Log: log}
	code, err := r.Run(ctx)
	if err != nil {
		log.Error("hyperflow-submit failed", "err", err)
	}
	return code
}

// Command hyperflow-top is a live terminal monitor of
// hyperflow-amqp-executor workers, fed by the events they publish (or by a
// recording of them). See package tui.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/pflag"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad command line, or no terminal for the live view
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// isTerminal says whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(file.Fd())
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := tui.ParseArgs(args, getenv)
	if errors.Is(err, pflag.ErrHelp) {
		tui.WriteUsage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "hyperflow-top: %v\nsee hyperflow-top --help\n", err)
		return exitUsage
	}
	if cfg.Version {
		fmt.Fprintln(stdout, "hyperflow-top", version)
		return exitOK
	}
	env := tui.Env{
		Stdin:    stdin,
		Stdout:   stdout,
		Stderr:   stderr,
		Getenv:   getenv,
		Terminal: isTerminal(stdin) && isTerminal(stdout),
		Log:      slog.New(slog.NewTextHandler(stderr, nil)),
	}
	err = tui.Run(ctx, cfg, env)
	switch {
	case errors.Is(err, tui.ErrNoTerminal):
		fmt.Fprintf(stderr, "hyperflow-top: %v\n", err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "hyperflow-top: %v\n", err)
		return exitFailure
	}
	return exitOK
}

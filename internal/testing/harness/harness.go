// Package harness runs the real executor in-process against the private
// test broker (internal/testing/testenv) for the tests of the executor and
// the end-to-end tests (internal/e2e):
//
//	url := testenv.AMQPURL(t)
//	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2})
//	eng := harness.NewEngine(t, url, queue, nil)
//	id := eng.Send(map[string]any{"executable": "/bin/echo", "args": []any{"hi"}})
//	r := eng.Await(id, 20*time.Second)
//
// StartExecutor starts an executor and stops it when the test ends; Engine
// plays the HyperFlow engine (sends jobs, collects replies); WaitFor polls a
// condition; SyncBuffer collects logs written from several goroutines;
// CloseConnections closes broker connections as a network failure would;
// DeleteQueue removes what a test declared.
//
// The harness uses only the exported API of package executor.
package harness

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// Timeouts of StartExecutor: to be ready, and to stop at the end of the
// test before its running jobs are killed.
const (
	ReadyTimeout = 30 * time.Second
	StopTimeout  = 30 * time.Second
)

// Options configure the executor StartExecutor runs.
type Options struct {
	// URL is the broker's; "" is testenv.AMQPURL(t).
	URL string
	// Queue is the job queue; "" is a new one of the test's own. The
	// events exchange is Queue + ".events" unless Tweak changes it.
	Queue string
	// Threads is Settings.Threads (0: 1).
	Threads int
	// Version is Params.Version, shown in executor.ready.
	Version string
	// Tweak, when set, changes the settings last, after the defaults:
	// local storage, a private tmp_dir, a heartbeat every second.
	Tweak func(*config.Settings)
	// Log, when set, gets the executor's log as text, debug level and up;
	// nil discards it.
	Log io.Writer
}

// Running is an executor StartExecutor started.
type Running struct {
	// Ex is the executor.
	Ex *executor.Executor
	// Settings are the settings it runs with.
	Settings config.Settings
	// Stop asks it to stop (as SIGTERM does): Run returns once running jobs
	// finished or the shutdown grace ended.
	Stop context.CancelFunc
	// Done yields Run's result once, when Run returned.
	Done <-chan error

	exited chan struct{} // closed when Run returned
}

// StartExecutor runs an executor with o until the test ends and returns it
// once it is ready (its consumer runs). At the end of the test it is
// stopped, its running jobs killed if it does not stop within StopTimeout
// (or at once if the test failed), and its job queue and events exchange
// deleted.
func StartExecutor(t testing.TB, o Options) *Running {
	t.Helper()
	if o.URL == "" {
		o.URL = testenv.AMQPURL(t)
	}
	if o.Queue == "" {
		o.Queue = "hyperflow.jobs.test-" + uuid.NewString()[:8]
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	cfg := config.Default()
	cfg.AMQPURL = config.Secret(o.URL)
	cfg.Queue = o.Queue
	cfg.EventsExchange = o.Queue + ".events"
	cfg.Threads = o.Threads
	cfg.Storage = "local"
	cfg.TmpDir = t.TempDir()
	cfg.HeartbeatInterval = time.Second
	if o.Tweak != nil {
		o.Tweak(&cfg)
	}
	reg, err := storage.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if o.Log != nil {
		log = slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ready := make(chan struct{})
	ex, err := executor.New(cfg, executor.Params{Storages: reg, Logger: log, Version: o.Version,
		Ready: func() { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	r := &Running{Ex: ex, Settings: cfg, Stop: stop, Done: done, exited: make(chan struct{})}
	go func() {
		err := ex.Run(ctx)
		close(r.exited)
		done <- err
	}()
	t.Cleanup(func() {
		r.shutdown(t)
		DeleteQueue(t, o.URL, cfg.Queue, cfg.EventsExchange)
	})
	select {
	case <-ready:
	case <-r.exited:
		t.Fatalf("executor stopped before ready: %v", <-done)
	case <-time.After(ReadyTimeout):
		t.Fatalf("executor not ready after %v", ReadyTimeout)
	}
	return r
}

// shutdown stops the executor at the end of the test and waits for Run to
// return.
func (r *Running) shutdown(t testing.TB) {
	r.Stop()
	if t.Failed() {
		r.Ex.Kill()
	}
	select {
	case <-r.exited:
		return
	case <-time.After(StopTimeout):
	}
	r.Ex.Kill()
	select {
	case <-r.exited:
	case <-time.After(StopTimeout):
		t.Errorf("executor did not stop within %v of Kill", StopTimeout)
	}
}

package executor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor/runner"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// slowStorage is a staging backend whose transfers take a while, to watch
// progress reports (a stand-in for a slow network, in unit tests only; the
// real backends run the conformance suite on real servers).
type slowStorage struct{}

func (slowStorage) Name() string { return "slow" }
func (slowStorage) Open(context.Context, storage.Options) (storage.Session, error) {
	return slowSession{}, nil
}

type slowSession struct{}

func (slowSession) SharedDir() string { return "" }
func (slowSession) String() string    { return "slow://" }
func (slowSession) Get(ctx context.Context, name, dst string) (int64, error) {
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for range 10 {
		time.Sleep(25 * time.Millisecond)
		f.Write(make([]byte, 1000))
	}
	return 10000, nil
}
func (slowSession) Put(ctx context.Context, name, src string) (int64, error) {
	time.Sleep(150 * time.Millisecond)
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func TestProgressEvents(t *testing.T) {
	b := setup(t, func(c *config.Settings) { c.ProgressInterval = 20 * time.Millisecond })
	b.ex.storages.Register(slowStorage{})
	res := b.deliver(t, mustJSON(t, map[string]any{
		"executable": "/bin/sh",
		"args":       []any{"-c", "head -c 20000000 /dev/zero | tail -c 20000000 > /dev/null; head -c 5000 /dev/zero > out.dat; sleep 0.2"},
		"inputs":     []any{map[string]any{"name": "in.dat"}},
		"outputs":    []any{map[string]any{"name": "out.dat"}},
		"options":    map[string]any{"storage": "slow"},
	}))
	if res.reply.ExitStatus != 0 {
		t.Fatalf("reply %+v", res.reply)
	}
	phase := ""
	var lastIn int64
	seen := map[string]int{}
	for _, ev := range res.events {
		switch ev.Type {
		case eventbus.TypeStageInStarted:
			phase = eventbus.PhaseStageIn
		case eventbus.TypeExecStarted:
			phase = eventbus.PhaseExecution
		case eventbus.TypeStageOutStarted:
			phase = eventbus.PhaseStageOut
		case eventbus.TypeStageInFinished, eventbus.TypeExecFinished, eventbus.TypeStageOutFinished:
			phase = ""
		case eventbus.TypeJobProgress:
			if ev.Phase != phase || phase == "" {
				t.Fatalf("progress for %q outside its phase (now %q): %+v", ev.Phase, phase, ev)
			}
			seen[ev.Phase]++
			if ev.Elapsed == nil || *ev.Elapsed <= 0 || ev.ID == "" || ev.Thread != 1 {
				t.Errorf("progress event lacks fields: %+v", ev)
			}
			switch ev.Phase {
			case eventbus.PhaseStageIn:
				if ev.Bytes == nil || *ev.Bytes < lastIn || *ev.Bytes > 10000 || ev.BytesTotal != nil {
					t.Errorf("stage-in progress %+v", ev)
				}
				lastIn = *ev.Bytes
			case eventbus.PhaseStageOut:
				if ev.BytesTotal == nil || *ev.BytesTotal != 5000 {
					t.Errorf("stage-out progress without the total: %+v", ev)
				}
			case eventbus.PhaseExecution:
				if ev.RSS == nil || ev.CPU == nil {
					t.Errorf("execution progress without rss/cpu: %+v", ev)
				}
			}
		}
	}
	for _, p := range []string{eventbus.PhaseStageIn, eventbus.PhaseExecution, eventbus.PhaseStageOut} {
		if seen[p] == 0 {
			t.Errorf("no progress event during %s (%v)", p, seen)
		}
	}
	if lastIn == 0 {
		t.Error("stage-in progress never counted a byte of the download in flight")
	}
}

func TestGroupUsageSeesTheCommand(t *testing.T) {
	dir := t.TempDir()
	res := make(chan runner.Result, 1)
	pids := make(chan int, 1)
	go func() {
		res <- runner.Run(context.Background(), runner.Command{Path: "/bin/sh", Dir: dir,
			// tail keeps the 40 MB it read while its write to sleep
			// blocks, until sleep ends (on a fast machine a tail that
			// can write is gone before the first look).
			Args:    []string{"-c", "head -c 40000000 /dev/zero | tail -c 40000000 | sleep 2 & sleep 1; wait"},
			OnStart: func(pid int) { pids <- pid }})
	}()
	pid := <-pids
	var rss int64
	deadline := time.Now().Add(3 * time.Second)
	for rss < 20<<20 && time.Now().Before(deadline) {
		rss, _ = groupUsage(pid)
		time.Sleep(50 * time.Millisecond)
	}
	if rss < 20<<20 {
		t.Errorf("group rss %d bytes, want > 20 MiB (tail buffers 40 MB)", rss)
	}
	<-res
	if rss, cpu := groupUsage(pid); rss != 0 || cpu != 0 {
		t.Errorf("usage of a finished group: %d %v", rss, cpu)
	}
}

package harness

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "w%d\n", i)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

func TestWaitForPolls(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 5*time.Second, "three polls", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3", n.Load())
	}
}

// TestEchoJob runs one job through the harness: the executor answers the
// engine once, and the queue is left empty.
func TestEchoJob(t *testing.T) {
	url := testenv.AMQPURL(t)
	run := StartExecutor(t, Options{URL: url, Threads: 2})
	eng := NewEngine(t, url, run.Settings.Queue, nil)
	id := eng.Send(map[string]any{"executable": "/bin/echo", "args": []any{"hello"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	r := eng.Await(id, 20*time.Second)
	if len(r) != 1 || r[0].ExitStatus != 0 || r[0].Stdout != "hello\n" {
		t.Errorf("replies %+v", r)
	}
	if d := eng.Deliveries(id); len(d) != 1 || d[0].ContentType != "application/json" {
		t.Errorf("deliveries %+v", d)
	}
	run.Stop()
	if err := <-run.Done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := eng.Queued(); n != 0 || eng.Answered() != 1 {
		t.Errorf("%d messages left in the queue, %d jobs answered", n, eng.Answered())
	}
}

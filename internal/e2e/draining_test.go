package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/google/uuid"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// TestDrainingLive: the real executor asked to stop (as by SIGTERM) while
// a job runs says it drains; the monitor shows it draining with the job it
// waits for, then stopped once the job ended.
func TestDrainingLive(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.drain-" + uuid.NewString()[:8]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := tui.StartAMQP(ctx, tui.AMQPSource{URL: url, Exchange: queue + ".events", Bindings: []string{"#"}}, nil, nil)
	st := state.New(state.Options{})
	m := tui.New(tui.Options{State: st, Source: src, Now: time.Now, Location: time.UTC})
	p := startMonitor(t, m)
	p.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
	p.until("the monitor to connect", 30*time.Second, func() string { return "" }, func() bool {
		return strings.Contains(p.screen(), "● live")
	})

	run := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 2})
	id := harness.NewEngine(t, url, queue, nil).Send(map[string]any{"executable": "/bin/sleep", "args": []any{"4"},
		"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})
	exec := func() state.ExecutorView { x, _ := st.Executor(run.Ex.ID()); return x }
	describe := func() string { return fmt.Sprintf("executor %+v", exec()) }
	p.until("the job runs", 30*time.Second, describe, func() bool {
		j, ok := st.Job(id)
		return ok && j.State == state.StateRunning
	})

	run.Stop() // SIGTERM
	p.until("the executor drains", 10*time.Second, describe, func() bool {
		x := exec()
		return x.Status == state.StatusDraining && len(x.Waiting) == 1 && x.Waiting[0] == id
	})
	p.until("the screen shows it", 5*time.Second, describe, func() bool {
		l := lineWith(p.screen(), "waits for 1 job: "+id)
		return strings.Contains(l, "draining")
	})
	if l := lineWith(p.screen(), "executors"); !strings.Contains(l, "1 draining") {
		t.Errorf("header %q: no draining executor", l)
	}
	p.until("the executor stops", 30*time.Second, describe, func() bool {
		return exec().Status == state.StatusStopped
	})
	if j, _ := st.Job(id); j.State != state.StateDone {
		t.Errorf("job %s: %s, want done", id, j.State)
	}
}

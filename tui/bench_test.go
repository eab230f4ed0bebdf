package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// bigSpec makes about 11 000 jobs on 16 executors of 8 threads.
func bigSpec() genSpec {
	s := genSpec{start: demoStart, seconds: 300, seed: 7, meanJob: 0.8, failPct: 3}
	for i := range 16 {
		storage := "nfs"
		if i%2 == 0 {
			storage = "local"
		}
		s.execs = append(s.execs, genExec{id: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), host: fmt.Sprintf("node-%02d", i),
			storage: storage, threads: 8})
	}
	return s
}

// BenchmarkJobsView10k is the time to render the jobs view with 10 000
// jobs in memory (goal: 5 ms). render: a frame from the cached page (what
// every keystroke and tick costs); refresh: a new event moved the jobs, so
// the selection is sorted again, the page read and rendered (the worst
// frame, at most a few a second).
func BenchmarkJobsView10k(b *testing.B) {
	msgs := generate(bigSpec())
	st := state.New(state.Options{MaxJobs: 10000})
	for _, m := range msgs {
		_ = st.Apply(m)
	}
	end := demoStart.Add(300 * time.Second)
	st.Tick(end)
	if tot := st.Totals(end); tot.Kept < 10000 {
		b.Fatalf("only %d jobs kept", tot.Kept)
	}
	sizes := [][2]int{{80, 24}, {160, 48}}
	for _, sz := range sizes {
		m := New(Options{State: st, Now: func() time.Time { return end }, Location: time.UTC})
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		press(m, "3")
		b.Run(fmt.Sprintf("render/%dx%d", sz[0], sz[1]), func(b *testing.B) {
			for b.Loop() {
				_ = m.render()
			}
		})
		b.Run(fmt.Sprintf("refresh/%dx%d", sz[0], sz[1]), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				_ = st.Apply(eventbus.Message{RoutingKey: "executor.heartbeat", Received: end,
					Body: fmt.Appendf(nil, `{"executor":"x%d","timestamp":%d,"type":"job.started","id":"bench-%d","thread":1}`, i%4, end.Unix(), i)})
				m.jobs.Refresh()
				_ = m.render()
			}
		})
	}
}

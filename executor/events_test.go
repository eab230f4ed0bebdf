package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// TestEventsSetting: lifecycle publishes only job.started and job.finished,
// off no job event; the reply is the same in every case, and progress
// reports are not even armed.
func TestEventsSetting(t *testing.T) {
	for _, tc := range []struct {
		events string
		want   []string
	}{
		{config.EventsAll, []string{"event:job.started", "event:job.stage-in.started", "event:job.stage-in.finished",
			"event:job.execution.started", "event:job.execution.finished", "event:job.stage-out.started",
			"event:job.stage-out.finished", "event:job.finished", "reply"}},
		{config.EventsLifecycle, []string{"event:job.started", "event:job.finished", "reply"}},
		{config.EventsOff, []string{"reply"}},
	} {
		t.Run(tc.events, func(t *testing.T) {
			b := setup(t, func(s *config.Settings) { s.Events = tc.events; s.ProgressInterval = 1 })
			if tc.events != config.EventsAll && b.ex.wantEvent("job.progress") {
				t.Error("progress reports wanted")
			}
			shared := t.TempDir()
			os.WriteFile(filepath.Join(shared, "in.txt"), []byte("abc"), 0o644)
			res := b.deliver(t, mustJSON(t, map[string]any{
				"executable": "/bin/cp", "args": []any{"in.txt", "out.txt"},
				"inputs":  []any{map[string]any{"name": "in.txt"}},
				"outputs": []any{map[string]any{"name": "out.txt"}},
				"options": map[string]any{"storage": "nfs", "workdir": shared},
			}))
			var order []string
			for _, o := range res.order {
				if o != "event:job.progress" { // a 1 ns interval: some may come with all
					order = append(order, o)
				}
			}
			if strings.Join(order, " ") != strings.Join(tc.want, " ") {
				t.Errorf("published %v, want %v", order, tc.want)
			}
			if tc.events != config.EventsAll && len(order) != len(res.order) {
				t.Errorf("progress events published with events=%s: %v", tc.events, res.order)
			}
			if res.reply.ExitStatus != 0 || res.reply.Metrics == nil || res.reply.Metrics.OutputSize != 3 {
				t.Errorf("reply = %+v", res.reply)
			}
		})
	}
}

// TestEventLinger: a job that answers within eventLinger hands all its
// events to the publisher together with its reply (one write); a longer
// one has its started events published eventLinger after they happened,
// while it still runs, and the rest with the reply.
func TestEventLinger(t *testing.T) {
	b := setup(t, func(s *config.Settings) { s.ProgressInterval = 0 })
	dir := t.TempDir()
	job := func(args ...any) []byte {
		return mustJSON(t, map[string]any{"executable": "/bin/sh", "args": args,
			"options": map[string]any{"storage": "local", "workdir": dir}})
	}

	short := b.deliver(t, job("-c", "exit 0"))
	want := "event:job.started event:job.execution.started event:job.execution.finished event:job.finished reply"
	if got := strings.Join(short.order, " "); got != want {
		t.Fatalf("short job: order %s, want %s", got, want)
	}
	for i, c := range short.calls {
		if c != short.calls[len(short.calls)-1] {
			t.Errorf("short job: %s went in publisher call %d, the reply in %d: not one write", short.order[i], c, short.calls[len(short.calls)-1])
		}
	}

	const run = 400 * time.Millisecond
	long := b.deliver(t, job("-c", "sleep 0.4"))
	if got := strings.Join(long.order, " "); got != want {
		t.Fatalf("long job: order %s, want %s", got, want)
	}
	reply := len(long.order) - 1
	if long.calls[0] != long.calls[1] || long.calls[1] == long.calls[reply] || long.calls[2] != long.calls[reply] {
		t.Errorf("long job: publisher calls %v, want job.started and execution.started in one call, the rest with the reply", long.calls)
	}
	started := long.events[1].Timestamp
	sent := float64(long.at[1].UnixNano()) / 1e9
	if late := sent - started; late < eventLinger.Seconds()*0.9 || late > (run/2).Seconds() {
		t.Errorf("execution.started published %.3f s after it happened, want about eventLinger (%v)", late, eventLinger)
	}
	if early := long.at[reply].Sub(long.at[1]); early < run/2 {
		t.Errorf("execution.started published only %v before the reply: not while the job ran", early)
	}
}

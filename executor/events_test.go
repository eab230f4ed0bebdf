package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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

package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// laneBar draws the lane of intervals at a 10 min zoom, 100 columns wide.
func laneBar(t *testing.T, now time.Time, ivs []state.Interval) (bar string, cell time.Duration) {
	t.Helper()
	c := &common{now: func() time.Time { return now }, styles: DefaultStyles(), keys: DefaultKeyMap()}
	v := newThreadsView(c, 10*time.Minute)
	v.SetSize(100, 20)
	v.now = now
	return ansi.Strip(v.bar(&state.ThreadView{Intervals: ivs})), v.window / time.Duration(v.cells())
}

// At a wide zoom each column is many seconds: it shows what took most of
// its time, a failure only where a failure took most of it (X), or else a
// lighter mark where a failure ended (x), not a whole column of X for any
// failed job in it.
func TestGanttWideZoomFailures(t *testing.T) {
	now := demoNow
	start := now.Add(-10 * time.Minute)

	// Jobs of 3 s back to back, one in five failed: 20% of the time.
	var ivs []state.Interval
	failures := 0
	for i := 0; ; i++ {
		a := start.Add(time.Duration(i) * 3 * time.Second)
		if !a.Before(now) {
			break
		}
		failed := i%5 == 4
		if failed {
			failures++
		}
		ivs = append(ivs, state.Interval{Job: "j", Phase: state.PhaseExecution, Start: a, End: a.Add(3 * time.Second), Failed: failed})
	}
	bar, cell := laneBar(t, now, ivs)
	if cell < 10*time.Second {
		t.Fatalf("a column is %s: not a wide zoom", cell)
	}
	if n := strings.Count(bar, glyphFailed); n != 0 {
		t.Errorf("%d columns X with 20%% of the time failed, want none (execution took most of each):\n%s", n, bar)
	}
	marks := strings.Count(bar, glyphFailedPart)
	exec := strings.Count(bar, glyphExec)
	if marks == 0 || marks > failures || exec < len([]rune(bar))/4 {
		t.Errorf("%d failure marks (%d failures), %d execution columns of %d:\n%s", marks, failures, exec, len([]rune(bar)), bar)
	}

	// A long failed execution: X where it took the time, no extra mark;
	// the successful work around it keeps its glyph.
	ivs = []state.Interval{
		{Job: "a", Phase: state.PhaseStageIn, Start: start.Add(2 * time.Minute), End: start.Add(3 * time.Minute)},
		{Job: "a", Phase: state.PhaseExecution, Start: start.Add(3 * time.Minute), End: start.Add(4 * time.Minute), Failed: true},
		{Job: "b", Phase: state.PhaseExecution, Start: start.Add(4 * time.Minute), End: start.Add(5 * time.Minute)},
	}
	bar, _ = laneBar(t, now, ivs)
	x := strings.Count(bar, glyphFailed)
	if x < 4 || x > 7 || strings.Contains(bar, glyphFailedPart) || strings.Count(bar, glyphStageIn) < 4 ||
		strings.Count(bar, glyphExec) < 4 {
		t.Errorf("a minute of stage-in, a minute failed, a minute of execution:\n%s", bar)
	}
}

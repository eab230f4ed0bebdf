package tui

import (
	"bytes"
	"io"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The golden files of every view, at 80x24 (the smallest usual terminal)
// and 160x48, from the demo recording with the clock fixed at its end.
// Each case has two: screen.golden, the frame as text (easy to review),
// and teatest.golden, what the program wrote to the terminal, without
// colours (the ASCII profile keeps bold and reverse video, as NO_COLOR
// does). go test -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		w, h  int
		keys  []string
		setup func(*Model)
	}{
		{"executors_80x24", 80, 24, nil, nil},
		{"threads_80x24", 80, 24, []string{"2"}, nil},
		{"jobs_80x24", 80, 24, []string{"3"}, nil},
		{"jobs_failed_80x24", 80, 24, []string{"f"}, nil},
		{"jobs_sorted_80x24", 80, 24, []string{"3", "s", "s", "s", "s", "r"}, nil},
		{"detail_80x24", 80, 24, []string{"f", "enter"}, nil},
		{"detail_redelivered_80x24", 80, 24, []string{"/", "0", "1", "5", "5", "enter", "enter"}, nil},
		{"jobs_stalled_80x24", 80, 24, []string{"3", "m"}, nil},
		{"jobs_near_deadline_80x24", 80, 24, []string{"3", "m", "m"}, nil},
		{"detail_stalled_80x24", 80, 24, []string{"3", "m", "enter"}, nil},
		{"detail_near_deadline_80x24", 80, 24, []string{"3", "m", "m", "enter"}, nil},
		{"failures_80x24", 80, 24, []string{"5"}, nil},
		{"failure_group_jobs_80x24", 80, 24, []string{"5", "j", "j", "enter"}, nil},
		{"help_80x24", 80, 24, []string{"3", "?"}, nil},
		{"filter_prompt_80x24", 80, 24, []string{"/", "m", "A", "d"}, nil},
		{"export_prompt_80x24", 80, 24, []string{"3", "e"}, nil},
		{"paused_80x24", 80, 24, []string{"p"}, nil},
		{"executors_160x48", 160, 48, nil, nil},
		{"threads_160x48", 160, 48, []string{"2"}, nil},
		{"jobs_160x48", 160, 48, []string{"3"}, nil},
		{"detail_160x48", 160, 48, []string{"f", "enter"}, nil},
		{"failures_160x48", 160, 48, []string{"5"}, nil},
		{"detail_stalled_160x48", 160, 48, []string{"3", "m", "enter"}, nil},
		{"queues_replay_80x24", 80, 24, []string{"6"}, nil},
		{"queues_80x24", 80, 24, []string{"6"}, sampledQueues},
		{"queues_160x48", 160, 48, []string{"6"}, sampledQueues},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestModel(t, tc.w, tc.h)
			m.opts.ExportDir = "" // the prompt's default name is then the same in every run
			if tc.setup != nil {
				tc.setup(m)
			}
			press(m, tc.keys...)
			t.Run("screen", func(t *testing.T) {
				golden.RequireEqual(t, []byte(screen(m)))
			})
			t.Run("teatest", func(t *testing.T) {
				golden.RequireEqualEscape(t, runProgram(t, m, tc.w, tc.h), true)
			})
		})
	}
}

// runProgram runs m in a teatest program of w×h until its first frame is
// out, quits, and returns what it wrote from the first full paint on.
func runProgram(t *testing.T, m *Model, w, h int) []byte {
	t.Helper()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(
			tea.WithColorProfile(colorprofile.ASCII),
			tea.WithEnvironment([]string{"TERM=xterm-256color", "NO_COLOR=1"}),
			// The model has its size already: a second WindowSizeMsg
			// would repaint the screen, or not, depending on timing.
			tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
				if _, ok := msg.(tea.WindowSizeMsg); ok {
					return nil
				}
				return msg
			}),
		))
	var first []byte
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		first = append(first[:0], b...)
		return bytes.Contains(b, []byte("hyperflow-top"))
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(tm.FinalOutput(t, teatest.WithFinalTimeout(5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	out := append(first, rest...)
	// The terminal set-up before the first full paint depends on whether
	// the renderer's first flush comes before the first view: keep what
	// follows it.
	if i := bytes.Index(out, []byte(fullPaint)); i >= 0 {
		out = out[i:]
	}
	return out
}

// fullPaint is how the renderer starts a frame on a cleared screen.
const fullPaint = "\x1b[H\x1b[2J"

// sampledQueues gives the demo's job queue what a broker would say of it
// (the ready count falling from 120 to 96 in 20 s, two consumers), and a
// queue of waiting messages nobody consumes, as the queue view's poller
// would.
func sampledQueues(m *Model) {
	m.queues.polled = true
	st := m.State()
	st.SetQueueSample("hyperflow.jobs", state.QueueSample{Ready: 120, Consumers: 2, At: demoNow.Add(-20 * time.Second)})
	st.SetQueueSample("hyperflow.jobs", state.QueueSample{Ready: 96, Consumers: 2, At: demoNow.Add(-time.Second)})
	st.SetQueueSample("hyperflow.jobs.retry", state.QueueSample{Ready: 7, Consumers: 0, At: demoNow.Add(-time.Second)})
}

package state_test

import (
	"slices"
	"testing"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The text filter matches a job's id, executable, host, executor, thread,
// state, exit status and the first line of its stderr (or of its first
// exception).
func TestTextFilterFields(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, ready("x7", "node-7"))
	l.send(0, ready("x8", "node-8"))
	l.send(1, started("x7", "a1", 1))
	l.send(1, started("x7", "a2", 2))
	l.send(1, started("x8", "a3", 1))
	l.send(1, started("x8", "a4", 2))
	oom := finished("x7", "a1", 1, 137)
	oom.StderrTail = "Killed: Out of memory in mProject\nsecond line\n"
	oom.Exceptions = []string{"command exited with status 137"}
	l.send(5, oom)
	l.send(6, finished("x7", "a2", 2, 0))
	noStderr := finished("x8", "a4", 2, 1)
	noStderr.Exceptions = []string{"stage-in failed: no such key in.dat"}
	l.send(7, noStderr)

	for _, tc := range []struct {
		text string
		want []string
	}{
		{"a1", []string{"a1"}},
		{"1", []string{"a1", "a3", "a4"}}, // a number: the exit status (a4), or the rest as text (a1, a3: thread 1)
		{"137", []string{"a1"}},
		{"exit 137", []string{"a1"}},
		{"exit 1", []string{"a4"}},
		{"EXIT=0", []string{"a2"}},
		{"failed", []string{"a1", "a4"}},
		{"runn", []string{"a3"}},
		{"done", []string{"a2"}},
		{"out of memory", []string{"a1"}},
		{"second line", nil},
		{"no such key", []string{"a4"}},
		{"node-8", []string{"a3", "a4"}},
		{"sleep", []string{"a1", "a2", "a3", "a4"}},
	} {
		jobs, _ := l.m.Jobs(state.JobQuery{Text: tc.text, Sort: state.SortID}, 0, -1)
		if got := ids(jobs); !slices.Equal(got, tc.want) {
			t.Errorf("filter %q: %q, want %q", tc.text, got, tc.want)
		}
	}
}

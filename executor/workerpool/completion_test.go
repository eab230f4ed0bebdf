package workerpool

import (
	"reflect"
	"testing"
)

// The Redis commands are those of the Node listener's connector.js.
func TestCompletionCommands(t *testing.T) {
	tests := []struct {
		name string
		c    Completion
		want [][]any
	}{
		{name: "set, success", c: Completion{Task: "hf1:7:3:1", Code: 0},
			want: [][]any{{"SADD", "hf1:7:3:1", "0"}, {"SADD", "wf:7:tasksPendingCompletionHandling", "hf1:7:3:1"}}},
		{name: "set, signal", c: Completion{Task: "hf1:7:3:1", Code: 137},
			want: [][]any{{"SADD", "hf1:7:3:1", "137"}, {"SADD", "wf:7:tasksPendingCompletionHandling", "hf1:7:3:1"}}},
		{name: "set, not started", c: Completion{Task: "hf1:7:3:1", Code: -1},
			want: [][]any{{"SADD", "hf1:7:3:1", "-1"}, {"SADD", "wf:7:tasksPendingCompletionHandling", "hf1:7:3:1"}}},
		{name: "stream", c: Completion{Task: "hf1:7:3:1", Code: 2, Transport: TransportStream},
			want: [][]any{{"XADD", "hf:hf1:completions", "MAXLEN", "~", "100000", "*", "taskId", "hf1:7:3:1", "code", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Commands(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Commands() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
	if got := CompletedKey("hf1:7:3:1"); got != "wf:7:completedTasks" {
		t.Errorf("CompletedKey = %q", got)
	}
}

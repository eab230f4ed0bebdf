package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

func TestHistoryFlags(t *testing.T) {
	noenv := func(string) string { return "" }
	c, err := ParseArgs([]string{"--history", "--since", "2h"}, noenv)
	if err != nil || !c.History || c.Since != 2*time.Hour || c.HistoryStream != eventbus.DefaultHistoryStream {
		t.Errorf("--history --since 2h: %+v %v", c, err)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "2h"}, "only with --history"},
		{[]string{"--history-stream", "s"}, "only with --history"},
		{[]string{"--history", "--replay", "r.jsonl"}, "--history: not with --replay"},
		{[]string{"--history", "--resume", "r.jsonl"}, "--history: not with --replay or --resume"},
		{[]string{"--history", "--binding", "job.#"}, "not with --binding"},
		{[]string{"--history", "--since", "-1h"}, "--since -1h0m0s: must not be negative"},
		{[]string{"--history", "--history-stream", " "}, "--history-stream: must not be empty"},
	} {
		_, err := ParseArgs(bad.args, noenv)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.args, err, bad.want)
		}
	}
}

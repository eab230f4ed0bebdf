package tui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// newLaterModel is the demo seen later than its end: at demoNow+after,
// with no event since.
func newLaterModel(t *testing.T, w, h int, after time.Duration) *Model {
	t.Helper()
	st := loadDemo(t)
	later := demoNow.Add(after)
	st.Tick(later)
	m := New(Options{State: st, Now: func() time.Time { return later }, Location: time.UTC, ExportDir: t.TempDir()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// Five minutes after the demo's end, its stopped executor (node-3) is gone:
// shown as such, last; h hides it (and says so), in the executors and the
// threads views; the header counts the live executors only.
func TestGoneExecutors(t *testing.T) {
	m := newLaterModel(t, 100, 30, 5*time.Minute)
	sc := screen(m)
	rows := []string{}
	for _, l := range strings.Split(sc, "\n") {
		if f := strings.Fields(strings.TrimLeft(l, "›")); len(f) > 1 && strings.HasPrefix(f[1], "node-") {
			rows = append(rows, f[0]+" "+f[1])
		}
	}
	if len(rows) != 4 || rows[3] != "gone node-3" {
		t.Errorf("executors (status, host) %q: want node-3 gone, last\n%s", rows, sc)
	}
	// node-1, node-2 and node-4 are silent with jobs running: LOST, live.
	if l := lineWith(sc, "exec"); !strings.Contains(l, "0/3") || !strings.Contains(l, "3 LOST") {
		t.Errorf("header %q: want 0/3 online, 3 LOST (node-3 gone is not counted)", l)
	}
	press(m, "h")
	sc = screen(m)
	if strings.Contains(sc, "node-3") {
		t.Errorf("h: node-3 still shown:\n%s", sc)
	}
	if !strings.Contains(sc, "1 gone executor hidden") {
		t.Errorf("h: no word of the hidden executor:\n%s", sc)
	}
	press(m, "2")
	if sc := screen(m); strings.Contains(sc, "node-3") || !strings.Contains(sc, "1 gone hidden") {
		t.Errorf("threads view with gone executors hidden:\n%s", sc)
	}
	press(m, "h")
	if sc := screen(m); !strings.Contains(sc, "node-3") {
		t.Errorf("h again: node-3 not shown:\n%s", sc)
	}
	// The help says so.
	press(m, "1", "?")
	if sc := screen(m); !strings.Contains(sc, "hide gone") {
		t.Errorf("the help does not tell the key:\n%s", sc)
	}
}

func TestGoneAfterFlag(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want time.Duration
		err  string
	}{
		{nil, state.DefaultGoneAfter, ""},
		{[]string{"--gone-after", "1m"}, time.Minute, ""},
		{[]string{"--gone-after", "0"}, -1, ""}, // never
		{[]string{"--gone-after", "-1s"}, 0, "--gone-after -1s: must not be negative"},
	} {
		cfg, err := ParseArgs(tc.args, getenv)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.stateOptions().GoneAfter; got != tc.want {
			t.Errorf("%q: GoneAfter %s, want %s", tc.args, got, tc.want)
		}
	}
}

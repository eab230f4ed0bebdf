package tui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// demoNow is the fixed clock of the tests: the demo recording's end.
var demoNow = demoStart.Add(180 * time.Second)

// The demo recording's size: jobs, and events.
const (
	demoJobs   = 160
	demoEvents = 1574
	demoFailed = 20 // failed jobs (none lost)
)

// loadDemo returns a state model fed with testdata/demo.jsonl.
func loadDemo(t testing.TB) *state.Model {
	t.Helper()
	msgs, err := record.LoadFile("testdata/demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	st := state.New(state.Options{})
	for _, m := range msgs {
		_ = st.Apply(m)
	}
	st.Tick(demoNow)
	return st
}

// newTestModel makes a root model on the demo recording with the fixed
// clock, UTC times and exports into a temporary directory, sized w×h.
func newTestModel(t testing.TB, w, h int) *Model {
	t.Helper()
	m := New(Options{State: loadDemo(t), Now: func() time.Time { return demoNow }, Location: time.UTC, ExportDir: t.TempDir()})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// keyMsg makes the key press named as bubbletea names keys.
func keyMsg(name string) tea.KeyPressMsg {
	special := map[string]tea.KeyPressMsg{
		"enter":     {Code: tea.KeyEnter},
		"esc":       {Code: tea.KeyEscape},
		"tab":       {Code: tea.KeyTab},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
		"up":        {Code: tea.KeyUp},
		"down":      {Code: tea.KeyDown},
		"pgdown":    {Code: tea.KeyPgDown},
		"pgup":      {Code: tea.KeyPgUp},
		"home":      {Code: tea.KeyHome},
		"end":       {Code: tea.KeyEnd},
		"backspace": {Code: tea.KeyBackspace},
		"ctrl+c":    {Code: 'c', Mod: tea.ModCtrl},
		"ctrl+s":    {Code: 's', Mod: tea.ModCtrl},
	}
	if k, ok := special[name]; ok {
		return k
	}
	r := []rune(name)
	if len(r) != 1 {
		panic("unknown key " + name)
	}
	return tea.KeyPressMsg{Code: r[0], Text: name}
}

// press sends keys to m, and returns the last command.
func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		_, cmd = m.Update(keyMsg(k))
	}
	return cmd
}

// typeText types s into m.
func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// screen is m's frame without styles.
func screen(m *Model) string { return ansi.Strip(m.View().Content) }

// isQuit says whether cmd quits the program.
func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

package tui

import (
	"image/color"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
)

// themedModel is the demo at w×h under theme.
func themedModel(t *testing.T, theme string, w, h int) *Model {
	t.Helper()
	m := New(Options{State: loadDemo(t), Now: func() time.Time { return demoNow }, Location: time.UTC,
		ExportDir: t.TempDir(), Theme: theme})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return m
}

// The light theme's screens, with their colours (the escape sequences as
// written, before the terminal's colour profile reduces them): every view
// and the queue view. go test -run TestGoldenLight -update rewrites them.
func TestGoldenLight(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"executors", nil}, {"threads", []string{"2"}}, {"jobs", []string{"3"}},
		{"detail", []string{"f", "enter"}}, {"failures", []string{"5"}}, {"queues", []string{"6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := themedModel(t, ThemeLight, 100, 30)
			sampledQueues(m)
			press(m, tc.keys...)
			golden.RequireEqualEscape(t, []byte(m.View().Content), true)
		})
	}
}

// The themes change colours only: the words and symbols that tell a
// status are the same, so nothing is told by colour alone; and the light
// theme uses none of the basic yellow and cyan that vanish on white.
func TestThemesSameWords(t *testing.T) {
	for _, keys := range [][]string{nil, {"2"}, {"3"}, {"5"}, {"6"}} {
		dark, light := themedModel(t, ThemeDark, 120, 40), themedModel(t, ThemeLight, 120, 40)
		sampledQueues(dark)
		sampledQueues(light)
		press(dark, keys...)
		press(light, keys...)
		d, l := dark.View().Content, light.View().Content
		if ansi.Strip(d) != ansi.Strip(l) {
			t.Errorf("keys %v: the text differs between the themes", keys)
		}
		if d == l {
			t.Errorf("keys %v: the light theme has the dark one's colours", keys)
		}
		for _, basic := range []string{"\x1b[33m", "\x1b[36m", ";33m", ";36m"} {
			if strings.Contains(l, basic) {
				t.Errorf("keys %v: the light theme uses basic yellow or cyan (%q)", keys, basic)
			}
		}
	}
}

// --theme auto takes the terminal's answer: a white background gives the
// light styles, a black one the dark.
func TestThemeAuto(t *testing.T) {
	m := themedModel(t, ThemeAuto, 100, 30)
	dark := ThemeStyles(true).Failed
	if m.c.styles.Failed != dark {
		t.Fatalf("before the terminal answers: %q, want the dark theme's %q", m.c.styles.Failed.pre, dark.pre)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.White})
	if light := ThemeStyles(false).Failed; m.c.styles.Failed != light || light == dark {
		t.Fatalf("on white: %q, want the light theme's %q", m.c.styles.Failed.pre, light.pre)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.Black})
	if m.c.styles.Failed != dark {
		t.Fatalf("on black: %q, want the dark theme's %q", m.c.styles.Failed.pre, dark.pre)
	}
	// A fixed theme ignores the terminal.
	m = themedModel(t, ThemeLight, 100, 30)
	m.Update(tea.BackgroundColorMsg{Color: color.Black})
	if m.c.styles.Failed != ThemeStyles(false).Failed {
		t.Fatal("--theme light changed with the terminal's background")
	}
}

func TestThemeFlag(t *testing.T) {
	if _, err := ParseArgs([]string{"--theme", "solarized"}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), "--theme") {
		t.Fatalf("error %v, want one naming --theme", err)
	}
	cfg, err := ParseArgs([]string{"--theme", "light"}, func(string) string { return "" })
	if err != nil || cfg.Theme != ThemeLight {
		t.Fatalf("--theme light: %v, %q", err, cfg.Theme)
	}
	if cfg, _ := ParseArgs(nil, func(string) string { return "" }); cfg.Theme != ThemeAuto {
		t.Fatalf("default theme %q, want auto", cfg.Theme)
	}
}

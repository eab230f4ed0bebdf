package tui

import (
	"image/color"

	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// ink is a style reduced to the escape sequences around its text, so that
// the table cells of every frame cost a concatenation instead of a
// lipgloss render.
type ink struct{ pre, post string }

func inkOf(s lipgloss.Style) ink {
	r := s.Render("X")
	i := strings.IndexByte(r, 'X')
	if i < 0 {
		return ink{}
	}
	return ink{pre: r[:i], post: r[i+1:]}
}

// s paints text.
func (k ink) s(text string) string {
	if k.pre == "" || text == "" {
		return text
	}
	return k.pre + text + k.post
}

// Styles are every colour and decoration of the monitor. Colours are the 16
// basic ANSI ones, so the terminal's theme decides the shades; under
// NO_COLOR (or a terminal without colours) the renderer drops the colours
// and keeps bold, faint and reverse, and every state is also a word, so
// nothing depends on colour alone.
type Styles struct {
	Title, Tab, TabActive, Label, Faint, Bold ink
	Live, Replay, Paused                      ink

	TableHeader ink
	// Selected is the cursor's row: reverse video, so it shows without
	// colours too.
	Selected ink

	// Job states.
	Running, Done, Failed, Lost ink
	// Executor statuses; LostExec is an executor that fell silent while
	// it ran jobs; Draining one shutting down, waiting for its jobs.
	Online, Draining, Stale, Stopped, LostExec ink
	// Warn marks what needs a look (a deadline near, a diagnosis);
	// Stalled a stalled transfer (reverse video: it shows without colours
	// too); Expired a deadline past.
	Warn, Stalled, Expired ink
	// Progress bars: the part done and the rest.
	BarDone, BarLeft ink
	// Gantt bars.
	StageIn, Execution, StageOut, FailedBar, Idle ink
	Axis                                          ink
	Spark                                         ink

	StatusInfo, StatusError ink

	Help help.Styles
}

// Themes of --theme: the terminal's background, dark or light, or auto
// (asked of the terminal at start; dark until it answers).
const (
	ThemeDark  = "dark"
	ThemeLight = "light"
	ThemeAuto  = "auto"
)

// palette is the colours of a theme.
type palette struct {
	green, cyan, yellow, red, magenta, blue color.Color
}

// On a dark background the 16 basic ANSI colours, so that the terminal's
// theme decides the shades. On a light one, yellow and cyan of most
// palettes are all but invisible, and the bright ones too pale: darker
// shades of the 256-colour cube instead, each readable on white.
var (
	darkPalette  = palette{lipgloss.Green, lipgloss.Cyan, lipgloss.Yellow, lipgloss.Red, lipgloss.Magenta, lipgloss.Blue}
	lightPalette = palette{
		green:   lipgloss.ANSIColor(28),  // dark green
		cyan:    lipgloss.ANSIColor(30),  // dark teal
		yellow:  lipgloss.ANSIColor(130), // dark orange
		red:     lipgloss.ANSIColor(124), // dark red
		magenta: lipgloss.ANSIColor(90),  // dark purple
		blue:    lipgloss.ANSIColor(25),  // dark blue
	}
)

// DefaultStyles returns the monitor's styles for a dark background.
func DefaultStyles() *Styles { return ThemeStyles(true) }

// ThemeStyles returns the monitor's styles for a dark or a light
// background (lipgloss.LightDark picks each colour).
func ThemeStyles(dark bool) *Styles {
	ld := lipgloss.LightDark(dark)
	p := palette{
		green:   ld(lightPalette.green, darkPalette.green),
		cyan:    ld(lightPalette.cyan, darkPalette.cyan),
		yellow:  ld(lightPalette.yellow, darkPalette.yellow),
		red:     ld(lightPalette.red, darkPalette.red),
		magenta: ld(lightPalette.magenta, darkPalette.magenta),
		blue:    ld(lightPalette.blue, darkPalette.blue),
	}
	ns := lipgloss.NewStyle
	fg := func(c color.Color) lipgloss.Style { return ns().Foreground(c) }
	return &Styles{
		Title:       inkOf(ns().Bold(true)),
		Tab:         inkOf(ns().Faint(true)),
		TabActive:   inkOf(ns().Bold(true).Reverse(true)),
		Label:       inkOf(ns().Faint(true)),
		Faint:       inkOf(ns().Faint(true)),
		Bold:        inkOf(ns().Bold(true)),
		Live:        inkOf(fg(p.green).Bold(true)),
		Replay:      inkOf(fg(p.cyan).Bold(true)),
		Paused:      inkOf(fg(p.yellow).Bold(true).Reverse(true)),
		TableHeader: inkOf(ns().Bold(true).Underline(true)),
		Selected:    inkOf(ns().Reverse(true)),
		Running:     inkOf(fg(p.cyan)),
		Done:        inkOf(fg(p.green)),
		Failed:      inkOf(fg(p.red).Bold(true)),
		Lost:        inkOf(fg(p.magenta).Bold(true)),
		Online:      inkOf(fg(p.green)),
		Draining:    inkOf(fg(p.yellow)),
		Stale:       inkOf(fg(p.yellow).Bold(true)),
		Stopped:     inkOf(fg(p.red)),
		LostExec:    inkOf(fg(p.red).Bold(true)),
		Warn:        inkOf(fg(p.yellow).Bold(true)),
		Stalled:     inkOf(fg(p.yellow).Bold(true).Reverse(true)),
		Expired:     inkOf(fg(p.red).Bold(true)),
		BarDone:     inkOf(fg(p.cyan)),
		BarLeft:     inkOf(ns().Faint(true)),
		StageIn:     inkOf(fg(p.blue)),
		Execution:   inkOf(fg(p.green)),
		StageOut:    inkOf(fg(p.magenta)),
		FailedBar:   inkOf(fg(p.red).Bold(true)),
		Idle:        inkOf(ns().Faint(true)),
		Axis:        inkOf(ns().Faint(true)),
		Spark:       inkOf(fg(p.cyan)),
		StatusInfo:  inkOf(ns()),
		StatusError: inkOf(fg(p.red).Bold(true)),
		Help:        helpStyles(),
	}
}

func helpStyles() help.Styles {
	key := lipgloss.NewStyle().Bold(true)
	desc := lipgloss.NewStyle().Faint(true)
	return help.Styles{
		Ellipsis:       desc,
		ShortKey:       key,
		ShortDesc:      desc,
		ShortSeparator: desc,
		FullKey:        key,
		FullDesc:       desc,
		FullSeparator:  desc,
	}
}

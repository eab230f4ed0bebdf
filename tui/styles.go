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

// DefaultStyles returns the monitor's styles.
func DefaultStyles() *Styles {
	ns := lipgloss.NewStyle
	fg := func(c color.Color) lipgloss.Style { return ns().Foreground(c) }
	return &Styles{
		Title:       inkOf(ns().Bold(true)),
		Tab:         inkOf(ns().Faint(true)),
		TabActive:   inkOf(ns().Bold(true).Reverse(true)),
		Label:       inkOf(ns().Faint(true)),
		Faint:       inkOf(ns().Faint(true)),
		Bold:        inkOf(ns().Bold(true)),
		Live:        inkOf(fg(lipgloss.Green).Bold(true)),
		Replay:      inkOf(fg(lipgloss.Cyan).Bold(true)),
		Paused:      inkOf(fg(lipgloss.Yellow).Bold(true).Reverse(true)),
		TableHeader: inkOf(ns().Bold(true).Underline(true)),
		Selected:    inkOf(ns().Reverse(true)),
		Running:     inkOf(fg(lipgloss.Cyan)),
		Done:        inkOf(fg(lipgloss.Green)),
		Failed:      inkOf(fg(lipgloss.Red).Bold(true)),
		Lost:        inkOf(fg(lipgloss.Magenta).Bold(true)),
		Online:      inkOf(fg(lipgloss.Green)),
		Draining:    inkOf(fg(lipgloss.Yellow)),
		Stale:       inkOf(fg(lipgloss.Yellow).Bold(true)),
		Stopped:     inkOf(fg(lipgloss.Red)),
		LostExec:    inkOf(fg(lipgloss.Red).Bold(true)),
		Warn:        inkOf(fg(lipgloss.Yellow).Bold(true)),
		Stalled:     inkOf(fg(lipgloss.Yellow).Bold(true).Reverse(true)),
		Expired:     inkOf(fg(lipgloss.Red).Bold(true)),
		BarDone:     inkOf(fg(lipgloss.Cyan)),
		BarLeft:     inkOf(ns().Faint(true)),
		StageIn:     inkOf(fg(lipgloss.Blue)),
		Execution:   inkOf(fg(lipgloss.Green)),
		StageOut:    inkOf(fg(lipgloss.Magenta)),
		FailedBar:   inkOf(fg(lipgloss.Red).Bold(true)),
		Idle:        inkOf(ns().Faint(true)),
		Axis:        inkOf(ns().Faint(true)),
		Spark:       inkOf(fg(lipgloss.Cyan)),
		StatusInfo:  inkOf(ns()),
		StatusError: inkOf(fg(lipgloss.Red).Bold(true)),
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

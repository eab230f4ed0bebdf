package tui

import (
	"charm.land/bubbles/v2/key"
)

// KeyMap is every key of the monitor, with htop's and k9s's habits.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Enter, Back                             key.Binding

	NextView, PrevView key.Binding
	Views              [viewCount]key.Binding // 1..6
	ViewsHelp          key.Binding            // help entry for 1-6

	Filter, Sort, SortBack, Reverse, Failed, States, Marks key.Binding
	ZoomIn, ZoomOut                                        key.Binding
	HideGone                                               key.Binding

	Pause, Export, Help, Quit key.Binding
}

// DefaultKeyMap returns the monitor's keys.
func DefaultKeyMap() *KeyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return &KeyMap{
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup", "ctrl+b", "ctrl+u"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+f", "ctrl+d", "space"}, "pgdn", "page down"),
		Top:      b([]string{"home", "g"}, "g/home", "top"),
		Bottom:   b([]string{"end", "G"}, "G/end", "bottom"),
		Enter:    b([]string{"enter"}, "enter", "detail"),
		Back:     b([]string{"esc"}, "esc", "back"),

		NextView: b([]string{"tab"}, "tab", "next view"),
		PrevView: b([]string{"shift+tab"}, "shift+tab", "previous view"),
		Views: [viewCount]key.Binding{
			b([]string{"1"}, "1", "executors"),
			b([]string{"2"}, "2", "threads"),
			b([]string{"3"}, "3", "jobs"),
			b([]string{"4"}, "4", "job detail"),
			b([]string{"5"}, "5", "failures"),
			b([]string{"6"}, "6", "queues"),
		},
		ViewsHelp: b([]string{"1", "2", "3", "4", "5", "6"}, "1-6", "views"),

		Filter:   b([]string{"/"}, "/", "filter"),
		Sort:     b([]string{"s"}, "s", "sort column"),
		SortBack: b([]string{"S"}, "S", "sort column back"),
		Reverse:  b([]string{"r"}, "r", "reverse"),
		Failed:   b([]string{"f"}, "f", "failed only"),
		States:   b([]string{"t"}, "t", "state filter"),
		Marks:    b([]string{"m"}, "m", "marks filter"),
		ZoomIn:   b([]string{"+", "="}, "+/-", "zoom"),
		ZoomOut:  b([]string{"-", "_"}, "-", "zoom out"),
		HideGone: b([]string{"h"}, "h", "hide gone"),

		Pause:  b([]string{"p"}, "p", "pause"),
		Export: b([]string{"e", "ctrl+s"}, "e", "export"),
		Help:   b([]string{"?"}, "?", "help"),
		Quit:   b([]string{"q", "ctrl+c"}, "q", "quit"),
	}
}

// viewKeys is the help of one view: help.KeyMap.
type viewKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (v viewKeys) ShortHelp() []key.Binding  { return v.short }
func (v viewKeys) FullHelp() [][]key.Binding { return v.full }

// helpFor returns the keys shown for view id.
func (k *KeyMap) helpFor(id viewID) viewKeys {
	move := []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
	global := []key.Binding{k.NextView, k.ViewsHelp, k.Pause, k.Export, k.Help, k.Quit}
	switch id {
	case viewExecutors:
		return viewKeys{
			short: []key.Binding{k.Up, k.Down, withHelp(k.Enter, "jobs"), k.NextView, k.Failed, k.Pause, k.Help, k.Quit},
			full:  [][]key.Binding{move, {withHelp(k.Enter, "its jobs"), k.Failed, k.Filter, k.HideGone}, global},
		}
	case viewThreads:
		return viewKeys{
			short: []key.Binding{k.Up, k.Down, withHelp(k.Enter, "job"), k.ZoomIn, k.NextView, k.Pause, k.Help, k.Quit},
			full:  [][]key.Binding{move, {withHelp(k.Enter, "lane's job"), withHelp(k.ZoomIn, "zoom in"), k.ZoomOut, k.HideGone}, global},
		}
	case viewDetail:
		return viewKeys{
			short: []key.Binding{withHelp(k.Up, "scroll"), k.Down, k.Back, k.NextView, k.Pause, k.Help, k.Quit},
			full:  [][]key.Binding{move, {k.Back}, global},
		}
	case viewQueues:
		return viewKeys{
			short: []key.Binding{k.Up, k.Down, k.NextView, k.Pause, k.Help, k.Quit},
			full:  [][]key.Binding{move, global},
		}
	case viewFailures:
		return viewKeys{
			short: []key.Binding{k.Up, k.Down, withHelp(k.Enter, "its jobs"), k.NextView, k.Pause, k.Help, k.Quit},
			full:  [][]key.Binding{move, {withHelp(k.Enter, "the group's jobs"), withHelp(k.Back, "back from them")}, global},
		}
	}
	return viewKeys{
		short: []key.Binding{k.Up, k.Down, k.Enter, k.Filter, k.Sort, k.Reverse, k.Failed, k.Export, k.Help, k.Quit},
		full: [][]key.Binding{
			move,
			{k.Enter, k.Filter, k.Failed, k.States, k.Marks, withHelp(k.Back, "clear filters")},
			{k.Sort, k.SortBack, k.Reverse},
			global,
		},
	}
}

func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

package tui

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// viewID names the views, in tab order.
type viewID int

const (
	viewExecutors viewID = iota
	viewThreads
	viewJobs
	viewDetail
	viewFailures
	viewQueues
	viewCount
)

var viewTitles = [viewCount]string{"Executors", "Threads", "Jobs", "Job", "Failures", "Queues"}

// shortTitles are the tabs of the views not shown on narrow terminals.
var shortTitles = [viewCount]string{"Execs", "Threads", "Jobs", "Job", "Fails", "Queues"}

// common is what every view shares: the state it reads, the clock, styles
// and keys, and whether the display is paused. The root model owns it; the
// views only read it.
type common struct {
	st     *state.Model
	now    func() time.Time
	loc    *time.Location
	styles *Styles
	keys   *KeyMap
	// paused: the views keep what they show; only the user's own actions
	// (sort, filter, opening a job) read the state again.
	paused bool
	// hideGone: the executors and threads views leave out the gone
	// executors (h).
	hideGone bool

	// hosts are the hostnames learnt from the jobs' metrics for executors
	// whose executor.ready was missed; hostTried is the JobsVersion of
	// the last attempt for one without.
	hosts     map[string]string
	hostTried map[string]uint64
}

// hostname is x's hostname. An executor that started before the monitor
// is known by its heartbeats only, which carry no hostname: then it is the
// one its finished jobs' metrics carry, if any ("?" until then).
func (c *common) hostname(x *state.ExecutorView) string {
	if x.Hostname != "" {
		return x.Hostname
	}
	if h, ok := c.hosts[x.ID]; ok {
		return h
	}
	if c.hosts == nil {
		c.hosts, c.hostTried = map[string]string{}, map[string]uint64{}
	}
	if v, ok := c.hostTried[x.ID]; !ok || v != c.st.JobsVersion() {
		c.hostTried[x.ID] = c.st.JobsVersion()
		q := state.JobQuery{Executor: x.ID, States: state.States(state.StateDone, state.StateFailed)}
		if page, _ := c.st.Jobs(q, 0, 1); len(page) > 0 && page[0].Hostname != "" {
			c.hosts[x.ID] = page[0].Hostname
			return page[0].Hostname
		}
	}
	return "?"
}

// executors are the executors the views list: the gone ones last, or
// left out when hidden (hidden is then how many).
func (c *common) executors() (list []state.ExecutorView, hidden int) {
	all := c.st.Executors()
	list = make([]state.ExecutorView, 0, len(all))
	for _, x := range all {
		if x.Status != state.StatusGone {
			list = append(list, x)
		}
	}
	for _, x := range all {
		switch {
		case x.Status != state.StatusGone:
		case c.hideGone:
			hidden++
		default:
			list = append(list, x)
		}
	}
	return list, hidden
}

// clock formats t as the time of day in the display's zone.
func (c *common) clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.loc).Format("15:04:05")
}

// clockMilli is clock with milliseconds.
func (c *common) clockMilli(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(c.loc).Format("15:04:05.000")
}

// scroller is a cursor over n rows of which a page of h is visible.
type scroller struct{ pos, off int }

// clamp keeps the cursor in [0, n) and visible in a page of h rows.
func (s *scroller) clamp(n, h int) {
	if n <= 0 {
		s.pos, s.off = 0, 0
		return
	}
	s.pos = min(max(s.pos, 0), n-1)
	h = max(h, 1)
	if s.pos < s.off {
		s.off = s.pos
	}
	if s.pos >= s.off+h {
		s.off = s.pos - h + 1
	}
	s.off = min(max(s.off, 0), max(n-h, 0))
}

// navDelta is how far a movement key moves a cursor in pages of h rows;
// ok is false for any other key.
func navDelta(k *KeyMap, msg tea.KeyPressMsg, h int) (delta int, ok bool) {
	const far = 1 << 30
	switch {
	case key.Matches(msg, k.Up):
		return -1, true
	case key.Matches(msg, k.Down):
		return 1, true
	case key.Matches(msg, k.PageUp):
		return -max(h-1, 1), true
	case key.Matches(msg, k.PageDown):
		return max(h-1, 1), true
	case key.Matches(msg, k.Top):
		return -far, true
	case key.Matches(msg, k.Bottom):
		return far, true
	}
	return 0, false
}

// wheelDelta is the movement of a mouse wheel message: 3 rows a notch.
func wheelDelta(msg tea.MouseWheelMsg) int {
	switch msg.Button {
	case tea.MouseWheelUp:
		return -3
	case tea.MouseWheelDown:
		return 3
	}
	return 0
}

// col is a column of a table.
type col struct {
	title string
	w     int  // width; the minimum when flex > 0
	flex  int  // share of the spare width (0: fixed)
	max   int  // cap of a flexible column (0: none)
	right bool // right-aligned
	// drop: columns are dropped from the highest drop down when the table
	// is too wide; 0 is never dropped.
	drop int
}

// layoutCols returns each column's width for a table width columns wide
// (0 for a dropped column), leaving one column for the cursor mark and one
// between columns.
func layoutCols(cols []col, width int, widths []int) []int {
	widths = widths[:0]
	for _, c := range cols {
		widths = append(widths, c.w)
	}
	used := func() int {
		n, t := 0, 1
		for _, w := range widths {
			if w > 0 {
				t += w
				n++
			}
		}
		return t + max(n-1, 0)
	}
	for used() > width {
		best := -1
		for i, c := range cols {
			if widths[i] > 0 && c.drop > 0 && (best < 0 || c.drop >= cols[best].drop) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		widths[best] = 0
	}
	spare := width - used()
	weight := 0
	for i, c := range cols {
		if widths[i] > 0 {
			weight += c.flex
		}
	}
	for spare > 0 && weight > 0 {
		given := 0
		for i, c := range cols {
			if widths[i] == 0 || c.flex == 0 {
				continue
			}
			add := max(spare*c.flex/weight, 1)
			if c.max > 0 {
				add = min(add, c.max-widths[i])
			}
			add = min(add, spare-given)
			if add > 0 {
				widths[i] += add
				given += add
			}
		}
		if given == 0 {
			break
		}
		spare -= given
	}
	return widths
}

// tableHeader renders the titles of the visible columns; mark (▲ or ▼)
// goes after the title of column sorted, -1 for none.
func tableHeader(cols []col, widths []int, sorted int, mark string) string {
	var b strings.Builder
	b.WriteByte(' ')
	first := true
	for i, c := range cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		t := c.title
		if i == sorted {
			if n := widths[i] - ansiWidth(mark); len(t) > n && n > 0 {
				t = t[:n] // the mark stays in view
			}
			t += mark
		}
		b.WriteString(fitPlain(t, widths[i], c.right))
	}
	return b.String()
}

// tableRow renders one row of cells (plain text) with their inks; a
// selected row is plain and in reverse video as a whole, since the reset
// of an inner style would end the reverse.
func tableRow(b *strings.Builder, cols []col, widths []int, cells []string, inks []ink, selected bool, sel ink, width int) string {
	b.Reset()
	if selected {
		b.WriteString(sel.pre)
		b.WriteString("›")
	} else {
		b.WriteByte(' ')
	}
	n := 1
	first := true
	for i, c := range cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
			n++
		}
		first = false
		cell := fitPlain(cells[i], widths[i], c.right)
		if !selected && inks != nil && inks[i].pre != "" {
			cell = inks[i].s(cell)
		}
		b.WriteString(cell)
		n += widths[i]
	}
	if n < width {
		b.WriteString(strings.Repeat(" ", width-n))
	}
	if selected {
		b.WriteString(sel.post)
	}
	return b.String()
}

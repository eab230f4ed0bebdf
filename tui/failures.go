package tui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// failuresView is view 5: the failed jobs grouped by executable, exit
// status, first line of the stderr tail and host, the group that failed
// last first; enter lists a group's jobs.
type failuresView struct {
	c             *common
	width, height int

	now    time.Time
	groups []state.FailureGroup
	total  int64 // failures in the groups
	cur    scroller
	selKey string // the group under the cursor, kept across refreshes
	widths []int
	cells  []string
	inks   []ink
	b      strings.Builder
}

var failCols = []col{
	{title: "COUNT", w: 5, right: true},
	{title: "LAST", w: 8},
	{title: "EXECUTABLE", w: 10, flex: 1, max: 24},
	{title: "EXIT", w: 4, right: true},
	{title: "HOST", w: 6, flex: 1, max: 16},
	{title: "FIRST", w: 8, drop: 1},
	{title: "FIRST LINE OF STDERR (numbers as #)", w: 34, flex: 6},
}

func newFailuresView(c *common) *failuresView {
	return &failuresView{c: c, cells: make([]string, len(failCols)), inks: make([]ink, len(failCols))}
}

// detailLines is the least height of the selected group's panel under the
// table (and a blank line above it), when there is room for it.
const detailLines = 6

// tableRows is the number of rows of the table: all but the summary line,
// the titles and, when the view is tall enough, the panel.
func (v *failuresView) tableRows() int {
	h := v.height - 2
	if v.panel() {
		h -= detailLines
	}
	return max(h, 1)
}

// maxTail is the most lines of the latest failure's stderr the panel shows.
const maxTail = 12

// panel says whether the selected group's panel is shown.
func (v *failuresView) panel() bool { return v.height >= 14 }

func (v *failuresView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.cur.clamp(len(v.groups), v.tableRows())
}

// Refresh reads the groups, keeping the cursor on its group.
func (v *failuresView) Refresh() {
	v.now = v.c.now()
	v.groups = v.c.st.FailureGroups()
	v.total = 0
	for i := range v.groups {
		v.total += v.groups[i].Count
	}
	if v.selKey != "" {
		for i := range v.groups {
			if v.groups[i].Key == v.selKey {
				v.cur.pos = i
				break
			}
		}
	}
	v.cur.clamp(len(v.groups), v.tableRows())
}

func (v *failuresView) Update(msg tea.Msg) tea.Cmd {
	d := 0
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		var ok bool
		if d, ok = navDelta(v.c.keys, msg, v.tableRows()); !ok {
			return nil
		}
	case tea.MouseWheelMsg:
		d = wheelDelta(msg)
	}
	if d != 0 {
		v.cur.pos += d
		v.cur.clamp(len(v.groups), v.tableRows())
		if v.cur.pos < len(v.groups) {
			v.selKey = v.groups[v.cur.pos].Key
		}
	}
	return nil
}

// Selected is the group under the cursor.
func (v *failuresView) Selected() (state.FailureGroup, bool) {
	if v.cur.pos < len(v.groups) {
		return v.groups[v.cur.pos], true
	}
	return state.FailureGroup{}, false
}

func (v *failuresView) View() string {
	s := v.c.styles
	lines := make([]string, 0, v.height)
	if len(v.groups) == 0 {
		lines = append(lines, "", s.Faint.s("  No failed job yet."))
		return block(lines, v.width, v.height)
	}
	summary := " " + s.Bold.s(strconv.Itoa(len(v.groups))+" groups") + ", " + fmtCount(v.total) +
		" failures" + s.Label.s(" alike (executable, exit, stderr, host), latest first")
	lines = append(lines, fit(summary, v.width))
	v.widths = layoutCols(failCols, v.width, v.widths)
	lines = append(lines, s.TableHeader.s(fit(tableHeader(failCols, v.widths, -1, ""), v.width)))
	rows := v.tableRows()
	v.cur.clamp(len(v.groups), rows)
	for i := v.cur.off; i < len(v.groups) && i < v.cur.off+rows; i++ {
		v.groupCells(&v.groups[i])
		lines = append(lines, tableRow(&v.b, failCols, v.widths, v.cells, v.inks, i == v.cur.pos, s.Selected, v.width))
	}
	if v.panel() {
		if g, ok := v.Selected(); ok {
			lines = append(lines, "")
			lines = append(lines, v.panelLines(&g, v.height-len(lines))...)
		}
	}
	return block(lines, v.width, v.height)
}

func (v *failuresView) groupCells(g *state.FailureGroup) {
	s := v.c.styles
	cells, inks := v.cells, v.inks
	clear(inks)
	cells[0] = fmtCount(g.Count)
	inks[0] = s.Failed
	cells[1] = v.c.clock(g.Last)
	cells[2] = g.Executable
	cells[3] = "?"
	if g.HasExit {
		cells[3] = strconv.Itoa(g.ExitStatus)
		inks[3] = s.Failed
	}
	cells[4] = g.Hostname
	cells[5] = v.c.clock(g.First)
	cells[6] = g.Signature
}

// panelLines describes group g in at most h lines: what it is, its newest
// stderr line as written, its newest jobs, and when there is room the
// stderr tail of the newest failure.
func (v *failuresView) panelLines(g *state.FailureGroup, h int) []string {
	s := v.c.styles
	what := g.Executable
	if g.HasExit {
		what += " exit " + strconv.Itoa(g.ExitStatus)
		if m := exitMeaning(g.ExitStatus); m != "" {
			what += " (" + m + ")"
		}
	}
	if g.Hostname != "" {
		what += " on " + g.Hostname
	}
	n := "1 failure"
	if g.Count != 1 {
		n = fmtCount(g.Count) + " failures"
	}
	head := " " + s.Bold.s(what) + ": " + s.Failed.s(n) + s.Label.s("  first ") + v.c.clock(g.First) +
		s.Label.s("  last ") + v.c.clock(g.Last) + s.Label.s(" ("+fmtAge(v.now.Sub(g.Last))+" ago)")
	line := " " + s.Label.s("latest: ") + strings.ReplaceAll(g.Line, "\t", "    ")
	jobs := " " + s.Label.s("jobs, newest first: ") + strings.Join(g.Jobs, " ")
	hint := s.Faint.s(" enter: the group's jobs (esc back); enter on a job: its detail and stderr")
	out := []string{
		s.TableHeader.s(fit(" SELECTED GROUP", v.width)),
		fit(head, v.width),
		fit(line, v.width),
		fit(jobs, v.width),
		fit(hint, v.width),
	}
	// The newest failure's stderr tail, when there is room for some.
	if h-len(out) < 4 || len(g.Jobs) == 0 {
		return out
	}
	j, ok := v.c.st.Job(g.Jobs[0])
	if !ok || (j.StderrTail == "" && len(j.Exceptions) == 0) {
		return out
	}
	out = append(out, "", s.TableHeader.s(fit(" STDERR (tail) of "+j.ID+", the latest", v.width)))
	var tail []string
	for _, l := range strings.Split(strings.TrimRight(j.StderrTail, "\n"), "\n") {
		if l != "" {
			tail = append(tail, " "+strings.ReplaceAll(l, "\t", "    "))
		}
	}
	for _, e := range j.Exceptions {
		tail = append(tail, " "+s.Failed.s(e))
	}
	room := min(h-len(out), maxTail)
	if len(tail) > room {
		tail = tail[len(tail)-room:]
	}
	for _, l := range tail {
		out = append(out, fit(l, v.width))
	}
	return out
}

package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// executorsView is view 1: one row per executor, then the timings per
// executable and the anomalies when there is room.
type executorsView struct {
	c             *common
	width, height int

	now    time.Time
	rows   []state.ExecutorView
	stats  []state.ExecStat
	anom   state.Anomalies
	cur    scroller
	selID  string // the executor under the cursor, kept across refreshes
	widths []int
	sw     []int
	b      strings.Builder
}

var execCols = []col{
	{title: "STATUS", w: 7},
	{title: "HOST", w: 10, flex: 3, max: 30},
	{title: "THREADS", w: 7, right: true},
	{title: "DONE", w: 6, right: true},
	{title: "FAILED", w: 6, right: true},
	{title: "STORAGE", w: 7, drop: 2},
	{title: "HEARTBEAT", w: 9, right: true},
	{title: "ID", w: 8, drop: 3},
	{title: "INFO", w: 4, flex: 1, drop: 4},
}

var statCols = []col{
	{title: "EXECUTABLE", w: 10, flex: 1, max: 40},
	{title: "RUNS", w: 6, right: true},
	{title: "FAILED", w: 6, right: true},
	{title: "P50", w: 6, right: true},
	{title: "P95", w: 6, right: true},
	{title: "MAX", w: 6, right: true, drop: 3},
	{title: "STAGE-IN", w: 8, right: true},
	{title: "STAGE-OUT", w: 9, right: true},
	{title: "INPUT", w: 7, right: true, drop: 2},
	{title: "OUTPUT", w: 7, right: true, drop: 1},
}

func newExecutorsView(c *common) *executorsView { return &executorsView{c: c} }

func (v *executorsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.cur.clamp(len(v.rows), v.tableRows())
}

// Refresh reads the executors from the state.
func (v *executorsView) Refresh() {
	v.now = v.c.now()
	v.rows = v.c.st.Executors()
	v.stats = v.c.st.ExecStats()
	v.anom = v.c.st.Anomalies()
	if v.selID != "" {
		for i := range v.rows {
			if v.rows[i].ID == v.selID {
				v.cur.pos = i
				break
			}
		}
	}
	v.cur.clamp(len(v.rows), v.tableRows())
}

// tableRows is the height of the executors table's body: all of the view
// but the header when the executors need it, leaving the rest to the
// executables.
func (v *executorsView) tableRows() int {
	return max(v.height-1, 1)
}

func (v *executorsView) Update(msg tea.Msg) tea.Cmd {
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
		v.cur.clamp(len(v.rows), v.tableRows())
		if v.cur.pos < len(v.rows) {
			v.selID = v.rows[v.cur.pos].ID
		}
	}
	return nil
}

// Selected is the executor under the cursor.
func (v *executorsView) Selected() (state.ExecutorView, bool) {
	if v.cur.pos < len(v.rows) {
		return v.rows[v.cur.pos], true
	}
	return state.ExecutorView{}, false
}

func (v *executorsView) View() string {
	s := v.c.styles
	lines := make([]string, 0, v.height)
	if len(v.rows) == 0 {
		lines = append(lines, "", s.Faint.s("  No executor seen yet: waiting for executor.ready or heartbeat events."))
		return block(lines, v.width, v.height)
	}
	v.widths = layoutCols(execCols, v.width, v.widths)
	lines = append(lines, s.TableHeader.s(fit(tableHeader(execCols, v.widths, -1, ""), v.width)))
	// The executors get what they need; the executables the rest.
	rows := min(len(v.rows), v.height-1)
	extra := v.height - 1 - len(v.rows)
	if extra < 4 {
		rows = v.height - 1
	}
	v.cur.clamp(len(v.rows), rows)
	cells := make([]string, len(execCols))
	inks := make([]ink, len(execCols))
	for i := v.cur.off; i < len(v.rows) && i < v.cur.off+rows; i++ {
		v.execCells(&v.rows[i], cells, inks)
		lines = append(lines, tableRow(&v.b, execCols, v.widths, cells, inks, i == v.cur.pos, s.Selected, v.width))
	}
	if extra >= 4 {
		lines = append(lines, "")
		lines = v.statLines(lines, v.height-len(lines))
	}
	return block(lines, v.width, v.height)
}

func (v *executorsView) execCells(x *state.ExecutorView, cells []string, inks []ink) {
	s := v.c.styles
	clear(inks)
	cells[0] = string(x.Status)
	switch x.Status {
	case state.StatusOnline:
		inks[0] = s.Online
	case state.StatusStale:
		inks[0] = s.Stale
	case state.StatusStopped:
		inks[0] = s.Stopped
	}
	cells[1] = v.c.hostname(x)
	threads := "?"
	if x.Threads > 0 {
		threads = strconv.Itoa(x.Threads)
	}
	cells[2] = strconv.Itoa(x.Running) + "/" + threads
	done, failed := x.Done, x.Failed
	if x.HasCounts {
		// The executor's own counts include the jobs run before the
		// monitor started; the model's are more recent.
		done, failed = max(done, x.JobsDone), max(failed, x.JobsFailed)
	}
	cells[3] = fmtCount(done)
	cells[4] = fmtCount(failed)
	if failed > 0 {
		inks[4] = s.Failed
	}
	cells[5] = x.Storage
	switch {
	case !x.Heartbeat.IsZero():
		cells[6] = fmtAge(v.now.Sub(x.Heartbeat)) + " ago"
	default:
		cells[6] = "none"
	}
	if x.Status == state.StatusStale {
		inks[6] = s.Stale
	}
	cells[7] = shortID(x.ID)
	switch {
	case x.Status == state.StatusStopped && x.Reason != "":
		cells[8] = "stopped: " + x.Reason
	case x.Version != "":
		cells[8] = "v" + strings.TrimPrefix(x.Version, "v")
	default:
		cells[8] = ""
	}
}

// statLines appends the timing per executable and the anomalies, in at
// most h lines.
func (v *executorsView) statLines(lines []string, h int) []string {
	s := v.c.styles
	if h <= 0 {
		return lines
	}
	anomLine := ""
	if n := v.anom.Total(); n > 0 {
		a := v.anom
		anomLine = fmt.Sprintf(" anomalies %d: malformed %d, invalid %d, unknown %d, duplicate %d, out of order %d, late %d",
			n, a.Malformed, a.Invalid, a.Unknown, a.Duplicate, a.OutOfOrder, a.Late)
		if k := len(a.Recent); k > 0 {
			last := a.Recent[k-1]
			anomLine += fmt.Sprintf(" (last: %s %s: %s)", last.Kind, last.RoutingKey, last.Detail)
		}
		h--
	}
	if len(v.stats) > 0 && h >= 2 {
		v.sw = layoutCols(statCols, v.width, v.sw)
		lines = append(lines, s.TableHeader.s(fit(tableHeader(statCols, v.sw, -1, ""), v.width)))
		cells := make([]string, len(statCols))
		inks := make([]ink, len(statCols))
		n := min(len(v.stats), h-1)
		for i := range n {
			st := &v.stats[i]
			if i == n-1 && n < len(v.stats) {
				lines = append(lines, s.Faint.s(fmt.Sprintf("  … %d more executables", len(v.stats)-i)))
				break
			}
			clear(inks)
			cells[0] = st.Executable
			cells[1] = fmtCount(st.Count)
			cells[2] = fmtCount(st.Failed)
			if st.Failed > 0 {
				inks[2] = s.Failed
			}
			cells[3] = fmtDur(st.P50)
			cells[4] = fmtDur(st.P95)
			cells[5] = fmtDur(st.Max)
			cells[6] = fmtDur(st.StageInMean)
			cells[7] = fmtDur(st.StageOutMean)
			cells[8] = fmtBytes(st.InputBytes)
			cells[9] = fmtBytes(st.OutputBytes)
			lines = append(lines, tableRow(&v.b, statCols, v.sw, cells, inks, false, s.Selected, v.width))
		}
	}
	if anomLine != "" {
		lines = append(lines, s.Stale.s(fit(anomLine, v.width)))
	}
	return lines
}

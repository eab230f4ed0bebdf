package tui

import (
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// Gantt glyphs: each phase has its own shape as well as its colour. X is
// a column a failed stage took most of; x one where a failure ended that
// other work took most of.
const (
	glyphStageIn    = "▒"
	glyphExec       = "█"
	glyphStageOut   = "░"
	glyphFailed     = "X"
	glyphFailedPart = "x"
	glyphIdle       = " "
)

// windows are the Gantt spans +/- step through.
var windows = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}

// DefaultWindow is the Gantt span at start.
const DefaultWindow = 2 * time.Minute

// threadsView is view 2: every executor's threads as lanes, with the
// stage-in, execution and stage-out bars of the last window.
type threadsView struct {
	c             *common
	width, height int
	window        time.Duration

	now    time.Time
	rows   []laneRow
	hidden int // gone executors hidden (h)
	cur    scroller
	// selKey keeps the cursor on its lane across refreshes.
	selKey string

	// Per-cell scratch of the lane being drawn.
	acc []cellTime
}

// cellTime is the time one column of a lane spent in each of: stage-in,
// execution, stage-out (of jobs that did not fail there), and failed
// stages; and whether a failure ended in it.
type cellTime struct {
	d       [4]time.Duration
	failEnd bool
}

// laneRow is one line of the lanes: an executor's header or a thread.
type laneRow struct {
	exec   *state.ExecutorView
	thread *state.ThreadView // nil on the executor's line
	key    string
	// util is the thread's (or on the executor's line, its threads')
	// utilisation over the utilisation window, when hasUtil; diag the
	// executor's diagnosis.
	util    state.Utilisation
	hasUtil bool
	diag    string
}

func newThreadsView(c *common, window time.Duration) *threadsView {
	if window <= 0 {
		window = DefaultWindow
	}
	return &threadsView{c: c, window: window}
}

func (v *threadsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.cur.clamp(len(v.rows), v.laneLines())
}

// laneLines is the number of lines for lanes: all but the legend and the
// axis.
func (v *threadsView) laneLines() int { return max(v.height-2, 1) }

// Refresh reads every executor's threads.
func (v *threadsView) Refresh() {
	v.now = v.c.now()
	since := v.now.Add(-v.window)
	execs, hidden := v.c.executors()
	v.hidden = hidden
	v.rows = v.rows[:0]
	for i := range execs {
		x := &execs[i]
		u, per, ok := v.c.st.Utilisation(x.ID, v.now)
		diag := v.c.st.Diagnosis(x.ID, v.now)
		if x.Draining && x.Status == state.StatusDraining {
			diag = "waits for " + jobCount(len(x.Waiting))
		}
		v.rows = append(v.rows, laneRow{exec: x, key: x.ID, util: u, hasUtil: ok, diag: diag})
		threads := v.c.st.Threads(x.ID, since)
		for k := range threads {
			r := laneRow{exec: x, thread: &threads[k], key: x.ID + "/" + threads[k].Thread}
			for _, tu := range per {
				if tu.Thread == threads[k].Thread {
					r.util, r.hasUtil = tu.Utilisation, true
					break
				}
			}
			v.rows = append(v.rows, r)
		}
	}
	if v.selKey != "" {
		for i := range v.rows {
			if v.rows[i].key == v.selKey {
				v.cur.pos = i
				break
			}
		}
	}
	v.cur.clamp(len(v.rows), v.laneLines())
}

func (v *threadsView) Update(msg tea.Msg) tea.Cmd {
	d := 0
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, v.c.keys.ZoomIn):
			v.zoom(-1)
			return nil
		case key.Matches(msg, v.c.keys.ZoomOut):
			v.zoom(1)
			return nil
		}
		var ok bool
		if d, ok = navDelta(v.c.keys, msg, v.laneLines()); !ok {
			return nil
		}
	case tea.MouseWheelMsg:
		d = wheelDelta(msg)
	}
	if d != 0 {
		v.cur.pos += d
		v.cur.clamp(len(v.rows), v.laneLines())
		if v.cur.pos < len(v.rows) {
			v.selKey = v.rows[v.cur.pos].key
		}
	}
	return nil
}

// zoom steps the window: -1 shorter, +1 longer. The bars are redrawn at
// the next refresh (at once unless paused: then the lanes keep the
// intervals they had, which may not reach back as far).
func (v *threadsView) zoom(step int) {
	i := 0
	for i < len(windows)-1 && windows[i] < v.window {
		i++
	}
	i = min(max(i+step, 0), len(windows)-1)
	v.window = windows[i]
}

// Selected returns the executor and the job of the lane under the cursor:
// its running job, else the last job it ran.
func (v *threadsView) Selected() (execID, jobID string) {
	if v.cur.pos >= len(v.rows) {
		return "", ""
	}
	r := v.rows[v.cur.pos]
	if r.thread == nil {
		return r.exec.ID, ""
	}
	if r.thread.Job != "" {
		return r.exec.ID, r.thread.Job
	}
	if n := len(r.thread.Intervals); n > 0 {
		return r.exec.ID, r.thread.Intervals[n-1].Job
	}
	return r.exec.ID, ""
}

const laneLabel = 5 // "  12 "

// infoWidth is the width of the lane's right column (current job and its
// progress).
func (v *threadsView) infoWidth() int { return min(max(v.width/3, 14), 48) }

// utilWidth is the width of the lanes' utilisation column: " 87%" (the
// busy share), or on wide terminals " 87%=41+46" (= staging + execution);
// none on narrow terminals.
func (v *threadsView) utilWidth() int {
	switch {
	case v.width >= 140:
		return 12
	case v.width >= 100:
		return 5
	}
	return 0
}

// utilCell is a lane's utilisation column.
func (v *threadsView) utilCell(u state.Utilisation) string {
	text := strconv.Itoa(pct(u.Busy())) + "%"
	if v.utilWidth() >= 12 {
		text += "=" + strconv.Itoa(pct(u.Staging())) + "+" + strconv.Itoa(pct(u.Execution))
	}
	return fitPlain(text, v.utilWidth(), true)
}

// cells is the number of timeline columns.
func (v *threadsView) cells() int {
	return max(v.width-laneLabel-2-1-v.utilWidth()-v.infoWidth(), 4)
}

func (v *threadsView) View() string {
	s := v.c.styles
	lines := make([]string, 0, v.height)
	lanes := 0
	for _, r := range v.rows {
		if r.thread != nil {
			lanes++
		}
	}
	legend := " " + s.Bold.s("last "+fmtWindow(v.window)) + "  " +
		s.StageIn.s(glyphStageIn) + " stage-in  " + s.Execution.s(glyphExec) + " execution  " +
		s.StageOut.s(glyphStageOut) + " stage-out  " + s.FailedBar.s(glyphFailed) + " failed  " +
		s.FailedBar.s(glyphFailedPart) + " partly" +
		s.Faint.s("  "+strconv.Itoa(lanes)+" lanes")
	if v.hidden > 0 {
		legend += s.Faint.s(", " + strconv.Itoa(v.hidden) + " gone hidden")
	}
	lines = append(lines, legend)
	if len(v.rows) == 0 {
		lines = append(lines, "", s.Faint.s("  No executor seen yet."))
		return block(lines, v.width, v.height)
	}
	n := v.laneLines()
	v.cur.clamp(len(v.rows), n)
	for i := v.cur.off; i < len(v.rows) && i < v.cur.off+n; i++ {
		lines = append(lines, v.rowLine(&v.rows[i], i == v.cur.pos))
	}
	for len(lines) < v.height-1 {
		lines = append(lines, "")
	}
	lines = append(lines, v.axis())
	return block(lines, v.width, v.height)
}

// fmtSpan is a utilisation span: 3m, or 2m17s, or 45s.
func fmtSpan(d time.Duration) string {
	d = d.Round(time.Second)
	if d%time.Minute == 0 || d < time.Minute {
		return fmtWindow(d)
	}
	return fmtDur(d)
}

func fmtWindow(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}

// rowLine renders an executor's line or a lane.
func (v *threadsView) rowLine(r *laneRow, selected bool) string {
	s := v.c.styles
	if r.thread == nil {
		return v.execLine(r, selected)
	}
	t := r.thread
	label := fitPlain(strconv.Itoa(t.Slot), laneLabel-2, true) + " "
	if selected {
		label = s.Selected.s("›" + label)
	} else {
		label = " " + label
	}
	bar := v.bar(t)
	util := ""
	if w := v.utilWidth(); w > 0 {
		util = strings.Repeat(" ", w)
		if r.hasUtil {
			util = s.Faint.s(v.utilCell(r.util))
		}
	}
	info, infoInk := v.laneInfo(t)
	info = fitPlain(info, v.infoWidth(), false)
	if rest, ok := strings.CutPrefix(info, stalledMark); ok && t.Stalled {
		info = s.Stalled.s(stalledMark) + infoInk.s(rest)
	} else {
		info = infoInk.s(info)
	}
	return label + s.Axis.s("│") + bar + s.Axis.s("│") + util + " " + info
}

// execLine is an executor's line above its lanes: status, threads busy,
// storage, utilisation and diagnosis.
func (v *threadsView) execLine(r *laneRow, selected bool) string {
	s := v.c.styles
	x := r.exec
	host := v.c.hostname(x)
	threads := "?"
	if x.Threads > 0 {
		threads = strconv.Itoa(x.Threads)
	}
	st, stInk := execStatus(s, x)
	busy := strconv.Itoa(x.Running) + "/" + threads + " busy"
	util := ""
	if r.hasUtil {
		u := r.util
		util = "  " + fmtSpan(u.Span) + ": busy " + strconv.Itoa(pct(u.Busy())) + "% (staging " +
			strconv.Itoa(pct(u.Staging())) + "%, exec " + strconv.Itoa(pct(u.Execution)) + "%)"
	}
	if selected {
		text := "›" + host + " " + shortID(x.ID) + " " + st + " " + busy
		if x.Storage != "" {
			text += "  " + x.Storage
		}
		text += util
		if r.diag != "" {
			text += "  " + r.diag
		}
		return s.Selected.s(fit(text, v.width))
	}
	line := " " + s.Bold.s(host) + " " + s.Faint.s(shortID(x.ID)) + " " + stInk.s(st) + " " + busy
	if x.Storage != "" {
		line += "  " + s.Faint.s(x.Storage)
	}
	line += s.Faint.s(util)
	if r.diag != "" {
		line += "  " + s.Warn.s(r.diag)
	}
	return fit(line, v.width)
}

// execStatus is an executor's status word and its ink: LOST for one
// whose heartbeats stopped while it ran jobs.
func execStatus(s *Styles, x *state.ExecutorView) (string, ink) {
	switch {
	case x.Lost:
		return "LOST", s.LostExec
	case x.Status == state.StatusStale:
		return string(x.Status), s.Stale
	case x.Status == state.StatusStopped:
		return string(x.Status), s.Stopped
	case x.Status == state.StatusGone:
		return string(x.Status), s.Faint
	case x.Status == state.StatusDraining:
		return string(x.Status), s.Draining
	}
	return string(x.Status), s.Online
}

// stalledMark marks a stalled transfer.
const stalledMark = "STALLED"

// pct is a share (0..1) in whole percent.
func pct(f float64) int { return int(f*100 + 0.5) }

// laneInfo is the lane's right column: the current job's phase, its
// progress (bytes and rate, or memory and CPU), a stall, and the job id as
// far as it fits; or how long the thread has been idle.
func (v *threadsView) laneInfo(t *state.ThreadView) (string, ink) {
	s := v.c.styles
	if t.Job == "" {
		info := "idle"
		if !t.Since.IsZero() {
			info += " " + fmtAge(v.now.Sub(t.Since))
		}
		return info, s.Idle
	}
	// The marks and figures first: a long job id is cut, not them.
	var b strings.Builder
	p := &t.Progress
	if t.Stalled {
		b.WriteString(stalledMark + " ")
	}
	b.WriteString(phaseShort(t.Phase))
	switch {
	case p.Known() && p.Phase == t.Phase && (t.Phase == state.PhaseStageIn || t.Phase == state.PhaseStageOut):
		if frac, ok := p.Fraction(); ok {
			b.WriteString(" " + strconv.Itoa(int(frac*100)) + "%")
		} else if p.HasBytes {
			b.WriteString(" " + fmtBytesShort(p.Bytes))
		}
		switch {
		case t.Stalled:
			b.WriteString(" " + fmtAge(v.now.Sub(p.LastGrowth)))
		case p.HasRate:
			b.WriteString(" " + fmtRate(p.Rate))
		}
	case p.Known() && p.Phase == t.Phase && p.HasUsage:
		if !t.Since.IsZero() {
			b.WriteString(" " + fmtDur(v.now.Sub(t.Since)))
		}
		b.WriteString(" " + fmtBytesShort(p.RSS))
		b.WriteString(" " + strconv.FormatFloat(p.CPURate, 'f', 1, 64) + "cpu")
	default:
		if !t.Since.IsZero() {
			b.WriteString(" " + fmtDur(v.now.Sub(t.Since)))
		}
	}
	b.WriteString(" " + t.Job)
	in := phaseInk(s, t.Phase)
	if t.Stalled {
		in = s.Warn
	}
	return b.String(), in
}

func phaseShort(p string) string {
	switch p {
	case state.PhaseStageIn:
		return "in"
	case state.PhaseExecution:
		return "exec"
	case state.PhaseStageOut:
		return "out"
	}
	return p
}

func phaseInk(s *Styles, p string) ink {
	switch p {
	case state.PhaseStageIn:
		return s.StageIn
	case state.PhaseExecution:
		return s.Execution
	case state.PhaseStageOut:
		return s.StageOut
	}
	return s.Idle
}

// Cell codes of the bar, in the order of their glyphs.
const (
	cellIdle uint8 = iota
	cellStageIn
	cellExec
	cellStageOut
	cellFailed
	cellFailedPart
)

// bar draws a lane's timeline. Each cell shows what took most of its time
// span: a phase (so that a job shorter than a cell still shows), or X
// when failed stages took most of it. A failure that took most of no cell
// is marked x where it ended, so that at a wide zoom, where a cell holds
// many jobs, a failed one neither hides the others nor goes unseen.
func (v *threadsView) bar(t *state.ThreadView) string {
	s := v.c.styles
	n := v.cells()
	if cap(v.acc) < n {
		v.acc = make([]cellTime, n)
	}
	acc := v.acc[:n]
	clear(acc)
	start := v.now.Add(-v.window)
	cell := v.window / time.Duration(n)
	if cell <= 0 {
		cell = 1
	}
	// span is the cells [first, last] of interval iv, false when it is
	// outside the window.
	span := func(iv *state.Interval) (a, b time.Time, first, last int, ok bool) {
		a, b = iv.Start, iv.End
		if b.IsZero() || b.After(v.now) {
			b = v.now
		}
		if a.Before(start) {
			a = start
		}
		if b.Before(a) || a.After(v.now) {
			return a, b, 0, 0, false
		}
		return a, b, max(int(a.Sub(start)/cell), 0), min(int(b.Sub(start)/cell), n-1), true
	}
	for i := range t.Intervals {
		iv := &t.Intervals[i]
		a, b, first, last, ok := span(iv)
		if !ok {
			continue
		}
		c := 1 // execution
		switch {
		case iv.Failed:
			c = 3
		case iv.Phase == state.PhaseStageIn:
			c = 0
		case iv.Phase == state.PhaseStageOut:
			c = 2
		}
		for k := first; k <= last; k++ {
			cs := start.Add(time.Duration(k) * cell)
			ov := minTime(b, cs.Add(cell)).Sub(maxTime(a, cs))
			if ov <= 0 {
				ov = 1 // an instant still marks its cell
			}
			acc[k].d[c] += ov
		}
	}
	code := func(k int) uint8 {
		best, c := time.Duration(0), cellIdle
		for i, d := range acc[k].d {
			if d > best {
				best, c = d, cellStageIn+uint8(i)
			}
		}
		if c != cellFailed && acc[k].failEnd {
			return cellFailedPart
		}
		return c
	}
	// The failures that took most of no cell: marked where they ended.
	for i := range t.Intervals {
		iv := &t.Intervals[i]
		if !iv.Failed || iv.End.IsZero() {
			continue
		}
		_, _, first, last, ok := span(iv)
		if !ok || iv.End.After(v.now) {
			continue
		}
		shown := false
		for k := first; k <= last && !shown; k++ {
			shown = code(k) == cellFailed
		}
		if !shown {
			acc[last].failEnd = true
		}
	}
	var b strings.Builder
	b.Grow(n * 4)
	prev, run := uint8(255), 0
	flush := func() {
		if run == 0 {
			return
		}
		var g string
		var in ink
		switch prev {
		case cellStageIn:
			g, in = glyphStageIn, s.StageIn
		case cellExec:
			g, in = glyphExec, s.Execution
		case cellStageOut:
			g, in = glyphStageOut, s.StageOut
		case cellFailed:
			g, in = glyphFailed, s.FailedBar
		case cellFailedPart:
			g, in = glyphFailedPart, s.FailedBar
		default:
			g = glyphIdle
		}
		b.WriteString(in.s(strings.Repeat(g, run)))
	}
	for k := range n {
		if c := code(k); c != prev {
			flush()
			prev, run = c, 0
		}
		run++
	}
	flush()
	return b.String()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// axis is the time scale under the lanes.
func (v *threadsView) axis() string {
	n := v.cells()
	line := []rune(strings.Repeat("─", n))
	marks := []struct {
		at    int
		label string
	}{{0, "-" + fmtWindow(v.window)}, {n / 2, "-" + fmtWindow(v.window/2)}, {n - 3, "now"}}
	for _, m := range marks {
		for i, r := range m.label {
			if p := m.at + i; p >= 0 && p < n {
				line[p] = r
			}
		}
	}
	axis := strings.Repeat(" ", laneLabel) + "└" + string(line) + "┘"
	switch w := v.utilWidth(); {
	case w >= 12:
		axis += fitPlain("busy=stg+ex", w, true)
	case w > 0:
		axis += fitPlain("busy", w, true)
	}
	return v.c.styles.Axis.s(axis)
}

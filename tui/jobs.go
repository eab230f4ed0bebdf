package tui

import (
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// jobsView is view 3: the jobs table, sortable on any column, filtered by
// text, state and executor. It asks the state for the visible page only.
type jobsView struct {
	c             *common
	width, height int

	q        state.JobQuery
	sortCol  int    // index in jobCols of the sort column
	execTag  string // hostname of the executor filter, for the filter bar
	groupTag string // what the failure group filter is, for the filter bar

	now   time.Time
	page  []state.JobView
	total int
	cur   scroller
	// frozen: while paused, the whole selection as it was, so that moving
	// through it shows no new data.
	frozen   []state.JobView
	isFrozen bool

	filtering bool
	input     textinput.Model

	widths []int
	cells  []string
	inks   []ink
	b      strings.Builder
}

// The columns of the jobs table and the sort key of each.
var jobCols = []col{
	{title: "ID", w: 8, flex: 4, max: 38},
	{title: "STATE", w: 8},
	{title: "EXIT", w: 4, right: true},
	{title: "EXECUTABLE", w: 10, flex: 2, max: 32},
	{title: "HOST", w: 6, flex: 1, max: 20, drop: 5},
	{title: "THR", w: 3, right: true, drop: 7},
	{title: "STARTED", w: 8},
	{title: "IN", w: 6, right: true},
	{title: "EXEC", w: 6, right: true},
	{title: "OUT", w: 6, right: true},
	{title: "WALL", w: 6, right: true},
	{title: "DEADLINE", w: 8, right: true, drop: 4},
	{title: "INPUT", w: 7, right: true, drop: 9},
	{title: "OUTPUT", w: 7, right: true, drop: 8},
	{title: "FINISHED", w: 8, drop: 10},
	{title: "EXECUTOR", w: 8, drop: 11},
	{title: "LAST", w: 5, right: true, drop: 12},
}

var jobSorts = []state.SortKey{
	state.SortID, state.SortState, state.SortExitStatus, state.SortExecutable, state.SortHostname,
	state.SortThread, state.SortStarted, state.SortStageIn, state.SortExecution, state.SortStageOut,
	state.SortDuration, state.SortDeadline, state.SortInputSize, state.SortOutputSize, state.SortFinished,
	state.SortExecutor, state.SortLastEvent,
}

var sortNames = []string{"id", "state", "exit status", "executable", "host", "thread", "started",
	"stage-in", "execution", "stage-out", "wall time", "deadline", "input size", "output size", "finished",
	"executor", "last event"}

const colStarted = 6

// failedStates is what f shows: the jobs that did not succeed.
var failedStates = state.States(state.StateFailed, state.StateLost)

// stateCycle is the order t steps through.
var stateCycle = []state.StateSet{
	0,
	state.States(state.StateRunning),
	state.States(state.StateDone),
	state.States(state.StateFailed),
	state.States(state.StateLost),
	failedStates,
}

func newJobsView(c *common) *jobsView {
	ti := textinput.New()
	ti.Prompt = "/"
	ti.Placeholder = "id, executable, host, state, exit 137, stderr"
	ti.CharLimit = 200
	st := ti.Styles()
	st.Cursor.Blink = false
	ti.SetStyles(st)
	v := &jobsView{c: c, input: ti, sortCol: colStarted}
	v.q.Sort, v.q.Reverse = jobSorts[colStarted], true // newest first
	v.cells = make([]string, len(jobCols))
	v.inks = make([]ink, len(jobCols))
	return v
}

// bodyRows is the number of table rows: all but the filter bar and the
// column titles.
func (v *jobsView) bodyRows() int { return max(v.height-2, 1) }

func (v *jobsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.input.SetWidth(max(w-32, 10))
	v.load()
}

// Refresh reads the page again, keeping the cursor on its job (or on the
// first row when it was there: new jobs then come into view).
func (v *jobsView) Refresh() {
	v.now = v.c.now()
	if !v.c.paused {
		v.frozen, v.isFrozen = nil, false
	}
	sel := ""
	if v.cur.pos > 0 && v.cur.pos-v.cur.off < len(v.page) {
		sel = v.page[v.cur.pos-v.cur.off].ID
	}
	if sel != "" && !v.c.paused {
		if i := v.c.st.JobIndex(v.q, sel); i >= 0 {
			v.cur.pos = i
		}
	}
	v.load()
}

// requery applies a changed query: the cursor goes to the top and, while
// paused, the snapshot is taken again.
func (v *jobsView) requery() {
	v.frozen, v.isFrozen = nil, false
	v.cur = scroller{}
	v.now = v.c.now()
	v.load()
}

// load fetches the visible page: from the state, or from the snapshot
// while paused.
func (v *jobsView) load() {
	rows := v.bodyRows()
	if v.c.paused {
		if !v.isFrozen {
			v.frozen, _ = v.c.st.Jobs(v.q, 0, -1)
			v.isFrozen = true
		}
		v.total = len(v.frozen)
		v.cur.clamp(v.total, rows)
		end := min(v.cur.off+rows, v.total)
		v.page = v.frozen[min(v.cur.off, end):end]
		return
	}
	_, v.total = v.c.st.Jobs(v.q, 0, 0)
	v.cur.clamp(v.total, rows)
	v.page, v.total = v.c.st.Jobs(v.q, v.cur.off, rows)
}

// Selected is the job under the cursor.
func (v *jobsView) Selected() (string, bool) {
	if i := v.cur.pos - v.cur.off; i >= 0 && i < len(v.page) {
		return v.page[i].ID, true
	}
	return "", false
}

// Query is the table's current selection and order (for the export).
func (v *jobsView) Query() state.JobQuery { return v.q }

// Snapshot is the frozen selection while paused, nil otherwise.
func (v *jobsView) Snapshot() ([]state.JobView, bool) { return v.frozen, v.isFrozen }

// Filtering says whether the filter prompt has the keys.
func (v *jobsView) Filtering() bool { return v.filtering }

// StartFilter opens the filter prompt.
func (v *jobsView) StartFilter() tea.Cmd {
	v.filtering = true
	v.input.SetValue(v.q.Text)
	v.input.CursorEnd()
	return v.input.Focus()
}

// SetFailedOnly toggles the failed (and lost) jobs filter.
func (v *jobsView) ToggleFailed() {
	if v.q.States == failedStates {
		v.q.States = 0
	} else {
		v.q.States = failedStates
	}
	v.requery()
}

// SetExecutor shows the jobs of one executor only ("" for all).
func (v *jobsView) SetExecutor(id, host string) {
	v.q.Executor, v.execTag = id, host
	v.requery()
}

// SetGroup shows the jobs of one failure group only ("" for all); tag
// names it in the filter bar.
func (v *jobsView) SetGroup(key, tag string) {
	v.q.Group, v.groupTag = key, tag
	v.requery()
}

// markCycle is the order m steps through the marks filter.
var markCycle = []state.JobFlags{0, state.FlagStalled, state.FlagNearDeadline, state.FlagRedelivered}

// CycleMarks steps the marks filter: all jobs, stalled, near their
// deadline, redelivered.
func (v *jobsView) CycleMarks() {
	i := 0
	for i < len(markCycle) && markCycle[i] != v.q.Flags {
		i++
	}
	v.q.Flags = markCycle[(i+1)%len(markCycle)]
	v.requery()
}

func marksName(f state.JobFlags) string {
	var names []string
	for _, m := range []struct {
		f    state.JobFlags
		name string
	}{{state.FlagStalled, "stalled"}, {state.FlagNearDeadline, "near deadline"}, {state.FlagRedelivered, "redelivered"}, {state.FlagPartial, "partial"}} {
		if f&m.f != 0 {
			names = append(names, m.name)
		}
	}
	return strings.Join(names, "+")
}

// FilterDesc says which filters select the table's jobs ("" for none), as
// `"mAdd", state failed+lost, executor node-1`.
func (v *jobsView) FilterDesc() string {
	var parts []string
	if v.q.Text != "" {
		parts = append(parts, strconv.Quote(v.q.Text))
	}
	if v.q.States != 0 {
		parts = append(parts, "state "+statesName(v.q.States))
	}
	if v.q.Executor != "" {
		tag := v.execTag
		if tag == "" {
			tag = shortID(v.q.Executor)
		}
		parts = append(parts, "executor "+tag)
	}
	if v.q.Group != "" {
		parts = append(parts, "group "+v.groupTag)
	}
	if v.q.Flags != 0 {
		parts = append(parts, "marks "+marksName(v.q.Flags))
	}
	return strings.Join(parts, ", ")
}

// ClearFilters drops every filter; it reports whether there was one.
func (v *jobsView) ClearFilters() bool {
	if v.q.Text == "" && v.q.States == 0 && v.q.Executor == "" && v.q.Group == "" && v.q.Flags == 0 {
		return false
	}
	v.q.Text, v.q.States, v.q.Executor, v.execTag = "", 0, "", ""
	v.q.Group, v.groupTag, v.q.Flags = "", "", 0
	v.requery()
	return true
}

func (v *jobsView) Update(msg tea.Msg) tea.Cmd {
	if v.filtering {
		return v.updateFilter(msg)
	}
	k := v.c.keys
	d := 0
	switch msg := msg.(type) {
	case tea.MouseWheelMsg:
		d = wheelDelta(msg)
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, k.Sort):
			v.setSort((v.sortCol+1)%len(jobCols), false)
			return nil
		case key.Matches(msg, k.SortBack):
			v.setSort((v.sortCol+len(jobCols)-1)%len(jobCols), false)
			return nil
		case key.Matches(msg, k.Reverse):
			v.setSort(v.sortCol, !v.q.Reverse)
			return nil
		case key.Matches(msg, k.States):
			i := 0
			for i < len(stateCycle) && stateCycle[i] != v.q.States {
				i++
			}
			v.q.States = stateCycle[(i+1)%len(stateCycle)]
			v.requery()
			return nil
		}
		var ok bool
		if d, ok = navDelta(k, msg, v.bodyRows()); !ok {
			return nil
		}
	}
	if d != 0 {
		v.cur.pos += d
		v.load()
	}
	return nil
}

func (v *jobsView) setSort(c int, reverse bool) {
	v.sortCol = c
	v.q.Sort, v.q.Reverse = jobSorts[c], reverse
	v.requery()
}

// updateFilter handles the keys while the filter prompt is open: the table
// follows the text as it is typed; enter keeps it, esc clears it.
func (v *jobsView) updateFilter(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch k.String() {
		case "enter":
			v.filtering = false
			v.input.Blur()
			return nil
		case "esc":
			v.filtering = false
			v.input.Blur()
			v.input.SetValue("")
			if v.q.Text != "" {
				v.q.Text = ""
				v.requery()
			}
			return nil
		}
	}
	var cmd tea.Cmd
	v.input, cmd = v.input.Update(msg)
	if t := strings.TrimSpace(v.input.Value()); t != v.q.Text {
		v.q.Text = t
		v.requery()
	}
	return cmd
}

func (v *jobsView) View() string {
	s := v.c.styles
	lines := make([]string, 0, v.height)
	lines = append(lines, v.filterBar())
	v.widths = layoutCols(jobCols, v.width, v.widths)
	mark := "▲"
	if v.q.Reverse {
		mark = "▼"
	}
	lines = append(lines, s.TableHeader.s(fit(tableHeader(jobCols, v.widths, v.sortCol, mark), v.width)))
	if v.total == 0 {
		msg := "  No job yet."
		if v.q != (state.JobQuery{Sort: v.q.Sort, Reverse: v.q.Reverse}) {
			msg = "  No job matches the filter (esc clears it)."
		}
		lines = append(lines, s.Faint.s(msg))
	}
	for i := range v.page {
		row := v.cur.off + i
		v.jobCells(&v.page[i])
		lines = append(lines, tableRow(&v.b, jobCols, v.widths, v.cells, v.inks, row == v.cur.pos, s.Selected, v.width))
	}
	return block(lines, v.width, v.height)
}

// filterBar is the line above the table: the filters, the sort and the
// count.
func (v *jobsView) filterBar() string {
	s := v.c.styles
	var b strings.Builder
	if v.filtering {
		return promptLine(s, v.input.View(), "enter keep · esc clear", v.width)
	}
	b.WriteString(" ")
	b.WriteString(s.Label.s("filter "))
	if v.q.Text != "" {
		b.WriteString(s.Bold.s(strconv.Quote(v.q.Text)))
	} else {
		b.WriteString("-")
	}
	b.WriteString(s.Label.s("  state "))
	if v.q.States != 0 {
		b.WriteString(s.Bold.s(statesName(v.q.States)))
	} else {
		b.WriteString("all")
	}
	if v.q.Executor != "" {
		b.WriteString(s.Label.s("  executor "))
		tag := v.execTag
		if tag == "" {
			tag = shortID(v.q.Executor)
		}
		b.WriteString(s.Bold.s(tag))
	}
	if v.q.Group != "" {
		b.WriteString(s.Label.s("  group "))
		b.WriteString(s.Failed.s(v.groupTag))
	}
	if v.q.Flags != 0 {
		b.WriteString(s.Label.s("  marks "))
		b.WriteString(s.Bold.s(marksName(v.q.Flags)))
	}
	b.WriteString(s.Label.s("  sort "))
	b.WriteString(sortNames[v.sortCol])
	if v.q.Reverse {
		b.WriteString(" ▼")
	} else {
		b.WriteString(" ▲")
	}
	count := strconv.Itoa(v.total) + " jobs"
	if v.total > 0 {
		count = strconv.Itoa(v.cur.pos+1) + "/" + count
	}
	left := b.String()
	pad := v.width - ansiWidth(left) - len(count) - 1
	if pad < 1 {
		return fit(left, v.width)
	}
	return left + strings.Repeat(" ", pad) + count + " "
}

// promptLine is an input with a hint on the right, when there is room.
func promptLine(s *Styles, input, hint string, width int) string {
	return promptLineInk(s, input, hint, s.Faint, width)
}

// promptLineInk is promptLine with the hint in ink in; a hint without room
// beside the input replaces its end.
func promptLineInk(s *Styles, input, hint string, in ink, width int) string {
	left := " " + input
	hint = in.s(hint) + " "
	if pad := width - ansiWidth(left) - ansiWidth(hint); pad >= 2 {
		return left + strings.Repeat(" ", pad) + hint
	}
	if in != s.Faint && ansiWidth(hint)+2 < width {
		return fit(left, width-ansiWidth(hint)-1) + " " + hint
	}
	return fit(left, width)
}

func statesName(set state.StateSet) string {
	if set == failedStates {
		return "failed+lost"
	}
	var names []string
	for st := state.StateRunning; st <= state.StateLost; st++ {
		if set.Has(st) {
			names = append(names, st.String())
		}
	}
	return strings.Join(names, "+")
}

// jobCells fills the cells of one job.
func (v *jobsView) jobCells(j *state.JobView) {
	s := v.c.styles
	cells, inks := v.cells, v.inks
	clear(inks)
	cells[0] = j.ID
	st := j.State.String()
	switch j.State {
	case state.StateRunning:
		inks[1] = s.Running
		if j.Stalled {
			st, inks[1] = "STALLED", s.Stalled
		}
	case state.StateDone:
		inks[1] = s.Done
	case state.StateFailed:
		inks[1] = s.Failed
	case state.StateLost:
		inks[1] = s.Lost
	}
	if j.Redelivered || j.Attempts > 1 {
		st += "↻"
	}
	cells[1] = st
	cells[2] = ""
	if j.HasExit {
		cells[2] = strconv.Itoa(j.ExitStatus)
		inks[2] = s.Done
		if j.ExitStatus != 0 {
			inks[2] = s.Failed
		}
	}
	cells[3] = j.Executable
	if j.Name != "" {
		cells[3] = j.Name + " (" + j.Executable + ")" // a worker-pool task
	}
	cells[4] = j.Hostname
	if cells[4] == "" {
		cells[4] = v.c.hosts[j.Executor] // learnt from its other jobs
	}
	cells[5] = j.Thread
	cells[6] = v.c.clock(j.Started)
	cells[7] = v.stageCell(j, &j.StageIn, state.PhaseStageIn)
	cells[8] = v.stageCell(j, &j.Execution, state.PhaseExecution)
	cells[9] = v.stageCell(j, &j.StageOut, state.PhaseStageOut)
	cells[10] = ""
	if d := j.Duration(v.now); d > 0 {
		cells[10] = fmtDur(d)
	}
	cells[11], inks[11] = deadlineCell(s, j, v.now)
	cells[12], cells[13] = "", ""
	if j.HasMetrics {
		cells[12] = fmtBytes(j.Metrics.InputSize)
		cells[13] = fmtBytes(j.Metrics.OutputSize)
	} else {
		if j.StageIn.HasBytes {
			cells[12] = fmtBytes(j.StageIn.Bytes)
		}
		if j.StageOut.HasBytes {
			cells[13] = fmtBytes(j.StageOut.Bytes)
		}
	}
	cells[14] = ""
	if !j.Finished.IsZero() {
		cells[14] = v.c.clock(j.Finished)
	}
	cells[15] = shortID(j.Executor)
	cells[16] = ""
	if !j.LastEvent.IsZero() {
		cells[16] = fmtAge(v.now.Sub(j.LastEvent))
	}
}

// deadlineCell is the time left before a running job's acknowledgement
// deadline: marked ⚠ when near, "expired" once past; empty when unknown.
func deadlineCell(s *Styles, j *state.JobView, now time.Time) (string, ink) {
	left, ok := j.DeadlineLeft(now)
	if !ok || j.State != state.StateRunning {
		return "", ink{}
	}
	switch j.DeadlineLevel(now) {
	case state.DeadlineExpired:
		return "expired", s.Expired
	case state.DeadlineWarning:
		return "⚠" + fmtDur(left), s.Warn
	}
	return fmtDur(left), ink{}
}

// stageCell is a stage's duration; for the running job's current stage, the
// time so far and a trailing ellipsis.
func (v *jobsView) stageCell(j *state.JobView, st *state.Stage, phase string) string {
	if j.State == state.StateRunning && j.Phase == phase && !j.PhaseSince.IsZero() {
		return fmtDur(v.now.Sub(j.PhaseSince)) + "…"
	}
	if st.HasDuration {
		return fmtDur(st.Duration)
	}
	return ""
}

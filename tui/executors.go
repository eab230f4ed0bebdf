package tui

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// executorsView is view 1: one row per executor with its utilisation
// (and under it, when there is one, its diagnosis or why it is lost); then
// the cluster's utilisation and the storage traffic, the timings per
// executable, and the anomalies when there is room.
type executorsView struct {
	c             *common
	width, height int

	now     time.Time
	rows    []state.ExecutorView
	util    []state.Utilisation // per row; Threads 0 when unknown
	notes   []string            // per row: diagnosis, or why it is lost
	cluster state.Utilisation
	stores  []storeRow
	stats   []state.ExecStat
	anom    state.Anomalies
	hidden  int // gone executors hidden (h)
	cur     scroller
	selID   string // the executor under the cursor, kept across refreshes
	widths  []int
	sw      []int
	tw      []int
	b       strings.Builder
}

// storeRow is one storage backend's traffic, both directions.
type storeRow struct {
	name    string
	in, out state.StorageRate
}

var execCols = []col{
	{title: "STATUS", w: 8},
	{title: "HOST", w: 10, flex: 3, max: 30},
	{title: "THREADS", w: 7, right: true},
	{title: "DONE", w: 6, right: true},
	{title: "FAILED", w: 6, right: true},
	{title: "BUSY", w: 4, right: true},
	{title: "STAGE", w: 5, right: true},
	{title: "EXEC", w: 4, right: true},
	{title: "STORAGE", w: 7, drop: 2},
	{title: "HEARTBEAT", w: 9, right: true},
	{title: "BROKER", w: 10, flex: 1, max: 16, drop: 5},
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
	{title: "STAGING", w: 7, right: true},
	{title: "STAGED", w: 7, right: true, drop: 4},
	{title: "EXECUTED", w: 8, right: true, drop: 4},
	{title: "INPUT", w: 7, right: true, drop: 2},
	{title: "OUTPUT", w: 7, right: true, drop: 1},
}

var storeCols = []col{
	{title: "STORAGE", w: 8, flex: 1, max: 14},
	{title: "IN RATE", w: 10, right: true},
	{title: "IN TOTAL", w: 8, right: true},
	{title: "OUT RATE", w: 10, right: true},
	{title: "OUT TOTAL", w: 9, right: true},
	{title: "ACTIVE", w: 6, right: true},
	{title: "IN N", w: 6, right: true, drop: 3},
	{title: "OUT N", w: 6, right: true, drop: 3},
	{title: "IN SPEED", w: 10, right: true, drop: 2},
	{title: "OUT SPEED", w: 10, right: true, drop: 2},
}

func newExecutorsView(c *common) *executorsView { return &executorsView{c: c} }

func (v *executorsView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.clampCursor(v.tableRows())
}

// Refresh reads the executors from the state.
func (v *executorsView) Refresh() {
	v.now = v.c.now()
	v.rows, v.hidden = v.c.executors()
	v.util = v.util[:0]
	v.notes = v.notes[:0]
	for i := range v.rows {
		x := &v.rows[i]
		u, _, ok := v.c.st.Utilisation(x.ID, v.now)
		if !ok {
			u = state.Utilisation{}
		}
		v.util = append(v.util, u)
		v.notes = append(v.notes, v.note(x))
	}
	v.cluster = v.c.st.ClusterUtilisation(v.now)
	v.stores = v.stores[:0]
	for _, r := range v.c.st.StorageRates(v.now) {
		if n := len(v.stores); n == 0 || v.stores[n-1].name != r.Storage {
			v.stores = append(v.stores, storeRow{name: r.Storage})
		}
		sr := &v.stores[len(v.stores)-1]
		if r.Direction == state.PhaseStageOut {
			sr.out = r
		} else {
			sr.in = r
		}
	}
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
	v.clampCursor(v.tableRows())
}

// defaultQueue is the executor's job queue by default (the settings'
// amqp_queue); an executor on another queue, a worker pool above all, shows
// its queue.
const defaultQueue = "hyperflow.jobs"

// note is the line under an executor: why it is lost, or its diagnosis.
func (v *executorsView) note(x *state.ExecutorView) string {
	if x.Lost {
		// Silent since its last sign of life of any kind.
		n := "LOST: silent for " + fmtAge(v.now.Sub(x.LastSeen))
		if x.Heartbeat.IsZero() {
			n += " (no heartbeat ever)"
		}
		return n + ", " + jobCount(x.Running) + " running: crashed, killed or cut off?"
	}
	if x.Draining && x.Status == state.StatusDraining {
		return drainNote(x, v.now)
	}
	return v.c.st.Diagnosis(x.ID, v.now)
}

// jobCount is "1 job" or "N jobs".
func jobCount(n int) string {
	if n == 1 {
		return "1 job"
	}
	return strconv.Itoa(n) + " jobs"
}

// drainNote says since when a draining executor drains, why, and the
// jobs it waits for.
func drainNote(x *state.ExecutorView, now time.Time) string {
	n := "draining"
	if !x.DrainingSince.IsZero() {
		n += " for " + fmtAge(now.Sub(x.DrainingSince))
	}
	if x.DrainReason != "" {
		n += " (" + x.DrainReason + ")"
	}
	if len(x.Waiting) == 0 {
		return n + ": no job left, stopping"
	}
	return n + ": waits for " + jobCount(len(x.Waiting)) + ": " + strings.Join(x.Waiting, ", ")
}

// hiddenNote says how many gone executors h hides.
func hiddenNote(n int) string {
	if n == 1 {
		return "1 gone executor hidden (h shows it)"
	}
	return strconv.Itoa(n) + " gone executors hidden (h shows them)"
}

// rowHeight is the lines of executor i: 2 with a note.
func (v *executorsView) rowHeight(i int) int {
	if i < len(v.notes) && v.notes[i] != "" {
		return 2
	}
	return 1
}

// tableRows is the lines of the executors table's body: all of the view
// but the header when the executors need it, leaving the rest to the
// storage and the executables.
func (v *executorsView) tableRows() int {
	return max(v.height-1, 1)
}

// clampCursor keeps the cursor on an executor and its lines within the h
// lines shown.
func (v *executorsView) clampCursor(h int) {
	n := len(v.rows)
	if n == 0 {
		v.cur = scroller{}
		return
	}
	v.cur.pos = min(max(v.cur.pos, 0), n-1)
	v.cur.off = min(max(v.cur.off, 0), v.cur.pos)
	lines := func(from, to int) int {
		t := 0
		for i := from; i <= to; i++ {
			t += v.rowHeight(i)
		}
		return t
	}
	for v.cur.off < v.cur.pos && lines(v.cur.off, v.cur.pos) > h {
		v.cur.off++
	}
	// No blank space at the end when scrolled.
	for v.cur.off > 0 && lines(v.cur.off-1, n-1) <= h {
		v.cur.off--
	}
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
		v.cur.pos = min(max(v.cur.pos+d, 0), max(len(v.rows)-1, 0))
		v.clampCursor(v.tableRows())
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
		msg := "  No executor seen yet: waiting for executor.ready or heartbeat events."
		if v.hidden > 0 {
			msg = "  " + hiddenNote(v.hidden)
		}
		lines = append(lines, "", s.Faint.s(msg))
		return block(lines, v.width, v.height)
	}
	v.widths = layoutCols(execCols, v.width, v.widths)
	lines = append(lines, s.TableHeader.s(fit(tableHeader(execCols, v.widths, -1, ""), v.width)))
	// The executors get what they need; the storage traffic and the
	// executables the rest, when it is at least 4 lines.
	need := 0
	for i := range v.rows {
		need += v.rowHeight(i)
	}
	if v.hidden > 0 {
		need++
	}
	avail := v.height - 1
	extra := avail - need
	if extra >= 4 {
		avail = need
	}
	v.clampCursor(avail)
	cells := make([]string, len(execCols))
	inks := make([]ink, len(execCols))
	for i := v.cur.off; i < len(v.rows) && len(lines)-1 < avail; i++ {
		v.execCells(i, cells, inks)
		lines = append(lines, tableRow(&v.b, execCols, v.widths, cells, inks, i == v.cur.pos, s.Selected, v.width))
		if n := v.notes[i]; n != "" && len(lines)-1 < avail {
			in := s.Warn
			switch {
			case v.rows[i].Lost:
				in = s.LostExec
			case v.rows[i].Status == state.StatusDraining:
				in = s.Draining
			}
			lines = append(lines, fit("   "+s.Faint.s("↳ ")+in.s(n), v.width))
		}
	}
	if v.hidden > 0 && len(lines)-1 < avail {
		lines = append(lines, s.Faint.s(fit("  "+hiddenNote(v.hidden), v.width)))
	}
	if extra >= 4 {
		lines = append(lines, "")
		lines = v.bottomLines(lines, v.height-len(lines))
	}
	return block(lines, v.width, v.height)
}

func (v *executorsView) execCells(i int, cells []string, inks []ink) {
	s := v.c.styles
	x := &v.rows[i]
	clear(inks)
	cells[0], inks[0] = execStatus(s, x)
	cells[1] = v.c.hostname(x)
	threads := "?"
	if x.Threads > 0 {
		threads = strconv.Itoa(x.Threads)
	}
	cells[2] = strconv.Itoa(x.Running) + "/" + threads
	// The executor's own counts (they include the jobs run before the
	// monitor started) with those seen since its last heartbeat: what the
	// header's "executors:" totals add up.
	done, failed := x.DoneTotal, x.FailedTotal
	cells[3] = fmtCount(done)
	cells[4] = fmtCount(failed)
	if failed > 0 {
		inks[4] = s.Failed
	}
	cells[5], cells[6], cells[7] = "-", "-", "-"
	if u := v.util[i]; u.Threads > 0 && u.Span > 0 {
		cells[5] = strconv.Itoa(pct(u.Busy())) + "%"
		cells[6] = strconv.Itoa(pct(u.Staging())) + "%"
		cells[7] = strconv.Itoa(pct(u.Execution)) + "%"
		if v.notes[i] != "" && x.Status == state.StatusOnline {
			inks[5], inks[6] = s.Warn, s.Warn // the diagnosis
		}
	}
	cells[8] = x.Storage
	switch {
	case !x.Heartbeat.IsZero():
		cells[9] = fmtAge(v.now.Sub(x.Heartbeat)) + " ago"
	default:
		cells[9] = "none"
	}
	if x.Status == state.StatusStale {
		inks[9] = s.Stale
	}
	cells[10] = brokerNode(x.Broker)
	cells[11] = shortID(x.ID)
	info := ""
	switch {
	case x.Status == state.StatusStopped && x.Reason != "":
		info = "stopped: " + x.Reason
	case x.Version != "":
		info = "v" + strings.TrimPrefix(x.Version, "v")
	}
	if x.ConsumerTimeout > 0 && info != "" {
		info += ", ack timeout " + fmtDur(x.ConsumerTimeout)
	}
	if x.Queue != "" && x.Queue != defaultQueue {
		// A worker pool (or an executor on a queue of its own).
		info = strings.TrimSuffix("queue "+x.Queue+", "+info, ", ")
	}
	cells[12] = info
}

// brokerNode is the broker node of an executor's broker URL (password
// hidden by the executor): its host, what tells a cluster's nodes apart,
// with the port when it is not the scheme's default (5672, amqps 5671); the
// URL as it is when it does not parse, "-" when the executor did not say
// (an executor older than the field).
func brokerNode(broker string) string {
	if broker == "" {
		return "-"
	}
	u, err := url.Parse(broker)
	if err != nil || u.Hostname() == "" {
		return broker
	}
	def := "5672"
	if u.Scheme == "amqps" {
		def = "5671"
	}
	if p := u.Port(); p != "" && p != def {
		return u.Host
	}
	return u.Hostname()
}

// bottomLines appends, in at most h lines: the cluster's utilisation and
// the storage traffic (first: they are short), then the timing per
// executable in what is left, and the anomalies.
func (v *executorsView) bottomLines(lines []string, h int) []string {
	s := v.c.styles
	var store []string
	if u := v.cluster; u.Threads > 0 && u.Span > 0 {
		what := "utilisation of " + strconv.Itoa(u.Threads) + " threads over the last "
		if v.width < 100 {
			what = strconv.Itoa(u.Threads) + " threads, last "
		}
		store = append(store, fit(" "+s.Bold.s(what+fmtSpan(u.Span))+s.Label.s(": ")+
			"busy "+strconv.Itoa(pct(u.Busy()))+"%"+s.Label.s(" = ")+
			"stage-in "+strconv.Itoa(pct(u.StageIn))+"%"+s.Label.s(" + ")+"exec "+strconv.Itoa(pct(u.Execution))+"%"+
			s.Label.s(" + ")+"stage-out "+strconv.Itoa(pct(u.StageOut))+"%", v.width))
	}
	if len(v.stores) > 0 {
		v.tw = layoutCols(storeCols, v.width, v.tw)
		store = append(store, s.TableHeader.s(fit(tableHeader(storeCols, v.tw, -1, ""), v.width)))
		cells := make([]string, len(storeCols))
		for _, r := range v.stores {
			cells[0] = r.name
			cells[1], cells[2] = fmtRate(r.in.Rate), fmtBytes(r.in.Bytes)
			cells[3], cells[4] = fmtRate(r.out.Rate), fmtBytes(r.out.Bytes)
			cells[5] = strconv.Itoa(r.in.Active + r.out.Active)
			cells[6], cells[7] = fmtCount(r.in.Transfers), fmtCount(r.out.Transfers)
			cells[8], cells[9] = fmtRate(r.in.Speed()), fmtRate(r.out.Speed())
			store = append(store, tableRow(&v.b, storeCols, v.tw, cells, nil, false, s.Selected, v.width))
		}
	}
	if len(store) > h {
		store = store[:h]
	}
	// The executables (and the anomalies) before, in what the storage
	// leaves.
	rest := h - len(store)
	if len(store) > 0 && rest >= 4 {
		rest-- // a blank line between
	}
	n := len(lines)
	lines = v.statLines(lines, rest)
	if len(lines) > n && len(store) > 0 && h-len(store) >= 4 {
		lines = append(lines, "")
	}
	return append(lines, store...)
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
			cells[8] = "-"
			if st.StageInTotal+st.StageOutTotal+st.ExecutionTotal > 0 {
				cells[8] = strconv.Itoa(pct(st.StagingShare())) + "%"
				if st.StagingShare() >= 0.5 {
					inks[8] = s.Warn
				}
			}
			cells[9] = fmtDur(st.StageInTotal + st.StageOutTotal)
			cells[10] = fmtDur(st.ExecutionTotal)
			cells[11] = fmtBytes(st.InputBytes)
			cells[12] = fmtBytes(st.OutputBytes)
			lines = append(lines, tableRow(&v.b, statCols, v.sw, cells, inks, false, s.Selected, v.width))
		}
	}
	if anomLine != "" {
		lines = append(lines, s.Stale.s(fit(anomLine, v.width)))
	}
	return lines
}

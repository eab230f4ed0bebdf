package tui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// queuesView is view 6, "why is nothing running?": the job queues the
// executors consume (one row per queue; a worker pool's task queues each
// have theirs), with the broker's ready and consumer counts, the
// deliveries the executors hold, arrival and completion rates, the time
// to drain and one line of diagnosis where it matters.
type queuesView struct {
	c             *common
	width, height int

	now    time.Time
	queues []state.QueueView
	// polled: a broker is asked about the queues (not a replay).
	polled bool
	cur    scroller
	widths []int
	cells  []string
	inks   []ink
	b      strings.Builder
}

var queueCols = []col{
	{title: "QUEUE", w: 14, flex: 4, max: 40},
	{title: "READY", w: 7, right: true},
	{title: "UNACKED", w: 7, right: true},
	{title: "CONSUMERS", w: 9, right: true},
	{title: "EXECS", w: 7, right: true},
	{title: "IN/s", w: 6, right: true},
	{title: "OUT/s", w: 6, right: true},
	{title: "DRAIN", w: 8, right: true},
	{title: "SAMPLED", w: 7, right: true, drop: 1},
}

func newQueuesView(c *common, polled bool) *queuesView {
	return &queuesView{c: c, polled: polled, cells: make([]string, len(queueCols)), inks: make([]ink, len(queueCols))}
}

// queueHelp says where the figures come from (under the full help too).
const queueHelp = "ready, consumers: broker (passive declare every 2s) · unacked: the executors' busy (heartbeats) · " +
	"in/s: jobs started + change of ready · out/s: jobs finished (last minute)"

func (v *queuesView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.cur.clamp(len(v.queues), v.rows())
}

// rows is how many queues fit: each takes its row and a diagnosis line.
func (v *queuesView) rows() int { return max((v.height-4)/2, 1) }

func (v *queuesView) Refresh() {
	v.now = v.c.now()
	v.queues = v.c.st.Queues(v.now)
	v.cur.clamp(len(v.queues), v.rows())
}

func (v *queuesView) Update(msg tea.Msg) tea.Cmd {
	d := 0
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		var ok bool
		if d, ok = navDelta(v.c.keys, msg, v.rows()); !ok {
			return nil
		}
	case tea.MouseWheelMsg:
		d = wheelDelta(msg)
	}
	if d != 0 {
		v.cur.pos += d
		v.cur.clamp(len(v.queues), v.rows())
	}
	return nil
}

func (v *queuesView) View() string {
	s := v.c.styles
	lines := make([]string, 0, v.height)
	if len(v.queues) == 0 {
		lines = append(lines, "", s.Faint.s("  No job queue known yet: the executors name theirs in executor.ready and heartbeats."))
		return block(lines, v.width, v.height)
	}
	note := "broker asked every 2s"
	if !v.polled {
		note = "no broker asked (replay): ready and consumers unknown"
	}
	lines = append(lines, fit(" "+s.Bold.s(strconv.Itoa(len(v.queues))+" job "+plural(len(v.queues), "queue", "queues"))+s.Label.s(", "+note), v.width))
	v.widths = layoutCols(queueCols, v.width, v.widths)
	lines = append(lines, s.TableHeader.s(fit(tableHeader(queueCols, v.widths, -1, ""), v.width)))
	rows := v.rows()
	v.cur.clamp(len(v.queues), rows)
	for i := v.cur.off; i < len(v.queues) && i < v.cur.off+rows; i++ {
		q := &v.queues[i]
		v.queueCells(q)
		lines = append(lines, tableRow(&v.b, queueCols, v.widths, v.cells, v.inks, i == v.cur.pos, s.Selected, v.width))
		if q.Diagnosis != "" {
			in, mark := s.Label, "  ↳ "
			if q.Warn {
				in, mark = s.Warn, "  ⚠ "
			}
			lines = append(lines, fit(in.s(mark+q.Diagnosis), v.width))
		}
	}
	if len(lines) < v.height-1 {
		lines = append(lines, "", fit(s.Faint.s(" "+queueHelp), v.width))
	}
	return block(lines, v.width, v.height)
}

func (v *queuesView) queueCells(q *state.QueueView) {
	s := v.c.styles
	cells, inks := v.cells, v.inks
	clear(inks)
	cells[0] = q.Name
	sampled := q.HasSample && q.Sample.Err == nil
	cells[1], cells[3], cells[8] = "?", "?", "-"
	if sampled {
		cells[1] = strconv.Itoa(q.Sample.Ready)
		cells[3] = strconv.Itoa(q.Sample.Consumers)
		if q.Sample.Consumers == 0 {
			cells[3] = "0 none"
			inks[3] = s.Failed
		}
	}
	if q.HasSample {
		cells[8] = fmtAge(v.now.Sub(q.Sample.At))
		if q.Sample.Err != nil {
			cells[8] = "error"
			inks[8] = s.Failed
		}
	}
	cells[2] = strconv.Itoa(q.Unacked) + "/" + strconv.Itoa(q.Prefetch)
	execs := strconv.Itoa(q.Live)
	if q.Lost > 0 || q.Stale > 0 {
		execs += "+" + strconv.Itoa(q.Lost+q.Stale) + "!"
		inks[4] = s.Stale
	}
	cells[4] = execs
	cells[5] = fmtFloat(q.Arrival)
	cells[6] = fmtFloat(q.Finished)
	switch {
	case !sampled && q.Unacked > 0:
		cells[7] = "?"
	case q.HasDrain && q.Drain == 0:
		cells[7] = "empty"
	case q.HasDrain:
		cells[7] = fmtDur(q.Drain.Round(time.Second))
	default:
		cells[7] = "never"
		inks[7] = s.Warn
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

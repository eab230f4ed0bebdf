package tui

import (
	"strconv"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// headerLines is the header's height: tabs, totals, throughput.
const headerLines = 3

// header shows the tabs, where the events come from, the totals and a
// sparkline of the jobs finished per second.
type header struct {
	c     *common
	width int

	now     time.Time
	totals  state.Totals
	buckets []state.Bucket
}

func (h *header) SetSize(w int) { h.width = w }

// Refresh reads the totals and the throughput.
func (h *header) Refresh() {
	h.now = h.c.now()
	h.totals = h.c.st.Totals(h.now)
	h.buckets = h.c.st.Throughput(h.now, h.width)
}

// View renders the header; source is the events' origin and its state
// (styled), active the view shown.
func (h *header) View(active viewID, source string) string {
	s := h.c.styles
	var b strings.Builder

	// Line 1: name, tabs, source, clock.
	if h.width >= 100 { // the window's title says it on narrow terminals
		b.WriteString(s.Title.s(" hyperflow-top "))
	}
	for i := range viewCount {
		title := viewTitles[i]
		if h.width < 100 && i != active {
			title = shortTitles[i] // room for the source on narrow terminals
		}
		t := " " + strconv.Itoa(int(i)+1) + " " + title + " "
		if i == active {
			b.WriteString(s.TabActive.s("[" + t[1:len(t)-1] + "]"))
		} else {
			b.WriteString(s.Tab.s(t))
		}
	}
	// Then the source and the clock, the clock first to go when narrow.
	line1 := b.String()
	avail := h.width - ansiWidth(line1) - 2
	right := source + "  " + h.c.clock(h.now) + " "
	if ansiWidth(right) > avail {
		right = fit(source, avail) + " "
	}
	if pad := h.width - ansiWidth(line1) - ansiWidth(right); pad >= 1 && avail > 0 {
		line1 += strings.Repeat(" ", pad) + right
	}
	lines := []string{fit(line1, h.width)}

	// Line 2: totals, the warnings first; short labels on narrow
	// terminals.
	t := &h.totals
	wide := h.width >= 110
	label := func(long, short string) string {
		if wide {
			return long
		}
		return short
	}
	b.Reset()
	b.WriteString(" ")
	b.WriteString(s.Label.s(label("executors ", "exec ")))
	// The live executors only: not the stopped or gone ones.
	b.WriteString(strconv.Itoa(t.Online) + "/" + strconv.Itoa(t.Live))
	if wide {
		b.WriteString(" online")
	}
	if t.Draining > 0 {
		b.WriteString(", " + s.Draining.s(strconv.Itoa(t.Draining)+" draining"))
	}
	if n := t.Stale - t.LostExecutors; n > 0 {
		b.WriteString(", " + s.Stale.s(strconv.Itoa(n)+" stale"))
	}
	if t.LostExecutors > 0 {
		b.WriteString(", " + s.LostExec.s(strconv.Itoa(t.LostExecutors)+" LOST"))
	}
	if wide && t.Stopped > 0 {
		b.WriteString(", " + s.Stopped.s(strconv.Itoa(t.Stopped)+" stopped"))
	}
	gap := "  "
	item := func(label string, n int64, in ink) {
		b.WriteString(s.Label.s(gap + label + " "))
		gap = "  "
		if n > 0 {
			b.WriteString(in.s(fmtCount(n)))
		} else {
			b.WriteString("0")
		}
	}
	item(label("running", "run"), int64(t.Running), s.Running)
	if t.Stalled > 0 {
		item("stalled", int64(t.Stalled), s.Stalled)
	}
	if t.NearDeadline > 0 {
		item(label("near deadline", "deadline"), int64(t.NearDeadline), s.Warn)
	}
	// Done and failed as this monitor saw them; when the executors'
	// own counts (heartbeats: jobs run before the monitor started
	// too, as in the executors' rows) say more, both, labelled.
	differ := t.ExecutorsDone != t.Done || t.ExecutorsFailed != t.Failed
	if differ {
		b.WriteString(s.Label.s("  seen:"))
		gap = " "
	}
	item("done", t.Done, s.Done)
	item(label("failed", "fail"), t.Failed, s.Failed)
	if differ {
		b.WriteString(s.Label.s(" │ " + label("executors:", "execs:")))
		gap = " "
		item("done", t.ExecutorsDone, s.Done)
		item(label("failed", "fail"), t.ExecutorsFailed, s.Failed)
	}
	if wide || t.Lost > 0 {
		item("lost", t.Lost, s.Lost)
	}
	if t.Redelivered > 0 {
		item(label("redelivered", "redeliv"), t.Redelivered, s.Stale)
	}
	if t.Anomalies > 0 {
		item("anomalies", t.Anomalies, s.Stale)
	}
	lines = append(lines, fit(b.String(), h.width))

	// Line 3: finished jobs per second, and the rates of the last minute.
	r := &t.Rates
	rates := " " + s.Bold.s(fmtFloat(r.Finished)+"/s") + s.Label.s(" 1m  in ") + fmtRate(r.StageInBytes) +
		s.Label.s(" out ") + fmtRate(r.StageOutBytes) + s.Label.s("  ev ") + fmtFloat(r.Events) + "/s"
	jobsLabel := s.Label.s(" jobs/s ")
	n := h.width - ansiWidth(jobsLabel) - ansiWidth(rates) - 1
	if n < 10 {
		rates = " " + s.Bold.s(fmtFloat(r.Finished)+"/s")
		n = h.width - ansiWidth(jobsLabel) - ansiWidth(rates) - 1
	}
	lines = append(lines, fit(jobsLabel+h.spark(n)+rates, h.width))
	return strings.Join(lines, "\n")
}

var sparkBars = []rune(" ▁▂▃▄▅▆▇█")

// spark draws, n columns wide, the finished jobs per second, oldest left, scaled to the
// busiest second shown; a second without any is blank.
func (h *header) spark(n int) string {
	n = max(n, 1)
	buckets := h.buckets
	if len(buckets) > n {
		buckets = buckets[len(buckets)-n:]
	}
	peak := 0
	for _, bk := range buckets {
		peak = max(peak, bk.Finished)
	}
	out := make([]rune, n)
	for i := range out {
		out[i] = ' '
	}
	off := n - len(buckets)
	for i, bk := range buckets {
		if off+i < 0 || bk.Finished == 0 || peak == 0 {
			continue
		}
		lvl := (bk.Finished*(len(sparkBars)-1) + peak - 1) / peak
		out[off+i] = sparkBars[min(lvl, len(sparkBars)-1)]
	}
	return h.c.styles.Spark.s(string(out)) + h.c.styles.Faint.s("│")
}

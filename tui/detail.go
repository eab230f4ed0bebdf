package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// detailView is view 4: one job's event timeline, its stages with bytes
// and rates, its exit status and resource use, and why it failed.
type detailView struct {
	c             *common
	width, height int

	id    string
	job   state.JobDetail
	found bool
	now   time.Time
	vp    viewport.Model
}

func newDetailView(c *common) *detailView {
	vp := viewport.New()
	vp.MouseWheelEnabled = false // the root scrolls it
	vp.FillHeight = true
	return &detailView{c: c, vp: vp}
}

func (v *detailView) SetSize(w, h int) {
	v.width, v.height = w, h
	v.vp.SetWidth(w)
	v.vp.SetHeight(h)
	v.render()
}

// Open shows job id from the top.
func (v *detailView) Open(id string) {
	v.id = id
	v.Refresh()
	v.vp.GotoTop()
}

// JobID is the job shown, "" before one was opened.
func (v *detailView) JobID() string { return v.id }

// Refresh reads the job again.
func (v *detailView) Refresh() {
	v.now = v.c.now()
	if v.id != "" {
		v.job, v.found = v.c.st.Job(v.id)
	}
	v.render()
}

func (v *detailView) Update(msg tea.Msg) tea.Cmd {
	d := 0
	switch msg := msg.(type) {
	case tea.MouseWheelMsg:
		d = wheelDelta(msg)
	case tea.KeyPressMsg:
		var ok bool
		if d, ok = navDelta(v.c.keys, msg, v.height); !ok {
			return nil
		}
	}
	switch {
	case d < 0:
		v.vp.ScrollUp(-d)
	case d > 0:
		v.vp.ScrollDown(d)
	}
	return nil
}

func (v *detailView) View() string {
	lines := strings.Split(v.vp.View(), "\n")
	if !v.vp.AtBottom() && len(lines) > 0 && v.width > 20 {
		// Say there is more below.
		more := v.c.styles.Faint.s("↓ more ")
		last := len(lines) - 1
		lines[last] = fit(ansi.Truncate(lines[last], v.width-ansiWidth(more), ""), v.width-ansiWidth(more)) + more
	}
	return block(lines, v.width, v.height)
}

func (v *detailView) render() {
	v.vp.SetContentLines(v.lines())
}

func (v *detailView) lines() []string {
	s := v.c.styles
	if v.id == "" {
		return []string{"", s.Faint.s("  No job selected: pick one in the jobs view (3) and press enter.")}
	}
	if !v.found {
		return []string{"", s.Faint.s("  Job " + v.id + " is not (or no longer) in memory.")}
	}
	j := &v.job
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	// Title: id, state, exit status, executable.
	st := strings.ToUpper(j.State.String())
	stInk := s.Running
	switch j.State {
	case state.StateDone:
		stInk = s.Done
	case state.StateFailed:
		stInk = s.Failed
	case state.StateLost:
		stInk = s.Lost
	}
	title := " " + s.Bold.s("Job "+j.ID) + "  " + stInk.s(st)
	if j.HasExit {
		ex := "exit " + strconv.Itoa(j.ExitStatus)
		if why := exitMeaning(j.ExitStatus); why != "" {
			ex += " (" + why + ")"
		}
		if j.ExitStatus != 0 {
			title += "  " + s.Failed.s(ex)
		} else {
			title += "  " + s.Done.s(ex)
		}
	}
	if j.Executable != "" {
		title += "  " + j.Executable
	}
	out = append(out, title)

	host := j.Hostname
	if host == "" {
		host = "?"
	}
	where := fmt.Sprintf(" executor %s (%s)  thread %s", host, shortID(j.Executor), j.Thread)
	if j.Attempts > 1 || j.Redelivered {
		where += fmt.Sprintf("  attempt %d", max(j.Attempts, 1))
		if j.Redelivered {
			where += ", redelivered by the broker"
		}
	}
	out = append(out, where)
	when := " started " + v.c.clockMilli(j.Started)
	if !j.Finished.IsZero() {
		when += "  finished " + v.c.clockMilli(j.Finished)
	}
	if d := j.Duration(v.now); d > 0 {
		when += "  wall " + fmtDur(d)
	}
	switch {
	case j.State == state.StateRunning && j.Phase != "":
		when += "  " + s.Running.s("now in "+j.Phase)
		if !j.PhaseSince.IsZero() {
			when += s.Running.s(" for " + fmtDur(v.now.Sub(j.PhaseSince)))
		}
	case j.State == state.StateLost:
		when += "  " + s.Lost.s("lost: its executor no longer runs it")
	}
	out = append(out, when)
	if j.Partial {
		out = append(out, s.Faint.s(" first seen mid-way (monitor started late): some figures are unknown"))
	}

	// Why it failed, first: that is what one opens a failed job for.
	if len(j.Exceptions) > 0 {
		out = append(out, "", s.TableHeader.s(fit(" EXCEPTIONS", v.width)))
		for _, e := range j.Exceptions {
			for _, l := range strings.Split(strings.TrimRight(e, "\n"), "\n") {
				out = append(out, " "+s.Failed.s(l))
			}
		}
	}
	if j.StderrTail != "" {
		out = append(out, "", s.TableHeader.s(fit(" STDERR (tail)", v.width)))
		for _, l := range strings.Split(strings.TrimRight(j.StderrTail, "\n"), "\n") {
			out = append(out, " "+strings.ReplaceAll(l, "\t", "    "))
		}
	}

	// Stages.
	out = append(out, "")
	out = append(out, s.TableHeader.s(fit(" STAGE       START          DURATION      BYTES        RATE", v.width)))
	stage := func(name string, st *state.Stage, withBytes bool) {
		if !st.Known() {
			add(" %-10s  %s", name, s.Faint.s("-"))
			return
		}
		start := v.c.clockMilli(st.Start)
		dur, bytes, rate := "", "", ""
		if st.HasDuration {
			dur = fmtDur(st.Duration)
		} else if !st.Start.IsZero() && st.End.IsZero() {
			dur = fmtDur(v.now.Sub(st.Start)) + "…"
		}
		if withBytes && st.HasBytes {
			bytes = fmtBytes(st.Bytes)
			if st.HasDuration && st.Duration > 0 {
				rate = fmtRate(float64(st.Bytes) / st.Duration.Seconds())
			}
		}
		add(" %-10s  %-12s  %8s  %9s  %10s", name, start, dur, bytes, rate)
	}
	stage("stage-in", &j.StageIn, true)
	stage("execution", &j.Execution, false)
	stage("stage-out", &j.StageOut, true)
	if j.HasMetrics {
		m := &j.Metrics
		add(" %-10s  cpu user %s sys %s  max rss %s  in %s  out %s", "resources",
			fmtDur(secs(m.CPUUser)), fmtDur(secs(m.CPUSystem)), fmtBytes(m.MaxRSS),
			fmtBytes(m.InputSize), fmtBytes(m.OutputSize))
	}

	// Timeline.
	out = append(out, "")
	out = append(out, s.TableHeader.s(fit(" TIME          ELAPSED  EVENT                     DURATION      BYTES  EXIT", v.width)))
	for _, e := range j.Timeline {
		dur, bytes, exit := "", "", ""
		if e.Duration > 0 {
			dur = fmtDur(e.Duration)
		}
		if e.HasBytes {
			bytes = fmtBytes(e.Bytes)
		}
		if e.HasExit {
			exit = strconv.Itoa(e.ExitStatus)
		}
		elapsed := ""
		if !e.Time.IsZero() && !j.Started.IsZero() {
			elapsed = "+" + fmtDur(e.Elapsed)
		}
		line := fmt.Sprintf(" %-12s  %7s  %-24s  %8s  %9s  %s", v.c.clockMilli(e.Time), elapsed,
			strings.TrimPrefix(e.Type, "job."), dur, bytes, exit)
		if e.HasExit && e.ExitStatus != 0 {
			line = s.Failed.s(line)
		}
		out = append(out, line)
	}

	return out
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// exitMeaning explains the exit statuses the executor sets itself.
func exitMeaning(code int) string {
	switch code {
	case eventbus.ExitNotStarted:
		return "not started"
	case eventbus.ExitJobError:
		return "failed outside the command"
	case eventbus.ExitTimeout:
		return "timed out"
	}
	return ""
}

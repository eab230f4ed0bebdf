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
	lines := v.lines()
	for i, l := range lines {
		// The viewport would cut them silently.
		if v.width > 0 && ansiWidth(l) > v.width {
			lines[i] = ansi.Truncate(l, v.width, "…")
		}
	}
	v.vp.SetContentLines(lines)
}

func (v *detailView) lines() []string {
	s := v.c.styles
	if v.id == "" {
		return []string{"", s.Faint.s("  No job selected: pick one in the jobs view (3) and press enter.")}
	}
	if !v.found {
		return []string{"", s.Faint.s("  Job " + v.id + " is not (or no longer) in memory.")}
	}
	out := v.summaryLines(nil)
	out = v.progressLines(out)
	out = v.deadlineLines(out)
	out = v.groupLines(out)
	out = v.failureLines(out)
	out = v.stageLines(out)
	return v.timelineLines(out)
}

// summaryLines adds the title (id, state, exit status, executable), where
// the job ran and when.
func (v *detailView) summaryLines(out []string) []string {
	s := v.c.styles
	j := &v.job
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
	return out
}

// groupLines adds the job's failure group, if it has one.
func (v *detailView) groupLines(out []string) []string {
	s := v.c.styles
	if g := v.group(); g != nil {
		when := v.c.clock(g.Last)
		if g.Count > 1 {
			when = v.c.clock(g.First) + "-" + when
		}
		out = append(out, " "+s.Label.s("failure group ")+s.Failed.s(fmtCount(g.Count)+" alike")+s.Label.s(": ")+
			groupTag(g)+s.Label.s(", "+when))
	}
	return out
}

// failureLines adds why the job failed, first: that is what one opens a
// failed job for.
func (v *detailView) failureLines(out []string) []string {
	s := v.c.styles
	j := &v.job
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
	return out
}

// stageLines adds the table of stages and the resources used.
func (v *detailView) stageLines(out []string) []string {
	s := v.c.styles
	j := &v.job
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
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
		} else if p := &j.Progress; withBytes && j.State == state.StateRunning && p.Phase == name && p.HasBytes {
			// In progress: the bytes so far and the current rate.
			bytes = fmtBytes(p.Bytes) + "…"
			if p.HasRate {
				rate = fmtRate(p.Rate)
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
		if m.ProcessesEnded > 0 {
			add(" %-10s  %d left running by the command, ended at its exit", "leftovers", m.ProcessesEnded)
		}
	}
	return out
}

// timelineLines adds the job's events, one a line.
func (v *detailView) timelineLines(out []string) []string {
	s := v.c.styles
	j := &v.job
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

// progressLines adds a running job's progress in its phase: bytes, a bar
// and the rate for staging, memory and CPU for the command; and a stall.
func (v *detailView) progressLines(out []string) []string {
	s := v.c.styles
	j := &v.job
	p := &j.Progress
	if j.State != state.StateRunning || !p.Known() {
		return out
	}
	line := " " + s.Label.s("progress ") + " " + s.Bold.s(p.Phase)
	switch p.Phase {
	case state.PhaseStageIn, state.PhaseStageOut:
		if frac, ok := p.Fraction(); ok {
			line += "  " + fmtBytes(p.Bytes) + " of " + fmtBytes(p.BytesTotal) + "  " +
				progressBar(s, frac, min(max(v.width/6, 10), 30)) + " " + strconv.Itoa(int(frac*100)) + "%"
		} else if p.HasBytes {
			line += "  " + fmtBytes(p.Bytes) + " moved"
		}
		if p.HasRate {
			line += "  " + fmtRate(p.Rate)
		}
		if left, ok := p.Remaining(); ok && !j.Stalled {
			line += s.Label.s("  about ") + fmtDur(left) + s.Label.s(" left")
		}
	case state.PhaseExecution:
		line += " " + fmtDur(p.Elapsed)
		if p.HasUsage {
			line += s.Label.s("  rss ") + fmtBytes(p.RSS) + s.Label.s("  cpu ") + fmtDur(p.CPU)
			if p.CPURate > 0 {
				line += s.Label.s(", ") + strconv.FormatFloat(p.CPURate, 'f', 2, 64) + s.Label.s(" cores")
			}
		}
	}
	if !p.Updated.IsZero() {
		line += s.Faint.s("  (" + fmtAge(v.now.Sub(p.Updated)) + " ago)")
	}
	out = append(out, line)
	if j.Stalled {
		stall := " " + s.Stalled.s(" STALLED ") + " " + s.Warn.s("no bytes moved for "+fmtDur(v.now.Sub(p.LastGrowth))) +
			s.Label.s(" (since ") + v.c.clock(p.LastGrowth) + s.Label.s(")")
		if p.HasBytes {
			stall += s.Label.s(", ") + fmtBytes(p.Bytes) + s.Label.s(" so far")
		}
		out = append(out, stall)
	}
	return out
}

// progressBar draws frac (0..1) in width cells.
func progressBar(s *Styles, frac float64, width int) string {
	done := int(frac*float64(width) + 0.5)
	done = min(max(done, 0), width)
	return s.BarDone.s(strings.Repeat("█", done)) + s.BarLeft.s(strings.Repeat("░", width-done))
}

// deadlineLines adds a running job's acknowledgement deadline: when the
// broker would close its delivery's channel, how long is left, and what
// that means once near.
func (v *detailView) deadlineLines(out []string) []string {
	s := v.c.styles
	j := &v.job
	left, ok := j.DeadlineLeft(v.now)
	if !ok || j.State != state.StateRunning {
		return out
	}
	timeout := ""
	if x, ok := v.c.st.Executor(j.Executor); ok && x.ConsumerTimeout > 0 {
		timeout = s.Label.s(" (consumer timeout ") + fmtDur(x.ConsumerTimeout) + s.Label.s(")")
	}
	head := " " + s.Label.s("ack deadline ") + v.c.clock(j.Deadline)
	switch j.DeadlineLevel(v.now) {
	case state.DeadlineExpired:
		out = append(out, head+"  "+s.Expired.s("passed "+fmtDur(-left)+" ago")+timeout,
			s.Faint.s("   the broker has delivered the job again (the executor attaches it to this run)"))
	case state.DeadlineWarning:
		out = append(out, head+"  "+s.Warn.s("⚠ "+fmtDur(left)+" left")+timeout,
			s.Faint.s("   then the broker delivers the job again: raise consumer_timeout"))
	default:
		out = append(out, head+"  "+fmtDur(left)+" left"+timeout)
	}
	return out
}

// group is the failure group of the job's last failure, nil if none.
func (v *detailView) group() *state.FailureGroup {
	if v.job.FailureGroup == "" {
		return nil
	}
	for _, g := range v.c.st.FailureGroups() {
		if g.Key == v.job.FailureGroup {
			return &g
		}
	}
	return nil
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

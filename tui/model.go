package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// Timing of the root model.
const (
	// TickEvery is how often the state is aged and the display refreshed.
	TickEvery = time.Second
	// refreshDelay is the longest an event waits to be shown: events mark
	// the display dirty, and a refresh follows this much later, so a flood
	// of events costs a few refreshes a second, not one per event.
	refreshDelay = 150 * time.Millisecond
	// maxBatch is the most events applied per message.
	maxBatch = 2048
	// statusTicks is how long a status message stays (in ticks).
	statusTicks = 8
	// Smallest usable terminal.
	minWidth, minHeight = 40, 10
)

// Options configure the root model.
type Options struct {
	// State is the state model to show; nil makes one with MaxJobs.
	State   *state.Model
	MaxJobs int
	// Now is the clock. Nil: the wall clock, or for a replay the receive
	// time of its latest event (so a recording shows as it was).
	Now func() time.Time
	// Location is the time zone of the times shown (nil: local).
	Location *time.Location
	// Source feeds the events; nil for none (tests feed State directly).
	Source *Source
	// Window is the Gantt's span at start (DefaultWindow if zero).
	Window time.Duration
	// ExportDir is where the export prompt's default file name points
	// ("": the working directory).
	ExportDir string
	// Duration quits after this long (0: never).
	Duration time.Duration
	// Status is shown in the status line at start for a few seconds (as
	// "resumed N events from FILE").
	Status string
	// Queues asks the broker about the job queues for the queue view
	// (nil: no broker, as in a replay); Context bounds its polls (nil:
	// context.Background).
	Queues  *QueuePoller
	Context context.Context
	// Theme is ThemeDark, ThemeLight or ThemeAuto (the terminal is asked
	// for its background; dark until it answers); "" is dark. Styles, when
	// set, overrides it.
	Theme string
	// Styles and Keys default to the theme's styles and DefaultKeyMap.
	Styles *Styles
	Keys   *KeyMap
}

// Model is hyperflow-top's root bubbletea model. It owns the state model:
// events come in batches from the source (eventsMsg), a tick ages the
// state every second, and the views read it on refresh. Update is a short
// dispatcher; the views do the rest.
type Model struct {
	c    *common
	opts Options

	width, height int
	active, prev  viewID
	execs         *executorsView
	threads       *threadsView
	jobs          *jobsView
	detail        *detailView
	failures      *failuresView
	queues        *queuesView
	// polling: a poll of the broker's queues is under way.
	polling  bool
	header   header
	help     help.Model
	helpKeys [viewCount]viewKeys

	dirty        bool // a refresh is scheduled
	notice       Notice
	sourceEnded  bool
	pausedEvents int64 // events received since the pause

	status     string
	statusErr  bool
	statusLeft int
	statusH    int // lines of the status line at the last layout

	export exportPrompt
	// groupBack: the jobs view shows a failure group opened from the
	// failures view, where esc goes back to.
	groupBack bool

	// frame is the last screen rendered, valid while frameOK: events
	// alone change nothing shown until the refresh they schedule, so the
	// thousands of updates a second they cause cost no rendering.
	frame   string
	frameOK bool
}

// Messages of the root model.
type (
	eventsMsg struct {
		batch  []eventbus.Message
		closed bool // the source ended after this batch
	}
	noticeMsg  Notice
	tickMsg    time.Time
	refreshMsg struct{}
	quitMsg    struct{}
	// queuePollMsg: time to ask the broker about the queues again;
	// queueSamplesMsg: what it said.
	queuePollMsg    struct{}
	queueSamplesMsg map[string]state.QueueSample
)

// New makes the root model.
func New(opts Options) *Model {
	st := opts.State
	if st == nil {
		st = state.New(state.Options{MaxJobs: opts.MaxJobs})
	}
	now := opts.Now
	if now == nil {
		now = time.Now
		if opts.Source != nil && opts.Source.Replay {
			now = func() time.Time {
				if t := st.Latest(); !t.IsZero() {
					return t
				}
				return time.Now()
			}
		}
	}
	loc := opts.Location
	if loc == nil {
		loc = time.Local
	}
	styles, keys := opts.Styles, opts.Keys
	if styles == nil {
		styles = ThemeStyles(opts.Theme != ThemeLight)
	}
	if keys == nil {
		keys = DefaultKeyMap()
	}
	c := &common{st: st, now: now, loc: loc, styles: styles, keys: keys}
	m := &Model{
		c:        c,
		opts:     opts,
		active:   viewExecutors,
		prev:     viewJobs,
		execs:    newExecutorsView(c),
		threads:  newThreadsView(c, opts.Window),
		jobs:     newJobsView(c),
		detail:   newDetailView(c),
		failures: newFailuresView(c),
		queues:   newQueuesView(c, opts.Queues != nil),
		header:   header{c: c},
		help:     help.New(),
		export:   newExportPrompt(),
	}
	m.help.Styles = styles.Help
	for id := range viewCount {
		m.helpKeys[id] = keys.helpFor(id)
	}
	if opts.Source != nil {
		m.notice = Notice{State: ConnConnecting, Text: "starting"}
	}
	if opts.Status != "" {
		m.setStatus(opts.Status, false)
	}
	return m
}

// State is the state model shown.
func (m *Model) State() *state.Model { return m.c.st }

// Init starts the tick and the waits for events and notices.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{tick()}
	if m.opts.Theme == ThemeAuto && m.opts.Styles == nil {
		cmds = append(cmds, tea.RequestBackgroundColor)
	}
	if src := m.opts.Source; src != nil {
		cmds = append(cmds, waitEvents(src.Events), waitNotice(src.Notices))
	}
	if m.opts.Queues != nil {
		cmds = append(cmds, func() tea.Msg { return queuePollMsg{} })
	}
	if d := m.opts.Duration; d > 0 {
		cmds = append(cmds, tea.Tick(d, func(time.Time) tea.Msg { return quitMsg{} }))
	}
	return tea.Batch(cmds...)
}

func tick() tea.Cmd {
	return tea.Tick(TickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// waitEvents waits for an event, then takes what else is already there, up
// to maxBatch, so that thousands of events a second cost few updates.
func waitEvents(ch <-chan eventbus.Message) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return eventsMsg{closed: true}
		}
		batch := make([]eventbus.Message, 1, 64)
		batch[0] = msg
		for len(batch) < maxBatch {
			select {
			case msg, ok := <-ch:
				if !ok {
					return eventsMsg{batch: batch, closed: true}
				}
				batch = append(batch, msg)
			default:
				return eventsMsg{batch: batch}
			}
		}
		return eventsMsg{batch: batch}
	}
}

func waitNotice(ch <-chan Notice) tea.Cmd {
	return func() tea.Msg {
		n, ok := <-ch
		if !ok {
			return nil
		}
		return noticeMsg(n)
	}
}

// Update dispatches a message, and lays the views out again when the
// status line's height changed (a long error wraps).
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := m.update(msg)
	if h := len(m.statusLines()); h != m.statusH && m.width > 0 {
		m.statusH = h
		m.frameOK = false
		m.layout()
		if !m.c.paused {
			m.refresh()
		}
	}
	return m, cmd
}

func (m *Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if ev, ok := msg.(eventsMsg); !ok || ev.closed {
		m.frameOK = false
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
	case eventsMsg:
		return m, m.onEvents(msg)
	case noticeMsg:
		m.notice = Notice(msg)
		return m, waitNotice(m.opts.Source.Notices)
	case tickMsg:
		return m, m.onTick()
	case refreshMsg:
		m.dirty = false
		m.refresh()
	case exportedMsg:
		m.onExported(msg)
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.MouseWheelMsg:
		return m, m.view(m.active).Update(msg)
	case tea.PasteMsg:
		return m, m.onPaste(msg)
	case quitMsg:
		return m, tea.Quit
	case tea.BackgroundColorMsg:
		m.onBackground(msg)
	case queuePollMsg:
		return m, m.pollQueues()
	case queueSamplesMsg:
		for name, s := range msg {
			m.c.st.SetQueueSample(name, s)
		}
		m.polling = false
		if m.active == viewQueues {
			m.refresh()
		}
		return m, tea.Tick(QueuePollEvery, func(time.Time) tea.Msg { return queuePollMsg{} })
	}
	return m, nil
}

// onBackground takes the styles of the terminal's background, dark or
// light, under --theme auto.
func (m *Model) onBackground(msg tea.BackgroundColorMsg) {
	if m.opts.Theme != ThemeAuto || m.opts.Styles != nil {
		return
	}
	*m.c.styles = *ThemeStyles(msg.IsDark())
	m.help.Styles = m.c.styles.Help
	m.frameOK = false
	m.refreshAll()
}

// pollQueues asks the broker about the queues the state knows, in a
// command (the state stays the update loop's); with none known yet, it
// looks again later.
func (m *Model) pollQueues() tea.Cmd {
	if m.polling {
		return nil
	}
	qs := m.c.st.Queues(m.c.now())
	if len(qs) == 0 {
		return tea.Tick(QueuePollEvery, func(time.Time) tea.Msg { return queuePollMsg{} })
	}
	names := make([]string, len(qs))
	for i := range qs {
		names[i] = qs[i].Name
	}
	m.polling = true
	ctx, poller := m.opts.Context, m.opts.Queues
	if ctx == nil {
		ctx = context.Background()
	}
	return func() tea.Msg { return queueSamplesMsg(poller.Poll(ctx, names)) }
}

// onEvents applies a batch (anomalies are counted by the state, not
// fatal) and schedules a refresh.
func (m *Model) onEvents(msg eventsMsg) tea.Cmd {
	for i := range msg.batch {
		_ = m.c.st.Apply(msg.batch[i])
	}
	var cmds []tea.Cmd
	if m.c.paused {
		m.pausedEvents += int64(len(msg.batch))
	} else if !m.dirty && len(msg.batch) > 0 {
		m.dirty = true
		cmds = append(cmds, tea.Tick(refreshDelay, func(time.Time) tea.Msg { return refreshMsg{} }))
	}
	if msg.closed {
		m.sourceEnded = true
	} else if m.opts.Source != nil {
		cmds = append(cmds, waitEvents(m.opts.Source.Events))
	}
	return tea.Batch(cmds...)
}

func (m *Model) onTick() tea.Cmd {
	m.c.st.Tick(m.c.now())
	if m.statusLeft > 0 {
		m.statusLeft--
		if m.statusLeft == 0 {
			m.status = ""
		}
	}
	m.refresh()
	return tick()
}

// refresh shows the state as it is now, unless paused.
func (m *Model) refresh() {
	if m.c.paused {
		return
	}
	m.header.Refresh()
	m.view(m.active).Refresh()
}

// refreshAll refreshes every view, paused or not.
func (m *Model) refreshAll() {
	m.header.Refresh()
	for id := range viewCount {
		m.view(id).Refresh()
	}
}

// view is the sub-model of a view.
func (m *Model) view(id viewID) subView {
	switch id {
	case viewThreads:
		return m.threads
	case viewJobs:
		return m.jobs
	case viewDetail:
		return m.detail
	case viewFailures:
		return m.failures
	case viewQueues:
		return m.queues
	}
	return m.execs
}

// subView is what every view implements.
type subView interface {
	Update(tea.Msg) tea.Cmd
	View() string
	SetSize(w, h int)
	Refresh()
}

// onKey handles a key: the open prompt takes every key, then the global
// keys, then the active view's.
func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	if m.export.active {
		return m.updateExport(msg)
	}
	if m.active == viewJobs && m.jobs.Filtering() {
		return m.jobs.Update(msg)
	}
	k := m.c.keys
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
	case key.Matches(msg, k.Pause):
		m.togglePause()
	case key.Matches(msg, k.Export):
		return m.startExport()
	case key.Matches(msg, k.NextView):
		m.show((m.active + 1) % viewCount)
	case key.Matches(msg, k.PrevView):
		m.show((m.active + viewCount - 1) % viewCount)
	case key.Matches(msg, k.Filter):
		m.show(viewJobs)
		return m.jobs.StartFilter()
	case key.Matches(msg, k.Failed):
		m.show(viewJobs)
		m.jobs.ToggleFailed()
	case key.Matches(msg, k.Marks):
		m.show(viewJobs)
		m.jobs.CycleMarks()
	case key.Matches(msg, k.HideGone) && (m.active == viewExecutors || m.active == viewThreads):
		m.c.hideGone = !m.c.hideGone
		m.execs.Refresh()
		m.threads.Refresh()
	case key.Matches(msg, k.Enter):
		m.enter()
	case key.Matches(msg, k.Back):
		m.back()
	default:
		for i, b := range k.Views {
			if key.Matches(msg, b) {
				m.show(viewID(i))
				return nil
			}
		}
		return m.view(m.active).Update(msg)
	}
	return nil
}

func (m *Model) onPaste(msg tea.PasteMsg) tea.Cmd {
	switch {
	case m.export.active:
		return m.updateExport(msg)
	case m.active == viewJobs && m.jobs.Filtering():
		return m.jobs.Update(msg)
	}
	return nil
}

// show switches to view id; it shows the state as it is now unless
// paused.
func (m *Model) show(id viewID) {
	if id == m.active {
		return
	}
	if id == viewDetail && m.active != viewDetail {
		m.prev = m.active
	}
	m.active = id
	m.layout()
	m.refresh()
}

// enter opens what is under the cursor: an executor's jobs, a lane's job,
// a job's detail.
func (m *Model) enter() {
	switch m.active {
	case viewExecutors:
		if x, ok := m.execs.Selected(); ok {
			m.jobs.SetExecutor(x.ID, x.Hostname)
			m.show(viewJobs)
		}
	case viewThreads:
		execID, jobID := m.threads.Selected()
		switch {
		case jobID != "":
			m.openJob(jobID)
		case execID != "":
			x, _ := m.c.st.Executor(execID)
			m.jobs.SetExecutor(execID, x.Hostname)
			m.show(viewJobs)
		}
	case viewJobs:
		if id, ok := m.jobs.Selected(); ok {
			m.openJob(id)
		}
	case viewFailures:
		if g, ok := m.failures.Selected(); ok {
			m.jobs.SetGroup(g.Key, groupTag(&g))
			m.groupBack = true
			m.show(viewJobs)
		}
	}
}

// groupTag names a failure group in the jobs view's filter bar.
func groupTag(g *state.FailureGroup) string {
	t := g.Executable
	if g.HasExit {
		t += " exit " + strconv.Itoa(g.ExitStatus)
	}
	if g.Hostname != "" {
		t += " on " + g.Hostname
	}
	return t
}

func (m *Model) openJob(id string) {
	m.detail.Open(id)
	m.show(viewDetail)
}

// back is esc: from the detail to the view it was opened from; from a
// failure group's jobs back to the groups; in the jobs view, clear the
// filters.
func (m *Model) back() {
	switch m.active {
	case viewDetail:
		m.show(m.prev)
	case viewJobs:
		if m.groupBack && m.jobs.Query().Group != "" {
			m.groupBack = false
			m.jobs.SetGroup("", "")
			m.show(viewFailures)
			return
		}
		m.groupBack = false
		m.jobs.ClearFilters()
	}
}

// togglePause freezes or unfreezes the display; events are still applied
// to the state.
func (m *Model) togglePause() {
	m.c.paused = !m.c.paused
	m.pausedEvents = 0
	// Paused: every view keeps what it shows now (the jobs view takes a
	// snapshot of its selection). Resumed: everything is current again.
	m.refreshAll()
}

func (m *Model) setStatus(text string, isErr bool) {
	m.status, m.statusErr, m.statusLeft = text, isErr, statusTicks
}

// setSize lays the views out for a terminal of w×h.
func (m *Model) setSize(w, h int) {
	m.width, m.height = w, h
	m.header.SetSize(w)
	m.help.SetWidth(w)
	m.export.input.SetWidth(max(w-44, 10))
	m.layout()
	if m.c.paused {
		return
	}
	m.header.Refresh()
	m.view(m.active).Refresh()
}

// bodyHeight is what the view gets: all but the header, the status line
// and the help.
func (m *Model) bodyHeight() int {
	return max(m.height-headerLines-len(m.statusLines())-lipgloss.Height(m.helpView()), 3)
}

// exportHelp, under the full help, says how the export picks its format;
// filterHelp, in the jobs view, what the text filter matches.
const (
	exportHelp = "export format by name: .csv CSV, .tsv Nextflow trace, .json Chrome trace"
	filterHelp = "/ matches id, executable, host, thread, state, exit status, 1st stderr line"
)

// helpView is the help under the status line: all the keys after ?, when
// they leave room for the view, else the short line.
func (m *Model) helpView() string {
	keys := m.helpKeys[m.active]
	if m.help.ShowAll {
		full := m.help.FullHelpView(keys.FullHelp()) + "\n" + m.c.styles.Faint.s(exportHelp)
		if m.active == viewJobs {
			full += "\n" + m.c.styles.Faint.s(filterHelp)
		}
		if m.active == viewQueues {
			full += "\n" + m.c.styles.Faint.s(queueHelp)
		}
		if m.height-headerLines-len(m.statusLines())-lipgloss.Height(full) >= 3 {
			return full
		}
	}
	return m.help.ShortHelpView(keys.ShortHelp())
}

func (m *Model) layout() {
	h := m.bodyHeight()
	for id := range viewCount {
		m.view(id).SetSize(m.width, h)
	}
}

// View renders the screen: header, the active view, the status line and
// the help.
func (m *Model) View() tea.View {
	if !m.frameOK {
		m.frame, m.frameOK = m.render(), true
	}
	v := tea.NewView(m.frame)
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "hyperflow-top"
	return v
}

func (m *Model) render() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	if m.width < minWidth || m.height < minHeight {
		return block([]string{fmt.Sprintf("too small (%dx%d): needs %dx%d", m.width, m.height, minWidth, minHeight)}, m.width, m.height)
	}
	helpView := m.helpView()
	var b strings.Builder
	b.WriteString(m.header.View(m.active, m.sourceLabel()))
	b.WriteByte('\n')
	b.WriteString(m.view(m.active).View())
	b.WriteByte('\n')
	b.WriteString(strings.Join(m.statusLines(), "\n"))
	b.WriteByte('\n')
	b.WriteString(block(strings.Split(helpView, "\n"), m.width, lipgloss.Height(helpView)))
	return b.String()
}

// sourceLabel is the header's note of where events come from.
func (m *Model) sourceLabel() string {
	s := m.c.styles
	if m.c.paused {
		return s.Paused.s(" PAUSED ") + s.Faint.s(" +"+strconv.FormatInt(m.pausedEvents, 10)+" events")
	}
	src := m.opts.Source
	switch {
	case src == nil:
		return s.Faint.s("no source")
	case src.Replay && (m.sourceEnded || m.notice.State == ConnEnded):
		return s.Replay.s("■ ") + src.Label + s.Faint.s(" ended")
	case src.Replay:
		return s.Replay.s("▶ ") + src.Label
	}
	switch m.notice.State {
	case ConnUp:
		return s.Live.s("● live ") + src.Label
	case ConnDown:
		return s.StatusError.s("✗ down ") + src.Label
	}
	return s.Stale.s("○ connecting ") + src.Label
}

// maxStatusLines is the most lines an error in the status line wraps to.
const maxStatusLines = 4

// statusLines is the export prompt, a passing message or the source's
// latest notice: one line, or for a long message (a refused connection, an
// export's file name) as many as it takes to show it whole, up to
// maxStatusLines.
func (m *Model) statusLines() []string {
	s := m.c.styles
	switch {
	case m.export.active && m.export.err != "":
		return []string{promptLineInk(s, m.export.input.View(), m.export.err, s.StatusError, m.width)}
	case m.export.active:
		input := m.export.input.View()
		hint := "tab format · enter write · esc cancel"
		if ansiWidth(input)+len(hint)+4 > m.width {
			hint = "tab: format"
		}
		return []string{promptLine(s, input, hint, m.width)}
	case m.status != "" && m.statusErr:
		return m.wrap(m.status, s.StatusError)
	case m.status != "":
		return m.wrap(m.status, s.StatusInfo)
	case m.notice.Err != nil:
		return m.wrap(m.notice.Text, s.StatusError)
	}
	return []string{fit(s.Faint.s(" "+m.notice.Text), m.width)}
}

// wrap wraps a message (an error, an export's file name) to the width,
// in at most maxStatusLines lines (and a quarter of the screen), in ink.
func (m *Model) wrap(text string, in ink) []string {
	n := max(min(maxStatusLines, m.height/4), 1)
	lines := strings.Split(ansi.Wrap(text, max(m.width-2, 1), ""), "\n")
	if len(lines) > n {
		lines[n-1] = strings.Join(lines[n-1:], " ")
		lines = lines[:n]
	}
	for i, l := range lines {
		lines[i] = fit(in.s(" "+l), m.width)
	}
	return lines
}

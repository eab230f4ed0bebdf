package state

import (
	"fmt"
	"hash/maphash"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

var stateNames = [...]string{0: "", StateRunning: "running", StateDone: "done", StateFailed: "failed", StateLost: "lost"}

var anomalyNames = [...]string{0: "", AnomalyMalformed: "malformed", AnomalyInvalid: "invalid",
	AnomalyUnknown: "unknown", AnomalyDuplicate: "duplicate", AnomalyOutOfOrder: "out-of-order", AnomalyLate: "late"}

var anomalyErrs = [...]error{0: nil, AnomalyMalformed: ErrMalformed, AnomalyInvalid: ErrInvalid,
	AnomalyUnknown: ErrUnknown, AnomalyDuplicate: ErrDuplicate, AnomalyOutOfOrder: ErrOutOfOrder, AnomalyLate: ErrLate}

// Limits on what one job keeps of its failure report.
const (
	maxExceptions   = 10
	maxExceptionLen = 1024
	maxStderrTail   = 4096
	// maxInterned caps the table of shared strings (executor ids,
	// hostnames, executables).
	maxInterned = 8192
	// hbMissesLost: a running job missing from this many heartbeats of its
	// executor (sent after its last event) is lost.
	hbMissesLost = 2
	// minRemembered: at least this many dropped jobs are remembered (and
	// MaxJobs if more), to tell late events for them from new jobs.
	minRemembered = 4096
)

// model is the Model's state. Times of events are kept as their float
// timestamps (executor clock), receive times as UNIX nanoseconds (monitor
// clock); both are turned into time.Time only in the views.
type model struct {
	opts Options

	version     uint64
	jobsVersion uint64
	// progressVersion moves when a job's progress figures change: part of
	// JobsVersion, but not of the jobs selection's cache key (progress
	// changes no selection or order).
	progressVersion uint64
	latest          time.Time
	firstRecv       int64

	execs map[string]*executor
	jobs  map[string]*job
	// order holds the jobs in the order they were first seen (dropped
	// ones too, until compacted): what selections start from, nearly
	// sorted by start time already.
	order        []*job
	orderDropped int

	// Finished jobs in the order they finished, for eviction; entries
	// whose gen no longer matches their job's are stale.
	fifo         []fifoEntry
	fifoHead     int
	finishedKept int

	// Ids (hashed) of dropped jobs, with their finish timestamps, to tell
	// late events for them from new jobs.
	seed      maphash.Seed
	evicted   map[uint64]float64
	evictRing []uint64
	evictPos  int

	running                     int
	done, failed, lost, redeliv int64
	evictedN, events            int64
	anom                        Anomalies
	recent                      []Anomaly // ring
	recentPos                   int
	buckets                     []bucket
	newestSec                   int64
	stats                       map[string]*execStat
	intern                      map[string]string
	cache                       jobsCache
	ev                          wireEvent // reused by apply

	groups    map[string]*failGroup
	stores    map[string]*storeStat
	utilWidth float64 // seconds per utilisation bucket

	queues map[string]*queueStat // job queues (queues.go)
}

type fifoEntry struct {
	j   *job
	gen uint32
}

func newModel(o Options) model {
	if o.MaxJobs <= 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.HistoryWindow <= 0 {
		o.HistoryWindow = DefaultHistoryWindow
	}
	if o.MaxIntervals <= 0 {
		o.MaxIntervals = DefaultMaxIntervals
	}
	if o.DefaultHeartbeat <= 0 {
		o.DefaultHeartbeat = DefaultHeartbeat
	}
	if o.StaleIntervals <= 0 {
		o.StaleIntervals = DefaultStaleIntervals
	}
	if o.MaxExecutors <= 0 {
		o.MaxExecutors = DefaultMaxExecutors
	}
	if o.MaxAnomalies <= 0 {
		o.MaxAnomalies = DefaultMaxAnomalies
	}
	if o.ThroughputWindow <= 0 {
		o.ThroughputWindow = DefaultThroughputWindow
	}
	o.ThroughputWindow = max(o.ThroughputWindow, RateWindow)
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.DeadlineWarnBefore <= 0 {
		o.DeadlineWarnBefore = DefaultDeadlineWarnBefore
	}
	if o.DeadlineWarnFraction <= 0 || o.DeadlineWarnFraction >= 1 {
		o.DeadlineWarnFraction = DefaultDeadlineWarnFraction
	}
	if o.UtilisationWindow <= 0 {
		o.UtilisationWindow = DefaultUtilisationWindow
	}
	if o.MaxFailureGroups <= 0 {
		o.MaxFailureGroups = DefaultMaxFailureGroups
	}
	if o.GoneAfter == 0 {
		o.GoneAfter = DefaultGoneAfter
	}
	return model{
		opts:      o,
		execs:     make(map[string]*executor),
		jobs:      make(map[string]*job),
		seed:      maphash.MakeSeed(),
		evicted:   make(map[uint64]float64),
		evictRing: make([]uint64, 0, min(max(o.MaxJobs, minRemembered), 1<<16)),
		buckets:   make([]bucket, int(o.ThroughputWindow/time.Second)),
		stats:     make(map[string]*execStat),
		intern:    make(map[string]string),
		groups:    make(map[string]*failGroup),
		stores:    make(map[string]*storeStat),
		utilWidth: o.UtilisationWindow.Seconds() / utilBucketsPerWindow,
	}
}

// str returns the shared copy of s, to keep one copy of the strings many
// jobs repeat.
func (m *model) str(s string) string {
	if s == "" {
		return ""
	}
	if v, ok := m.intern[s]; ok {
		return v
	}
	if len(m.intern) < maxInterned {
		m.intern[s] = s
	}
	return s
}

// anomaly counts one anomaly and returns it as an error.
func (m *model) anomaly(kind AnomalyKind, msg *eventbus.Message, format string, args ...any) error {
	switch kind {
	case AnomalyMalformed:
		m.anom.Malformed++
	case AnomalyInvalid:
		m.anom.Invalid++
	case AnomalyUnknown:
		m.anom.Unknown++
	case AnomalyDuplicate:
		m.anom.Duplicate++
	case AnomalyOutOfOrder:
		m.anom.OutOfOrder++
	case AnomalyLate:
		m.anom.Late++
	}
	detail := fmt.Sprintf(format, args...)
	a := Anomaly{Kind: kind, Received: msg.Received, RoutingKey: msg.RoutingKey, Detail: detail}
	if len(m.recent) < m.opts.MaxAnomalies {
		m.recent = append(m.recent, a)
	} else {
		m.recent[m.recentPos] = a
		m.recentPos = (m.recentPos + 1) % len(m.recent)
	}
	m.version++
	if msg.RoutingKey != "" {
		return fmt.Errorf("%w: %s: %s", anomalyErrs[kind], msg.RoutingKey, detail)
	}
	return fmt.Errorf("%w: %s", anomalyErrs[kind], detail)
}

func (m *model) anomaliesView() Anomalies {
	a := m.anom
	a.Recent = make([]Anomaly, 0, len(m.recent))
	a.Recent = append(a.Recent, m.recent[m.recentPos:]...)
	a.Recent = append(a.Recent, m.recent[:m.recentPos]...)
	return a
}

// event is one decoded event with the times the model uses.
type event struct {
	msg  *eventbus.Message
	w    *wireEvent
	rank int
	ts   float64 // event timestamp (receive time when the body has none)
	recv int64   // receive time, UNIX ns (event timestamp when not set)
	// invalid describes a field that was not understood (the rest of the
	// event was applied).
	invalid string
}

func (m *model) apply(msg eventbus.Message) error {
	m.events++
	m.version++
	recv := msg.Received
	if recv.IsZero() {
		recv = m.latest
	}
	if !recv.IsZero() && recv.After(m.latest) {
		m.latest = recv
	}
	w := &m.ev
	malformed, invalid := decode(msg.Body, w, m.intern)
	if malformed != nil {
		m.countEvent(recv.UnixNano())
		return m.anomaly(AnomalyMalformed, &msg, "%v", malformed)
	}
	e := event{msg: &msg, w: w, rank: classify(w.Type, msg.RoutingKey), ts: w.Timestamp}
	if recv.IsZero() && w.Timestamp > 0 {
		recv = tsTime(w.Timestamp)
		if recv.After(m.latest) {
			m.latest = recv
		}
	}
	if !recv.IsZero() {
		e.recv = recv.UnixNano()
	}
	if e.ts <= 0 {
		e.ts = float64(e.recv) / 1e9
	}
	if m.firstRecv == 0 && e.recv != 0 {
		m.firstRecv = e.recv
	}
	m.countEvent(e.recv)

	var err error
	switch {
	case e.rank == rankNotAnEvent:
		t := w.Type
		if t == "" {
			t = msg.RoutingKey
		}
		return m.anomaly(AnomalyUnknown, &msg, "type %q", t)
	case w.Executor == "":
		return m.anomaly(AnomalyInvalid, &msg, "no executor")
	case e.rank == rankReady:
		err = m.applyReady(&e)
	case e.rank == rankHeartbeat:
		err = m.applyHeartbeat(&e)
	case e.rank == rankStopped:
		err = m.applyStopped(&e)
	case e.rank == rankDraining:
		err = m.applyDraining(&e)
	default:
		err = m.applyJob(&e)
	}
	if err == nil && invalid != nil {
		// Applied as far as it goes; the wrong field is reported.
		return m.anomaly(AnomalyInvalid, &msg, "%v", invalid)
	}
	if err == nil && e.invalid != "" {
		return m.anomaly(AnomalyInvalid, &msg, "%s", e.invalid)
	}
	return err
}

func (m *model) countEvent(recv int64) {
	if recv == 0 {
		return
	}
	if b := m.count(recv); b != nil {
		b.Events++
	}
}

// tick turns executors stale and drops old stage intervals.
func (m *model) tick(now time.Time) bool {
	changed := false
	nowNs := now.UnixNano()
	for _, x := range m.execs {
		if m.age(x, nowNs) {
			changed = true
		}
	}
	if m.tickJobs(nowNs) {
		changed = true
	}
	cutoff := eventbus.Timestamp(now.Add(-m.opts.HistoryWindow))
	for _, x := range m.execs {
		for _, t := range x.threads {
			if t.prune(cutoff) {
				changed = true
			}
		}
	}
	if changed {
		m.version++
	}
	return changed
}

func (m *model) totals(now time.Time) Totals {
	t := Totals{
		Running:     m.running,
		Done:        m.done,
		Failed:      m.failed,
		Lost:        m.lost,
		Redelivered: m.redeliv,
		Kept:        len(m.jobs),
		Evicted:     m.evictedN,
		Executors:   len(m.execs),
		Events:      m.events,
		Anomalies:   m.anom.Total(),
		Rates:       m.rates(now),

		FailureGroups: len(m.groups),
	}
	nowTS := eventbus.Timestamp(now)
	for _, x := range m.execs {
		switch x.status {
		case StatusOnline:
			t.Online++
		case StatusStale:
			t.Stale++
		case StatusStopped:
			t.Stopped++
		case StatusGone:
			t.Gone++
		case StatusDraining:
			t.Draining++
		}
		if x.lost {
			t.LostExecutors++
		}
		d, f := x.totals()
		t.ExecutorsDone += d
		t.ExecutorsFailed += f
		for j := range x.running {
			if j.stalled {
				t.Stalled++
			}
			if _, warn := m.deadlineOf(j); warn > 0 && nowTS >= warn {
				t.NearDeadline++
			}
		}
	}
	t.Live = t.Executors - t.Stopped - t.Gone
	return t
}

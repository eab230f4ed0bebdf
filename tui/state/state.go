package state

import (
	"errors"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// This file is the package's exported API: the types the views read and the
// Model's methods. The implementation is in the other files.

// Defaults of Options.
const (
	DefaultMaxJobs          = 10000
	DefaultHistoryWindow    = 10 * time.Minute
	DefaultMaxIntervals     = 200
	DefaultHeartbeat        = 5 * time.Second
	DefaultStaleIntervals   = 3
	DefaultMaxExecutors     = 1000
	DefaultMaxAnomalies     = 100
	DefaultThroughputWindow = 5 * time.Minute

	// RateWindow is the span the rates of Totals are averaged over.
	RateWindow = time.Minute
)

// Options bound the model's memory and set its aging rules. Zero fields take
// the defaults above.
type Options struct {
	// MaxJobs is how many finished (done, failed or lost) jobs are kept,
	// the oldest finished dropped first (--max-jobs). Running jobs are
	// always kept. Totals stay exact whatever is dropped.
	MaxJobs int
	// HistoryWindow is how far back the per-thread stage intervals (the
	// Gantt lanes) are kept; MaxIntervals caps them per thread as well.
	HistoryWindow time.Duration
	MaxIntervals  int
	// DefaultHeartbeat is the heartbeat interval assumed for an executor
	// whose heartbeats carry none (and for one never heard heartbeating).
	DefaultHeartbeat time.Duration
	// StaleIntervals: an executor is stale after this many heartbeat
	// intervals without a heartbeat.
	StaleIntervals int
	// MaxExecutors caps the executors kept; beyond it the stopped ones
	// without running jobs, least recently seen first, are dropped.
	MaxExecutors int
	// MaxAnomalies is how many recent anomalies Anomalies().Recent holds.
	MaxAnomalies int
	// ThroughputWindow is how much per-second throughput history is kept
	// for Throughput (sparklines); at least RateWindow.
	ThroughputWindow time.Duration
}

// Status of an executor.
type Status string

// Executor statuses.
const (
	StatusOnline  Status = "online"
	StatusStale   Status = "stale"   // no heartbeat for StaleIntervals intervals
	StatusStopped Status = "stopped" // executor.stopped received
)

// JobState is where a job is in its life.
type JobState uint8

// Job states. A job that never finished but can no longer be running (its
// executor stopped, its thread started another job, or heartbeats stopped
// listing it) is lost.
const (
	StateRunning JobState = iota + 1
	StateDone             // exit status 0
	StateFailed           // exit status not 0
	StateLost
)

// String is the state's name: running, done, failed or lost.
func (s JobState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return ""
}

// ParseJobState reads a state's name.
func ParseJobState(name string) (JobState, bool) {
	for st, n := range stateNames {
		if n != "" && n == name {
			return JobState(st), true
		}
	}
	return 0, false
}

// Finished says whether the job is no longer running.
func (s JobState) Finished() bool { return s != StateRunning && s != 0 }

// StateSet is a set of job states (a bit per JobState); the zero set means
// every state.
type StateSet uint8

// States makes a set of the given states.
func States(states ...JobState) StateSet {
	var s StateSet
	for _, st := range states {
		s |= 1 << st
	}
	return s
}

// Has says whether st is in the set (always true for the zero set).
func (s StateSet) Has(st JobState) bool { return s == 0 || s&(1<<st) != 0 }

// Phases of a thread or a running job: the eventbus phases (stage-in,
// execution, stage-out) and idle for a thread without a job.
const (
	PhaseStageIn   = eventbus.PhaseStageIn
	PhaseExecution = eventbus.PhaseExecution
	PhaseStageOut  = eventbus.PhaseStageOut
	PhaseIdle      = "idle"
)

// ExecutorView is one executor as the views show it.
type ExecutorView struct {
	ID       string
	Hostname string
	Threads  int // from executor.ready or heartbeats; 0 when unknown
	Storage  string
	Version  string
	Queue    string

	// Status: stopped after executor.stopped; stale when nothing came from
	// it for StaleIntervals × Interval (an executor that never sent a
	// heartbeat, as the original one, stays online while it runs jobs);
	// online otherwise. Tick ages it.
	Status    Status
	Reason    string        // executor.stopped's reason
	FirstSeen time.Time     // receive time of its first event
	LastSeen  time.Time     // receive time of its last event of any kind
	Heartbeat time.Time     // receive time of its last heartbeat; zero if none
	Interval  time.Duration // its heartbeat interval (DefaultHeartbeat if unknown)

	// From its last heartbeat (the executor's own counts); HasCounts is
	// false before one.
	Busy       int
	JobsDone   int64
	JobsFailed int64
	HasCounts  bool

	// Counted by the model from job events.
	Running int // jobs running on it now
	Done    int64
	Failed  int64
}

// Interval is one stage of one job on a thread's lane, in event
// timestamps (the executor's clock). End is zero while the stage is in
// progress (draw it up to now).
type Interval struct {
	Job   string
	Phase string // stage-in, execution or stage-out
	Start time.Time
	End   time.Time
	// Failed: the execution exited with a non-zero status, or the stage
	// ended the job with a failure.
	Failed bool
}

// ThreadView is one worker slot of an executor: its current job and its
// recent stage intervals, oldest first.
type ThreadView struct {
	// Thread is the thread's id as sent: "1".."threads" for this
	// executor, a large number for the original Ruby executor, in decimal.
	Thread string
	// Slot is the thread's position among its executor's threads
	// (1-based), a short label for Ruby's long ids.
	Slot       int
	Job        string // "" when idle
	Executable string
	Phase      string // PhaseIdle when no job
	// Since is when the job's phase began, or when the thread went idle
	// (zero if it never ran anything seen).
	Since     time.Time
	Intervals []Interval
}

// Stage is one of a job's three stages. Zero times mean unknown.
type Stage struct {
	Start       time.Time
	End         time.Time
	Duration    time.Duration // as reported by the executor, else End-Start
	HasDuration bool
	Bytes       int64
	HasBytes    bool
}

// Known says whether anything of the stage is known (a local job has no
// staging: its stage-in and stage-out are unknown).
func (s Stage) Known() bool {
	return !s.Start.IsZero() || !s.End.IsZero() || s.HasDuration || s.HasBytes
}

// JobView is one job as the jobs table shows it (and as the CSV exports
// it). Times are the events' timestamps (the executor's clock), to the
// microsecond; a zero time is unknown.
type JobView struct {
	ID         string
	Executor   string
	Hostname   string
	Thread     string
	Executable string

	State      JobState
	Phase      string    // current phase of a running job; "" once finished
	PhaseSince time.Time // when the current phase began

	Started  time.Time // job.started; zero if not seen
	Finished time.Time // job.finished; zero while running or if not seen

	StageIn   Stage
	Execution Stage
	StageOut  Stage

	// ExitStatus is job.finished's, or before that execution.finished's
	// (the command's); HasExit is false while neither is known.
	ExitStatus int
	HasExit    bool

	// Metrics are job.finished's (wire.md §4), or before that the partial
	// ones of execution.finished.
	Metrics    eventbus.Metrics
	HasMetrics bool

	Redelivered bool // the broker's redelivery flag, or the job ran again
	Attempts    int  // job.started events seen for it, over all its runs
	// Partial: first seen mid-way (from a heartbeat's running list or an
	// event after job.started, as by a monitor started late), so some
	// fields may be unknown. Cleared when its job.started arrives.
	Partial bool
	// LastEvent is the receive time of the job's last event.
	LastEvent time.Time
}

// Duration is the job's wall time: Finished-Started, or now-Started while
// running; 0 when Started is unknown.
func (j *JobView) Duration(now time.Time) time.Duration {
	if j.Started.IsZero() {
		return 0
	}
	end := j.Finished
	if end.IsZero() {
		if j.State != StateRunning {
			return 0
		}
		end = now
	}
	if d := end.Sub(j.Started); d > 0 {
		return d
	}
	return 0
}

// TimelineEntry is one event of a job as its detail view lists it.
type TimelineEntry struct {
	Type     string    // the event type (eventbus.Type...)
	Time     time.Time // the event's timestamp
	Received time.Time
	// Elapsed since job.started (0 if unknown).
	Elapsed time.Duration
	// For finished stages: the stage's duration and bytes.
	Duration time.Duration
	Bytes    int64
	HasBytes bool
	// For execution.finished and job.finished.
	ExitStatus int
	HasExit    bool
}

// JobDetail is a job with its event timeline, exceptions and stderr tail.
type JobDetail struct {
	JobView
	Timeline   []TimelineEntry // in event order (by type's place in a job's life)
	Exceptions []string
	StderrTail string
}

// SortKey is a column of the jobs table to sort on.
type SortKey uint8

// Sort keys. Ties are broken by start time then id, so the order is stable.
const (
	SortStarted SortKey = iota // the default
	SortFinished
	SortID
	SortExecutor
	SortHostname
	SortThread
	SortExecutable
	SortState
	SortExitStatus
	SortStageIn
	SortExecution
	SortStageOut
	SortInputSize
	SortOutputSize
	SortDuration // wall time (running jobs: up to their last event)
	SortLastEvent
)

// JobQuery selects and orders jobs.
type JobQuery struct {
	States     StateSet // zero: all
	Executor   string   // exact executor id; "" = all
	Executable string   // exact executable; "" = all
	// Text: case-insensitive substring of the id, executable, hostname,
	// executor id or thread.
	Text    string
	Sort    SortKey
	Reverse bool
}

// Totals are the counts since the model started and the rates over the
// last minute.
type Totals struct {
	Running     int   // jobs running now
	Done        int64 // job.finished with exit status 0 (each attempt)
	Failed      int64 // job.finished with another exit status
	Lost        int64 // jobs currently lost
	Redelivered int64 // jobs started again (broker redelivery)
	Kept        int   // jobs held in memory (running + finished kept)
	Evicted     int64 // finished jobs dropped beyond MaxJobs

	Executors, Online, Stale, Stopped int

	Events    int64 // events received (all, anomalies included)
	Anomalies int64 // sum of the Anomalies counters

	Rates Rates // over the last minute (or since the first event, if sooner)
}

// Rates are per-second averages.
type Rates struct {
	Events        float64
	Started       float64 // jobs started /s
	Finished      float64 // jobs finished /s (done + failed)
	Failed        float64
	StageIn       float64 // stage-ins completed /s
	StageInBytes  float64 // bytes /s staged in
	Execution     float64 // executions completed /s
	StageOut      float64
	StageOutBytes float64
}

// Bucket is one second of throughput (by receive time).
type Bucket struct {
	Time          time.Time // start of the second
	Events        int
	Started       int
	Finished      int
	Failed        int
	StageIn       int
	StageInBytes  int64
	Execution     int
	StageOut      int
	StageOutBytes int64
}

// ExecStat is the timing of one executable: each stage counted when it
// ends. Percentiles come from a log-scale histogram (within 2.5 %). Beyond
// 1000 executables the rest are pooled as "(other)"; jobs whose executable
// was never sent are "(unknown)".
type ExecStat struct {
	Executable string
	Count      int64 // executions ended with a known time
	Failed     int64 // jobs finished with a non-zero exit status
	P50, P95   time.Duration
	Mean, Max  time.Duration
	// Staging against compute: mean stage times and total bytes.
	StageInMean, StageOutMean time.Duration
	InputBytes, OutputBytes   int64
}

// AnomalyKind classifies an event the model could not apply as is.
type AnomalyKind uint8

// Anomaly kinds.
const (
	AnomalyMalformed  AnomalyKind = iota + 1 // body is not a JSON object
	AnomalyInvalid                           // JSON, but no executor, no job id, or a field of the wrong type
	AnomalyUnknown                           // unknown event type
	AnomalyDuplicate                         // an event already seen
	AnomalyOutOfOrder                        // older than what is known (applied as far as it adds anything)
	AnomalyLate                              // for a job already dropped from memory
)

// String names the kind.
func (k AnomalyKind) String() string {
	if int(k) < len(anomalyNames) {
		return anomalyNames[k]
	}
	return ""
}

// Anomaly is one recent anomaly, for display.
type Anomaly struct {
	Kind       AnomalyKind
	Received   time.Time
	RoutingKey string
	Detail     string
}

// Anomalies are the counts of each kind and the most recent ones, newest
// last.
type Anomalies struct {
	Malformed, Invalid, Unknown, Duplicate, OutOfOrder, Late int64
	Recent                                                   []Anomaly
}

// Total is the sum of the counters.
func (a Anomalies) Total() int64 {
	return a.Malformed + a.Invalid + a.Unknown + a.Duplicate + a.OutOfOrder + a.Late
}

// Model is the monitor's state: events in (Apply), views out. It decodes
// the events itself and never fails on them; it never reads the clock (the
// caller passes now).
//
// A Model is not safe for concurrent use: one goroutine (the UI's update
// loop) owns it. Slices returned by the accessors are the caller's unless
// said otherwise.
type Model struct {
	m model
}

// New makes an empty model.
func New(opts Options) *Model {
	return &Model{m: newModel(opts)}
}

// Apply decodes one received event and updates the state. Anomalies are
// counted (see Anomalies) and returned as an error wrapping one of the Err
// sentinels; the model stays consistent whatever the input.
func (m *Model) Apply(msg eventbus.Message) error { return m.m.apply(msg) }

// Tick ages the state to now: executors without heartbeats turn stale,
// stage intervals older than the history window are dropped. It reports
// whether anything changed (Version moved).
func (m *Model) Tick(now time.Time) bool { return m.m.tick(now) }

// Version moves whenever anything visible changes; views can cache what
// they derived from the model until it moves.
func (m *Model) Version() uint64 { return m.m.version }

// JobsVersion moves whenever a job is added, changed or dropped.
func (m *Model) JobsVersion() uint64 { return m.m.jobsVersion }

// Latest is the receive time of the most recent event (the replay's
// clock: pass it as now when replaying); zero before any event.
func (m *Model) Latest() time.Time { return m.m.latest }

// Executors lists the executors by hostname, then first seen, then id.
func (m *Model) Executors() []ExecutorView { return m.m.executors() }

// Executor returns one executor.
func (m *Model) Executor(id string) (ExecutorView, bool) { return m.m.executor(id) }

// Threads lists an executor's threads by thread number with their stage
// intervals that end at or after since (pass the left edge of the Gantt
// chart; zero for all kept). Threads numbered 1..threads that sent nothing
// yet are listed idle.
func (m *Model) Threads(executorID string, since time.Time) []ThreadView {
	return m.m.threads(executorID, since)
}

// Jobs returns the jobs q selects, in its order: the page [offset,
// offset+limit) (limit < 0: to the end) and the number selected. The
// sorted selection is cached until JobsVersion moves or q changes, so
// calling it every frame is cheap.
func (m *Model) Jobs(q JobQuery, offset, limit int) (page []JobView, total int) {
	return m.m.jobsPage(q, offset, limit)
}

// JobIndex is the position of job id in q's selection, -1 if absent (to
// keep a cursor on a job when the order changes).
func (m *Model) JobIndex(q JobQuery, id string) int { return m.m.jobIndex(q, id) }

// Job returns a job with its timeline.
func (m *Model) Job(id string) (JobDetail, bool) { return m.m.job(id) }

// Totals returns the counts and the rates over the minute before now.
func (m *Model) Totals(now time.Time) Totals { return m.m.totals(now) }

// Throughput returns the n seconds up to now (oldest first), for
// sparklines; n is capped by Options.ThroughputWindow.
func (m *Model) Throughput(now time.Time, n int) []Bucket { return m.m.throughput(now, n) }

// ExecStats returns the timing per executable, sorted by executable.
func (m *Model) ExecStats() []ExecStat { return m.m.execStats() }

// Anomalies returns the anomaly counters and the recent ones.
func (m *Model) Anomalies() Anomalies { return m.m.anomaliesView() }

// Sentinels wrapped by the errors Apply returns, one per AnomalyKind.
var (
	ErrMalformed  = errors.New("state: malformed event")
	ErrInvalid    = errors.New("state: invalid event")
	ErrUnknown    = errors.New("state: unknown event type")
	ErrDuplicate  = errors.New("state: duplicate event")
	ErrOutOfOrder = errors.New("state: out-of-order event")
	ErrLate       = errors.New("state: event for a dropped job")
)

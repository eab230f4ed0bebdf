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

	DefaultStallAfter           = 30 * time.Second
	DefaultDeadlineWarnBefore   = 5 * time.Minute
	DefaultDeadlineWarnFraction = 0.1
	DefaultUtilisationWindow    = 5 * time.Minute
	DefaultMaxFailureGroups     = 500
	DefaultGoneAfter            = 5 * time.Minute

	// MaxGroupJobs is how many job ids a FailureGroup lists (the newest).
	MaxGroupJobs = 50

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
	// intervals without any sign of life (executor.ready, a heartbeat, a
	// job event).
	StaleIntervals int
	// MaxExecutors caps the executors kept; beyond it the stopped ones
	// without running jobs, least recently seen first, are dropped.
	MaxExecutors int
	// MaxAnomalies is how many recent anomalies Anomalies().Recent holds.
	MaxAnomalies int
	// ThroughputWindow is how much per-second throughput history is kept
	// for Throughput (sparklines); at least RateWindow.
	ThroughputWindow time.Duration

	// StallAfter: a job staging (stage-in or stage-out) whose bytes moved
	// did not grow for this long, in receive time, is stalled. Only jobs of
	// executors that send job.progress events can stall; Tick decides.
	StallAfter time.Duration
	// A running job's acknowledgement deadline is near (DeadlineWarning)
	// when less than DeadlineWarnFraction × the consumer timeout or
	// DeadlineWarnBefore, whichever is longer, is left; but never sooner
	// than half the timeout (with a 30 min timeout: 5 min before).
	DeadlineWarnBefore   time.Duration
	DeadlineWarnFraction float64
	// UtilisationWindow is the span Utilisation's busy shares are over.
	UtilisationWindow time.Duration
	// MaxFailureGroups caps FailureGroups; beyond it the group that failed
	// least recently is dropped.
	MaxFailureGroups int
	// GoneAfter: a stopped executor, or a stale one with nothing running,
	// is gone this long after its last sign of life (negative: never).
	GoneAfter time.Duration
}

// Status of an executor.
type Status string

// Executor statuses.
const (
	StatusOnline  Status = "online"
	StatusStale   Status = "stale"   // no sign of life for StaleIntervals intervals
	StatusStopped Status = "stopped" // executor.stopped received
	// StatusDraining: shutting down (executor.draining, or heartbeats
	// with draining): it takes no new job and waits for its running ones.
	StatusDraining Status = "draining"
	// StatusGone: stopped, or stale with nothing running, for
	// Options.GoneAfter: a dead executor a view may hide.
	StatusGone Status = "gone"
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
	Broker   string // the broker node (URL, password hidden) of its last executor.ready or heartbeat

	// Status: stopped after executor.stopped; stale when nothing at all
	// (executor.ready, a job event, a heartbeat) came from it for
	// StaleIntervals × Interval, so that one killed before its first
	// heartbeat goes stale too (the original executor, which sends no
	// heartbeats, stays online while it runs jobs); online otherwise.
	// Either of stopped and stale (with nothing running) turns gone
	// GoneAfter after its last sign of life; online turns draining once
	// the executor said it drains. Tick ages it.
	Status    Status
	Stopped   bool          // executor.stopped received (its Status is stopped or gone)
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
	// DoneTotal and FailedTotal are its jobs as best known: its own counts
	// from its last heartbeat (all its jobs since it started, those run
	// before the monitor started too) plus those seen finishing since;
	// Done and Failed without heartbeats.
	DoneTotal, FailedTotal int64

	// Lost: Status is stale while it had jobs running (it fell silent in
	// the middle of work: crashed, killed or cut off). Its jobs
	// stay running (they may be), and it is online again at its next
	// event. Show it as "lost".
	Lost bool
	// ConsumerTimeout is the broker's acknowledgement timeout the executor
	// assumes (heartbeats' consumer_timeout); 0 if unknown.
	ConsumerTimeout time.Duration

	// Draining: the executor began its shutdown (executor.draining, or a
	// heartbeat with draining), since DrainingSince (its timestamp), for
	// DrainReason; it waits for the jobs Waiting (their ids, running on
	// it now, by id; nil unless draining).
	Draining      bool
	DrainingSince time.Time
	DrainReason   string
	Waiting       []string
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
	// Progress and Stalled are the current job's (see JobView).
	Progress Progress
	Stalled  bool
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
	// Name is a worker-pool task's name in the workflow (job.started's
	// name), "" for the executor's jobs.
	Name string

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

	// Progress of a running job in its current phase, from job.progress
	// events; zero (Progress.Known false) before one.
	Progress Progress
	// Stalled: a running job staging whose bytes did not grow for
	// Options.StallAfter (as of the last Tick, or until they grow again).
	Stalled bool
	// Deadline is when the broker would close the channel of a running
	// job's delivery (its acknowledgement deadline, from heartbeats, or
	// job.started plus the executor's consumer timeout before the first
	// heartbeat lists it); zero when unknown or not running. DeadlineWarn
	// is from when it is near (see Options.DeadlineWarnBefore).
	Deadline     time.Time
	DeadlineWarn time.Time
}

// DeadlineLeft is the time left before the job's acknowledgement deadline
// (negative once past); false when the deadline is unknown.
func (j *JobView) DeadlineLeft(now time.Time) (time.Duration, bool) {
	if j.Deadline.IsZero() {
		return 0, false
	}
	return j.Deadline.Sub(now), true
}

// DeadlineLevel says how near the job's acknowledgement deadline is at now.
func (j *JobView) DeadlineLevel(now time.Time) DeadlineLevel {
	switch {
	case j.Deadline.IsZero():
		return DeadlineNone
	case !now.Before(j.Deadline):
		return DeadlineExpired
	case !now.Before(j.DeadlineWarn):
		return DeadlineWarning
	}
	return DeadlineOK
}

// DeadlineLevel grades a running job's acknowledgement deadline.
type DeadlineLevel uint8

// Deadline levels.
const (
	DeadlineNone    DeadlineLevel = iota // unknown, or the job is not running
	DeadlineOK                           // far
	DeadlineWarning                      // near: warn
	// DeadlineExpired: past. The broker has closed the delivery's channel
	// (RabbitMQ's PRECONDITION_FAILED) and will deliver the job again.
	DeadlineExpired
)

// String names the level: "", ok, warning, expired.
func (l DeadlineLevel) String() string {
	switch l {
	case DeadlineOK:
		return "ok"
	case DeadlineWarning:
		return "warning"
	case DeadlineExpired:
		return "expired"
	}
	return ""
}

// Progress is what the job.progress events of a running job's current
// phase said (wire.md, "Choices made by this implementation").
type Progress struct {
	Phase   string        // the phase the figures are of; "" when none came
	Updated time.Time     // receive time of the last progress event
	Elapsed time.Duration // time in the phase, as the executor measured it

	// Staging: bytes moved so far, and the total when the executor knows
	// it (stage-out). Rate is the bytes/s over the recent samples (about
	// the last 30 s; since the phase began at first), 0 while nothing
	// moves. LastGrowth is the receive time the bytes last grew, or the
	// phase began: a stall is measured from it.
	Bytes, BytesTotal  int64
	HasBytes, HasTotal bool
	Rate               float64
	HasRate            bool
	LastGrowth         time.Time

	// Execution: resident memory and CPU time of the command's process
	// group, and the cores it kept busy (CPU seconds per second) over the
	// recent samples.
	RSS      int64
	CPU      time.Duration
	CPURate  float64
	HasUsage bool
}

// Known says whether any progress event came for the current phase.
func (p *Progress) Known() bool { return p.Phase != "" }

// Fraction is Bytes/BytesTotal (0..1), when the total is known.
func (p *Progress) Fraction() (float64, bool) {
	if !p.HasTotal || !p.HasBytes || p.BytesTotal <= 0 {
		return 0, false
	}
	return min(max(float64(p.Bytes)/float64(p.BytesTotal), 0), 1), true
}

// Remaining estimates the staging time left from the total and the
// current rate.
func (p *Progress) Remaining() (time.Duration, bool) {
	if !p.HasTotal || !p.HasBytes || !p.HasRate || p.Rate <= 0 {
		return 0, false
	}
	left := max(p.BytesTotal-p.Bytes, 0)
	return seconds(float64(left) / p.Rate), true
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
	// FailureGroup is the Key of the failure group of its last failure
	// ("" if it did not fail); Signature that group's signature.
	FailureGroup string
	Signature    string
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
	// SortDeadline: by acknowledgement deadline, soonest first; jobs
	// without one last.
	SortDeadline
)

// JobFlags are marks of a job a JobQuery can require.
type JobFlags uint8

// Job flags.
const (
	FlagStalled      JobFlags = 1 << iota // staging and stalled
	FlagRedelivered                       // JobView.Redelivered
	FlagNearDeadline                      // deadline near or past as of the last Tick
	FlagPartial                           // JobView.Partial
)

// JobQuery selects and orders jobs.
type JobQuery struct {
	States     StateSet // zero: all
	Executor   string   // exact executor id; "" = all
	Executable string   // exact executable; "" = all
	// Text: case-insensitive substring of the id, executable, hostname,
	// executor id, thread, state (running, done, failed, lost) or the
	// first line of the stderr tail (else of the first exception); or the
	// exit status: "137" (also matched as a substring of the rest) or
	// "exit 137" (the exit status only). The events do not carry a job's
	// arguments, so they cannot be matched.
	Text    string
	Sort    SortKey
	Reverse bool
	// Flags: only the jobs that have all of them (zero: no condition).
	Flags JobFlags
	// Group: only the jobs of this failure group (FailureGroup.Key)
	// whose last attempt failed into it; "" = all.
	Group string
}

// Totals are the counts since the model started and the rates over the
// last minute.
type Totals struct {
	Running     int   // jobs running now
	Done        int64 // job.finished with exit status 0 (each attempt) seen by this model
	Failed      int64 // job.finished with another exit status seen by this model
	Lost        int64 // jobs currently lost
	Redelivered int64 // jobs started again (broker redelivery)
	Kept        int   // jobs held in memory (running + finished kept)
	Evicted     int64 // finished jobs dropped beyond MaxJobs

	// ExecutorsDone and ExecutorsFailed are the sums of the executors'
	// DoneTotal and FailedTotal (kept executors only): more than Done and
	// Failed when executors ran jobs before the monitor started.
	ExecutorsDone, ExecutorsFailed int64

	// Executors are all those kept; by status: Online, Draining, Stale
	// (LOST ones included), Stopped and Gone. Live are those neither
	// stopped nor gone.
	Executors, Online, Draining, Stale, Stopped, Gone, Live int

	Events    int64 // events received (all, anomalies included)
	Anomalies int64 // sum of the Anomalies counters

	// Stalled running jobs (as of the last Tick), running jobs whose
	// acknowledgement deadline is near or past at now, and lost executors
	// (stale with jobs running).
	Stalled, NearDeadline, LostExecutors int
	// FailureGroups is the number of failure groups kept.
	FailureGroups int

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
	// Total time spent in each stage (counted when the stage ends).
	StageInTotal, ExecutionTotal, StageOutTotal time.Duration
}

// StagingShare is the share of the executable's time spent staging:
// (stage-in + stage-out) / (stage-in + execution + stage-out); 0 when
// nothing was timed.
func (s *ExecStat) StagingShare() float64 {
	staging := s.StageInTotal + s.StageOutTotal
	if all := staging + s.ExecutionTotal; all > 0 {
		return float64(staging) / float64(all)
	}
	return 0
}

// FailureGroup is failed jobs (exit status not 0) alike: the same
// executable, exit status, stderr signature and host.
type FailureGroup struct {
	// Key identifies the group (for JobQuery.Group); opaque.
	Key        string
	Executable string
	ExitStatus int
	HasExit    bool
	Hostname   string
	// Signature is the first line of the stderr tail (its first complete
	// line when the tail was cut; the first exception when stderr was
	// empty), with numbers and hexadecimal ids written #, so that the
	// failures that differ only in a file number, a pid or an id fall in
	// one group. Line is that line as the newest failure wrote it.
	Signature string
	Line      string
	// Count is every failure seen in the group (exact, whatever was
	// dropped from memory); First and Last the times (job.finished's
	// timestamp) of the oldest and newest.
	Count       int64
	First, Last time.Time
	// Jobs are the ids of the newest failures, newest first, at most
	// MaxGroupJobs (some may have been dropped from memory since, or
	// started again: JobQuery.Group lists those kept that still failed so).
	Jobs []string
}

// Utilisation is how a thread, or an executor's threads together, spent
// the utilisation window: shares (0..1) of Span × Threads.
type Utilisation struct {
	// Span is the time the shares are of: Options.UtilisationWindow up to
	// now, or less when the executor was seen for less (or stopped).
	Span                         time.Duration
	Threads                      int
	StageIn, Execution, StageOut float64
}

// Staging is the share spent staging (stage-in + stage-out).
func (u Utilisation) Staging() float64 { return u.StageIn + u.StageOut }

// Busy is the share spent running jobs.
func (u Utilisation) Busy() float64 { return min(u.StageIn+u.Execution+u.StageOut, 1) }

// Idle is the share spent without a job.
func (u Utilisation) Idle() float64 { return max(1-u.Busy(), 0) }

// ThreadUtilisation is one thread's Utilisation.
type ThreadUtilisation struct {
	Thread string // as ThreadView.Thread
	Slot   int
	Utilisation
}

// StorageRate is the staging traffic of one storage backend in one
// direction. Jobs do not say in their events which storage they used: a
// job's transfers are attributed to its executor's default storage (the
// storage of executor.ready), though a job's options may choose another;
// "(unknown)" when the executor's ready event was not seen.
type StorageRate struct {
	Storage   string
	Direction string // PhaseStageIn or PhaseStageOut
	// Rate is bytes/s over the last RateWindow (receive time), counting
	// the bytes of transfers in progress as their progress events report
	// them, the rest when the stage ends.
	Rate float64
	// Bytes, Transfers and Time are the totals of the stages finished.
	Bytes     int64
	Transfers int64
	Time      time.Duration
	Active    int // stages in progress now
}

// Speed is the mean speed of one job's staging (Bytes / Time), in bytes/s.
func (s StorageRate) Speed() float64 {
	if s.Time <= 0 {
		return 0
	}
	return float64(s.Bytes) / s.Time.Seconds()
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

// Tick ages the state to now: executors without heartbeats turn stale
// (lost if they had jobs running), staging jobs whose bytes stopped
// growing turn stalled, deadlines near, stage intervals older than the
// history window are dropped. It reports whether anything changed
// (Version moved).
func (m *Model) Tick(now time.Time) bool { return m.m.tick(now) }

// Version moves whenever anything visible changes; views can cache what
// they derived from the model until it moves.
func (m *Model) Version() uint64 { return m.m.version }

// JobsVersion moves whenever a job is added, changed or dropped (its
// progress included).
func (m *Model) JobsVersion() uint64 { return m.m.jobsVersion + m.m.progressVersion }

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

// FailureGroups returns the failure groups, the most recent failure first.
func (m *Model) FailureGroups() []FailureGroup { return m.m.failureGroups() }

// Utilisation returns how an executor's threads spent the utilisation
// window up to now: together, and per thread in the order of Threads
// (idle lanes included). False for an unknown executor or an empty span.
func (m *Model) Utilisation(executorID string, now time.Time) (Utilisation, []ThreadUtilisation, bool) {
	return m.m.utilisation(executorID, now)
}

// ClusterUtilisation is Utilisation over the threads of all the executors
// that are not stopped.
func (m *Model) ClusterUtilisation(now time.Time) Utilisation { return m.m.clusterUtilisation(now) }

// Diagnosis is one line on an executor whose threads were mostly idle or
// mostly staging over the utilisation window, such as "exec 31%, staging
// 58%: transfers dominate" or "idle 80%: too few jobs for 8 threads"; ""
// when neither (or when it is not online, or was seen for less than 30 s).
func (m *Model) Diagnosis(executorID string, now time.Time) string {
	return m.m.diagnosis(executorID, now)
}

// Queues are the job queues the executors consume (from their heartbeats
// and executor.ready) and those sampled, by name, with the broker's
// latest counts, rates, time to drain and a diagnosis.
func (m *Model) Queues(now time.Time) []QueueView { return m.m.queuesView(now) }

// SetQueueSample records what the broker said of the job queue name (a
// passive declare).
func (m *Model) SetQueueSample(name string, s QueueSample) { m.m.setQueueSample(name, s) }

// StorageRates returns the staging traffic per storage backend and
// direction, by storage then direction (stage-in first).
func (m *Model) StorageRates(now time.Time) []StorageRate { return m.m.storageRates(now) }

// Sentinels wrapped by the errors Apply returns, one per AnomalyKind.
var (
	ErrMalformed  = errors.New("state: malformed event")
	ErrInvalid    = errors.New("state: invalid event")
	ErrUnknown    = errors.New("state: unknown event type")
	ErrDuplicate  = errors.New("state: duplicate event")
	ErrOutOfOrder = errors.New("state: out-of-order event")
	ErrLate       = errors.New("state: event for a dropped job")
)

package eventbus

import (
	"strings"
	"time"
)

// Event types: the routing key without the job id part (wire.md §3).
const (
	TypeExecutorReady     = "executor.ready"
	TypeExecutorHeartbeat = "executor.heartbeat"
	TypeExecutorStopped   = "executor.stopped"
	TypeExecutorDraining  = "executor.draining"
	TypeJobStarted        = "job.started"
	TypeStageInStarted    = "job.stage-in.started"
	TypeStageInFinished   = "job.stage-in.finished"
	TypeExecStarted       = "job.execution.started"
	TypeExecFinished      = "job.execution.finished"
	TypeStageOutStarted   = "job.stage-out.started"
	TypeStageOutFinished  = "job.stage-out.finished"
	TypeJobFinished       = "job.finished"
	TypeJobProgress       = "job.progress"
)

// Phases of a running job, as used in heartbeats' running lists.
const (
	PhaseStageIn   = "stage-in"
	PhaseExecution = "execution"
	PhaseStageOut  = "stage-out"
)

// Event is one message on the events exchange. It is a flat union of the fields
// of every event type in wire.md §3; a field is present in the JSON only for the
// types that carry it (pointer fields are the ones whose zero value is
// meaningful, such as exit_status 0 or bytes 0).
type Event struct {
	Executor  string  `json:"executor"`
	Timestamp float64 `json:"timestamp"`
	Type      string  `json:"type"`

	// Job events.
	ID     string `json:"id,omitempty"`
	Job    string `json:"job,omitempty"`
	Thread int64  `json:"thread,omitempty"`

	// executor.ready
	Hostname string `json:"hostname,omitempty"`
	Threads  int    `json:"threads,omitempty"`
	Storage  string `json:"storage,omitempty"`
	Version  string `json:"version,omitempty"`
	Queue    string `json:"queue,omitempty"`
	// executor.ready and executor.heartbeat: the broker node the executor
	// is connected to (its URL, password hidden)
	Broker string `json:"broker,omitempty"`

	// executor.heartbeat
	Busy       *int          `json:"busy,omitempty"`
	JobsDone   *int64        `json:"jobs_done,omitempty"`
	JobsFailed *int64        `json:"jobs_failed,omitempty"`
	Running    *[]RunningJob `json:"running,omitempty"`
	Interval   float64       `json:"interval,omitempty"`

	// executor.heartbeat: the broker's acknowledgement timeout the
	// executor assumes (seconds); running jobs carry their deadline.
	ConsumerTimeout float64 `json:"consumer_timeout,omitempty"`

	// executor.stopped, executor.draining
	Reason string `json:"reason,omitempty"`

	// executor.heartbeat while the executor drains (it takes no new job
	// and waits for its running ones)
	Draining *bool `json:"draining,omitempty"`

	// executor.heartbeat: the broker is holding back the executor's
	// publishes (connection.blocked, flow control) since Blocked was
	// last true; false after connection.unblocked, absent when never
	// blocked. MaxDeliveries is the executor's max_deliveries (0: off).
	Blocked       *bool `json:"blocked,omitempty"`
	MaxDeliveries int   `json:"max_deliveries,omitempty"`

	// job.progress
	Phase      string   `json:"phase,omitempty"`
	Elapsed    *float64 `json:"elapsed,omitempty"`
	BytesTotal *int64   `json:"bytes_total,omitempty"`
	RSS        *int64   `json:"rss,omitempty"` // bytes, the command's process group
	CPU        *float64 `json:"cpu,omitempty"` // seconds, the command's process group

	// job.started, job.execution.*, job.finished
	Executable  string `json:"executable,omitempty"`
	Redelivered *bool  `json:"redelivered,omitempty"`
	// job.started from a quorum queue: the delivery's x-delivery-count
	// (how many times it was delivered before).
	DeliveryCount *int64 `json:"delivery_count,omitempty"`
	// job.started of a worker-pool task: the task's name in the workflow
	// (its queue is in Queue).
	Name string `json:"name,omitempty"`

	// stage finished events, job.execution.finished
	Time  *float64 `json:"time,omitempty"`
	Bytes *int64   `json:"bytes,omitempty"`

	// job.execution.finished, job.finished
	// job.execution.finished carries the metrics known when the command
	// ended (its resource use and the stage-in figures); job.finished the
	// complete object.
	ExitStatus *int     `json:"exit_status,omitempty"`
	Metrics    *Metrics `json:"metrics,omitempty"`
	Exceptions []string `json:"exceptions,omitempty"`
	StderrTail string   `json:"stderr_tail,omitempty"`
}

// RunningJob is one entry of a heartbeat's running list.
type RunningJob struct {
	ID         string  `json:"id"`
	Thread     int64   `json:"thread"`
	Phase      string  `json:"phase"`
	Since      float64 `json:"since"`
	Executable string  `json:"executable"`
	// Deadline is when the broker's consumer timeout would close the
	// channel of the job's delivery (UNIX seconds).
	Deadline float64 `json:"deadline,omitempty"`
}

// Timestamps of a job's stages, keyed with the original executor's spelling.
// Stage timestamps are absent for storage without staging (local).
type Timestamps struct {
	JobStarted        float64 `json:"job.started"`
	StageInStarted    float64 `json:"stage_in.started,omitempty"`
	StageInFinished   float64 `json:"stage_in.finished,omitempty"`
	ExecutionStarted  float64 `json:"execution.started,omitempty"`
	ExecutionFinished float64 `json:"execution.finished,omitempty"`
	StageOutStarted   float64 `json:"stage_out.started,omitempty"`
	StageOutFinished  float64 `json:"stage_out.finished,omitempty"`
	JobFinished       float64 `json:"job.finished"`
}

// Metrics is the metrics object of a reply and of job.finished (wire.md §4).
type Metrics struct {
	Executor   string     `json:"executor"`
	Thread     int64      `json:"thread"`
	Hostname   string     `json:"hostname"`
	Timestamps Timestamps `json:"timestamps"`
	StageIn    float64    `json:"stage_in"`
	Execution  float64    `json:"execution"`
	StageOut   float64    `json:"stage_out"`
	InputSize  int64      `json:"input_size"`
	OutputSize int64      `json:"output_size"`
	CPUUser    float64    `json:"cpu_user"`
	CPUSystem  float64    `json:"cpu_system"`
	MaxRSS     int64      `json:"max_rss"`
	// ProcessesEnded counts the processes the command left running when
	// it exited, ended by the executor (absent when none).
	ProcessesEnded int64 `json:"processes_ended,omitempty"`
}

// Reply is the answer to a job message (wire.md §2).
type Reply struct {
	ExitStatus int      `json:"exit_status"`
	Stdout     string   `json:"stdout"`
	Stderr     string   `json:"stderr"`
	Exceptions []string `json:"exceptions"`
	Metrics    *Metrics `json:"metrics,omitempty"`
}

// Exit statuses outside the command's own 0..255 (wire.md §2).
const (
	ExitNotStarted = -1
	ExitJobError   = -2
	ExitTimeout    = -3
)

// Timestamp converts t to the events' UNIX seconds float.
func Timestamp(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// FromTimestamp converts the events' UNIX seconds float back to a time.
func FromTimestamp(ts float64) time.Time {
	if ts == 0 {
		return time.Time{}
	}
	sec := int64(ts)
	return time.Unix(sec, int64((ts-float64(sec))*1e9))
}

// JobRoutingKey builds `job.{id}.{suffix}` for a job event; suffix is the type
// without its "job." prefix ("started", "stage-in.finished", ...). The
// characters '.', '*' and '#' of the id are replaced by '_' in the key only.
func JobRoutingKey(id, eventType string) string {
	suffix := strings.TrimPrefix(eventType, "job.")
	return "job." + routingSafe(id) + "." + suffix
}

func routingSafe(id string) string {
	if !strings.ContainsAny(id, ".*#") {
		return id
	}
	b := []byte(id)
	for i, c := range b {
		if c == '.' || c == '*' || c == '#' {
			b[i] = '_'
		}
	}
	return string(b)
}

// RoutingKey returns the routing key an event is published with.
func (e *Event) RoutingKey() string {
	if strings.HasPrefix(e.Type, "job.") {
		return JobRoutingKey(e.ID, e.Type)
	}
	return e.Type
}

// Ptr returns a pointer to v, for the optional fields of Event.
func Ptr[T any](v T) *T { return &v }

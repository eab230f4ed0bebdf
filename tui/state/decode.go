package state

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// wireEvent is a lenient reading of an event body: every field of every
// event type, with the ones whose type varies between executors (thread,
// exit_status) kept raw.
type wireEvent struct {
	Executor  string  `json:"executor"`
	Timestamp float64 `json:"timestamp"`
	Type      string  `json:"type"`

	ID     string          `json:"id"`
	Job    string          `json:"job"`
	Thread json.RawMessage `json:"thread"`

	Hostname string `json:"hostname"`
	Threads  int    `json:"threads"`
	Storage  string `json:"storage"`
	Version  string `json:"version"`
	Queue    string `json:"queue"`

	Busy       *int           `json:"busy"`
	JobsDone   *int64         `json:"jobs_done"`
	JobsFailed *int64         `json:"jobs_failed"`
	Running    *[]wireRunning `json:"running"`
	Interval   float64        `json:"interval"`

	ConsumerTimeout float64 `json:"consumer_timeout"`

	Reason string `json:"reason"`

	Phase      string   `json:"phase"`
	Elapsed    *float64 `json:"elapsed"`
	BytesTotal *int64   `json:"bytes_total"`
	RSS        *int64   `json:"rss"`
	CPU        *float64 `json:"cpu"`

	Executable  string `json:"executable"`
	Redelivered *bool  `json:"redelivered"`
	Name        string `json:"name"` // job.started of a worker-pool task

	Time  *float64 `json:"time"`
	Bytes *int64   `json:"bytes"`

	ExitStatus json.RawMessage `json:"exit_status"`
	Metrics    *wireMetrics    `json:"metrics"`
	Exceptions []string        `json:"exceptions"`
	StderrTail string          `json:"stderr_tail"`

	// store holds what the pointer fields point to, reused from one event
	// to the next (see reset).
	store wireStore
}

type wireStore struct {
	busy                 int
	jobsDone, jobsFailed int64
	redelivered          bool
	time                 float64
	bytes                int64
	running              []wireRunning
	elapsed, cpu         float64
	bytesTotal, rss      int64
	metrics              wireMetrics
	exceptions           []string
}

// reset clears ev for the next event, keeping its buffers.
func (ev *wireEvent) reset() {
	running, exceptions := ev.store.running[:0], ev.store.exceptions[:0]
	*ev = wireEvent{}
	ev.store.running, ev.store.exceptions = running, exceptions
}

type wireRunning struct {
	ID         string          `json:"id"`
	Job        string          `json:"job"`
	Thread     json.RawMessage `json:"thread"`
	Phase      string          `json:"phase"`
	Since      float64         `json:"since"`
	Executable string          `json:"executable"`
	Deadline   float64         `json:"deadline"`
}

type wireMetrics struct {
	Executor   string              `json:"executor"`
	Thread     json.RawMessage     `json:"thread"`
	Hostname   string              `json:"hostname"`
	Timestamps eventbus.Timestamps `json:"timestamps"`
	StageIn    float64             `json:"stage_in"`
	Execution  float64             `json:"execution"`
	StageOut   float64             `json:"stage_out"`
	InputSize  int64               `json:"input_size"`
	OutputSize int64               `json:"output_size"`
	CPUUser    float64             `json:"cpu_user"`
	CPUSystem  float64             `json:"cpu_system"`
	MaxRSS     int64               `json:"max_rss"`
}

// threadKey renders a raw thread id as a string: an integer in decimal
// (however large), an integral float as an integer, a string as it is.
// num is the thread as a number, -1 when it is not one.
func threadKey(raw json.RawMessage) (key string, num int64) {
	if len(raw) == 0 {
		return "", -1
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", -1
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return s, n
		}
		return s, -1
	case c == '-' || (c >= '0' && c <= '9'):
		lit := string(raw)
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			if n >= 0 && n < int64(len(smallInts)) {
				return smallInts[n], n
			}
			return lit, n
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return lit, -1
		}
		if f == float64(int64(f)) {
			n := int64(f)
			return strconv.FormatInt(n, 10), n
		}
		return strconv.FormatFloat(f, 'f', -1, 64), -1
	default: // null, true, objects
		return "", -1
	}
}

// smallInts are the thread keys of this executor's slots, not allocated
// per event.
var smallInts = func() [65]string {
	var a [65]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

// exitStatus reads a raw exit status: a JSON integer, an integral float or
// a string holding one.
func exitStatus(raw json.RawMessage) (int, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	lit := string(raw)
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		lit = strings.TrimSpace(s)
	}
	if n, err := strconv.Atoi(lit); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(lit, 64); err == nil && f == float64(int(f)) {
		return int(f), true
	}
	return 0, false
}

// Ranks: a job event's place in a job's life. Events of one job are
// published in this order.
const (
	rankStarted = iota
	rankStageInStarted
	rankStageInFinished
	rankExecStarted
	rankExecFinished
	rankStageOutStarted
	rankStageOutFinished
	rankFinished
	nRanks

	rankProgress   = -1
	rankHeartbeat  = -2
	rankReady      = -3
	rankStopped    = -4
	rankNotAnEvent = -5
)

var rankTypes = [nRanks]string{
	eventbus.TypeJobStarted,
	eventbus.TypeStageInStarted,
	eventbus.TypeStageInFinished,
	eventbus.TypeExecStarted,
	eventbus.TypeExecFinished,
	eventbus.TypeStageOutStarted,
	eventbus.TypeStageOutFinished,
	eventbus.TypeJobFinished,
}

// typeRank maps an event type (any spelling) to its rank.
func typeRank(t string) int {
	switch t {
	case eventbus.TypeJobStarted:
		return rankStarted
	case eventbus.TypeStageInStarted, "job.stage_in.started":
		return rankStageInStarted
	case eventbus.TypeStageInFinished, "job.stage_in.finished":
		return rankStageInFinished
	case eventbus.TypeExecStarted:
		return rankExecStarted
	case eventbus.TypeExecFinished:
		return rankExecFinished
	case eventbus.TypeStageOutStarted, "job.stage_out.started":
		return rankStageOutStarted
	case eventbus.TypeStageOutFinished, "job.stage_out.finished":
		return rankStageOutFinished
	case eventbus.TypeJobFinished:
		return rankFinished
	case eventbus.TypeJobProgress:
		return rankProgress
	case eventbus.TypeExecutorHeartbeat:
		return rankHeartbeat
	case eventbus.TypeExecutorReady:
		return rankReady
	case eventbus.TypeExecutorStopped:
		return rankStopped
	}
	return rankNotAnEvent
}

// jobKeySuffixes are the routing key endings of job events, after the id;
// the two-part ones first.
var jobKeySuffixes = []string{
	".stage-in.started", ".stage-in.finished", ".stage_in.started", ".stage_in.finished",
	".execution.started", ".execution.finished",
	".stage-out.started", ".stage-out.finished", ".stage_out.started", ".stage_out.finished",
	".started", ".finished", ".progress",
}

// parseKey derives the event type and, for a job event, the job id (with
// '.', '*', '#' replaced by '_') from a routing key.
func parseKey(key string) (typ, id string) {
	if !strings.HasPrefix(key, "job.") {
		return key, ""
	}
	for _, suf := range jobKeySuffixes {
		if len(key) > len("job.")+len(suf) && strings.HasSuffix(key, suf) {
			return "job" + suf, key[len("job.") : len(key)-len(suf)]
		}
	}
	return key, ""
}

// classify picks the event's rank: from the body's type if known, else
// from the routing key.
func classify(bodyType, key string) int {
	if r := typeRank(bodyType); r != rankNotAnEvent {
		return r
	}
	kt, _ := parseKey(key)
	return typeRank(kt)
}

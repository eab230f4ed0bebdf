package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	segjson "github.com/segmentio/encoding/json"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// decode reads an event body into ev by encoding/json's rules, which the
// model relies on:
//
//   - a body that is not a JSON object is malformed;
//   - a value of the wrong type leaves its field as it was and is reported
//     (the first one) as invalid, the rest of the body being read;
//   - null leaves a field as it was, but sets a pointer or slice to nil;
//   - keys match the fields' names ignoring case; invalid UTF-8 in a
//     string is replaced by U+FFFD.
//
// It is github.com/segmentio/encoding/json, which follows those rules
// except that it stops at a value of the wrong type: such a body (sent only
// by a broken executor) is read again by encoding/json.
// TestDecodeMatchesEncodingJSON holds it to encoding/json.
//
// The model must ingest at least 200k events/s. Measured for issue 15, the
// whole model's ingestion (BenchmarkApply) with each decoder swapped in
// (BenchmarkApplyDecoders, -tags decoderbench; 5 interleaved rounds of
// -benchtime 2s on a shared 2-core VM with a load average of 5 to 8, so
// the wall-clock figures are low and noisy; events/cpu-s counts the
// process's CPU time, the goal's measure; medians, per event):
//
//	decoder                              events/cpu-s  events/s  allocs  bytes
//	hand-written (fastjson.go, removed)      420k        196k       3     278
//	encoding/json Unmarshal                  130k         60k      15     687
//	encoding/json, one Decoder reused        142k         96k      10     421
//	go-json-experiment/json v1.27.2          304k        285k       7     383
//	segmentio/encoding/json v0.5.4           372k        329k      10     423
//	bytedance/sonic v1.15.5 (ConfigStd)      300k        237k      12     761
//
// Two earlier runs, not interleaved, at a load average of 12 to 19, put
// every decoder lower and the libraries close to the goal (segmentio 296k
// and 198k, sonic 252k and 238k, go-json-experiment 188k and 219k,
// hand-written 302k and 442k): measure again on a quiet machine.
//
// The decoding step alone (BenchmarkDecoders, a noisier earlier run):
// hand-written 1.1M events/cpu-s, segmentio 0.86M, sonic 0.53M,
// go-json-experiment 0.44M, encoding/json 0.18M to 0.24M. Three libraries
// reach the goal, so the 711-line hand-written decoder was replaced, by the
// fastest of them: segmentio is pure Go, keeps encoding/json's API, tags
// and error types, and is maintained (v0.5.4, 2026). sonic's JIT runs only
// on amd64 and arm64 and on the Go releases it knows (it falls back to
// encoding/json elsewhere) and brings six modules; go-json-experiment is
// the future encoding/json/v2, a candidate once that is in the standard
// library (it matches keys exactly and stops at the first error). The
// comparison is still in decoders_test.go and decoders_bench_test.go, less
// the hand-written decoder and sonic (in the history of those files, the
// commit "tui/state: decoder comparison benchmark").
//
// With it, BenchmarkApply gave 343k to 426k events/cpu-s (3 runs of 2 s,
// load average 9 to 11) and the heap BenchmarkMemory100kJobs holds is
// unchanged (11.6 MiB).
//
// intern is not used: the model shares the strings it keeps itself
// (model.str). decode is a variable only for that comparison, which swaps
// it.
var decode = decodeSegmentio

func decodeSegmentio(body []byte, ev *wireEvent, _ map[string]string) (malformed, invalid error) {
	*ev = wireEvent{}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errNotObject, nil
	}
	err := segjson.Unmarshal(body, ev)
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return err, nil
	}
	*ev = wireEvent{}
	return stdDecodeErrors(json.Unmarshal(body, ev))
}

var errNotObject = errors.New("body is not a JSON object")

// stdDecodeErrors sorts an error of encoding/json into malformed (not JSON)
// and invalid (a value of the wrong type).
func stdDecodeErrors(err error) (malformed, invalid error) {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return nil, err
	}
	return err, nil
}

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
	Broker   string `json:"broker"`

	Busy       *int           `json:"busy"`
	JobsDone   *int64         `json:"jobs_done"`
	JobsFailed *int64         `json:"jobs_failed"`
	Running    *[]wireRunning `json:"running"`
	Interval   float64        `json:"interval"`

	ConsumerTimeout float64 `json:"consumer_timeout"`
	Draining        *bool   `json:"draining"`
	Blocked         *bool   `json:"blocked"`
	MaxDeliveries   int     `json:"max_deliveries"`

	Reason string `json:"reason"`

	Phase      string   `json:"phase"`
	Elapsed    *float64 `json:"elapsed"`
	BytesTotal *int64   `json:"bytes_total"`
	RSS        *int64   `json:"rss"`
	CPU        *float64 `json:"cpu"`

	Executable  string `json:"executable"`
	Redelivered *bool  `json:"redelivered"`
	// DeliveryCount: job.started's x-delivery-count (quorum queues).
	DeliveryCount *int64 `json:"delivery_count"`
	Name          string `json:"name"` // job.started of a worker-pool task

	Time  *float64 `json:"time"`
	Bytes *int64   `json:"bytes"`

	ExitStatus json.RawMessage `json:"exit_status"`
	Metrics    *wireMetrics    `json:"metrics"`
	Exceptions []string        `json:"exceptions"`
	StderrTail string          `json:"stderr_tail"`
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
	// ProcessesEnded: what the command left running, ended at its exit.
	ProcessesEnded int64 `json:"processes_ended"`
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
	rankDraining   = -6
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
	case eventbus.TypeExecutorDraining:
		return rankDraining
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

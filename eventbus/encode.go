package eventbus

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The executor publishes several events per job; encoding them through
// encoding/json's reflection was about a tenth of its CPU on trivial jobs.
// AppendJSON writes the same bytes as json.Marshal, field by field in the
// struct's order with the same omitempty rules, number formats and string
// escaping (HTML characters, U+2028/2029, invalid UTF-8), into a buffer the
// caller may reuse. encode_test.go holds it to json.Marshal, field by field:
// a field added to Event, RunningJob, Metrics, Timestamps or Reply without
// its line here fails that test.

// AppendJSON appends the JSON encoding of e to b, byte for byte what
// json.Marshal(e) gives. Like json.Marshal it refuses NaN and infinite
// numbers (the error is a *json.UnsupportedValueError).
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	if !encoderCurrent {
		return appendMarshal(b, e)
	}
	var w jsonWriter
	w.b = b
	w.str(`{"executor":`, e.Executor)
	w.float(`,"timestamp":`, e.Timestamp)
	w.str(`,"type":`, e.Type)
	w.strOmit(`,"id":`, e.ID)
	w.strOmit(`,"job":`, e.Job)
	w.intOmit(`,"thread":`, e.Thread)
	w.strOmit(`,"hostname":`, e.Hostname)
	w.intOmit(`,"threads":`, int64(e.Threads))
	w.strOmit(`,"storage":`, e.Storage)
	w.strOmit(`,"version":`, e.Version)
	w.strOmit(`,"queue":`, e.Queue)
	w.strOmit(`,"broker":`, e.Broker)
	if e.Busy != nil {
		w.int(`,"busy":`, int64(*e.Busy))
	}
	if e.JobsDone != nil {
		w.int(`,"jobs_done":`, *e.JobsDone)
	}
	if e.JobsFailed != nil {
		w.int(`,"jobs_failed":`, *e.JobsFailed)
	}
	if e.Running != nil {
		w.raw(`,"running":`)
		w.running(*e.Running)
	}
	w.floatOmit(`,"interval":`, e.Interval)
	w.floatOmit(`,"consumer_timeout":`, e.ConsumerTimeout)
	w.strOmit(`,"reason":`, e.Reason)
	if e.Draining != nil {
		w.bool(`,"draining":`, *e.Draining)
	}
	if e.Blocked != nil {
		w.bool(`,"blocked":`, *e.Blocked)
	}
	if e.MaxDeliveries != 0 {
		w.int(`,"max_deliveries":`, int64(e.MaxDeliveries))
	}
	w.strOmit(`,"phase":`, e.Phase)
	if e.Elapsed != nil {
		w.float(`,"elapsed":`, *e.Elapsed)
	}
	if e.BytesTotal != nil {
		w.int(`,"bytes_total":`, *e.BytesTotal)
	}
	if e.RSS != nil {
		w.int(`,"rss":`, *e.RSS)
	}
	if e.CPU != nil {
		w.float(`,"cpu":`, *e.CPU)
	}
	w.strOmit(`,"executable":`, e.Executable)
	if e.Redelivered != nil {
		w.bool(`,"redelivered":`, *e.Redelivered)
	}
	if e.DeliveryCount != nil {
		w.int(`,"delivery_count":`, *e.DeliveryCount)
	}
	w.strOmit(`,"name":`, e.Name)
	if e.Time != nil {
		w.float(`,"time":`, *e.Time)
	}
	if e.Bytes != nil {
		w.int(`,"bytes":`, *e.Bytes)
	}
	if e.ExitStatus != nil {
		w.int(`,"exit_status":`, int64(*e.ExitStatus))
	}
	if e.Metrics != nil {
		w.raw(`,"metrics":`)
		w.metrics(e.Metrics)
	}
	if len(e.Exceptions) > 0 {
		w.raw(`,"exceptions":`)
		w.strings(e.Exceptions)
	}
	w.strOmit(`,"stderr_tail":`, e.StderrTail)
	w.b = append(w.b, '}')
	return w.b, w.err
}

// AppendJSON appends the JSON encoding of r to b, byte for byte what
// json.Marshal(r) gives.
func (r *Reply) AppendJSON(b []byte) ([]byte, error) {
	if !encoderCurrent {
		return appendMarshal(b, r)
	}
	var w jsonWriter
	w.b = b
	w.int(`{"exit_status":`, int64(r.ExitStatus))
	w.str(`,"stdout":`, r.Stdout)
	w.str(`,"stderr":`, r.Stderr)
	w.raw(`,"exceptions":`)
	w.strings(r.Exceptions)
	if r.Metrics != nil {
		w.raw(`,"metrics":`)
		w.metrics(r.Metrics)
	}
	w.b = append(w.b, '}')
	return w.b, w.err
}

// encodedFields are the fields, in order, the hand-written encoder knows of
// each type. When a type has others (a field added without its line in
// AppendJSON), encoderCurrent is false and AppendJSON falls back to
// json.Marshal, so that no field is ever lost; encode_test.go fails then.
var encodedFields = map[reflect.Type][]string{
	reflect.TypeFor[Event](): {"Executor", "Timestamp", "Type", "ID", "Job", "Thread", "Hostname", "Threads",
		"Storage", "Version", "Queue", "Broker", "Busy", "JobsDone", "JobsFailed", "Running", "Interval", "ConsumerTimeout",
		"Reason", "Draining", "Blocked", "MaxDeliveries", "Phase", "Elapsed", "BytesTotal", "RSS", "CPU", "Executable", "Redelivered", "DeliveryCount", "Name",
		"Time", "Bytes", "ExitStatus", "Metrics", "Exceptions", "StderrTail"},
	reflect.TypeFor[RunningJob](): {"ID", "Thread", "Phase", "Since", "Executable", "Deadline"},
	reflect.TypeFor[Timestamps](): {"JobStarted", "StageInStarted", "StageInFinished", "ExecutionStarted",
		"ExecutionFinished", "StageOutStarted", "StageOutFinished", "JobFinished"},
	reflect.TypeFor[Metrics](): {"Executor", "Thread", "Hostname", "Timestamps", "StageIn", "Execution",
		"StageOut", "InputSize", "OutputSize", "CPUUser", "CPUSystem", "MaxRSS", "ProcessesEnded"},
	reflect.TypeFor[Reply](): {"ExitStatus", "Stdout", "Stderr", "Exceptions", "Metrics"},
}

var encoderCurrent = encoderMatches()

// encoderMatches reports whether every type has exactly the fields of
// encodedFields, in that order.
func encoderMatches() bool {
	for t, names := range encodedFields {
		if t.NumField() != len(names) {
			return false
		}
		for i, n := range names {
			if t.Field(i).Name != n {
				return false
			}
		}
	}
	return true
}

func appendMarshal(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}

// Buffers are pooled encoding buffers for events: Get one, append to it,
// Put it back once the message was handed to the broker client (which does
// not keep it).
var bufferPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// GetBuffer returns an empty buffer from the pool.
func GetBuffer() *[]byte {
	bp := bufferPool.Get().(*[]byte)
	*bp = (*bp)[:0]
	return bp
}

// PutBuffer returns a buffer to the pool; large ones (a job.finished with a
// long stderr tail) are dropped so that the pool stays small.
func PutBuffer(bp *[]byte) {
	if cap(*bp) > 16<<10 {
		return
	}
	bufferPool.Put(bp)
}

type jsonWriter struct {
	b   []byte
	err error
}

func (w *jsonWriter) raw(s string) { w.b = append(w.b, s...) }

func (w *jsonWriter) str(key, v string) {
	w.b = append(w.b, key...)
	w.b = appendJSONString(w.b, v)
}

func (w *jsonWriter) strOmit(key, v string) {
	if v != "" {
		w.str(key, v)
	}
}

func (w *jsonWriter) int(key string, v int64) {
	w.b = append(w.b, key...)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jsonWriter) intOmit(key string, v int64) {
	if v != 0 {
		w.int(key, v)
	}
}

func (w *jsonWriter) bool(key string, v bool) {
	w.b = append(w.b, key...)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jsonWriter) float(key string, v float64) {
	w.b = append(w.b, key...)
	w.appendFloat(v)
}

func (w *jsonWriter) floatOmit(key string, v float64) {
	if v != 0 {
		w.float(key, v)
	}
}

// appendFloat is encoding/json's float64 encoder: the shortest
// representation, in exponent form below 1e-6 and from 1e21 on, with a
// two-digit exponent at least ("1e-07" becomes "1e-7").
func (w *jsonWriter) appendFloat(f float64) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		if w.err == nil {
			w.err = &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, 64)}
		}
		w.b = append(w.b, '0') // keeps the output well-formed; the error says it is not usable
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	w.b = strconv.AppendFloat(w.b, f, format, -1, 64)
	if format == 'e' {
		n := len(w.b)
		if n >= 4 && w.b[n-4] == 'e' && w.b[n-3] == '-' && w.b[n-2] == '0' {
			w.b[n-2] = w.b[n-1]
			w.b = w.b[:n-1]
		}
	}
}

func (w *jsonWriter) strings(v []string) {
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) running(v []RunningJob) {
	if v == nil {
		w.b = append(w.b, "null"...)
		return
	}
	w.b = append(w.b, '[')
	for i := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		r := &v[i]
		w.str(`{"id":`, r.ID)
		w.int(`,"thread":`, r.Thread)
		w.str(`,"phase":`, r.Phase)
		w.float(`,"since":`, r.Since)
		w.str(`,"executable":`, r.Executable)
		w.floatOmit(`,"deadline":`, r.Deadline)
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ']')
}

func (w *jsonWriter) metrics(m *Metrics) {
	w.str(`{"executor":`, m.Executor)
	w.int(`,"thread":`, m.Thread)
	w.str(`,"hostname":`, m.Hostname)
	t := &m.Timestamps
	w.float(`,"timestamps":{"job.started":`, t.JobStarted)
	w.floatOmit(`,"stage_in.started":`, t.StageInStarted)
	w.floatOmit(`,"stage_in.finished":`, t.StageInFinished)
	w.floatOmit(`,"execution.started":`, t.ExecutionStarted)
	w.floatOmit(`,"execution.finished":`, t.ExecutionFinished)
	w.floatOmit(`,"stage_out.started":`, t.StageOutStarted)
	w.floatOmit(`,"stage_out.finished":`, t.StageOutFinished)
	w.float(`,"job.finished":`, t.JobFinished)
	w.float(`},"stage_in":`, m.StageIn)
	w.float(`,"execution":`, m.Execution)
	w.float(`,"stage_out":`, m.StageOut)
	w.int(`,"input_size":`, m.InputSize)
	w.int(`,"output_size":`, m.OutputSize)
	w.float(`,"cpu_user":`, m.CPUUser)
	w.float(`,"cpu_system":`, m.CPUSystem)
	w.int(`,"max_rss":`, m.MaxRSS)
	w.intOmit(`,"processes_ended":`, m.ProcessesEnded)
	w.b = append(w.b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoder with HTML escaping
// (its default): ", \ and control characters escaped, <, > and & as \u00XX,
// U+2028 and U+2029 escaped, invalid UTF-8 replaced by \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

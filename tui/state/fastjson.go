package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// The model decodes event bodies with the small single-pass decoder below
// rather than encoding/json, which validates then decodes by reflection and
// would by itself cap ingestion well under the 200k events/s the monitor
// aims at. It reads exactly what json.Unmarshal into a wireEvent reads (the
// fuzz test FuzzDecode holds it to that), except that keys match exactly
// rather than case-insensitively:
//
//   - a body that is not valid JSON is malformed;
//   - a value of the wrong type leaves its field as it was and is reported
//     (the first one) as invalid, the rest of the body being read;
//   - null leaves a field as it was, but sets a pointer or slice to nil.

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

type decoder struct {
	b       []byte
	i       int
	depth   int
	typeErr error // the first value of the wrong type
	// intern, when set, shares the strings that repeat from event to
	// event (executor ids, types, executables, hostnames): found there,
	// they cost no allocation.
	intern map[string]string
}

// decode reads body into ev (which it resets first). A body that is not a
// JSON object is malformed; a field of the wrong type leaves that field as
// it was and is reported as invalid, the rest being read.
func decode(body []byte, ev *wireEvent, intern map[string]string) (malformed, invalid error) {
	ev.reset()
	d := decoder{b: body, intern: intern}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return errors.New("body is not a JSON object"), nil
	}
	if err := d.event(ev); err != nil {
		return err, nil
	}
	d.ws()
	if d.i != len(d.b) {
		return d.syntax("after the object"), nil
	}
	return nil, d.typeErr
}

func (d *decoder) syntax(what string) error {
	if d.i >= len(d.b) {
		return fmt.Errorf("invalid JSON: unexpected end %s", what)
	}
	return fmt.Errorf("invalid JSON: unexpected %q at offset %d %s", d.b[d.i], d.i, what)
}

// wrongType notes a value of the wrong type for field and skips it.
func (d *decoder) wrongType(field, want string) error {
	start := d.i
	if err := d.skip(); err != nil {
		return err
	}
	if d.typeErr == nil {
		d.typeErr = fmt.Errorf("field %s: %s is not %s", field, truncate(string(d.b[start:d.i]), 40), want)
	}
	return nil
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object reads an object, calling field for each member with the decoder
// at its value, which field must consume.
func (d *decoder) object(field func(key []byte) error) error {
	if d.depth++; d.depth > maxDepth {
		return errors.New("invalid JSON: nested too deeply")
	}
	defer func() { d.depth-- }()
	d.i++ // '{'
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return d.syntax("where a key should be")
		}
		key, err := d.key()
		if err != nil {
			return err
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return d.syntax("after a key")
		}
		d.i++
		d.ws()
		if d.i >= len(d.b) {
			return d.syntax("where a value should be")
		}
		if err := field(key); err != nil {
			return err
		}
		if end, err := d.separator('}', "in an object"); end || err != nil {
			return err
		}
	}
}

// separator reads what follows a member or element: ',' (more follow) or
// the closing byte (end reports it).
func (d *decoder) separator(closing byte, where string) (end bool, err error) {
	d.ws()
	if d.i >= len(d.b) {
		return false, d.syntax(where)
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, d.syntax(where)
}

// array reads an array, calling elem for each element.
func (d *decoder) array(elem func() error) error {
	if d.depth++; d.depth > maxDepth {
		return errors.New("invalid JSON: nested too deeply")
	}
	defer func() { d.depth-- }()
	d.i++ // '['
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return nil
	}
	for {
		d.ws()
		if d.i >= len(d.b) {
			return d.syntax("in an array")
		}
		if err := elem(); err != nil {
			return err
		}
		if end, err := d.separator(']', "in an array"); end || err != nil {
			return err
		}
	}
}

// stringEnd scans the string at d.i; it returns its raw contents and
// whether they need unescaping (escapes, or bytes that are not valid
// UTF-8), leaving d.i after the closing quote.
func (d *decoder) stringEnd() (raw []byte, slow bool, err error) {
	start := d.i + 1
	ascii := true
	for i := start; i < len(d.b); i++ {
		switch c := d.b[i]; {
		case c == '"':
			raw = d.b[start:i]
			d.i = i + 1
			return raw, slow || (!ascii && !utf8.Valid(raw)), nil
		case c == '\\':
			slow = true
			i++
		case c < 0x20:
			d.i = i
			return nil, false, d.syntax("in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	d.i = len(d.b)
	return nil, false, d.syntax("in a string")
}

// unquote decodes the string literal b[start:d.i] the slow way.
func (d *decoder) unquote(start int) (string, error) {
	var s string
	if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
		return "", fmt.Errorf("invalid JSON string at offset %d: %w", start, err)
	}
	return s, nil
}

func (d *decoder) key() ([]byte, error) {
	start := d.i
	raw, slow, err := d.stringEnd()
	if err != nil || !slow {
		return raw, err
	}
	s, err := d.unquote(start)
	return []byte(s), err
}

// str reads a string into *dst (null: unchanged).
func (d *decoder) str(dst *string, field string) error {
	if d.i >= len(d.b) {
		return d.syntax("where a value should be")
	}
	switch d.b[d.i] {
	case '"':
		start := d.i
		raw, slow, err := d.stringEnd()
		if err != nil {
			return err
		}
		if slow {
			*dst, err = d.unquote(start)
			return err
		}
		*dst = string(raw)
		return nil
	case 'n':
		return d.null()
	}
	return d.wrongType(field, "a string")
}

// istr is str for the strings that repeat, interned.
func (d *decoder) istr(dst *string, field string) error {
	if d.intern == nil || d.i >= len(d.b) || d.b[d.i] != '"' {
		return d.str(dst, field)
	}
	start := d.i
	raw, slow, err := d.stringEnd()
	if err != nil {
		return err
	}
	if slow {
		*dst, err = d.unquote(start)
		return err
	}
	if v, ok := d.intern[string(raw)]; ok {
		*dst = v
		return nil
	}
	v := string(raw)
	if len(d.intern) < maxInterned {
		d.intern[v] = v
	}
	*dst = v
	return nil
}

// same reads a string that is likely to equal prev, sharing it then.
func (d *decoder) same(dst *string, prev, field string) error {
	if prev == "" || d.i >= len(d.b) || d.b[d.i] != '"' {
		return d.str(dst, field)
	}
	save := d.i
	raw, slow, err := d.stringEnd()
	if err == nil && !slow && string(raw) == prev {
		*dst = prev
		return nil
	}
	d.i = save
	return d.str(dst, field)
}

func (d *decoder) null() error {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return nil
	}
	return d.syntax("in a literal")
}

func (d *decoder) isNull() bool {
	return d.i < len(d.b) && d.b[d.i] == 'n'
}

// number scans a number literal.
func (d *decoder) number() ([]byte, error) {
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		d.i = i
		return nil, d.syntax("in a number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.syntax("in a number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			d.i = i
			return nil, d.syntax("in a number")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return b[start:i], nil
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

// float reads a number into *dst (null: unchanged). set, when not nil, is
// told whether a value (true) or null (false) was read.
func (d *decoder) float(dst *float64, field string) (bool, error) {
	if d.i >= len(d.b) {
		return false, d.syntax("where a value should be")
	}
	if c := d.b[d.i]; isNumberStart(c) {
		start := d.i
		lit, err := d.number()
		if err != nil {
			return false, err
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			d.i = start
			return false, d.wrongType(field, "a float64")
		}
		*dst = f
		return true, nil
	} else if c == 'n' {
		return false, d.null()
	}
	return false, d.wrongType(field, "a number")
}

// integer reads an integer into *dst (null: unchanged).
func (d *decoder) integer(dst *int64, bits int, field string) (bool, error) {
	if d.i >= len(d.b) {
		return false, d.syntax("where a value should be")
	}
	if c := d.b[d.i]; isNumberStart(c) {
		start := d.i
		lit, err := d.number()
		if err != nil {
			return false, err
		}
		n, err := strconv.ParseInt(string(lit), 10, bits)
		if err != nil {
			d.i = start
			return false, d.wrongType(field, "an integer")
		}
		*dst = n
		return true, nil
	} else if c == 'n' {
		return false, d.null()
	}
	return false, d.wrongType(field, "a number")
}

func (d *decoder) intField(dst *int, field string) (bool, error) {
	var n int64
	ok, err := d.integer(&n, strconv.IntSize, field)
	if ok {
		*dst = int(n)
	}
	return ok, err
}

func (d *decoder) boolean(dst *bool, field string) (bool, error) {
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		*dst = true
		return true, nil
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		*dst = false
		return true, nil
	case d.i < len(d.b) && (d.b[d.i] == 't' || d.b[d.i] == 'f' || d.b[d.i] == 'n'):
		return false, d.literal() // null, or a syntax error
	}
	return false, d.wrongType(field, "a boolean")
}

// literal reads true, false or null.
func (d *decoder) literal() error {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
			d.i += len(lit)
			return nil
		}
	}
	return d.syntax("in a literal")
}

// raw reads any value and returns it as it is.
func (d *decoder) raw(dst *json.RawMessage) error {
	start := d.i
	if err := d.skip(); err != nil {
		return err
	}
	*dst = d.b[start:d.i]
	return nil
}

// skip reads over any value, checking it.
func (d *decoder) skip() error {
	if d.i >= len(d.b) {
		return d.syntax("where a value should be")
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(func([]byte) error { return d.skip() })
	case c == '[':
		return d.array(d.skip)
	case c == '"':
		start := d.i
		_, slow, err := d.stringEnd()
		if err == nil && slow {
			_, err = d.unquote(start) // checks the escapes
		}
		return err
	case c == 't' || c == 'f' || c == 'n':
		return d.literal()
	case isNumberStart(c):
		_, err := d.number()
		return err
	}
	return d.syntax("where a value should be")
}

// event reads the top-level object.
func (d *decoder) event(ev *wireEvent) error {
	st := &ev.store
	return d.object(func(key []byte) error {
		switch string(key) {
		case "executor":
			return d.istr(&ev.Executor, "executor")
		case "timestamp":
			_, err := d.float(&ev.Timestamp, "timestamp")
			return err
		case "type":
			return d.istr(&ev.Type, "type")
		case "id":
			return d.str(&ev.ID, "id")
		case "job":
			return d.same(&ev.Job, ev.ID, "job")
		case "thread":
			return d.raw(&ev.Thread)
		case "hostname":
			return d.istr(&ev.Hostname, "hostname")
		case "threads":
			_, err := d.intField(&ev.Threads, "threads")
			return err
		case "storage":
			return d.istr(&ev.Storage, "storage")
		case "version":
			return d.istr(&ev.Version, "version")
		case "queue":
			return d.istr(&ev.Queue, "queue")
		case "busy":
			return pointer(d, &ev.Busy, &st.busy, d.intField, "busy")
		case "jobs_done":
			return pointer(d, &ev.JobsDone, &st.jobsDone, d.int64Field, "jobs_done")
		case "jobs_failed":
			return pointer(d, &ev.JobsFailed, &st.jobsFailed, d.int64Field, "jobs_failed")
		case "running":
			return d.running(ev)
		case "interval":
			_, err := d.float(&ev.Interval, "interval")
			return err
		case "consumer_timeout":
			_, err := d.float(&ev.ConsumerTimeout, "consumer_timeout")
			return err
		case "phase":
			return d.istr(&ev.Phase, "phase")
		case "elapsed":
			return pointer(d, &ev.Elapsed, &st.elapsed, d.float, "elapsed")
		case "bytes_total":
			return pointer(d, &ev.BytesTotal, &st.bytesTotal, d.int64Field, "bytes_total")
		case "rss":
			return pointer(d, &ev.RSS, &st.rss, d.int64Field, "rss")
		case "cpu":
			return pointer(d, &ev.CPU, &st.cpu, d.float, "cpu")
		case "reason":
			return d.str(&ev.Reason, "reason")
		case "executable":
			return d.istr(&ev.Executable, "executable")
		case "name":
			return d.istr(&ev.Name, "name")
		case "redelivered":
			return pointer(d, &ev.Redelivered, &st.redelivered, d.boolean, "redelivered")
		case "time":
			return pointer(d, &ev.Time, &st.time, d.float, "time")
		case "bytes":
			return pointer(d, &ev.Bytes, &st.bytes, d.int64Field, "bytes")
		case "exit_status":
			return d.raw(&ev.ExitStatus)
		case "metrics":
			return d.metrics(ev)
		case "exceptions":
			return d.exceptions(ev)
		case "stderr_tail":
			return d.str(&ev.StderrTail, "stderr_tail")
		}
		return d.skip()
	})
}

func (d *decoder) int64Field(dst *int64, field string) (bool, error) {
	return d.integer(dst, 64, field)
}

// pointer reads a value for a pointer field: null sets it to nil, another
// value stores it in *store (reused storage) and points the field there (a
// value of the wrong type leaves the value pointed to as it was, as
// encoding/json does).
func pointer[T any](d *decoder, field **T, store *T, read func(*T, string) (bool, error), name string) error {
	if d.isNull() {
		*field = nil
		return d.null()
	}
	var v T
	if *field != nil {
		v = **field
	}
	if _, err := read(&v, name); err != nil {
		return err
	}
	*store = v
	*field = store
	return nil
}

func (d *decoder) running(ev *wireEvent) error {
	switch {
	case d.isNull():
		ev.Running = nil
		return d.null()
	case d.i >= len(d.b) || d.b[d.i] != '[':
		if ev.Running == nil {
			ev.store.running = ev.store.running[:0]
			ev.Running = &ev.store.running
		}
		return d.wrongType("running", "an array")
	}
	list := ev.store.running[:0]
	err := d.array(func() error {
		list = append(list, wireRunning{})
		r := &list[len(list)-1]
		switch {
		case d.isNull():
			return d.null()
		case d.b[d.i] != '{':
			return d.wrongType("running", "an object")
		}
		return d.object(func(key []byte) error {
			switch string(key) {
			case "id":
				return d.str(&r.ID, "running.id")
			case "job":
				return d.str(&r.Job, "running.job")
			case "thread":
				return d.raw(&r.Thread)
			case "phase":
				return d.istr(&r.Phase, "running.phase")
			case "since":
				_, err := d.float(&r.Since, "running.since")
				return err
			case "executable":
				return d.istr(&r.Executable, "running.executable")
			case "deadline":
				_, err := d.float(&r.Deadline, "running.deadline")
				return err
			}
			return d.skip()
		})
	})
	ev.store.running = list
	ev.Running = &ev.store.running
	return err
}

func (d *decoder) exceptions(ev *wireEvent) error {
	switch {
	case d.isNull():
		ev.Exceptions = nil
		return d.null()
	case d.i >= len(d.b) || d.b[d.i] != '[':
		return d.wrongType("exceptions", "an array")
	}
	list := ev.store.exceptions[:0]
	err := d.array(func() error {
		list = append(list, "")
		return d.str(&list[len(list)-1], "exceptions")
	})
	ev.store.exceptions = list
	ev.Exceptions = list
	return err
}

func (d *decoder) metrics(ev *wireEvent) error {
	switch {
	case d.isNull():
		ev.Metrics = nil
		return d.null()
	}
	m := &ev.store.metrics
	if ev.Metrics == nil {
		*m = wireMetrics{}
		ev.Metrics = m
	}
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return d.wrongType("metrics", "an object")
	}
	return d.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "executor":
			return d.istr(&m.Executor, "metrics.executor")
		case "thread":
			return d.raw(&m.Thread)
		case "hostname":
			return d.istr(&m.Hostname, "metrics.hostname")
		case "timestamps":
			return d.timestamps(&m.Timestamps)
		case "stage_in":
			_, err = d.float(&m.StageIn, "metrics.stage_in")
		case "execution":
			_, err = d.float(&m.Execution, "metrics.execution")
		case "stage_out":
			_, err = d.float(&m.StageOut, "metrics.stage_out")
		case "input_size":
			_, err = d.integer(&m.InputSize, 64, "metrics.input_size")
		case "output_size":
			_, err = d.integer(&m.OutputSize, 64, "metrics.output_size")
		case "cpu_user":
			_, err = d.float(&m.CPUUser, "metrics.cpu_user")
		case "cpu_system":
			_, err = d.float(&m.CPUSystem, "metrics.cpu_system")
		case "max_rss":
			_, err = d.integer(&m.MaxRSS, 64, "metrics.max_rss")
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *decoder) timestamps(ts *eventbus.Timestamps) error {
	switch {
	case d.isNull():
		return d.null()
	case d.i >= len(d.b) || d.b[d.i] != '{':
		return d.wrongType("metrics.timestamps", "an object")
	}
	return d.object(func(key []byte) error {
		var dst *float64
		switch string(key) {
		case "job.started":
			dst = &ts.JobStarted
		case "stage_in.started":
			dst = &ts.StageInStarted
		case "stage_in.finished":
			dst = &ts.StageInFinished
		case "execution.started":
			dst = &ts.ExecutionStarted
		case "execution.finished":
			dst = &ts.ExecutionFinished
		case "stage_out.started":
			dst = &ts.StageOutStarted
		case "stage_out.finished":
			dst = &ts.StageOutFinished
		case "job.finished":
			dst = &ts.JobFinished
		default:
			return d.skip()
		}
		_, err := d.float(dst, "metrics.timestamps")
		return err
	})
}

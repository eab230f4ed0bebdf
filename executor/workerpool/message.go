package workerpool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Task is one entry of a worker-pool message's "tasks" array: its id and
// its job message. Err is set when the job message is not valid; the task
// is then answered with ExitJobError without running anything.
type Task struct {
	ID  TaskID
	Job *JobMessage
	Err error
	Raw json.RawMessage // the job message as received (for the trace file)
}

// TaskID is a task identifier, hfId:wfId:procId:firingId.
type TaskID string

// ParseTaskID checks that id has at least its hfId and wfId parts, both
// non-empty: the Redis keys of the completion are derived from them.
func ParseTaskID(id string) (TaskID, error) {
	parts := strings.Split(id, ":")
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("%q is not a task id of the form hfId:wfId:procId:firingId", id)
	}
	return TaskID(id), nil
}

// HFID is the engine instance's id, the first part of the task id.
func (id TaskID) HFID() string { return strings.Split(string(id), ":")[0] }

// WFID is the workflow's id, the second part of the task id.
func (id TaskID) WFID() string { return strings.Split(string(id), ":")[1] }

// Signal is one input or output of a job message, reduced to what the
// worker pool uses: its name (a file name in the work directory unless the
// signal carries data), the workflow_input/workflow_output flags and the
// expected size, if any.
type Signal struct {
	Name           string
	WorkflowInput  bool
	WorkflowOutput bool
	Size           int64 // 0 = unknown
}

// Transport says how a task's completion is reported in Redis.
type Transport int

const (
	// TransportSet is the engine's default: SADD <taskId> <code>, then
	// SADD wf:<wfId>:tasksPendingCompletionHandling <taskId>.
	TransportSet Transport = iota
	// TransportStream is asked for by "completionTransport": "stream":
	// XADD hf:<hfId>:completions MAXLEN ~ 100000 * taskId <taskId> code <code>.
	TransportStream
)

func (t Transport) String() string {
	if t == TransportStream {
		return "stream"
	}
	return "set"
}

// JobMessage is a validated job message of the engine's k8sCommand
// (common/jobMessage.js). Fields the worker pool does not use are ignored.
type JobMessage struct {
	Name       string // the task's name in the workflow ("" if absent)
	Executable string
	Args       []string
	// Shell runs "executable args..." joined with spaces through /bin/sh -c,
	// as Node's spawn with {shell: true} does.
	Shell   bool
	Inputs  []Signal
	Outputs []Signal
	// Stdout and Stderr are files (relative to the work directory) the
	// command's output is also written to; Append says whether the file is
	// appended to (stdoutAppend/stderrAppend) or truncated (stdout/stderr).
	Stdout, Stderr             string
	StdoutAppend, StderrAppend bool
	Transport                  Transport
}

// ParseBody parses a worker-pool message body, {"tasks": [{"id": ...,
// "message": {...}}, ...]}. An error means the message as a whole is
// unusable (not JSON, no tasks, a task without a usable id): nothing of it
// can be answered. A task whose job message is invalid has Task.Err set;
// the error names the field, as "tasks[1].message.args[2]: ...".
func ParseBody(body []byte) ([]Task, error) {
	var wire struct {
		Tasks json.RawMessage `json:"tasks"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, fmt.Errorf("message is not a JSON object: %w", err)
	}
	if isNull(wire.Tasks) {
		return nil, errors.New("message has no \"tasks\" array")
	}
	var items []struct {
		ID      json.RawMessage `json:"id"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(wire.Tasks, &items); err != nil {
		return nil, fmt.Errorf("tasks: must be an array of {\"id\", \"message\"} objects: %w", err)
	}
	if len(items) == 0 {
		return nil, errors.New("tasks: empty array")
	}
	tasks := make([]Task, len(items))
	for i, it := range items {
		field := fmt.Sprintf("tasks[%d]", i)
		var id string
		if err := json.Unmarshal(it.ID, &id); err != nil || isNull(it.ID) {
			return nil, fmt.Errorf("%s.id: must be a string", field)
		}
		tid, err := ParseTaskID(id)
		if err != nil {
			return nil, fmt.Errorf("%s.id: %w", field, err)
		}
		tasks[i].ID, tasks[i].Raw = tid, it.Message
		tasks[i].Job, tasks[i].Err = parseJobMessage(it.Message, field+".message")
	}
	return tasks, nil
}

// parseJobMessage validates one job message; field prefixes its errors.
func parseJobMessage(raw json.RawMessage, field string) (*JobMessage, error) {
	if isNull(raw) {
		return nil, fmt.Errorf("%s: missing", field)
	}
	var w map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%s: must be an object", field)
	}
	j := &JobMessage{}
	var err error
	if j.Executable, err = optString(w, "executable", field); err != nil {
		return nil, err
	}
	if j.Executable == "" {
		return nil, fmt.Errorf("%s.executable: missing or empty", field)
	}
	if j.Name, err = optString(w, "name", field); err != nil {
		return nil, err
	}
	if j.Args, err = parseArgs(w["args"], field+".args"); err != nil {
		return nil, err
	}
	j.Shell = truthy(w["shell"])
	if j.Inputs, err = parseSignals(w["inputs"], field+".inputs"); err != nil {
		return nil, err
	}
	if j.Outputs, err = parseSignals(w["outputs"], field+".outputs"); err != nil {
		return nil, err
	}
	// As the listener: "stdout" (truncate) wins over "stdoutAppend".
	for _, r := range []struct {
		plain, appendKey string
		name             *string
		appends          *bool
	}{
		{"stdout", "stdoutAppend", &j.Stdout, &j.StdoutAppend},
		{"stderr", "stderrAppend", &j.Stderr, &j.StderrAppend},
	} {
		plain, err := optString(w, r.plain, field)
		if err != nil {
			return nil, err
		}
		app, err := optString(w, r.appendKey, field)
		if err != nil {
			return nil, err
		}
		switch {
		case plain != "":
			*r.name = plain
		case app != "":
			*r.name, *r.appends = app, true
		}
	}
	transport, err := optString(w, "completionTransport", field)
	if err != nil {
		return nil, err
	}
	if transport == "stream" {
		j.Transport = TransportStream
	}
	return j, nil
}

// optString returns w[key] as a string; absent and null give "".
func optString(w map[string]json.RawMessage, key, field string) (string, error) {
	raw, ok := w[key]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s.%s: must be a string, got %s", field, key, describe(raw))
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", fmt.Errorf("%s.%s: contains a NUL byte", field, key)
	}
	return s, nil
}

// parseArgs accepts an array of strings, numbers and booleans (Node's spawn
// turns numbers and booleans into their text); absent or null means none.
func parseArgs(raw json.RawMessage, field string) ([]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: must be an array, got %s", field, describe(raw))
	}
	args := make([]string, len(items))
	for i, it := range items {
		a, err := scalarText(it)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("%s[%d]: contains a NUL byte", field, i)
		}
		args[i] = a
	}
	return args, nil
}

// scalarText returns the text of a string, number or boolean.
func scalarText(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("not valid JSON: %w", err)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return formatNumber(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("must be a string or a number, got %s", describe(raw))
}

// formatNumber formats a JSON number as JavaScript's String() does for the
// usual cases: integers as they are written, other numbers as the shortest
// decimal that reads back the same.
func formatNumber(n json.Number) string {
	s := n.String()
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return strconv.FormatInt(i, 10)
	}
	f, err := n.Float64()
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// parseSignals reads an array of signal objects; absent or null means none.
func parseSignals(raw json.RawMessage, field string) ([]Signal, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("%s: must be an array of objects, got %s", field, describe(raw))
	}
	sigs := make([]Signal, len(items))
	for i, it := range items {
		f := fmt.Sprintf("%s[%d]", field, i)
		name, err := optString(it, "name", f)
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, fmt.Errorf("%s.name: missing or empty", f)
		}
		sigs[i] = Signal{
			Name:           name,
			WorkflowInput:  truthy(it["workflow_input"]),
			WorkflowOutput: truthy(it["workflow_output"]),
		}
		var size json.Number
		if raw, ok := it["size"]; ok && json.Unmarshal(raw, &size) == nil {
			if n, err := size.Int64(); err == nil && n > 0 {
				sigs[i].Size = n
			}
		}
	}
	return sigs, nil
}

// truthy is JavaScript's truthiness of a JSON value: false for absent,
// null, false, 0 and "".
func truthy(raw json.RawMessage) bool {
	s := string(bytes.TrimSpace(raw))
	switch s {
	case "", "null", "false", "0", `""`, "-0":
		return false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f != 0
	}
	return true
}

func isNull(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	return len(s) == 0 || string(s) == "null"
}

// describe names the JSON type of raw for error messages.
func describe(raw json.RawMessage) string {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

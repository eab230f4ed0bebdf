package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Signal is one HyperFlow signal (input or output) as received: its "name" plus whatever other
// attributes the engine sent ("files", "data", "_id", "sigIdx", ...). It is decoded with
// json.Decoder.UseNumber, so numbers are json.Number and keep their text.
type Signal map[string]any

// Job is a validated job message (wire.md §1).
type Job struct {
	Executable  string
	Args        []string          // argv[1:], numbers formatted, substitution applied
	Env         map[string]string // from "env", numbers formatted, substitution applied (nil when absent or empty)
	Inputs      []Signal
	Outputs     []Signal
	InputFiles  []string // files to stage in, in order: each signal's "files" split on ':' if present, else its "name"
	OutputFiles []string // same for outputs
	// Storage is options.storage as given ("" = the executor's default). It is not checked
	// against the known backends here: the storage registry reports an unknown one.
	Storage string
	// Options is the whole "options" object (nil when absent); numbers are json.Number.
	Options map[string]any
	// Timeout is options.timeout (seconds, possibly fractional, > 0); 0 when absent.
	Timeout time.Duration
	// Signals is {"inputs": [...], "outputs": [...]} with both arrays exactly as received
	// ([] when absent or null), the content of the work directory's signals.json.
	Signals []byte
}

// Error is the error Parse returns: Field names the offending part of the message in a
// path-like form ("args[2]", "env.X", "inputs[0].files", "options.timeout"); it is "" for
// errors about the message as a whole (not JSON, not an object).
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func jobErr(field, format string, a ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// wireJob is the single decoding of a message body. Every field is untyped so that a wrong type
// is reported by Parse with the field's name, not by encoding/json. The text of the signal
// arrays is kept too, to be written to signals.json as received.
type wireJob struct {
	Executable, Args, Env, Inputs, Outputs, Options any
	InputsText, OutputsText                         []byte
}

// Parse parses and validates a job message body (wire.md §1). Unknown fields are ignored;
// null counts as absent for every optional field. Every error is a *Error whose text names
// the field (and the file, for a refused file name); a body that is not JSON gives
// "message is not valid JSON: <cause>".
//
// Checks: executable a non-empty string; args absent, an array of strings and numbers, or a
// string split with SplitArgs; env an object of strings and numbers with names that are not
// empty and hold no "=" (nor NUL); inputs and outputs arrays of objects with a string name and,
// optionally, a string files; every file staged (ValidFileName); options an object, with
// storage a string and timeout a positive number. No text handed to the command (executable,
// args, env) may contain a NUL byte, which exec would refuse. Numbers in args and env are
// formatted with FormatNumber, and Substitute is applied to every arg and env value (not to the
// executable).
func Parse(body []byte) (*Job, error) {
	var w wireJob
	if err := decodeBody(body, &w); err != nil {
		return nil, err
	}
	j := &Job{}
	var err error

	if j.Executable, err = parseExecutable(w.Executable); err != nil {
		return nil, err
	}
	j.Signals = signalsJSON(w.InputsText, w.OutputsText)
	if j.Inputs, j.InputFiles, err = parseSignals("inputs", w.Inputs); err != nil {
		return nil, err
	}
	if j.Outputs, j.OutputFiles, err = parseSignals("outputs", w.Outputs); err != nil {
		return nil, err
	}

	// The substitution table is built only if some arg or env value has a "$".
	var table map[string]string
	subst := func(s string) string {
		if strings.IndexByte(s, '$') < 0 {
			return s
		}
		if table == nil {
			table = SubstitutionTable(j.Inputs, j.Outputs)
		}
		return Substitute(s, table)
	}
	if j.Args, err = parseArgs(w.Args, subst); err != nil {
		return nil, err
	}
	if j.Env, err = parseEnv(w.Env, subst); err != nil {
		return nil, err
	}
	if err = parseOptions(w.Options, j); err != nil {
		return nil, err
	}

	return j, nil
}

// decodeBody decodes a whole message body into w, numbers as json.Number, in one pass: the
// members of the top-level object are read one by one, so that the text of "inputs" and
// "outputs" can be cut out of the body. Member names are matched exactly (encoding/json's
// case-insensitive matching of struct fields does not apply); the last of duplicates wins.
func decodeBody(body []byte, w *wireJob) error {
	first := bytes.TrimLeft(body, " \t\r\n")
	if len(first) == 0 {
		return notJSON(io.EOF)
	}
	if first[0] != '{' {
		// Not an object: say what it is, or why it is not JSON.
		var v any
		if err := decodeJSONValue(body, &v); err != nil {
			return err
		}
		return &Error{Msg: "message must be a JSON object, got " + jsonTypeName(v)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil { // the '{'
		return notJSON(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return notJSON(eofInObject(err))
		}
		key, _ := tok.(string) // More and Token guarantee a string here
		var dst *any
		switch key {
		case "executable":
			dst = &w.Executable
		case "args":
			dst = &w.Args
		case "env":
			dst = &w.Env
		case "inputs":
			dst = &w.Inputs
		case "outputs":
			dst = &w.Outputs
		case "options":
			dst = &w.Options
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return notJSON(eofInObject(err))
			}
			continue
		}
		start := dec.InputOffset()
		*dst = nil
		if err := dec.Decode(dst); err != nil {
			return notJSON(eofInObject(err))
		}
		switch key {
		case "inputs":
			w.InputsText = memberText(body[start:dec.InputOffset()])
		case "outputs":
			w.OutputsText = memberText(body[start:dec.InputOffset()])
		}
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return notJSON(eofInObject(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Msg: "message is not valid JSON: unexpected data after the top-level value"}
	}
	return nil
}

// memberText is the text of a member's value, from the text between the end of its name and the
// end of its value (": value").
func memberText(b []byte) []byte {
	return bytes.TrimLeft(b, " \t\r\n:")
}

// eofInObject turns an io.EOF met inside the top-level object into io.ErrUnexpectedEOF.
func eofInObject(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeJSON decodes exactly one JSON value from body (and nothing after it) into v.
func decodeJSONValue(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Msg: "message is not valid JSON: unexpected data after the top-level value"}
	}
	return nil
}

func notJSON(err error) *Error {
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return &Error{Msg: "message is not valid JSON: the message is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Msg: "message is not valid JSON: unexpected end of input (truncated message?)"}
	case errors.As(err, &syn):
		return &Error{Msg: fmt.Sprintf("message is not valid JSON: %v (at byte %d)", err, syn.Offset)}
	default:
		return &Error{Msg: "message is not valid JSON: " + err.Error()}
	}
}

// typeName names the JSON type of a value decoded with UseNumber.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func parseExecutable(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", &Error{Field: "executable", Msg: "missing"}
	case string:
		if v == "" {
			return "", &Error{Field: "executable", Msg: "empty"}
		}
		if strings.IndexByte(v, 0) >= 0 {
			return "", jobErr("executable", "contains a NUL byte: %q", v)
		}
		return v, nil
	default:
		return "", jobErr("executable", "must be a string, got %s", jsonTypeName(v))
	}
}

// signalsJSON is the text of signals.json: {"inputs": [...], "outputs": [...]} with the arrays as
// received, or [] for an absent or null one.
func signalsJSON(in, out []byte) []byte {
	if len(in) == 0 || string(in) == "null" {
		in = []byte("[]")
	}
	if len(out) == 0 || string(out) == "null" {
		out = []byte("[]")
	}
	sig := make([]byte, 0, len(`{"inputs":,"outputs":}`)+len(in)+len(out))
	sig = append(sig, `{"inputs":`...)
	sig = append(sig, in...)
	sig = append(sig, `,"outputs":`...)
	sig = append(sig, out...)
	return append(sig, '}')
}

// parseSignals checks one of the "inputs"/"outputs" arrays, decoded, and lists its files to
// stage.
func parseSignals(field string, v any) (sigs []Signal, files []string, err error) {
	if v == nil {
		return nil, nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, nil, jobErr(field, "must be an array of signals, got %s", jsonTypeName(v))
	}
	if len(arr) > 0 {
		sigs = make([]Signal, 0, len(arr))
		files = make([]string, 0, len(arr))
	}
	for i, item := range arr {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, nil, jobErr(fmt.Sprintf("%s[%d]", field, i), "must be an object, got %s", jsonTypeName(item))
		}
		nameV, ok := m["name"]
		if !ok || nameV == nil {
			return nil, nil, jobErr(fmt.Sprintf("%s[%d].name", field, i), "missing")
		}
		name, ok := nameV.(string)
		if !ok {
			return nil, nil, jobErr(fmt.Sprintf("%s[%d].name", field, i), "must be a string, got %s", jsonTypeName(nameV))
		}
		if fv := m["files"]; fv != nil {
			list, ok := fv.(string)
			if !ok {
				return nil, nil, jobErr(fmt.Sprintf("%s[%d].files", field, i), "must be a string of colon-separated file names, got %s", jsonTypeName(fv))
			}
			for f := range strings.SplitSeq(list, ":") {
				if err := ValidFileName(f); err != nil {
					msg := err.Error()
					if f == "" {
						msg += fmt.Sprintf(" (in %q)", list)
					}
					return nil, nil, &Error{Field: fmt.Sprintf("%s[%d].files", field, i), Msg: msg}
				}
				files = append(files, f)
			}
		} else {
			if err := ValidFileName(name); err != nil {
				return nil, nil, &Error{Field: fmt.Sprintf("%s[%d].name", field, i), Msg: err.Error()}
			}
			files = append(files, name)
		}
		sigs = append(sigs, Signal(m))
	}
	return sigs, files, nil
}

// argText is the text of one arg or env value: a string, or a number formatted. On failure it
// returns a message for a Error instead.
func argText(v any) (text, errMsg string) {
	switch v := v.(type) {
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return "", fmt.Sprintf("contains a NUL byte: %q", v)
		}
		return v, ""
	case json.Number:
		f, err := FormatNumber(v)
		if err != nil {
			return "", err.Error()
		}
		return f, ""
	default:
		return "", "must be a string or number, got " + jsonTypeName(v)
	}
}

func parseArgs(v any, subst func(string) string) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return nil, jobErr("args", "contains a NUL byte: %q", v)
		}
		words, err := SplitArgs(v)
		if err != nil {
			return nil, &Error{Field: "args", Msg: err.Error()}
		}
		for i, w := range words {
			words[i] = subst(w)
		}
		return words, nil
	case []any:
		args := make([]string, len(v))
		for i, item := range v {
			s, msg := argText(item)
			if msg != "" {
				return nil, &Error{Field: "args[" + strconv.Itoa(i) + "]", Msg: msg}
			}
			args[i] = subst(s)
		}
		return args, nil
	default:
		return nil, jobErr("args", "must be an array or a string, got %s", jsonTypeName(v))
	}
}

func parseEnv(v any, subst func(string) string) (map[string]string, error) {
	var m map[string]any
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		m = v
	default:
		return nil, jobErr("env", "must be an object, got %s", jsonTypeName(v))
	}
	if len(m) == 0 {
		return nil, nil
	}
	env := make(map[string]string, len(m))
	// On errors, report the one of the smallest name so the message does not depend on map order.
	var (
		firstErr error
		errName  string
	)
	for k, item := range m {
		if firstErr != nil && k >= errName {
			continue
		}
		var err error
		switch {
		case k == "":
			err = &Error{Field: "env", Msg: "empty variable name"}
		case strings.ContainsAny(k, "=\x00"):
			err = jobErr("env", "invalid variable name %q: contains \"=\" or a NUL byte", k)
		default:
			s, msg := argText(item)
			if msg != "" {
				err = &Error{Field: "env." + k, Msg: msg}
			} else {
				env[k] = subst(s)
			}
		}
		if err != nil {
			firstErr, errName = err, k
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return env, nil
}

// maxTimeoutSeconds is the largest timeout a time.Duration holds, with some margin.
const maxTimeoutSeconds = float64(math.MaxInt64/int64(time.Second)) - 1

func parseOptions(v any, j *Job) error {
	switch v := v.(type) {
	case nil:
		return nil
	case map[string]any:
		j.Options = v
	default:
		return jobErr("options", "must be an object, got %s", jsonTypeName(v))
	}
	switch s := j.Options["storage"].(type) {
	case nil:
	case string:
		j.Storage = s
	default:
		return jobErr("options.storage", "must be a string, got %s", jsonTypeName(s))
	}
	switch t := j.Options["timeout"].(type) {
	case nil:
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			return jobErr("options.timeout", "invalid number %q", string(t))
		case !(f > 0):
			return jobErr("options.timeout", "must be a positive number of seconds, got %s", string(t))
		case f > maxTimeoutSeconds:
			return jobErr("options.timeout", "%s seconds is too long (at most %.0f)", string(t), maxTimeoutSeconds)
		}
		j.Timeout = max(time.Duration(f*float64(time.Second)), time.Nanosecond)
	default:
		return jobErr("options.timeout", "must be a positive number of seconds, got %s", jsonTypeName(t))
	}
	return nil
}

// ValidFileName reports whether name is acceptable as a relative file name inside a work
// directory: not empty, not absolute, no ".." element and no NUL byte. "." elements and
// repeated slashes ("./a", "a//b", "dir/") are accepted, since they clean to a name inside the
// directory, but a name that cleans to "." (".", "./", "./.") is refused: it names the work
// directory itself. The name is checked, not changed: callers join it to the directory with
// filepath.Join, which cleans it.
func ValidFileName(name string) error {
	switch {
	case name == "":
		return errors.New("file name is empty")
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("refused file name %q: contains a NUL byte", name)
	case name[0] == '/':
		return fmt.Errorf("refused file name %q: absolute path", name)
	}
	real := false // some element other than "" and "."
	for elem := range strings.SplitSeq(name, "/") {
		switch elem {
		case "..":
			return fmt.Errorf("refused file name %q: contains \"..\"", name)
		case "", ".":
		default:
			real = true
		}
	}
	if !real {
		return fmt.Errorf("refused file name %q: names the work directory itself", name)
	}
	return nil
}

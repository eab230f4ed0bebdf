package submit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Exit codes of hyperflow-submit besides a command's own 0..255 (see the
// package documentation).
const (
	ExitOK          = 0
	ExitLoadProblem = 1   // load mode: a reply missing, malformed, duplicated, late or unknown
	ExitTimedOut    = 124 // the job timed out (-3), or no reply within --timeout-reply
	ExitFailure     = 125 // failed outside the command (-2), or hyperflow-submit failed
	ExitNotStarted  = 127 // the command could not be started (-1)
	ExitInterrupted = 130 // SIGINT/SIGTERM before the end
)

// ExitCode maps a reply's exit_status to the exit code of hyperflow-submit.
func ExitCode(status int) int {
	switch {
	case status >= 0 && status <= 255:
		return status
	case status == -1:
		return ExitNotStarted
	case status == -3:
		return ExitTimedOut
	default: // -2 and anything outside the contract
		return ExitFailure
	}
}

// ErrMalformedReply is wrapped by every error of CheckReply.
var ErrMalformedReply = errors.New("malformed reply")

// Reply is what CheckReply reads from a reply body.
type Reply struct {
	// ExitStatus is valid when HasStatus: exit_status was a JSON integer.
	ExitStatus int
	HasStatus  bool
	Exceptions []string
}

type wireReply struct {
	ExitStatus json.RawMessage `json:"exit_status"`
	Exceptions json.RawMessage `json:"exceptions"`
	Metrics    json.RawMessage `json:"metrics"`
	Stdout     json.RawMessage `json:"stdout"`
	Stderr     json.RawMessage `json:"stderr"`
}

// CheckReply reads a reply body and checks it against wire.md §2: a JSON
// object whose exit_status is a JSON integer (not a string, not 0.0),
// whose exceptions is an array of strings (not missing, not null) that is
// not empty when exit_status is not 0, with a metrics object, and whose
// stdout and stderr, when present, are strings. The first problem found is
// returned wrapped around ErrMalformedReply; the Reply holds what could be
// read even then (HasStatus says whether ExitStatus is meaningful).
func CheckReply(body []byte) (Reply, error) {
	var r Reply
	var w wireReply
	if err := json.Unmarshal(body, &w); err != nil {
		return r, fmt.Errorf("%w: not a JSON object: %v", ErrMalformedReply, err)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return r, fmt.Errorf("%w: not a JSON object", ErrMalformedReply)
	}
	st, err := jsonInt(w.ExitStatus)
	if err != nil {
		return r, fmt.Errorf("%w: exit_status %v", ErrMalformedReply, err)
	}
	r.ExitStatus, r.HasStatus = st, true
	switch {
	case isAbsent(w.Exceptions):
		return r, fmt.Errorf("%w: exceptions missing or null", ErrMalformedReply)
	case w.Exceptions[0] != '[':
		return r, fmt.Errorf("%w: exceptions is not an array", ErrMalformedReply)
	}
	if err := json.Unmarshal(w.Exceptions, &r.Exceptions); err != nil {
		r.Exceptions = nil
		return r, fmt.Errorf("%w: exceptions is not an array of strings", ErrMalformedReply)
	}
	if st != 0 && len(r.Exceptions) == 0 {
		return r, fmt.Errorf("%w: exit_status %d with no exceptions", ErrMalformedReply, st)
	}
	if isAbsent(w.Metrics) {
		return r, fmt.Errorf("%w: metrics missing or null", ErrMalformedReply)
	}
	if w.Metrics[0] != '{' {
		return r, fmt.Errorf("%w: metrics is not an object", ErrMalformedReply)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"stdout", w.Stdout}, {"stderr", w.Stderr}} {
		if len(f.raw) > 0 && f.raw[0] != '"' {
			return r, fmt.Errorf("%w: %s is not a string", ErrMalformedReply, f.name)
		}
	}
	return r, nil
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// jsonInt reads a JSON integer literal: no quotes, fraction or exponent.
func jsonInt(raw json.RawMessage) (int, error) {
	if isAbsent(raw) {
		return 0, errors.New("missing or null")
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fmt.Errorf("is not a number: %s", raw)
	}
	n, err := strconv.ParseInt(string(raw), 10, 0)
	if err != nil {
		return 0, fmt.Errorf("is not an integer: %s", raw)
	}
	return int(n), nil
}

package submit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// JobSpec is a job described by command-line flags.
type JobSpec struct {
	Executable string
	Args       []string // always sent as JSON strings
	Env        []string // K=V
	Inputs     []string // NAME or NAME=FILES (FILES colon-separated)
	Outputs    []string // as Inputs
	Storage    string   // options.storage when not empty
	Workdir    string   // options.workdir when not empty
	Timeout    float64  // options.timeout (seconds) when > 0
	Options    []string // k=v (string value) or k:=JSON (raw JSON value)
}

// jobMessage is the body the engine sends, with its key order.
type jobMessage struct {
	Executable string                     `json:"executable"`
	Args       []string                   `json:"args"`
	Env        map[string]string          `json:"env"`
	Inputs     []signal                   `json:"inputs"`
	Outputs    []signal                   `json:"outputs"`
	Options    map[string]json.RawMessage `json:"options"`
}

type signal struct {
	Name  string `json:"name"`
	Files string `json:"files,omitempty"`
}

// BuildJob encodes the job message for spec. Arguments are always JSON
// strings (they are strings on the command line, even when they look like
// numbers); env, inputs, outputs and options are always present, empty when
// not given, as the engine sends them. Map keys come out sorted.
func BuildJob(spec JobSpec) ([]byte, error) {
	if spec.Executable == "" {
		return nil, errors.New("job: no executable (give it after --, or a job file)")
	}
	msg := jobMessage{
		Executable: spec.Executable,
		Args:       append([]string{}, spec.Args...),
		Env:        map[string]string{},
		Inputs:     []signal{},
		Outputs:    []signal{},
		Options:    map[string]json.RawMessage{},
	}
	for _, kv := range spec.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		if _, dup := msg.Env[k]; dup {
			return nil, fmt.Errorf("--env %q: %s given twice", kv, k)
		}
		msg.Env[k] = v
	}
	var err error
	if msg.Inputs, err = signals("--input", spec.Inputs); err != nil {
		return nil, err
	}
	if msg.Outputs, err = signals("--output", spec.Outputs); err != nil {
		return nil, err
	}
	setOpt := func(flag, k string, v json.RawMessage) error {
		if _, dup := msg.Options[k]; dup {
			return fmt.Errorf("%s: option %q given twice", flag, k)
		}
		msg.Options[k] = v
		return nil
	}
	str := func(s string) json.RawMessage {
		b, _ := json.Marshal(s) // a string always encodes
		return b
	}
	if spec.Storage != "" {
		if err := setOpt("--storage", "storage", str(spec.Storage)); err != nil {
			return nil, err
		}
	}
	if spec.Workdir != "" {
		if err := setOpt("--workdir", "workdir", str(spec.Workdir)); err != nil {
			return nil, err
		}
	}
	if spec.Timeout < 0 {
		return nil, fmt.Errorf("--timeout %v: must be a positive number of seconds", spec.Timeout)
	}
	if spec.Timeout > 0 {
		ts := json.RawMessage(strconv.FormatFloat(spec.Timeout, 'f', -1, 64))
		if err := setOpt("--timeout", "timeout", ts); err != nil {
			return nil, err
		}
	}
	for _, kv := range spec.Options {
		k, v, raw, err := parseOption(kv)
		if err != nil {
			return nil, err
		}
		val := str(v)
		if raw {
			val = json.RawMessage(v)
		}
		if err := setOpt(fmt.Sprintf("--option %q", kv), k, val); err != nil {
			return nil, err
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode job message: %w", err)
	}
	return body, nil
}

// parseOption splits "k=v" (string value) or "k:=JSON" (raw JSON value).
func parseOption(kv string) (key, value string, raw bool, err error) {
	k, v, ok := strings.Cut(kv, "=")
	if !ok {
		return "", "", false, fmt.Errorf("--option %q: want KEY=VALUE or KEY:=JSON", kv)
	}
	if strings.HasSuffix(k, ":") {
		k, raw = strings.TrimSuffix(k, ":"), true
		if !json.Valid([]byte(v)) {
			return "", "", false, fmt.Errorf("--option %q: value is not valid JSON", kv)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(v)); err != nil {
			return "", "", false, fmt.Errorf("--option %q: %w", kv, err)
		}
		v = buf.String()
	}
	if k == "" {
		return "", "", false, fmt.Errorf("--option %q: empty key", kv)
	}
	return k, v, raw, nil
}

func signals(flag string, specs []string) ([]signal, error) {
	out := make([]signal, 0, len(specs))
	for _, s := range specs {
		name, files, hasFiles := strings.Cut(s, "=")
		if name == "" || (hasFiles && files == "") {
			return nil, fmt.Errorf("%s %q: want NAME or NAME=FILE[:FILE...]", flag, s)
		}
		out = append(out, signal{Name: name, Files: files})
	}
	return out, nil
}

// LoadJob reads a job message from path ("-" = stdin) and checks that it is
// one JSON object; the bytes are sent as they are (surrounding white space
// removed), so fields this tool does not know pass through.
func LoadJob(path string, stdin io.Reader) ([]byte, error) {
	var (
		body []byte
		err  error
		name = path
	)
	if path == "-" {
		name = "standard input"
		body, err = io.ReadAll(stdin)
	} else {
		body, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", name, err)
	}
	body = bytes.TrimSpace(body)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("job %s: not a JSON object: %w", name, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("job %s: not a JSON object (null)", name)
	}
	return body, nil
}

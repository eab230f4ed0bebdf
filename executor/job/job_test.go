package job

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// laterStageFixtures are bad/*.json fixtures whose error comes from a stage after Parse: the
// message itself is well formed, so Parse must accept it and the stage named here must
// report expect_error. The executor's integration tests cover those stages.
var laterStageFixtures = map[string]string{
	"missing-workdir.json": "the local storage backend reports the missing work directory",
	"unknown-storage.json": `the storage registry reports the unknown backend "floppy"`,
}

type jobFixture struct {
	Job    json.RawMessage `json:"job"`
	Expect struct {
		Argv     []string          `json:"argv"`
		Env      map[string]string `json:"env"`
		StageIn  []string          `json:"stage_in"`
		StageOut []string          `json:"stage_out"`
	} `json:"expect"`
}

type badFixture struct {
	Body        json.RawMessage `json:"body"`
	ExpectError string          `json:"expect_error"`
}

func readWireFixture(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func globWireFixtures(t testing.TB, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "wire", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no fixtures match testdata/wire/%s", pattern)
	}
	return files
}

// stagedFiles is what a job's storage stages: nothing for "local" (docs/storage.md: the work
// directory is the shared one, no stage-in or stage-out), the job's file lists otherwise.
func stagedFiles(j *Job) (in, out []string) {
	if j.Storage == "local" {
		return nil, nil
	}
	return j.InputFiles, j.OutputFiles
}

func TestParseJobFixtures(t *testing.T) {
	for _, path := range globWireFixtures(t, "jobs/*.json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx jobFixture
			readWireFixture(t, path, &fx)
			j, err := Parse(fx.Job)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			argv := append([]string{j.Executable}, j.Args...)
			if !slices.Equal(argv, fx.Expect.Argv) {
				t.Errorf("argv = %q, want %q", argv, fx.Expect.Argv)
			}
			for k, want := range fx.Expect.Env {
				if got, ok := j.Env[k]; !ok || got != want {
					t.Errorf("env %s = %q (set: %v), want %q", k, got, ok, want)
				}
			}
			in, out := stagedFiles(j)
			if !equalFiles(in, fx.Expect.StageIn) {
				t.Errorf("stage in = %q, want %q", in, fx.Expect.StageIn)
			}
			if !equalFiles(out, fx.Expect.StageOut) {
				t.Errorf("stage out = %q, want %q", out, fx.Expect.StageOut)
			}
			checkSignals(t, fx.Job, j)
		})
	}
}

// equalFiles compares file lists, nil and empty being equal.
func equalFiles(a, b []string) bool { return len(a) == 0 && len(b) == 0 || slices.Equal(a, b) }

// checkSignals checks that j.Signals holds the message's inputs and outputs as received.
func checkSignals(t *testing.T, body []byte, j *Job) {
	t.Helper()
	var msg, sig map[string]json.RawMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j.Signals, &sig); err != nil {
		t.Fatalf("Signals is not JSON: %v\n%s", err, j.Signals)
	}
	if len(sig) != 2 {
		t.Errorf("Signals has keys %v, want inputs and outputs", sig)
	}
	for _, k := range []string{"inputs", "outputs"} {
		want := string(msg[k])
		if want == "" || want == "null" {
			want = "[]"
		}
		if got := string(sig[k]); got != want {
			t.Errorf("Signals.%s = %s, want %s", k, got, want)
		}
	}
}

// TestParseJobFixtureFiles checks the file lists of the fixtures whose storage stages nothing.
func TestParseJobFixtureFiles(t *testing.T) {
	tests := []struct {
		fixture   string
		in, out   []string
		storage   string
		optionKey string
	}{
		{"engine-shape.json", []string{"count_7.txt", "seed"}, []string{"next_7.txt"}, "local", "workdir"},
		{"engine-numeric-args.json", []string{"in.txt"}, []string{"out.txt"}, "local", "workdir"},
		{"substitution.json", []string{"in"}, []string{"out"}, "local", "workdir"},
		{"string-args.json", nil, nil, "local", "workdir"},
		{"files-colon-list.json", []string{"a.dat", "b.dat", "c.dat"}, []string{"m1.dat", "m2.dat"}, "nfs", "workdir"},
		{"s3-readme-aliases.json", []string{"in.bin"}, []string{"count.txt"}, "cloud", "s3_bucket"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			var fx jobFixture
			readWireFixture(t, filepath.Join("testdata", "wire", "jobs", tt.fixture), &fx)
			j, err := Parse(fx.Job)
			if err != nil {
				t.Fatal(err)
			}
			if !equalFiles(j.InputFiles, tt.in) || !equalFiles(j.OutputFiles, tt.out) {
				t.Errorf("files = %q, %q; want %q, %q", j.InputFiles, j.OutputFiles, tt.in, tt.out)
			}
			if j.Storage != tt.storage {
				t.Errorf("Storage = %q, want %q", j.Storage, tt.storage)
			}
			if _, ok := j.Options[tt.optionKey].(string); !ok {
				t.Errorf("Options[%q] = %#v, want the placeholder string", tt.optionKey, j.Options[tt.optionKey])
			}
		})
	}
}

func TestParseJobBadFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range globWireFixtures(t, "bad/*.json") {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			var fx badFixture
			readWireFixture(t, path, &fx)
			if fx.ExpectError == "" || len(fx.Body) == 0 {
				t.Fatal("fixture lacks body or expect_error")
			}
			j, err := Parse(fx.Body)
			if why, later := laterStageFixtures[name]; later {
				// Well formed: the error comes later (see laterStageFixtures).
				if err != nil {
					t.Fatalf("Parse: %v; want success (%s)", err, why)
				}
				if !strings.Contains(j.Storage+" "+marshalString(t, j.Options), fx.ExpectError) {
					t.Errorf("job options %s do not carry %q for the later stage", marshalString(t, j.Options), fx.ExpectError)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", fx.ExpectError)
			}
			var je *Error
			if !errors.As(err, &je) {
				t.Errorf("error %T is not a *Error", err)
			}
			if !strings.Contains(err.Error(), fx.ExpectError) {
				t.Errorf("error %q does not contain %q", err, fx.ExpectError)
			}
		})
	}
	for name := range laterStageFixtures {
		if !seen[name] {
			t.Errorf("laterStageFixtures lists %s, which is not in testdata/wire/bad", name)
		}
	}
	for _, path := range globWireFixtures(t, "bad/*.txt") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(body)
			if err == nil || !strings.Contains(err.Error(), "JSON") {
				t.Fatalf("Parse error = %v, want one about JSON", err)
			}
		})
	}
	all := globWireFixtures(t, "bad/*")
	if n := len(globWireFixtures(t, "bad/*.json")) + len(globWireFixtures(t, "bad/*.txt")); n != len(all) {
		t.Errorf("testdata/wire/bad has files that are neither .json nor .txt: %q", all)
	}
}

func marshalString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseJobErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty body", ``, "message is not valid JSON: the message is empty"},
		{"blank body", " \n", "message is not valid JSON"},
		{"truncated", `{"executable": "/bin/true"`, "message is not valid JSON: unexpected end of input"},
		{"syntax", `{"executable": tru}`, "message is not valid JSON: invalid character"},
		{"trailing data", `{"executable": "/bin/true"} {}`, "message is not valid JSON: unexpected data after the top-level value"},
		{"trailing garbage", `{"executable": "/bin/true"}x`, "message is not valid JSON"},
		{"array body", `[1, 2]`, "message must be a JSON object, got array"},
		{"null body", `null`, "message must be a JSON object, got null"},
		{"string body", `"x"`, "message must be a JSON object, got string"},
		{"invalid non-object", `[1,`, "message is not valid JSON"},
		{"missing executable", `{}`, "executable: missing"},
		{"null executable", `{"executable": null}`, "executable: missing"},
		{"empty executable", `{"executable": ""}`, "executable: empty"},
		{"numeric executable", `{"executable": 1}`, "executable: must be a string, got number"},
		{"NUL executable", `{"executable": "/bin/a\u0000b"}`, "executable: contains a NUL byte"},
		{"args object", `{"executable": "x", "args": {"a": 1}}`, "args: must be an array or a string, got object"},
		{"args number", `{"executable": "x", "args": 3}`, "args: must be an array or a string, got number"},
		{"args item bool", `{"executable": "x", "args": ["a", true]}`, "args[1]: must be a string or number, got boolean"},
		{"args item null", `{"executable": "x", "args": [null]}`, "args[0]: must be a string or number, got null"},
		{"args item array", `{"executable": "x", "args": ["a", "b", []]}`, "args[2]: must be a string or number, got array"},
		{"args item huge", `{"executable": "x", "args": [1e999]}`, "args[0]: number 1e999 is out of range"},
		{"args item NUL", `{"executable": "x", "args": ["a\u0000"]}`, "args[0]: contains a NUL byte"},
		{"args string unterminated", `{"executable": "x", "args": "a 'b"}`, "args: unterminated single quote at byte 2"},
		{"args string NUL", `{"executable": "x", "args": "a\u0000"}`, "args: contains a NUL byte"},
		{"env array", `{"executable": "x", "env": ["A"]}`, "env: must be an object, got array"},
		{"env object value", `{"executable": "x", "env": {"X": {"y": 1}}}`, "env.X: must be a string or number, got object"},
		{"env bool value", `{"executable": "x", "env": {"X": false}}`, "env.X: must be a string or number, got boolean"},
		{"env null value", `{"executable": "x", "env": {"X": null}}`, "env.X: must be a string or number, got null"},
		{"env first error by name", `{"executable": "x", "env": {"D": [], "B": {}, "C": true, "A": "ok"}}`, "env.B: must be a string or number, got object"},
		{"env empty name", `{"executable": "x", "env": {"": "v"}}`, "env: empty variable name"},
		{"env name with =", `{"executable": "x", "env": {"A=B": "v"}}`, `env: invalid variable name "A=B"`},
		{"env NUL value", `{"executable": "x", "env": {"A": "\u0000"}}`, "env.A: contains a NUL byte"},
		{"inputs object", `{"executable": "x", "inputs": {"name": "a"}}`, "inputs: must be an array of signals, got object"},
		{"inputs string", `{"executable": "x", "inputs": "a"}`, "inputs: must be an array of signals, got string"},
		{"input not object", `{"executable": "x", "inputs": ["a"]}`, "inputs[0]: must be an object, got string"},
		{"input without name", `{"executable": "x", "inputs": [{"files": "a"}]}`, "inputs[0].name: missing"},
		{"input null name", `{"executable": "x", "inputs": [{"name": null}]}`, "inputs[0].name: missing"},
		{"input numeric name", `{"executable": "x", "inputs": [{"name": "a"}, {"name": 3}]}`, "inputs[1].name: must be a string, got number"},
		{"input empty name", `{"executable": "x", "inputs": [{"name": ""}]}`, "inputs[0].name: file name is empty"},
		{"input dot name", `{"executable": "x", "inputs": [{"name": "./"}]}`, `inputs[0].name: refused file name "./": names the work directory itself`},
		{"input traversal", `{"executable": "x", "inputs": [{"name": "../../etc/passwd"}]}`, `inputs[0].name: refused file name "../../etc/passwd": contains ".."`},
		{"files traversal", `{"executable": "x", "inputs": [{"name": "ok", "files": "a.dat:sub/../../x"}]}`, `inputs[0].files: refused file name "sub/../../x": contains ".."`},
		{"files absolute", `{"executable": "x", "inputs": [{"name": "ok", "files": "/etc/passwd"}]}`, `inputs[0].files: refused file name "/etc/passwd": absolute path`},
		{"files empty entry", `{"executable": "x", "inputs": [{"name": "ok", "files": "a::b"}]}`, `inputs[0].files: file name is empty (in "a::b")`},
		{"files empty string", `{"executable": "x", "inputs": [{"name": "ok", "files": ""}]}`, `inputs[0].files: file name is empty (in "")`},
		{"files array", `{"executable": "x", "inputs": [{"name": "ok", "files": ["a"]}]}`, "inputs[0].files: must be a string of colon-separated file names, got array"},
		{"output absolute", `{"executable": "x", "outputs": [{"name": "/etc/shadow"}]}`, `outputs[0].name: refused file name "/etc/shadow": absolute path`},
		{"output NUL", `{"executable": "x", "outputs": [{"name": "a"}, {"name": "b\u0000"}]}`, `outputs[1].name: refused file name "b\x00": contains a NUL byte`},
		{"options array", `{"executable": "x", "options": []}`, "options: must be an object, got array"},
		{"options string", `{"executable": "x", "options": "local"}`, "options: must be an object, got string"},
		{"storage number", `{"executable": "x", "options": {"storage": 1}}`, "options.storage: must be a string, got number"},
		{"timeout string", `{"executable": "x", "options": {"timeout": "600"}}`, "options.timeout: must be a positive number of seconds, got string"},
		{"timeout zero", `{"executable": "x", "options": {"timeout": 0}}`, "options.timeout: must be a positive number of seconds, got 0"},
		{"timeout negative", `{"executable": "x", "options": {"timeout": -1.5}}`, "options.timeout: must be a positive number of seconds, got -1.5"},
		{"timeout underflow", `{"executable": "x", "options": {"timeout": 1e-999}}`, "options.timeout: must be a positive number of seconds, got 1e-999"},
		{"timeout huge", `{"executable": "x", "options": {"timeout": 1e300}}`, "options.timeout: 1e300 seconds is too long"},
		{"timeout overflow", `{"executable": "x", "options": {"timeout": 1e999}}`, "options.timeout: 1e999 seconds is too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", j, tt.want)
			}
			if j != nil {
				t.Errorf("Parse returned a job with its error")
			}
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("error %T is not a *Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestJobErrorFields(t *testing.T) {
	tests := []struct {
		body, field string
	}{
		{`not json`, ""},
		{`{"args": []}`, "executable"},
		{`{"executable": "x", "args": [{}]}`, "args[0]"},
		{`{"executable": "x", "env": {"X": {}}}`, "env.X"},
		{`{"executable": "x", "outputs": [{"name": "a"}, {"name": "a", "files": "/b"}]}`, "outputs[1].files"},
		{`{"executable": "x", "options": {"timeout": true}}`, "options.timeout"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.body))
		var je *Error
		if !errors.As(err, &je) {
			t.Errorf("%s: error %v is not a *Error", tt.body, err)
			continue
		}
		if je.Field != tt.field {
			t.Errorf("%s: Field = %q, want %q", tt.body, je.Field, tt.field)
		}
		want := je.Field + ": " + je.Msg
		if je.Field == "" {
			want = je.Msg
		}
		if je.Error() != want {
			t.Errorf("Error() = %q, want %q", je.Error(), want)
		}
	}
}

func TestParseJobValid(t *testing.T) {
	t.Run("minimal", func(t *testing.T) {
		j, err := Parse([]byte(`{"executable": "/bin/true"}`))
		if err != nil {
			t.Fatal(err)
		}
		if j.Executable != "/bin/true" || len(j.Args) != 0 || j.Env != nil || j.Inputs != nil || j.Outputs != nil ||
			j.InputFiles != nil || j.OutputFiles != nil || j.Storage != "" || j.Options != nil || j.Timeout != 0 {
			t.Errorf("job = %+v, want only the executable", j)
		}
		if got := string(j.Signals); got != `{"inputs":[],"outputs":[]}` {
			t.Errorf("Signals = %s", got)
		}
	})
	t.Run("nulls are absent", func(t *testing.T) {
		j, err := Parse([]byte(`{"executable": "x", "args": null, "env": null, "inputs": null, "outputs": null,
			"options": {"storage": null, "timeout": null}}`))
		if err != nil {
			t.Fatal(err)
		}
		if j.Args != nil || j.Env != nil || j.Inputs != nil || j.Storage != "" || j.Timeout != 0 {
			t.Errorf("job = %+v", j)
		}
		if got := string(j.Signals); got != `{"inputs":[],"outputs":[]}` {
			t.Errorf("Signals = %s", got)
		}
	})
	t.Run("everything", func(t *testing.T) {
		body := `{
			"executable": "/bin/sh",
			"args": ["-c", "tr a-z A-Z < $in_files > $out_name", 1000, 0.5, "$in.txt_name"],
			"env": {"GREETING": "hello $in_name", "N": 1e2, "RAW": "$many_files"},
			"inputs":  [{"name": "in", "files": "in.txt"}, {"name": "many", "files": "a.dat:./sub//b.dat"}],
			"outputs": [{"name": "out.txt", "sigIdx": 3}, {"name": "out", "files": "out.txt"}],
			"options": {"storage": "local", "workdir": "/data/run-42", "bucket": "b", "timeout": 2.5,
			            "cloud_storage": {"region": "eu-central-1"}},
			"future": {"ignored": true}
		}`
		j, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		// "$in.txt_name" stays: the token is "$in" (a run stops at "."), which is no key; the
		// signal "out.txt" gives the key "out.txt_name", which no token can match.
		wantArgs := []string{"-c", "tr a-z A-Z < in.txt > out", "1000", "0.5", "$in.txt_name"}
		if !slices.Equal(j.Args, wantArgs) {
			t.Errorf("Args = %q, want %q", j.Args, wantArgs)
		}
		wantEnv := map[string]string{"GREETING": "hello in", "N": "100", "RAW": "a.dat:./sub//b.dat"}
		if len(j.Env) != len(wantEnv) {
			t.Errorf("Env = %q, want %q", j.Env, wantEnv)
		}
		for k, v := range wantEnv {
			if j.Env[k] != v {
				t.Errorf("Env[%s] = %q, want %q", k, j.Env[k], v)
			}
		}
		if want := []string{"in.txt", "a.dat", "./sub//b.dat"}; !slices.Equal(j.InputFiles, want) {
			t.Errorf("InputFiles = %q, want %q (as given)", j.InputFiles, want)
		}
		if want := []string{"out.txt", "out.txt"}; !slices.Equal(j.OutputFiles, want) {
			t.Errorf("OutputFiles = %q, want %q", j.OutputFiles, want)
		}
		if len(j.Inputs) != 2 || j.Inputs[1]["files"] != "a.dat:./sub//b.dat" || j.Outputs[0]["sigIdx"] != json.Number("3") {
			t.Errorf("signals = %v, %v", j.Inputs, j.Outputs)
		}
		if j.Storage != "local" || j.Timeout != 2500*time.Millisecond {
			t.Errorf("Storage, Timeout = %q, %v", j.Storage, j.Timeout)
		}
		if j.Options["bucket"] != "b" || j.Options["timeout"] != json.Number("2.5") {
			t.Errorf("Options = %v", j.Options)
		}
		if cs, ok := j.Options["cloud_storage"].(map[string]any); !ok || cs["region"] != "eu-central-1" {
			t.Errorf("Options.cloud_storage = %v", j.Options["cloud_storage"])
		}
		var sig struct{ Inputs, Outputs []map[string]any }
		if err := json.Unmarshal(j.Signals, &sig); err != nil || len(sig.Inputs) != 2 || len(sig.Outputs) != 2 {
			t.Errorf("Signals = %s (%v)", j.Signals, err)
		}
	})
	t.Run("string args are substituted after splitting", func(t *testing.T) {
		j, err := Parse([]byte(`{"executable": "x", "args": "-i $in_path '$in_path'",
			"inputs": [{"name": "in", "path": "my file.txt"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		// Single quotes do not stop substitution: it applies to the words, after splitting.
		if want := []string{"-i", "my file.txt", "my file.txt"}; !slices.Equal(j.Args, want) {
			t.Errorf("Args = %q, want %q", j.Args, want)
		}
	})
	t.Run("empty env and args", func(t *testing.T) {
		j, err := Parse([]byte(`{"executable": "x", "args": [], "env": {}, "inputs": [], "outputs": []}`))
		if err != nil {
			t.Fatal(err)
		}
		if len(j.Args) != 0 || len(j.Env) != 0 || len(j.InputFiles) != 0 {
			t.Errorf("job = %+v", j)
		}
		if got := string(j.Signals); got != `{"inputs":[],"outputs":[]}` {
			t.Errorf("Signals = %s", got)
		}
	})
	t.Run("tiny timeout", func(t *testing.T) {
		j, err := Parse([]byte(`{"executable": "x", "options": {"timeout": 1e-12}}`))
		if err != nil {
			t.Fatal(err)
		}
		if j.Timeout != time.Nanosecond {
			t.Errorf("Timeout = %v, want 1ns (never 0, which means none)", j.Timeout)
		}
	})
	t.Run("signals kept as received", func(t *testing.T) {
		body := `{"executable": "x", "inputs": [ {"name":"a", "data": [1.50, {"k": "v"}], "sigIdx": 1e0} ]}`
		j, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"inputs":[ {"name":"a", "data": [1.50, {"k": "v"}], "sigIdx": 1e0} ],"outputs":[]}`
		if string(j.Signals) != want {
			t.Errorf("Signals = %s, want %s", j.Signals, want)
		}
	})
}

func TestValidFileName(t *testing.T) {
	tests := []struct {
		name string
		want string // "" = valid, else a part of the error
	}{
		{"a.txt", ""},
		{"dir/a.txt", ""},
		{"./a", ""},
		{"a//b", ""},
		{"a/./b", ""},
		{"dir/", ""},
		{"..a", ""},
		{"a..", ""},
		{"a/..b/c", ""},
		{"...", ""},
		{" ", ""},
		{`a\..\b`, ""}, // a backslash is an ordinary character on Unix
		{"", "file name is empty"},
		{".", `refused file name ".": names the work directory itself`},
		{"./", "names the work directory itself"},
		{"./.", "names the work directory itself"},
		{".//./", "names the work directory itself"},
		{"/etc/shadow", `refused file name "/etc/shadow": absolute path`},
		{"/", "absolute path"},
		{"//a", "absolute path"},
		{"..", `refused file name "..": contains ".."`},
		{"../a", `contains ".."`},
		{"a/..", `contains ".."`},
		{"a/../b", `contains ".."`},
		{"sub/../../x", `refused file name "sub/../../x": contains ".."`},
		{"a\x00b", `refused file name "a\x00b": contains a NUL byte`},
	}
	for _, tt := range tests {
		err := ValidFileName(tt.name)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidFileName(%q) = %v, want nil", tt.name, err)
		case tt.want != "" && err == nil:
			t.Errorf("ValidFileName(%q) = nil, want an error containing %q", tt.name, tt.want)
		case tt.want != "" && !strings.Contains(err.Error(), tt.want):
			t.Errorf("ValidFileName(%q) = %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// The same property, as filepath.Join sees it: every accepted name stays strictly inside.
func checkInside(t *testing.T, name string) {
	t.Helper()
	if ValidFileName(name) != nil {
		return
	}
	dir := "/work/dir"
	p := filepath.Join(dir, name)
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		t.Errorf("ValidFileName accepted %q, which joins to %q", name, p)
	}
}

func wireFixtureSeeds(t testing.TB) [][]byte {
	t.Helper()
	var seeds [][]byte
	for _, path := range globWireFixtures(t, "jobs/*.json") {
		var fx jobFixture
		readWireFixture(t, path, &fx)
		seeds = append(seeds, fx.Job)
	}
	for _, path := range globWireFixtures(t, "bad/*.json") {
		var fx badFixture
		readWireFixture(t, path, &fx)
		seeds = append(seeds, fx.Body)
	}
	for _, path := range globWireFixtures(t, "bad/*.txt") {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, body)
	}
	return seeds
}

func FuzzParseJob(f *testing.F) {
	for _, seed := range wireFixtureSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte(`{"executable": "x", "args": "a 'b c' \"d\\\"e\" $x_y", "inputs": [{"name": "x", "y": [1, "2", true]}]}`))
	f.Add([]byte(`{"executable": "x", "env": {"A": "$s_name$s_name"}, "outputs": [{"name": "s", "files": "a:b/./c"}], "options": {"timeout": 0.001}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := Parse(body)
		if err == nil && !json.Valid(body) {
			t.Fatalf("Parse accepted a body that is not JSON: %q", body)
		}
		if err != nil {
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("error %T is not a *Error: %v", err, err)
			}
			if j != nil {
				t.Fatal("job returned with an error")
			}
			return
		}
		if j.Executable == "" {
			t.Fatal("empty executable accepted")
		}
		for _, f := range slices.Concat(j.InputFiles, j.OutputFiles) {
			if err := ValidFileName(f); err != nil {
				t.Fatalf("file %q accepted: %v", f, err)
			}
			checkInside(t, f)
		}
		if j.Timeout < 0 {
			t.Fatalf("negative timeout %v", j.Timeout)
		}
		if !json.Valid(j.Signals) {
			t.Fatalf("Signals is not JSON: %q", j.Signals)
		}
	})
}

func BenchmarkParseJob(b *testing.B) {
	var fx jobFixture
	readWireFixture(b, filepath.Join("testdata", "wire", "jobs", "engine-shape.json"), &fx)
	body := []byte(fx.Job)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJobSubstitution(b *testing.B) {
	var fx jobFixture
	readWireFixture(b, filepath.Join("testdata", "wire", "jobs", "substitution.json"), &fx)
	body := []byte(fx.Job)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

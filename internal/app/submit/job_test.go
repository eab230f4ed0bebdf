package submit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func noEnv(string) string { return "" }

// TestParseArgsBuildJob checks the exact job message built from flags.
func TestParseArgsBuildJob(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "command only",
			args: []string{"--", "/bin/echo", "hi"},
			want: `{"executable":"/bin/echo","args":["hi"],"env":{},"inputs":[],"outputs":[],"options":{}}`,
		},
		{
			name: "no args",
			args: []string{"--", "/bin/true"},
			want: `{"executable":"/bin/true","args":[],"env":{},"inputs":[],"outputs":[],"options":{}}`,
		},
		{
			name: "numbers stay strings, flags after -- are args",
			args: []string{"--", "/bin/sh", "-c", "exit $1", "1000", "0.5", "-1", "--quiet"},
			want: `{"executable":"/bin/sh","args":["-c","exit $1","1000","0.5","-1","--quiet"],"env":{},"inputs":[],"outputs":[],"options":{}}`,
		},
		{
			name: "every job flag",
			args: []string{
				"--storage", "local", "--workdir", "/data/run 1",
				"--input", "in.txt", "--input", "many=a.dat:b.dat", "--output", "out,1.txt",
				"--env", "B=2", "--env", "A=x=y", "--env", "EMPTY=",
				"--timeout", "600", "--option", "bucket=b", "--option", `cloud_storage:={"region": "eu"}`,
				"--option", "prefix=1000",
				"--", "tr", "a-z", "A-Z",
			},
			want: `{"executable":"tr","args":["a-z","A-Z"],"env":{"A":"x=y","B":"2","EMPTY":""},` +
				`"inputs":[{"name":"in.txt"},{"name":"many","files":"a.dat:b.dat"}],"outputs":[{"name":"out,1.txt"}],` +
				`"options":{"bucket":"b","cloud_storage":{"region":"eu"},"prefix":"1000","storage":"local","timeout":600,"workdir":"/data/run 1"}}`,
		},
		{
			name: "fractional timeout",
			args: []string{"--timeout", "0.25", "--", "sleep", "1"},
			want: `{"executable":"sleep","args":["1"],"env":{},"inputs":[],"outputs":[],"options":{"timeout":0.25}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseArgs(tt.args, noEnv)
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			body, err := BuildJob(o.Job)
			if err != nil {
				t.Fatalf("BuildJob: %v", err)
			}
			if string(body) != tt.want {
				t.Errorf("job message\n got %s\nwant %s", body, tt.want)
			}
		})
	}
}

func TestBuildJobErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"env without =", []string{"--env", "X", "--", "x"}, `--env "X": want NAME=VALUE`},
		{"env twice", []string{"--env", "X=1", "--env", "X=2", "--", "x"}, "X given twice"},
		{"storage twice", []string{"--storage", "local", "--option", "storage=nfs", "--", "x"}, `option "storage" given twice`},
		{"bad raw option", []string{"--option", "a:={", "--", "x"}, "not valid JSON"},
		{"option without =", []string{"--option", "a", "--", "x"}, "want KEY=VALUE"},
		{"empty input", []string{"--input", "", "--", "x"}, "want NAME"},
		{"empty files", []string{"--output", "o=", "--", "x"}, "want NAME"},
		{"negative timeout", []string{"--timeout", "-1", "--", "x"}, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := ParseArgs(tt.args, noEnv)
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			_, err = BuildJob(o.Job)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildJob error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	env := map[string]string{"AMQP_URL": "amqp://u:p@127.0.0.1:1/", "AMQP_QUEUE": "q.env"}
	getenv := func(k string) string { return env[k] }

	t.Run("defaults", func(t *testing.T) {
		o, err := ParseArgs([]string{"job.json"}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if o.AMQPURL != DefaultAMQPURL || o.Queue != DefaultQueue || o.ReplyTimeout != 0 ||
			o.Count != 0 || o.JobFile != "job.json" {
			t.Errorf("got %+v", o)
		}
	})
	t.Run("environment", func(t *testing.T) {
		o, err := ParseArgs([]string{"-"}, getenv)
		if err != nil {
			t.Fatal(err)
		}
		if o.AMQPURL != env["AMQP_URL"] || o.Queue != "q.env" || o.JobFile != "-" {
			t.Errorf("got %+v", o)
		}
	})
	t.Run("flags beat environment", func(t *testing.T) {
		o, err := ParseArgs([]string{"--amqp-url", "amqp://127.0.0.1:2/", "--queue", "q.flag", "--file", "j.json"}, getenv)
		if err != nil {
			t.Fatal(err)
		}
		if o.AMQPURL != "amqp://127.0.0.1:2/" || o.Queue != "q.flag" || o.JobFile != "j.json" {
			t.Errorf("got %+v", o)
		}
	})
	t.Run("load mode defaults", func(t *testing.T) {
		o, err := ParseArgs([]string{"--count", "10", "--", "x"}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if o.Count != 10 || o.Inflight != DefaultInflight || o.ReplyTimeout != DefaultLoadReplyTimeout || o.Linger != DefaultLinger {
			t.Errorf("got %+v", o)
		}
	})
	t.Run("load mode settings", func(t *testing.T) {
		o, err := ParseArgs([]string{"--count", "10", "--inflight", "3", "--timeout-reply", "2s", "--linger", "0", "--json", "--", "x"}, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if o.Inflight != 3 || o.ReplyTimeout != 2*time.Second || o.Linger != 0 || !o.JSON {
			t.Errorf("got %+v", o)
		}
	})
	t.Run("help", func(t *testing.T) {
		if _, err := ParseArgs([]string{"-h"}, noEnv); !errors.Is(err, pflag.ErrHelp) {
			t.Errorf("got %v, want pflag.ErrHelp", err)
		}
	})

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no job", nil, "no job"},
		{"two files", []string{"a.json", "b.json"}, "more than one job file"},
		{"file twice", []string{"--file", "a.json", "b.json"}, "job file given twice"},
		{"file and command", []string{"a.json", "--", "x"}, "not both"},
		{"job flag with file", []string{"--env", "A=1", "a.json"}, "--env builds a job from flags"},
		{"inflight without count", []string{"--inflight", "3", "--", "x"}, "--inflight is for load mode"},
		{"json without count", []string{"--json", "--", "x"}, "--json is for load mode"},
		{"zero count", []string{"--count", "0", "--", "x"}, "--count 0"},
		{"zero inflight", []string{"--count", "1", "--inflight", "0", "--", "x"}, "--inflight 0"},
		{"negative reply timeout", []string{"--timeout-reply", "-1s", "--", "x"}, "must not be negative"},
		{"unknown flag", []string{"--bogus", "--", "x"}, "bogus"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseArgs(tt.args, noEnv)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadJob(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "job.json")
	const body = `{"executable": "/bin/echo", "args": ["hi", 1000], "extra": {"kept": true}}`
	if err := os.WriteFile(good, []byte("\n"+body+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadJob(good, nil)
	if err != nil || string(got) != body {
		t.Errorf("LoadJob(file) = %q, %v; want the body as it is", got, err)
	}
	got, err = LoadJob("-", strings.NewReader(body))
	if err != nil || string(got) != body {
		t.Errorf("LoadJob(stdin) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "null", "[1]", `{"a":`, "42"} {
		if _, err := LoadJob("-", strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "standard input: not a JSON object") {
			t.Errorf("LoadJob(%q) error = %v", bad, err)
		}
	}
	if _, err := LoadJob(filepath.Join(dir, "absent.json"), nil); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("LoadJob(absent) error = %v", err)
	}
}

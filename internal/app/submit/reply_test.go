package submit

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckReply(t *testing.T) {
	const m = `"metrics":{"execution":1.5}`
	tests := []struct {
		name       string
		body       string
		wantErr    string // "" = well-formed
		wantStatus int
		hasStatus  bool
		exceptions []string
	}{
		{name: "success", body: `{"exit_status":0,"stdout":"hi\n","stderr":"","exceptions":[],` + m + `}`, hasStatus: true, exceptions: []string{}},
		{name: "failure", body: `{"exit_status":3,"exceptions":["command exited with status 3"],` + m + `}`,
			wantStatus: 3, hasStatus: true, exceptions: []string{"command exited with status 3"}},
		{name: "negative", body: `{"exit_status":-2,"exceptions":["bad job"],"stdout":"","stderr":"",` + m + `,"extra":1}`,
			wantStatus: -2, hasStatus: true, exceptions: []string{"bad job"}},
		{name: "white space", body: " \n{ \"exit_status\" : 0 , \"exceptions\" : [ ] , \"metrics\" : { } }\n", hasStatus: true, exceptions: []string{}},

		{name: "not JSON", body: `exit 0`, wantErr: "not a JSON object"},
		{name: "truncated", body: `{"exit_status":0,`, wantErr: "not a JSON object"},
		{name: "array", body: `[0]`, wantErr: "not a JSON object"},
		{name: "null", body: `null`, wantErr: "not a JSON object"},
		{name: "status missing", body: `{"exceptions":[],` + m + `}`, wantErr: "exit_status missing"},
		{name: "status null", body: `{"exit_status":null,"exceptions":[],` + m + `}`, wantErr: "exit_status missing"},
		{name: "status string", body: `{"exit_status":"0","exceptions":[],` + m + `}`, wantErr: "exit_status is not a number"},
		{name: "status float", body: `{"exit_status":0.0,"exceptions":[],` + m + `}`, wantErr: "exit_status is not an integer"},
		{name: "status exponent", body: `{"exit_status":1e0,"exceptions":["x"],` + m + `}`, wantErr: "exit_status is not an integer"},
		{name: "status bool", body: `{"exit_status":false,"exceptions":[],` + m + `}`, wantErr: "exit_status is not a number"},
		{name: "exceptions missing", body: `{"exit_status":1,` + m + `}`, wantErr: "exceptions missing or null", wantStatus: 1, hasStatus: true},
		{name: "exceptions null", body: `{"exit_status":0,"exceptions":null,` + m + `}`, wantErr: "exceptions missing or null", hasStatus: true},
		{name: "exceptions string", body: `{"exit_status":1,"exceptions":"boom",` + m + `}`, wantErr: "exceptions is not an array", wantStatus: 1, hasStatus: true},
		{name: "exceptions numbers", body: `{"exit_status":1,"exceptions":[1],` + m + `}`, wantErr: "not an array of strings", wantStatus: 1, hasStatus: true},
		{name: "failure without exceptions", body: `{"exit_status":-3,"exceptions":[],` + m + `}`, wantErr: "exit_status -3 with no exceptions",
			wantStatus: -3, hasStatus: true, exceptions: []string{}},
		{name: "metrics missing", body: `{"exit_status":0,"exceptions":[]}`, wantErr: "metrics missing or null", hasStatus: true, exceptions: []string{}},
		{name: "metrics null", body: `{"exit_status":0,"exceptions":[],"metrics":null}`, wantErr: "metrics missing or null", hasStatus: true, exceptions: []string{}},
		{name: "metrics array", body: `{"exit_status":0,"exceptions":[],"metrics":[]}`, wantErr: "metrics is not an object", hasStatus: true, exceptions: []string{}},
		{name: "stdout number", body: `{"exit_status":0,"exceptions":[],"stdout":1,` + m + `}`, wantErr: "stdout is not a string", hasStatus: true, exceptions: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CheckReply([]byte(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckReply: %v", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CheckReply error = %v, want one containing %q", err, tt.wantErr)
				}
				if !errors.Is(err, ErrMalformedReply) {
					t.Errorf("error %v does not wrap ErrMalformedReply", err)
				}
			}
			if r.HasStatus != tt.hasStatus || r.ExitStatus != tt.wantStatus {
				t.Errorf("status = %d (has %v), want %d (has %v)", r.ExitStatus, r.HasStatus, tt.wantStatus, tt.hasStatus)
			}
			if !slices.Equal(r.Exceptions, tt.exceptions) {
				t.Errorf("exceptions = %q, want %q", r.Exceptions, tt.exceptions)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct{ status, want int }{
		{0, 0}, {1, 1}, {3, 3}, {137, 137}, {255, 255},
		{-1, 127}, {-2, 125}, {-3, 124},
		{-4, 125}, {256, 125}, {-255, 125},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.status); got != tt.want {
			t.Errorf("ExitCode(%d) = %d, want %d", tt.status, got, tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 50, 7 * time.Millisecond},
		{"one p99", ms(7), 99, 7 * time.Millisecond},
		{"p0 is min", ms(1, 2, 3), 0, 1 * time.Millisecond},
		{"p100 is max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even is lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p90 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
		{"p91 of 10 rounds up", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 91, 10 * time.Millisecond},
		{"p99 of 100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p99.9 of 100", ms(hundred...), 99.9, 100 * time.Millisecond},
		{"over 100 clamps", ms(1, 2), 150, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummariseLatency(t *testing.T) {
	lat := []time.Duration{3 * time.Millisecond, 1 * time.Millisecond, 2 * time.Millisecond, 1500 * time.Microsecond}
	got := summariseLatency(lat)
	want := Latency{Min: 1, Mean: 1.875, P50: 1.5, P90: 3, P99: 3, Max: 3}
	if got != want {
		t.Errorf("summariseLatency = %+v, want %+v", got, want)
	}
	if (summariseLatency(nil) != Latency{}) {
		t.Error("summariseLatency(nil) is not zero")
	}
}

func BenchmarkCheckReply(b *testing.B) {
	body := []byte(`{"exit_status":0,"stdout":"hello\n","stderr":"","exceptions":[],"metrics":{"executor":"0b7f3f0e-6c1e-4b8e-9a57-8d2b8f0e1d2c","thread":2,"hostname":"node-7","timestamps":{"job.started":1.7e9,"job.finished":1.7e9},"stage_in":0,"execution":0.003,"stage_out":0,"input_size":0,"output_size":0,"cpu_user":0.001,"cpu_system":0.001,"max_rss":3145728}}`)
	for b.Loop() {
		if _, err := CheckReply(body); err != nil {
			b.Fatal(err)
		}
	}
}

package export_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// model replays every recorded stream of the state tests.
func model(t *testing.T) *state.Model {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "state", "testdata", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	m := state.New(state.Options{})
	for _, f := range files {
		msgs, err := record.LoadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			_ = m.Apply(msg)
		}
	}
	return m
}

// exported keeps what the CSV holds of a job.
func exported(j state.JobView) state.JobView {
	strip := func(s state.Stage) state.Stage {
		return state.Stage{Duration: s.Duration, HasDuration: s.HasDuration, Bytes: s.Bytes, HasBytes: s.HasBytes}
	}
	out := state.JobView{
		ID: j.ID, Executor: j.Executor, Hostname: j.Hostname, Thread: j.Thread, Executable: j.Executable,
		State: j.State, ExitStatus: j.ExitStatus, HasExit: j.HasExit,
		Started: j.Started.UTC(), Finished: j.Finished.UTC(),
		StageIn: strip(j.StageIn), Execution: strip(j.Execution), StageOut: strip(j.StageOut),
		HasMetrics: j.HasMetrics,
	}
	out.Execution.Bytes, out.Execution.HasBytes = 0, false
	if j.Started.IsZero() {
		out.Started = time.Time{}
	}
	if j.Finished.IsZero() {
		out.Finished = time.Time{}
	}
	if j.HasMetrics {
		out.Metrics.InputSize = j.Metrics.InputSize
		out.Metrics.OutputSize = j.Metrics.OutputSize
		out.Metrics.CPUUser = j.Metrics.CPUUser
		out.Metrics.CPUSystem = j.Metrics.CPUSystem
		out.Metrics.MaxRSS = j.Metrics.MaxRSS
	}
	return out
}

func TestCSVRoundTrip(t *testing.T) {
	jobs, n := model(t).Jobs(state.JobQuery{Sort: state.SortID}, 0, -1)
	if n < 10 {
		t.Fatalf("only %d jobs", n)
	}
	var buf bytes.Buffer
	if err := export.WriteCSV(&buf, jobs); err != nil {
		t.Fatal(err)
	}
	back, err := export.ReadCSV(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(jobs) {
		t.Fatalf("%d rows read back, want %d", len(back), len(jobs))
	}
	for i := range jobs {
		want := exported(jobs[i])
		got := back[i]
		got.Started, got.Finished = got.Started.UTC(), got.Finished.UTC()
		if got.Started.IsZero() {
			got.Started = time.Time{}
		}
		if got.Finished.IsZero() {
			got.Finished = time.Time{}
		}
		if got != want {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func TestCSVColumns(t *testing.T) {
	jobs, _ := model(t).Jobs(state.JobQuery{Text: "j2", Sort: state.SortID}, 0, -1)
	var buf bytes.Buffer
	if err := export.WriteCSV(&buf, jobs[:1]); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"job", "executor", "hostname", "thread", "executable", "state", "exit_status", "started", "finished",
			"stage_in_s", "stage_in_bytes", "execution_s", "stage_out_s", "stage_out_bytes",
			"input_size", "output_size", "cpu_user_s", "cpu_system_s", "max_rss_bytes"},
		{"j2", "exec-n", "node-2", "3", "mProject", "done", "0", "2023-11-14T22:13:21Z", "2023-11-14T22:13:26.54Z",
			"1", "4096", "4", "0.5", "8192", "4096", "8192", "3.5", "0.25", "2097152"},
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(want[0], ",") ||
		strings.Join(rows[1], ",") != strings.Join(want[1], ",") {
		t.Errorf("rows =\n%q\nwant\n%q", rows, want)
	}
}

func TestCSVUnknownCellsEmpty(t *testing.T) {
	j := state.JobView{ID: "j", State: state.StateRunning}
	var buf bytes.Buffer
	if err := export.WriteCSV(&buf, []state.JobView{j}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[1] != "j,,,,,running"+strings.Repeat(",", 13) {
		t.Errorf("row = %q", lines[1])
	}
}

func TestReadCSVErrors(t *testing.T) {
	header := strings.Join(export.Columns, ",") + "\n"
	tests := []struct {
		name, data string
		want       error
	}{
		{"not our header", "a,b\n", export.ErrHeader},
		{"bad state", header + "j,,,,,sleeping" + strings.Repeat(",", 13) + "\n", nil},
		{"bad seconds", header + "j,,,,,done,,,,x" + strings.Repeat(",", 9) + "\n", nil},
	}
	for _, tt := range tests {
		_, err := export.ReadCSV(strings.NewReader(tt.data))
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		d time.Duration
		s string
	}{
		{0, "0"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "1.5"},
		{time.Nanosecond, "0.000000001"},
		{123456789123, "123.456789123"},
		{-2500 * time.Millisecond, "-2.5"},
	}
	for _, tt := range tests {
		if got := export.FormatSeconds(tt.d); got != tt.s {
			t.Errorf("FormatSeconds(%v) = %q, want %q", tt.d, got, tt.s)
		}
		if got, err := export.ParseSeconds(tt.s); err != nil || got != tt.d {
			t.Errorf("ParseSeconds(%q) = %v, %v", tt.s, got, err)
		}
	}
	for s, d := range map[string]time.Duration{".5": 500 * time.Millisecond, "1e3": 1000 * time.Second, "2.0000000004": 2 * time.Second} {
		if got, err := export.ParseSeconds(s); err != nil || got != d {
			t.Errorf("ParseSeconds(%q) = %v, %v; want %v", s, got, err, d)
		}
	}
	if _, err := export.ParseSeconds("abc"); err == nil {
		t.Error("ParseSeconds(abc) succeeded")
	}
}

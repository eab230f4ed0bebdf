package export_test

import (
	"bytes"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// nextflowFields are the fields of a Nextflow trace file and their types,
// as Nextflow defines them (TraceRecord.FIELDS): the specification the
// trace is checked against.
var nextflowFields = map[string]string{
	"task_id": "str", "hash": "str", "native_id": "str", "process": "str", "module": "str",
	"container": "str", "tag": "str", "name": "str", "status": "str", "exit": "str",
	"submit": "date", "start": "date", "complete": "date", "duration": "time", "realtime": "time",
	"%cpu": "perc", "%mem": "perc", "rss": "mem", "vmem": "mem", "peak_rss": "mem", "peak_vmem": "mem",
	"rchar": "mem", "wchar": "mem", "syscr": "num", "syscw": "num", "read_bytes": "mem",
	"write_bytes": "mem", "attempt": "num", "workdir": "str", "script": "str", "scratch": "str",
	"queue": "str", "cpus": "num", "memory": "mem", "disk": "mem", "time": "time", "env": "str",
	"error_action": "str", "vol_ctxt": "num", "inv_ctxt": "num", "hostname": "str", "cpu_model": "str",
}

// The types of our own columns, in Nextflow's formats.
var extraTypes = map[string]string{
	"executor": "str", "thread": "str", "stage_in": "time", "stage_out": "time",
	"input_size": "mem", "output_size": "mem",
}

// Value formats per type: Nextflow's default and raw (trace.raw) ones.
var (
	nfFormats = map[string]*regexp.Regexp{
		"date": regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$`),
		"time": regexp.MustCompile(`^(\d+ms|\d+(\.\d)?s|(\d+d)?( ?\d+h)?( ?\d+m)?( ?\d+s)?)$`),
		"mem":  regexp.MustCompile(`^(0|\d+(\.\d)? (B|KB|MB|GB|TB|PB|EB))$`),
		"perc": regexp.MustCompile(`^\d+\.\d%$`),
		"num":  regexp.MustCompile(`^\d+$`),
	}
	nfRawFormats = map[string]*regexp.Regexp{
		"date": regexp.MustCompile(`^\d{13}$`),
		"time": regexp.MustCompile(`^\d+$`),
		"mem":  regexp.MustCompile(`^\d+$`),
		"perc": regexp.MustCompile(`^\d+\.\d$`),
		"num":  regexp.MustCompile(`^\d+$`),
	}
	nfStatus = []string{"NEW", "SUBMITTED", "RUNNING", "COMPLETED", "FAILED", "ABORTED"}
)

// parseTrace checks a trace against the format and returns its rows by
// native_id.
func parseTrace(t *testing.T, data []byte, raw bool, n int) (header []string, rows map[string]map[string]string) {
	t.Helper()
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatal("no final newline")
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != n+1 {
		t.Fatalf("%d lines for %d jobs", len(lines), n)
	}
	header = strings.Split(lines[0], "\t")
	formats := nfFormats
	if raw {
		formats = nfRawFormats
	}
	types := map[string]string{}
	for _, col := range header {
		typ, ok := nextflowFields[col]
		if !ok {
			typ, ok = extraTypes[col]
			if !ok {
				t.Errorf("column %q is neither a Nextflow trace field nor a documented extra", col)
			}
		} else if slices.Contains(export.NextflowExtraColumns, col) {
			t.Errorf("extra column %q has a Nextflow field's name", col)
		}
		if _, dup := types[col]; dup {
			t.Errorf("column %q twice", col)
		}
		types[col] = typ
	}
	rows = map[string]map[string]string{}
	taskIDs := map[string]bool{}
	for i, line := range lines[1:] {
		cells := strings.Split(line, "\t")
		if len(cells) != len(header) {
			t.Fatalf("row %d: %d cells, header has %d", i+1, len(cells), len(header))
		}
		row := map[string]string{}
		for k, cell := range cells {
			col := header[k]
			row[col] = cell
			switch {
			case cell == "":
				t.Errorf("row %d: %s is empty (Nextflow writes -)", i+1, col)
			case cell == "-":
			case col == "status":
				if !slices.Contains(nfStatus, cell) {
					t.Errorf("row %d: status %q", i+1, cell)
				}
			case col == "exit":
				if _, err := strconv.Atoi(cell); err != nil {
					t.Errorf("row %d: exit %q", i+1, cell)
				}
			case col == "task_id":
				if _, err := strconv.Atoi(cell); err != nil || taskIDs[cell] {
					t.Errorf("row %d: task_id %q not a unique number", i+1, cell)
				}
				taskIDs[cell] = true
			default:
				if re := formats[types[col]]; re != nil && !re.MatchString(cell) {
					t.Errorf("row %d: %s %q is not a %s value", i+1, col, cell, types[col])
				}
			}
		}
		rows[row["native_id"]] = row
	}
	return header, rows
}

func TestNextflowTraceFormat(t *testing.T) {
	m := model(t)
	jobs, n := m.Jobs(state.JobQuery{Sort: state.SortID}, 0, -1)
	var buf bytes.Buffer
	if err := export.WriteNextflowTrace(&buf, jobs); err != nil {
		t.Fatal(err)
	}
	header, rows := parseTrace(t, buf.Bytes(), false, n)
	if !slices.Equal(header, export.NextflowColumns) {
		t.Errorf("header = %q", header)
	}
	want := map[string]string{
		"native_id": "j2", "process": "mProject", "status": "COMPLETED", "exit": "0", "attempt": "1",
		"submit": "2023-11-14 22:13:21.000", "start": "2023-11-14 22:13:22.020", "complete": "2023-11-14 22:13:26.540",
		"duration": "5.5s", "realtime": "4s", "%cpu": "93.8%", "peak_rss": "2 MB", "hostname": "node-2",
		"executor": "exec-n", "thread": "3", "stage_in": "1s", "stage_out": "500ms", "input_size": "4 KB", "output_size": "8 KB",
	}
	for col, v := range want {
		if got := rows["j2"][col]; got != v {
			t.Errorf("j2 %s = %q, want %q", col, got, v)
		}
	}
	if !regexp.MustCompile(`^mProject \(\d+\)$`).MatchString(rows["j2"]["name"]) {
		t.Errorf("j2 name = %q", rows["j2"]["name"])
	}
	// A running job, a lost one, a failed one.
	if r := rows["p1"]; r["status"] != "RUNNING" || r["complete"] != "-" || r["duration"] != "-" || r["exit"] != "-" {
		t.Errorf("p1 = %v", r)
	}
	if r := rows["j17"]; r["status"] != "ABORTED" || r["exit"] != "-" {
		t.Errorf("j17 = %v", r)
	}
	if r := rows["j3"]; r["status"] != "FAILED" || r["exit"] != "3" || r["realtime"] != "200ms" {
		t.Errorf("j3 = %v", r)
	}
	// task_id in start order, name numbered per process in that order.
	byStart := slices.Clone(jobs)
	slices.SortStableFunc(byStart, func(a, b state.JobView) int {
		if a.Started.IsZero() != b.Started.IsZero() {
			if a.Started.IsZero() {
				return 1
			}
			return -1
		}
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i, j := range byStart {
		if got := rows[j.ID]["task_id"]; got != strconv.Itoa(i+1) {
			t.Errorf("%s: task_id %s, want %d", j.ID, got, i+1)
		}
	}
	u := 0
	for _, j := range byStart {
		if j.Executable == "mViewer" {
			u++
			if got := rows[j.ID]["name"]; got != "mViewer ("+strconv.Itoa(u)+")" {
				t.Errorf("%s: name %q, want mViewer (%d)", j.ID, got, u)
			}
		}
	}
}

func TestNextflowTraceRaw(t *testing.T) {
	jobs, n := model(t).Jobs(state.JobQuery{Sort: state.SortID}, 0, -1)
	var buf bytes.Buffer
	if err := export.WriteNextflowTraceOptions(&buf, jobs, export.NextflowOptions{Raw: true}); err != nil {
		t.Fatal(err)
	}
	_, rows := parseTrace(t, buf.Bytes(), true, n)
	want := map[string]string{
		"submit": "1700000001000", "start": "1700000002020", "complete": "1700000006540", "duration": "5540",
		"realtime": "4000", "%cpu": "93.8", "peak_rss": "2097152", "stage_in": "1000", "stage_out": "500",
		"input_size": "4096", "output_size": "8192",
	}
	for col, v := range want {
		if got := rows["j2"][col]; got != v {
			t.Errorf("j2 %s = %q, want %q", col, got, v)
		}
	}
}

func TestNextflowTraceLocationAndText(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	j := state.JobView{ID: "a\tb", Executable: "/bin/x\ny", State: state.StateDone,
		Started: time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC)}
	var buf bytes.Buffer
	if err := export.WriteNextflowTraceOptions(&buf, []state.JobView{j}, export.NextflowOptions{Location: zone}); err != nil {
		t.Fatal(err)
	}
	_, rows := parseTrace(t, buf.Bytes(), false, 1)
	r := rows["a b"]
	if r == nil || r["process"] != "/bin/x y" || r["submit"] != "2024-05-01 11:00:00.500" || r["name"] != "/bin/x y (1)" {
		t.Errorf("rows = %v", rows)
	}
}

func TestNextflowValueFormats(t *testing.T) {
	durations := map[int64]string{
		0: "0ms", 4: "4ms", 999: "999ms", 1000: "1s", 1200: "1.2s", 1250: "1.3s", 5540: "5.5s",
		59949: "59.9s", 59999: "60s", 60000: "1m", 63000: "1m 3s", 3601000: "1h 1s",
		86400000: "1d", 90061000: "1d 1h 1m 1s", 7200499: "2h", -5: "0ms",
	}
	for ms, want := range durations {
		if got := export.NextflowDuration(ms); got != want {
			t.Errorf("NextflowDuration(%d) = %q, want %q", ms, got, want)
		}
	}
	memory := map[int64]string{
		0: "0", -1: "0", 195: "195 B", 1023: "1023 B", 1024: "1 KB", 1536: "1.5 KB", 4299162: "4.1 MB",
		2 << 30: "2 GB", 1<<40 + 1<<39: "1.5 TB",
	}
	for b, want := range memory {
		if got := export.NextflowMemory(b); got != want {
			t.Errorf("NextflowMemory(%d) = %q, want %q", b, got, want)
		}
	}
}

// TestNextflowTraceEmpty: a header alone.
func TestNextflowTraceEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := export.WriteNextflowTrace(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if buf.String() != strings.Join(export.NextflowColumns, "\t")+"\n" {
		t.Errorf("trace = %q", buf.String())
	}
}

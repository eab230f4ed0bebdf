// Package export writes hyperflow-top's jobs to files: CSV, one row per job
// (WriteCSV, read back by ReadCSV); a Nextflow-compatible trace
// (WriteNextflowTrace, tab-separated, Nextflow's trace field names and
// formats); and a Chrome trace of the jobs' stages on their executors'
// thread lanes (WriteChromeTrace, for Perfetto and chrome://tracing).
package export

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// Columns are the CSV columns, in order; the first row of a file names
// them. Times are RFC 3339 (UTC, nanoseconds), durations decimal seconds,
// sizes bytes; a cell is empty when the value is unknown.
var Columns = []string{
	"job", "executor", "hostname", "thread", "executable", "state", "exit_status",
	"started", "finished",
	"stage_in_s", "stage_in_bytes", "execution_s", "stage_out_s", "stage_out_bytes",
	"input_size", "output_size", "cpu_user_s", "cpu_system_s", "max_rss_bytes",
}

// ErrHeader is wrapped by ReadCSV's error for a file whose first row is not
// Columns.
var ErrHeader = errors.New("export: not a jobs CSV")

// WriteCSV writes the header and one row per job.
func WriteCSV(w io.Writer, jobs []state.JobView) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(Columns); err != nil {
		return fmt.Errorf("write CSV header: %w", err)
	}
	row := make([]string, len(Columns))
	for i := range jobs {
		jobRow(row, &jobs[i])
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write CSV row of job %s: %w", jobs[i].ID, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

func jobRow(row []string, j *state.JobView) {
	row[0] = j.ID
	row[1] = j.Executor
	row[2] = j.Hostname
	row[3] = j.Thread
	row[4] = j.Executable
	row[5] = j.State.String()
	row[6] = ""
	if j.HasExit {
		row[6] = strconv.Itoa(j.ExitStatus)
	}
	row[7] = formatTime(j.Started)
	row[8] = formatTime(j.Finished)
	row[9], row[10] = stageCells(j.StageIn)
	row[11], _ = stageCells(j.Execution)
	row[12], row[13] = stageCells(j.StageOut)
	clear(row[14:19])
	if j.HasMetrics {
		m := &j.Metrics
		row[14] = strconv.FormatInt(m.InputSize, 10)
		row[15] = strconv.FormatInt(m.OutputSize, 10)
		row[16] = strconv.FormatFloat(m.CPUUser, 'f', -1, 64)
		row[17] = strconv.FormatFloat(m.CPUSystem, 'f', -1, 64)
		row[18] = strconv.FormatInt(m.MaxRSS, 10)
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func stageCells(s state.Stage) (secs, bytes string) {
	if s.HasDuration {
		secs = FormatSeconds(s.Duration)
	}
	if s.HasBytes {
		bytes = strconv.FormatInt(s.Bytes, 10)
	}
	return secs, bytes
}

// FormatSeconds writes d in decimal seconds, exactly (to the nanosecond)
// and without trailing zeros: 1.5, 0.000001, 3.
func FormatSeconds(d time.Duration) string {
	neg := d < 0
	u := uint64(d)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u/1e9, 10)
	if frac := u % 1e9; frac != 0 {
		f := strconv.FormatUint(frac+1e9, 10)[1:] // 9 digits, zero-padded
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseSeconds reads decimal seconds (as FormatSeconds writes them, or any
// decimal number) into a duration, exactly to the nanosecond.
func ParseSeconds(s string) (time.Duration, error) {
	in := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || !digits(whole) || !digits(frac) ||
		len(frac) > 9 && strings.TrimRight(frac[9:], "0") != "" {
		f, err := strconv.ParseFloat(in, 64)
		if err != nil {
			return 0, fmt.Errorf("seconds %q: %w", in, err)
		}
		return time.Duration(f * 1e9), nil
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	var w, f uint64
	var err error
	if whole != "" {
		if w, err = strconv.ParseUint(whole, 10, 64); err != nil {
			return 0, fmt.Errorf("seconds %q: %w", in, err)
		}
	}
	if frac != "" {
		if f, err = strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64); err != nil {
			return 0, fmt.Errorf("seconds %q: %w", in, err)
		}
	}
	d := time.Duration(w*1e9 + f)
	if neg {
		d = -d
	}
	return d, nil
}

// ReadCSV reads a file WriteCSV wrote back into job views (the exported
// fields only: no phase, no stage start and end times, no timestamps of
// the metrics).
func ReadCSV(r io.Reader) ([]state.JobView, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read CSV header: %w", err)
	}
	if !slices.Equal(head, Columns) {
		return nil, fmt.Errorf("%w: header %q", ErrHeader, head)
	}
	cr.FieldsPerRecord = len(Columns)
	var out []state.JobView
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read CSV: %w", err)
		}
		j, err := parseRow(rec)
		if err != nil {
			line, _ := cr.FieldPos(0)
			return out, fmt.Errorf("CSV line %d: %w", line, err)
		}
		out = append(out, j)
	}
}

func parseRow(rec []string) (state.JobView, error) {
	j := state.JobView{ID: rec[0], Executor: rec[1], Hostname: rec[2], Thread: rec[3], Executable: rec[4]}
	var err error
	if rec[5] != "" {
		st, ok := state.ParseJobState(rec[5])
		if !ok {
			return j, fmt.Errorf("state %q: unknown", rec[5])
		}
		j.State = st
	}
	if rec[6] != "" {
		if j.ExitStatus, err = strconv.Atoi(rec[6]); err != nil {
			return j, fmt.Errorf("exit_status: %w", err)
		}
		j.HasExit = true
	}
	if j.Started, err = parseTime(rec[7]); err != nil {
		return j, fmt.Errorf("started: %w", err)
	}
	if j.Finished, err = parseTime(rec[8]); err != nil {
		return j, fmt.Errorf("finished: %w", err)
	}
	if j.StageIn, err = parseStage(rec[9], rec[10]); err != nil {
		return j, fmt.Errorf("stage_in: %w", err)
	}
	if j.Execution, err = parseStage(rec[11], ""); err != nil {
		return j, fmt.Errorf("execution: %w", err)
	}
	if j.StageOut, err = parseStage(rec[12], rec[13]); err != nil {
		return j, fmt.Errorf("stage_out: %w", err)
	}
	metrics := rec[14:19]
	if slices.ContainsFunc(metrics, func(s string) bool { return s != "" }) {
		m := &j.Metrics
		j.HasMetrics = true
		ints := []struct {
			name string
			cell string
			dst  *int64
		}{{"input_size", rec[14], &m.InputSize}, {"output_size", rec[15], &m.OutputSize}, {"max_rss_bytes", rec[18], &m.MaxRSS}}
		for _, c := range ints {
			if c.cell == "" {
				continue
			}
			if *c.dst, err = strconv.ParseInt(c.cell, 10, 64); err != nil {
				return j, fmt.Errorf("%s: %w", c.name, err)
			}
		}
		floats := []struct {
			name string
			cell string
			dst  *float64
		}{{"cpu_user_s", rec[16], &m.CPUUser}, {"cpu_system_s", rec[17], &m.CPUSystem}}
		for _, c := range floats {
			if c.cell == "" {
				continue
			}
			if *c.dst, err = strconv.ParseFloat(c.cell, 64); err != nil {
				return j, fmt.Errorf("%s: %w", c.name, err)
			}
		}
	}
	return j, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func parseStage(secs, bytes string) (state.Stage, error) {
	var s state.Stage
	var err error
	if secs != "" {
		if s.Duration, err = ParseSeconds(secs); err != nil {
			return s, err
		}
		s.HasDuration = true
	}
	if bytes != "" {
		if s.Bytes, err = strconv.ParseInt(bytes, 10, 64); err != nil {
			return s, fmt.Errorf("bytes: %w", err)
		}
		s.HasBytes = true
	}
	return s, nil
}

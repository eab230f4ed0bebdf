package export

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// NextflowColumns are the columns of WriteNextflowTrace, in order. The
// first ones are Nextflow trace fields (https://www.nextflow.io/docs/latest/reports.html#trace-file),
// filled with Nextflow's meaning where this executor knows the value:
//
//   - task_id: 1, 2, ... in the order the jobs started (Nextflow numbers
//     tasks in submission order).
//   - native_id: the job id (the id the execution system knows the task
//     by: here the AMQP correlation id).
//   - process: the executable; name: "process (n)", n counting the jobs of
//     that executable in start order, as Nextflow names untagged tasks.
//   - status: RUNNING, COMPLETED (exit status 0), FAILED, or ABORTED for
//     a lost job (its end was never seen).
//   - exit: the exit status as the executor reports it (so also -1, -2,
//     -3: not started, job error, timeout).
//   - attempt: the job.started events seen for the job.
//   - submit: job.started (when the executor took the delivery; the
//     engine's own submit time is not known); start: execution.started
//     (the command's start); complete: job.finished.
//   - duration: complete - submit (the job's wall time, staging
//     included); realtime: the command's wall time (execution).
//   - %cpu: 100 × (CPU user + system) / realtime; peak_rss: the
//     command's maximum resident set; hostname: the executor's host.
//
// Nextflow fields this executor does not measure are left out rather than
// approximated: rchar, wchar, read_bytes and write_bytes are the process's
// own I/O, which the staged sizes are not; hash, workdir, rss, vmem and the
// others have no counterpart.
//
// The columns after them are not Nextflow's (NextflowExtraColumns):
// executor and thread (where it ran), stage_in and stage_out (staging
// times, in the trace's time format) and input_size and output_size (bytes
// staged in and out, in its memory format).
var NextflowColumns = []string{
	"task_id", "native_id", "process", "name", "status", "exit", "attempt",
	"submit", "start", "complete", "duration", "realtime", "%cpu", "peak_rss", "hostname",
	"executor", "thread", "stage_in", "stage_out", "input_size", "output_size",
}

// NextflowExtraColumns are the columns of NextflowColumns that are not
// Nextflow trace fields.
var NextflowExtraColumns = []string{"executor", "thread", "stage_in", "stage_out", "input_size", "output_size"}

// NextflowOptions choose the trace's value formats.
type NextflowOptions struct {
	// Raw writes values as Nextflow's trace.raw = true does: timestamps
	// in milliseconds since the UNIX epoch, durations in milliseconds,
	// memory in bytes, %cpu without its % sign. Otherwise as Nextflow's
	// default: "2024-05-01 10:00:00.123", "1.5s", "1m 3s", "4.1 MB",
	// "98.5%".
	Raw bool
	// Location is the zone of the non-raw timestamps (which carry none);
	// nil is UTC. Nextflow writes its host's local time: pass time.Local
	// for that.
	Location *time.Location
}

// Nextflow task statuses.
const (
	nfRunning   = "RUNNING"
	nfCompleted = "COMPLETED"
	nfFailed    = "FAILED"
	nfAborted   = "ABORTED"
	nfNA        = "-" // Nextflow's missing value
)

// WriteNextflowTrace writes jobs as a Nextflow trace file in Nextflow's
// default (human-readable) format: tab-separated, a header row naming
// NextflowColumns, then a row per job in the order given, "-" for a value
// not known.
func WriteNextflowTrace(w io.Writer, jobs []state.JobView) error {
	return WriteNextflowTraceOptions(w, jobs, NextflowOptions{})
}

// WriteNextflowTraceOptions is WriteNextflowTrace with o's formats.
func WriteNextflowTraceOptions(w io.Writer, jobs []state.JobView, o NextflowOptions) error {
	if o.Location == nil {
		o.Location = time.UTC
	}
	// task ids and per-process numbers in start order.
	order := make([]int, len(jobs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ja, jb := &jobs[a], &jobs[b]
		switch {
		case ja.Started.IsZero() != jb.Started.IsZero():
			if ja.Started.IsZero() {
				return 1
			}
			return -1
		}
		return cmp.Or(ja.Started.Compare(jb.Started), strings.Compare(ja.ID, jb.ID))
	})
	taskID := make([]int, len(jobs))
	index := make([]int, len(jobs))
	perProcess := make(map[string]int)
	for n, i := range order {
		taskID[i] = n + 1
		perProcess[jobs[i].Executable]++
		index[i] = perProcess[jobs[i].Executable]
	}

	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(NextflowColumns, "\t"))
	bw.WriteByte('\n')
	row := make([]string, len(NextflowColumns))
	for i := range jobs {
		nextflowRow(row, &jobs[i], taskID[i], index[i], &o)
		for k, cell := range row {
			if k > 0 {
				bw.WriteByte('\t')
			}
			bw.WriteString(cell)
		}
		if err := bw.WriteByte('\n'); err != nil {
			return fmt.Errorf("write Nextflow trace: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write Nextflow trace: %w", err)
	}
	return nil
}

func nextflowRow(row []string, j *state.JobView, taskID, index int, o *NextflowOptions) {
	for k := range row {
		row[k] = nfNA
	}
	row[0] = strconv.Itoa(taskID)
	row[1] = nfString(j.ID)
	row[2] = nfString(j.Executable)
	if j.Executable != "" {
		row[3] = nfString(j.Executable + " (" + strconv.Itoa(index) + ")")
	} else {
		row[3] = nfString(j.ID)
	}
	switch j.State {
	case state.StateRunning:
		row[4] = nfRunning
	case state.StateDone:
		row[4] = nfCompleted
	case state.StateFailed:
		row[4] = nfFailed
	case state.StateLost:
		row[4] = nfAborted
	}
	if j.HasExit {
		row[5] = strconv.Itoa(j.ExitStatus)
	}
	if j.Attempts > 0 {
		row[6] = strconv.Itoa(j.Attempts)
	}
	row[7] = o.date(j.Started)
	row[8] = o.date(j.Execution.Start)
	row[9] = o.date(j.Finished)
	if !j.Started.IsZero() && !j.Finished.IsZero() && !j.Finished.Before(j.Started) {
		row[10] = o.duration(j.Finished.Sub(j.Started))
	}
	if j.Execution.HasDuration {
		row[11] = o.duration(j.Execution.Duration)
	}
	if j.HasMetrics {
		m := &j.Metrics
		if sec := j.Execution.Duration.Seconds(); j.Execution.HasDuration && sec > 0 {
			row[12] = o.percent(100 * (m.CPUUser + m.CPUSystem) / sec)
		}
		if m.MaxRSS > 0 {
			row[13] = o.memory(m.MaxRSS)
		}
	}
	row[14] = nfString(j.Hostname)
	row[15] = nfString(j.Executor)
	row[16] = nfString(j.Thread)
	if j.StageIn.HasDuration {
		row[17] = o.duration(j.StageIn.Duration)
	}
	if j.StageOut.HasDuration {
		row[18] = o.duration(j.StageOut.Duration)
	}
	in, out := j.StageIn.Bytes, j.StageOut.Bytes
	hasIn, hasOut := j.StageIn.HasBytes, j.StageOut.HasBytes
	if j.HasMetrics {
		in, out, hasIn, hasOut = j.Metrics.InputSize, j.Metrics.OutputSize, true, true
	}
	if hasIn {
		row[19] = o.memory(in)
	}
	if hasOut {
		row[20] = o.memory(out)
	}
}

// nfString is a text cell: "-" when empty; tabs and line breaks become
// spaces, to keep the file's shape.
func nfString(s string) string {
	if s == "" {
		return nfNA
	}
	if strings.ContainsAny(s, "\t\r\n") {
		s = strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(s)
	}
	return s
}

func (o *NextflowOptions) date(t time.Time) string {
	if t.IsZero() {
		return nfNA
	}
	if o.Raw {
		return strconv.FormatInt(t.UnixMilli(), 10)
	}
	return t.In(o.Location).Format("2006-01-02 15:04:05.000")
}

func (o *NextflowOptions) duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	ms := int64(math.Round(float64(d) / float64(time.Millisecond)))
	if o.Raw {
		return strconv.FormatInt(ms, 10)
	}
	return NextflowDuration(ms)
}

func (o *NextflowOptions) memory(b int64) string {
	if o.Raw {
		return strconv.FormatInt(max(b, 0), 10)
	}
	return NextflowMemory(b)
}

func (o *NextflowOptions) percent(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) || p < 0 {
		return nfNA
	}
	if o.Raw {
		return strconv.FormatFloat(p, 'f', 1, 64)
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

// NextflowDuration formats a duration of ms milliseconds as Nextflow's
// Duration does: "850ms" under a second, "1.5s" (to a tenth) under a
// minute, else whole units with zeros left out: "1m 3s", "2h 1s",
// "1d 4h 30m".
func NextflowDuration(ms int64) string {
	switch {
	case ms < 0:
		ms = 0
		fallthrough
	case ms < 1000:
		return strconv.FormatInt(ms, 10) + "ms"
	case ms < 60_000:
		tenths := int64(math.Round(float64(ms) / 100))
		if tenths%10 == 0 {
			return strconv.FormatInt(tenths/10, 10) + "s"
		}
		return strconv.FormatInt(tenths/10, 10) + "." + strconv.FormatInt(tenths%10, 10) + "s"
	}
	secs := int64(math.Round(float64(ms) / 1000))
	parts := make([]string, 0, 4)
	for _, u := range []struct {
		n    int64
		unit string
	}{{secs / 86400, "d"}, {secs / 3600 % 24, "h"}, {secs / 60 % 60, "m"}, {secs % 60, "s"}} {
		if u.n != 0 {
			parts = append(parts, strconv.FormatInt(u.n, 10)+u.unit)
		}
	}
	return strings.Join(parts, " ")
}

var nfUnits = [...]string{"B", "KB", "MB", "GB", "TB", "PB", "EB"}

// NextflowMemory formats bytes as Nextflow's MemoryUnit does: in the
// largest unit of 1024 that fits, to a tenth rounded half to even,
// without a trailing ".0": "195 B", "4.1 MB", "2 GB"; "0" for none.
func NextflowMemory(b int64) string {
	if b <= 0 {
		return "0"
	}
	g := 0
	for g < len(nfUnits)-1 && b>>(10*(g+1)) > 0 {
		g++
	}
	v := math.RoundToEven(float64(b)/math.Pow(1024, float64(g))*10) / 10
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if strings.Contains(s, ".") {
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	return s + " " + nfUnits[g]
}

package export

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// Chrome trace export: the Trace Event Format's JSON object form
// (https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU),
// which Perfetto (ui.perfetto.dev) and chrome://tracing open.
//
// Each executor is a process (pid 1, 2, ... by hostname then executor id,
// named "hostname (executor id)" by a process_name metadata event), each
// of its threads a thread (tid 1, 2, ... in lane order, named "thread N"),
// and each stage of a job a complete event ("ph":"X") on its thread's
// track: named after the executable (its base name), category the phase
// (stage-in, execution, stage-out), ts and dur in microseconds (ts since
// the UNIX epoch, event timestamps: the executors' clocks), and args with
// the job id, executable, phase, exit status, bytes staged, and flags:
// failed, running (a stage in progress, drawn up to now), incomplete (its
// end was not seen: drawn up to the job's last event). A slice that would
// overlap the next one on its track (clocks, lost jobs) is cut where the
// next begins, so that every track is a sequence the viewers draw as is.
// Colours (cname, honoured by chrome://tracing): staging
// "thread_state_iowait", execution "thread_state_running", failed
// "terrible".

// chromeEvent is one trace event.
type chromeEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    *int64         `json:"ts,omitempty"`
	Dur   *int64         `json:"dur,omitempty"`
	Pid   int            `json:"pid"`
	Tid   int            `json:"tid"`
	Cname string         `json:"cname,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

type track struct {
	key  string // thread id
	num  int64  // numeric thread id, -1 when not a number
	tid  int
	list []*chromeEvent
}

type process struct {
	id, hostname string
	pid          int
	tracks       map[string]*track
}

// WriteChromeTrace writes the stages of jobs as a Chrome trace (see the
// comment above); stages in progress end at now.
func WriteChromeTrace(w io.Writer, jobs []state.JobView, now time.Time) error {
	procs := map[string]*process{}
	for i := range jobs {
		j := &jobs[i]
		p := procs[j.Executor]
		if p == nil {
			p = &process{id: j.Executor, tracks: map[string]*track{}}
			procs[j.Executor] = p
		}
		if p.hostname == "" {
			p.hostname = j.Hostname
		}
		tr := p.tracks[j.Thread]
		if tr == nil {
			tr = &track{key: j.Thread, num: -1}
			if n, err := strconv.ParseInt(j.Thread, 10, 64); err == nil {
				tr.num = n
			}
			p.tracks[j.Thread] = tr
		}
		tr.list = append(tr.list, stageEvents(j, now)...)
	}

	plist := make([]*process, 0, len(procs))
	for _, p := range procs {
		plist = append(plist, p)
	}
	slices.SortFunc(plist, func(a, b *process) int {
		return cmp.Or(strings.Compare(a.hostname, b.hostname), strings.Compare(a.id, b.id))
	})
	var meta, xs []*chromeEvent // metadata, then the slices
	for i, p := range plist {
		p.pid = i + 1
		name := p.id
		if p.hostname != "" {
			name = p.hostname + " (" + p.id + ")"
		}
		if name == "" {
			name = "(unknown executor)"
		}
		meta = append(meta,
			&chromeEvent{Name: "process_name", Ph: "M", Pid: p.pid, Args: map[string]any{"name": name}},
			&chromeEvent{Name: "process_sort_index", Ph: "M", Pid: p.pid, Args: map[string]any{"sort_index": p.pid}})
		tracks := make([]*track, 0, len(p.tracks))
		for _, tr := range p.tracks {
			tracks = append(tracks, tr)
		}
		slices.SortFunc(tracks, func(a, b *track) int {
			switch {
			case a.num >= 0 && b.num >= 0:
				return cmp.Compare(a.num, b.num)
			case a.num >= 0:
				return -1
			case b.num >= 0:
				return 1
			}
			return strings.Compare(a.key, b.key)
		})
		for k, tr := range tracks {
			tr.tid = k + 1
			name := "thread " + tr.key
			if tr.key == "" {
				name = "(unknown thread)"
			}
			meta = append(meta,
				&chromeEvent{Name: "thread_name", Ph: "M", Pid: p.pid, Tid: tr.tid, Args: map[string]any{"name": name}},
				&chromeEvent{Name: "thread_sort_index", Ph: "M", Pid: p.pid, Tid: tr.tid, Args: map[string]any{"sort_index": tr.tid}})
			slices.SortStableFunc(tr.list, func(a, b *chromeEvent) int { return cmp.Compare(*a.Ts, *b.Ts) })
			for n, ev := range tr.list {
				ev.Pid, ev.Tid = p.pid, tr.tid
				if n+1 < len(tr.list) {
					if next := *tr.list[n+1].Ts; *ev.Ts+*ev.Dur > next {
						*ev.Dur = next - *ev.Ts
						ev.Args["cut"] = true
					}
				}
				xs = append(xs, ev)
			}
		}
	}

	bw := bufio.NewWriter(w)
	bw.WriteString(`{"displayTimeUnit":"ms","otherData":{"generator":"hyperflow-top"},"traceEvents":[`)
	for i, ev := range append(meta, xs...) {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("write Chrome trace: %w", err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n")
		bw.Write(b)
	}
	bw.WriteString("\n]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write Chrome trace: %w", err)
	}
	return nil
}

// stageEvents are the complete events of j's known stages, without pid
// and tid.
func stageEvents(j *state.JobView, now time.Time) []*chromeEvent {
	name := path.Base(j.Executable)
	if j.Executable == "" {
		name = j.ID
	}
	type stage struct {
		phase string
		s     state.Stage
	}
	stages := [3]stage{{state.PhaseStageIn, j.StageIn}, {state.PhaseExecution, j.Execution}, {state.PhaseStageOut, j.StageOut}}
	// A failed job failed in its last stage (as the Gantt lanes mark it).
	last := -1
	for i, st := range stages {
		if st.s.Known() {
			last = i
		}
	}
	var out []*chromeEvent
	for i, st := range stages {
		start, end := st.s.Start, st.s.End
		if start.IsZero() && !end.IsZero() && st.s.HasDuration {
			start = end.Add(-st.s.Duration)
		}
		if start.IsZero() {
			continue
		}
		args := map[string]any{"job": j.ID, "phase": st.phase}
		if j.Executable != "" {
			args["executable"] = j.Executable
		}
		if end.IsZero() {
			if j.State == state.StateRunning && j.Phase == st.phase {
				end = now
				args["running"] = true
			} else {
				// Its end was not seen: up to the next stage, the job's
				// end, or its last event.
				for _, next := range stages[i+1:] {
					if !next.s.Start.IsZero() {
						end = next.s.Start
						break
					}
				}
				if end.IsZero() {
					end = j.Finished
				}
				if end.IsZero() && j.LastEvent.After(start) {
					end = j.LastEvent
				}
				args["incomplete"] = true
			}
		}
		if end.Before(start) {
			end = start
		}
		failed := j.State == state.StateFailed && i == last
		if j.HasExit && (st.phase == state.PhaseExecution || failed) {
			args["exit_status"] = j.ExitStatus
		}
		if st.s.HasBytes {
			args["bytes"] = st.s.Bytes
		}
		cname := "thread_state_iowait"
		if st.phase == state.PhaseExecution {
			cname = "thread_state_running"
		}
		if failed {
			args["failed"] = true
			cname = "terrible"
		}
		ts, dur := start.UnixMicro(), end.UnixMicro()-start.UnixMicro()
		out = append(out, &chromeEvent{Name: name, Cat: st.phase, Ph: "X", Ts: &ts, Dur: &dur, Cname: cname, Args: args})
	}
	return out
}

package export_test

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/export"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

type traceEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat"`
	Ph    string         `json:"ph"`
	Ts    float64        `json:"ts"`
	Dur   float64        `json:"dur"`
	Pid   float64        `json:"pid"`
	Tid   float64        `json:"tid"`
	Cname string         `json:"cname"`
	Args  map[string]any `json:"args"`
	raw   map[string]json.RawMessage
}

type trackKey struct{ pid, tid float64 }

// checkChromeTrace checks data against the Trace Event Format (JSON object
// form): what Perfetto and chrome://tracing need to draw it.
func checkChromeTrace(t *testing.T, data []byte) (events []traceEvent, threadNames map[trackKey]string, procNames map[float64]string) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	var raws []map[string]json.RawMessage
	if err := json.Unmarshal(top["traceEvents"], &raws); err != nil {
		t.Fatalf("traceEvents is not an array of objects: %v", err)
	}
	if u, ok := top["displayTimeUnit"]; ok && string(u) != `"ms"` && string(u) != `"ns"` {
		t.Errorf("displayTimeUnit = %s", u)
	}
	threadNames, procNames = map[trackKey]string{}, map[float64]string{}
	integral := func(f float64) bool { return f == math.Trunc(f) && f >= 0 }
	for i, raw := range raws {
		var ev traceEvent
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, b)
		}
		ev.raw = raw
		for _, f := range []string{"name", "ph", "pid", "tid"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("event %d lacks %s: %s", i, f, b)
			}
		}
		if ev.Name == "" || !integral(ev.Pid) || !integral(ev.Tid) {
			t.Errorf("event %d: name %q pid %v tid %v", i, ev.Name, ev.Pid, ev.Tid)
		}
		switch ev.Ph {
		case "X":
			_, hasTs := raw["ts"]
			_, hasDur := raw["dur"]
			if !hasTs || !hasDur || ev.Dur < 0 || ev.Ts < 0 || !integral(ev.Ts) || !integral(ev.Dur) {
				t.Errorf("complete event %d: ts/dur %s", i, b)
			}
			if !slices.Contains([]string{state.PhaseStageIn, state.PhaseExecution, state.PhaseStageOut}, ev.Cat) ||
				ev.Args["phase"] != ev.Cat || ev.Args["job"] == nil {
				t.Errorf("complete event %d: cat/args %s", i, b)
			}
		case "M":
			switch ev.Name {
			case "process_name", "thread_name":
				name, ok := ev.Args["name"].(string)
				if !ok || name == "" {
					t.Errorf("metadata event %d: %s", i, b)
				}
				if ev.Name == "process_name" {
					procNames[ev.Pid] = name
				} else {
					threadNames[trackKey{ev.Pid, ev.Tid}] = name
				}
			case "process_sort_index", "thread_sort_index":
				if n, ok := ev.Args["sort_index"].(float64); !ok || !integral(n) {
					t.Errorf("metadata event %d: %s", i, b)
				}
			default:
				t.Errorf("metadata event %d: unknown name %q", i, ev.Name)
			}
		default:
			t.Errorf("event %d: phase %q", i, ev.Ph)
		}
		events = append(events, ev)
	}
	// Every slice is on a named thread of a named process, and the slices
	// of a track do not overlap (X events on one thread must nest; ours
	// follow each other).
	tracks := map[trackKey][]traceEvent{}
	for _, ev := range events {
		if ev.Ph != "X" {
			continue
		}
		k := trackKey{ev.Pid, ev.Tid}
		if threadNames[k] == "" || procNames[ev.Pid] == "" {
			t.Errorf("slice on an unnamed track: %+v", ev)
		}
		tracks[k] = append(tracks[k], ev)
	}
	for k, list := range tracks {
		for i := 1; i < len(list); i++ {
			if list[i].Ts < list[i-1].Ts || list[i-1].Ts+list[i-1].Dur > list[i].Ts {
				t.Errorf("track %v: %+v overlaps %+v", k, list[i-1], list[i])
			}
		}
	}
	return events, threadNames, procNames
}

func TestChromeTraceFormat(t *testing.T) {
	m := model(t)
	jobs, _ := m.Jobs(state.JobQuery{}, 0, -1)
	now := m.Latest()
	var buf bytes.Buffer
	if err := export.WriteChromeTrace(&buf, jobs, now); err != nil {
		t.Fatal(err)
	}
	events, threads, procs := checkChromeTrace(t, buf.Bytes())

	byJob := map[string][]traceEvent{}
	for _, ev := range events {
		if ev.Ph == "X" {
			byJob[ev.Args["job"].(string)] = append(byJob[ev.Args["job"].(string)], ev)
		}
	}
	// j2: three stages on node-2's thread 3, in µs.
	j2 := byJob["j2"]
	if len(j2) != 3 {
		t.Fatalf("j2 slices = %+v", j2)
	}
	want := []struct {
		cat     string
		ts, dur float64
	}{{"stage-in", 1700000001010000, 1000000}, {"execution", 1700000002020000, 4000000}, {"stage-out", 1700000006030000, 500000}}
	for i, w := range want {
		ev := j2[i]
		if ev.Cat != w.cat || ev.Ts != w.ts || ev.Dur != w.dur || ev.Name != "mProject" {
			t.Errorf("j2 slice %d = %+v, want %+v", i, ev, w)
		}
		if procs[ev.Pid] != "node-2 (exec-n)" || threads[trackKey{ev.Pid, ev.Tid}] != "thread 3" {
			t.Errorf("j2 on %q %q", procs[ev.Pid], threads[trackKey{ev.Pid, ev.Tid}])
		}
	}
	if j2[1].Args["exit_status"] != 0.0 || j2[0].Args["bytes"] != 4096.0 || j2[1].Cname != "thread_state_running" {
		t.Errorf("j2 args = %+v %+v", j2[0], j2[1])
	}
	// A stage in progress is drawn up to now.
	p1 := byJob["p1"]
	if len(p1) != 1 || p1[0].Args["running"] != true || p1[0].Ts+p1[0].Dur != float64(now.UnixMicro()) {
		t.Errorf("p1 = %+v", p1)
	}
	// A failed job's last stage is marked.
	if j3 := byJob["j3"]; len(j3) != 1 || j3[0].Args["failed"] != true || j3[0].Cname != "terrible" || j3[0].Args["exit_status"] != 3.0 {
		t.Errorf("j3 = %+v", j3)
	}
	// Ruby's long thread ids get small tids, named by the id.
	found := false
	for k, name := range threads {
		if name == "thread 70123456789012" {
			found = k.tid == 1
		}
	}
	if !found {
		t.Errorf("Ruby thread not named: %v", threads)
	}
}

func TestChromeTraceOverlapCut(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	lost := state.JobView{ID: "old", Executor: "x", Thread: "1", Executable: "/bin/a", State: state.StateLost,
		Execution: state.Stage{Start: t0}, LastEvent: t0.Add(10 * time.Second)}
	next := state.JobView{ID: "new", Executor: "x", Thread: "1", Executable: "/bin/b", State: state.StateDone,
		Execution: state.Stage{Start: t0.Add(4 * time.Second), End: t0.Add(6 * time.Second), Duration: 2 * time.Second, HasDuration: true}}
	none := state.JobView{ID: "nothing", Executor: "x", Thread: "2", State: state.StateRunning}
	var buf bytes.Buffer
	if err := export.WriteChromeTrace(&buf, []state.JobView{next, lost, none}, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	events, threads, _ := checkChromeTrace(t, buf.Bytes())
	var xs []traceEvent
	for _, ev := range events {
		if ev.Ph == "X" {
			xs = append(xs, ev)
		}
	}
	if len(xs) != 2 || xs[0].Args["job"] != "old" || xs[0].Dur != 4e6 || xs[0].Args["cut"] != true ||
		xs[0].Args["incomplete"] != true || xs[1].Dur != 2e6 || xs[0].Name != "a" {
		t.Errorf("slices = %+v", xs)
	}
	if len(threads) != 2 {
		t.Errorf("threads = %v", threads)
	}
}

func TestChromeTraceEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := export.WriteChromeTrace(&buf, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	events, _, _ := checkChromeTrace(t, buf.Bytes())
	if len(events) != 0 {
		t.Errorf("events = %v", events)
	}
}

package tui

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
)

// A deterministic generator of event streams like the executors', for the
// golden files, the replay tests, the benchmark and demos
// (testdata/demo.jsonl is its default output).

type genExec struct {
	id, host, storage string
	threads           int
	startAt, stopAt   float64 // seconds after the start; stopAt 0: never
}

type genSpec struct {
	start   time.Time
	seconds float64
	execs   []genExec
	seed    uint64
	meanJob float64 // mean execution time, seconds
	failPct int
}

// demoStart is the demo recording's first second.
var demoStart = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

func demoSpec() genSpec {
	return genSpec{
		start:   demoStart,
		seconds: 180,
		seed:    42,
		meanJob: 4,
		failPct: 6,
		execs: []genExec{
			{id: "3f2a1b4c-7d1e-4a51-9c0e-2b7f6e1d0a01", host: "node-1", storage: "local", threads: 3},
			{id: "9a8b7c6d-5e4f-4321-8765-0fedcba98702", host: "node-2", storage: "nfs", threads: 4},
			{id: "c0ffee00-1111-4222-8333-444455556603", host: "node-3", storage: "cloud", threads: 2, stopAt: 120},
			{id: "5eed5eed-2222-4333-8444-555566667704", host: "node-4", storage: "cloud", threads: 2, startAt: 125},
		},
	}
}

var genExecutables = []string{"mProject", "mDiffFit", "mBackground", "mAdd", "mShrink"}

type run struct {
	id, exe             string
	thread              int
	start, end          float64
	phases              [3][2]float64 // stage-in, execution, stage-out: start, end
	exit                int
	staged, redelivered bool
}

type genEvent struct {
	ts  float64
	seq int
	ev  eventbus.Event
}

// generate makes the events of spec, sorted by time, as received 5 ms
// after they were sent.
func generate(spec genSpec) []eventbus.Message {
	r := rand.New(rand.NewPCG(spec.seed, spec.seed^0x9e3779b97f4a7c15))
	t0 := eventbus.Timestamp(spec.start)
	var evs []genEvent
	seq := 0
	emit := func(ts float64, e eventbus.Event) {
		e.Timestamp = ts
		evs = append(evs, genEvent{ts: ts, seq: seq, ev: e})
		seq++
	}
	jobN := 0
	var runs [][]run // per executor
	var queue []run  // jobs killed with their executor, redelivered to the next one started
	for xi, x := range spec.execs {
		emit(t0+x.startAt+0.1*float64(xi), eventbus.Event{Executor: x.id, Type: eventbus.TypeExecutorReady, Hostname: x.host,
			Threads: x.threads, Storage: x.storage, Version: "1.0.0", Queue: "hyperflow.jobs"})
		end := spec.seconds
		if x.stopAt > 0 {
			end = x.stopAt
		}
		var xr []run
		for th := 1; th <= x.threads; th++ {
			at := x.startAt + 0.5 + r.Float64()*2
			for at < end {
				var j run
				if len(queue) > 0 && x.startAt > 0 {
					j, queue = queue[0], queue[1:]
					j.redelivered = true
				} else {
					jobN++
					j = run{id: fmt.Sprintf("job-%04d", jobN), exe: genExecutables[r.IntN(len(genExecutables))]}
					if r.IntN(100) < spec.failPct {
						j.exit = 1 + r.IntN(3)
					}
				}
				j.thread, j.start, j.staged = th, at, x.storage != "local"
				j.phases = [3][2]float64{}
				p := at + 0.01
				if j.staged {
					d := 0.2 + r.Float64()*1.5
					if r.IntN(10) == 0 {
						d *= 6 // a slow transfer
					}
					j.phases[0] = [2]float64{p, p + d}
					p += d + 0.01
				}
				d := spec.meanJob * (0.25 + r.ExpFloat64())
				j.phases[1] = [2]float64{p, p + d}
				p += d + 0.01
				if j.staged && j.exit == 0 {
					d := 0.1 + r.Float64()*0.8
					j.phases[2] = [2]float64{p, p + d}
					p += d + 0.01
				}
				j.end = p
				if x.stopAt > 0 && j.end > x.stopAt {
					// Killed with its executor: redelivered to the next.
					j.end = 0
					xr = append(xr, j)
					queue = append(queue, j)
					break
				}
				xr = append(xr, j)
				at = p + r.Float64()*r.Float64()*6 // idle gap
			}
		}
		runs = append(runs, xr)
	}
	horizon := t0 + spec.seconds
	for xi, x := range spec.execs {
		for _, j := range runs[xi] {
			s := t0 + j.start
			if s > horizon {
				continue
			}
			base := eventbus.Event{Executor: x.id, ID: j.id, Job: j.id, Thread: int64(j.thread)}
			e := base
			e.Type, e.Executable, e.Redelivered = eventbus.TypeJobStarted, j.exe, eventbus.Ptr(j.redelivered)
			emit(s, e)
			m := eventbus.Metrics{Executor: x.id, Thread: int64(j.thread), Hostname: x.host}
			m.Timestamps.JobStarted = s
			var inBytes, outBytes int64
			stop := horizon
			if x.stopAt > 0 {
				stop = min(stop, t0+x.stopAt)
			}
			if j.staged && j.phases[0][1] > 0 {
				a, b := t0+j.phases[0][0], t0+j.phases[0][1]
				if a > stop {
					continue
				}
				e := base
				e.Type = eventbus.TypeStageInStarted
				emit(a, e)
				if b > stop {
					continue
				}
				inBytes = int64(1<<20 + (j.thread*7919+len(j.id)*104729)%(64<<20))
				e.Type, e.Time, e.Bytes = eventbus.TypeStageInFinished, eventbus.Ptr(b-a), eventbus.Ptr(inBytes)
				emit(b, e)
				m.Timestamps.StageInStarted, m.Timestamps.StageInFinished, m.StageIn = a, b, b-a
			}
			a, b := t0+j.phases[1][0], t0+j.phases[1][1]
			if a > stop {
				continue
			}
			e = base
			e.Type, e.Executable = eventbus.TypeExecStarted, j.exe
			emit(a, e)
			if b > stop {
				continue
			}
			m.Timestamps.ExecutionStarted, m.Timestamps.ExecutionFinished, m.Execution = a, b, b-a
			m.InputSize, m.CPUUser, m.CPUSystem, m.MaxRSS = inBytes, (b-a)*0.9, (b-a)*0.05, int64(20<<20+j.thread<<20)
			mm := m
			e.Type, e.ExitStatus, e.Time, e.Metrics = eventbus.TypeExecFinished, eventbus.Ptr(j.exit), eventbus.Ptr(b-a), &mm
			emit(b, e)
			if j.staged && j.exit == 0 {
				a, b := t0+j.phases[2][0], t0+j.phases[2][1]
				if a > stop {
					continue
				}
				e := base
				e.Type = eventbus.TypeStageOutStarted
				emit(a, e)
				if b > stop {
					continue
				}
				outBytes = inBytes / 3
				e.Type, e.Time, e.Bytes = eventbus.TypeStageOutFinished, eventbus.Ptr(b-a), eventbus.Ptr(outBytes)
				emit(b, e)
				m.Timestamps.StageOutStarted, m.Timestamps.StageOutFinished, m.StageOut = a, b, b-a
			}
			end := t0 + j.end
			if j.end == 0 || end > stop {
				continue
			}
			m.OutputSize = outBytes
			m.Timestamps.JobFinished = end
			fm := m
			e = base
			e.Type, e.Executable, e.ExitStatus, e.Metrics = eventbus.TypeJobFinished, j.exe, eventbus.Ptr(j.exit), &fm
			e.Exceptions = []string{}
			if j.exit != 0 {
				e.Exceptions = []string{fmt.Sprintf("command exited with status %d", j.exit)}
				e.StderrTail = fmt.Sprintf("%s: cannot open input file %s.fits\nerror: %d\n", j.exe, j.id, j.exit)
			}
			emit(end, e)
		}
		// Heartbeats every 5 s, then the stop.
		stop := spec.seconds
		if x.stopAt > 0 {
			stop = x.stopAt
		}
		for hb := x.startAt + 5; hb < stop; hb += 5 {
			now := t0 + hb + 0.2*float64(xi)
			var running []eventbus.RunningJob
			var done, failed int64
			for _, j := range runs[xi] {
				s := t0 + j.start
				switch {
				case s > now:
				case j.end > 0 && t0+j.end <= now:
					if j.exit != 0 {
						failed++
					} else {
						done++
					}
				default:
					phase, since := eventbus.PhaseExecution, t0+j.phases[1][0]
					switch {
					case j.staged && now < t0+j.phases[1][0]:
						phase, since = eventbus.PhaseStageIn, t0+j.phases[0][0]
					case j.staged && j.phases[2][0] > 0 && now >= t0+j.phases[2][0]:
						phase, since = eventbus.PhaseStageOut, t0+j.phases[2][0]
					}
					running = append(running, eventbus.RunningJob{ID: j.id, Thread: int64(j.thread), Phase: phase, Since: since, Executable: j.exe})
				}
			}
			if running == nil {
				running = []eventbus.RunningJob{}
			}
			emit(now, eventbus.Event{Executor: x.id, Type: eventbus.TypeExecutorHeartbeat, Busy: eventbus.Ptr(len(running)),
				Threads: x.threads, JobsDone: eventbus.Ptr(done), JobsFailed: eventbus.Ptr(failed), Running: &running, Interval: 5})
		}
		if x.stopAt > 0 {
			emit(t0+x.stopAt, eventbus.Event{Executor: x.id, Type: eventbus.TypeExecutorStopped, Reason: "signal"})
		}
	}
	slices.SortStableFunc(evs, func(a, b genEvent) int {
		if a.ts != b.ts {
			if a.ts < b.ts {
				return -1
			}
			return 1
		}
		return a.seq - b.seq
	})
	out := make([]eventbus.Message, 0, len(evs))
	for _, g := range evs {
		if g.ts > horizon {
			continue
		}
		body, err := json.Marshal(&g.ev)
		if err != nil {
			panic(err)
		}
		recv := eventbus.FromTimestamp(g.ts).Add(5 * time.Millisecond).UTC()
		out = append(out, eventbus.Message{RoutingKey: g.ev.RoutingKey(), Body: body, Received: recv})
	}
	return out
}

// recordingBytes renders events as a recording.
func recordingBytes(msgs []eventbus.Message) []byte {
	var b []byte
	for _, m := range msgs {
		b = record.AppendLine(b, m)
	}
	return b
}

// TestDemoRecording keeps testdata/demo.jsonl the generator's output
// (go test -run TestDemoRecording -update rewrites it; the flag is the
// golden package's).
func TestDemoRecording(t *testing.T) {
	got := recordingBytes(generate(demoSpec()))
	msgs, err := record.Load(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 100 {
		t.Fatalf("demo recording has %d events; want a few hundred", len(msgs))
	}
	const path = "testdata/demo.jsonl"
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestDemoRecording -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the generator's output: go test -run TestDemoRecording -update rewrites it", path)
	}
}

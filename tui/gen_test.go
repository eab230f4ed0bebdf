package tui

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
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
	broker            string // the broker node's URL, password hidden
	threads           int
	startAt, stopAt   float64 // seconds after the start; stopAt 0: never
	// crashAt: the executor goes silent then (no executor.stopped, no
	// more events of its jobs): killed or cut off, so the monitor sees
	// it lost with its jobs running.
	crashAt float64
	// consumerTimeout (seconds) goes into its heartbeats, with each
	// running job's acknowledgement deadline (its start plus it).
	consumerTimeout float64
	// stageScale multiplies the staging times (0: 1).
	stageScale float64
	// The first job started on thread stallThread at or after stallAt
	// stages in for ever, its bytes growing for stallGrow seconds, then
	// not any more (a stalled transfer).
	stallThread        int
	stallAt, stallGrow float64
	// The first job started on thread longThread at or after longAt runs
	// its command past the end (a long job, near its deadline).
	longThread int
	longAt     float64
}

type genSpec struct {
	start   time.Time
	seconds float64
	execs   []genExec
	seed    uint64
	meanJob float64 // mean execution time, seconds
	failPct int     // failures: tenths of genFailures' percentages (10: as they are)
	// progressEvery: job.progress events every so many seconds of a job
	// (0: none), as an executor's progress_interval.
	progressEvery float64
}

// demoStart is the demo recording's first second.
var demoStart = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

// The demo: node-1 runs local jobs (no staging); node-2 stages from a
// slow NFS (transfers dominate), with a 150 s consumer timeout, a long job
// near its deadline and a transfer stalled since about 130 s; node-3 stops at
// 120 s, its jobs killed and redelivered to node-4, which starts at 125 s
// and goes silent at 158 s with jobs running (lost). They are connected to
// the nodes of a three-node broker cluster, node-4 over TLS.
func demoSpec() genSpec {
	return genSpec{
		start:         demoStart,
		seconds:       180,
		seed:          42,
		meanJob:       4,
		failPct:       20,
		progressEvery: 2,
		execs: []genExec{
			{id: "3f2a1b4c-7d1e-4a51-9c0e-2b7f6e1d0a01", host: "node-1", storage: "local", broker: "amqp://hf:***@rmq-1:5672/hf", threads: 3, consumerTimeout: 1800},
			{id: "9a8b7c6d-5e4f-4321-8765-0fedcba98702", host: "node-2", storage: "nfs", broker: "amqp://hf:***@rmq-2:5672/hf", threads: 4, consumerTimeout: 150,
				stageScale: 5, stallThread: 3, stallAt: 112, stallGrow: 8, longThread: 4, longAt: 85},
			{id: "c0ffee00-1111-4222-8333-444455556603", host: "node-3", storage: "cloud", broker: "amqp://hf:***@rmq-3:5672/hf", threads: 2, stopAt: 120, consumerTimeout: 1800},
			{id: "5eed5eed-2222-4333-8444-555566667704", host: "node-4", storage: "cloud", broker: "amqps://hf:***@rmq-1:5671/hf", threads: 2, startAt: 125, crashAt: 158, consumerTimeout: 1800,
				longThread: 1, longAt: 140},
		},
	}
}

var genExecutables = []string{"mProject", "mDiffFit", "mBackground", "mAdd", "mShrink"}

// genFailure is how a job of an executable fails: its exit status, its
// stderr (%s: the job id, %d: a number that varies) and its exception (""
// for the executor's "command exited with status N").
type genFailure struct {
	pct               int // percent of its jobs that fail
	exit              int
	stderr, exception string
}

var genFailures = map[string]genFailure{
	"mProject":    {pct: 16, exit: 1, stderr: "mProject: cannot open input file %s.fits: No such file or directory\n"},
	"mDiffFit":    {pct: 4, exit: 3, stderr: "mDiffFit: fit failed: singular matrix at row %d\nmDiffFit: giving up\n"},
	"mBackground": {pct: 8, exit: 137, exception: "command killed by signal 9"},
	"mAdd":        {pct: 12, exit: -3, stderr: "mAdd: co-adding %d images\n", exception: "command timed out after 60s"},
	"mShrink":     {pct: 2, exit: 2, stderr: "usage: mShrink in.fits factor out.fits (got %d arguments)\n"},
}

// stageInFailure fails a staged job before its command: exit -2.
const stageInFailure = "stage-in in.fits: open /shared/run-42/%s/in.fits: no such file or directory"

// never is the end of a phase that does not end.
const never = 1e9

type run struct {
	id, exe             string
	thread              int
	start, end          float64       // end 0: never seen
	phases              [3][2]float64 // stage-in, execution, stage-out: start, end (0, 0: none)
	exit                int
	staged, redelivered bool
	stageFail           bool    // failed in stage-in: no execution
	stallAt             float64 // > 0: the stage-in's bytes stop growing then (seconds after the start)
}

// phaseAt is the phase j is in at t (seconds after the start) and since
// when; "" between phases.
func (j *run) phaseAt(t float64) (phase string, since float64) {
	names := [3]string{eventbus.PhaseStageIn, eventbus.PhaseExecution, eventbus.PhaseStageOut}
	for k := 2; k >= 0; k-- {
		if p := j.phases[k]; p[1] > 0 && t >= p[0] {
			if t < p[1] {
				return names[k], p[0]
			}
			return "", 0
		}
	}
	return "", 0
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
			Threads: x.threads, Storage: x.storage, Version: "1.0.0", Queue: "hyperflow.jobs", Broker: x.broker})
		end := spec.seconds
		if x.stopAt > 0 {
			end = x.stopAt
		}
		scale := x.stageScale
		if scale == 0 {
			scale = 1
		}
		var xr []run
		for th := 1; th <= x.threads; th++ {
			at := x.startAt + 0.5 + r.Float64()*2
			stalled, long := false, false
			for at < end {
				var j run
				if len(queue) > 0 && x.startAt > 0 {
					j, queue = queue[0], queue[1:]
					j.redelivered = true
				} else {
					jobN++
					j = run{id: fmt.Sprintf("job-%04d", jobN), exe: genExecutables[r.IntN(len(genExecutables))]}
					if r.IntN(100) < genFailures[j.exe].pct*spec.failPct/10 {
						j.exit = genFailures[j.exe].exit
						if x.storage != "local" && r.IntN(4) == 0 {
							j.exit, j.stageFail = eventbus.ExitJobError, true
						}
					}
				}
				j.thread, j.start, j.staged = th, at, x.storage != "local"
				j.phases = [3][2]float64{}
				p := at + 0.01
				stall := th == x.stallThread && at >= x.stallAt && !stalled
				lng := th == x.longThread && at >= x.longAt && !long && !stall
				if j.staged {
					d := (0.2 + r.Float64()*1.5) * scale
					if r.IntN(10) == 0 {
						d *= 6 // a slow transfer
					}
					if stall {
						d, stalled = never, true
						j.stallAt = p + x.stallGrow
						j.exit, j.stageFail = 0, false
					}
					j.phases[0] = [2]float64{p, p + d}
					p += d + 0.01
				}
				if !j.stageFail && !stall {
					d := spec.meanJob * (0.25 + r.ExpFloat64())
					if lng {
						d, long = never, true
						j.exit = 0
					}
					j.phases[1] = [2]float64{p, p + d}
					p += d + 0.01
				}
				if j.staged && j.exit == 0 && !stall && !lng {
					d := (0.1 + r.Float64()*0.8) * scale
					j.phases[2] = [2]float64{p, p + d}
					p += d + 0.01
				}
				j.end = p
				if stall || lng {
					j.end = 0
					xr = append(xr, j)
					break
				}
				if x.stopAt > 0 && j.end > x.stopAt {
					// Killed with its executor: redelivered to the next.
					j.end = 0
					xr = append(xr, j)
					queue = append(queue, j)
					break
				}
				xr = append(xr, j)
				if x.crashAt > 0 && j.end > x.crashAt {
					break // running when the executor went silent
				}
				at = p + r.Float64()*r.Float64()*6 // idle gap
			}
		}
		runs = append(runs, xr)
	}
	horizon := t0 + spec.seconds
	for xi, x := range spec.execs {
		// stop is when the executor's events end.
		stop := horizon
		switch {
		case x.stopAt > 0:
			stop = min(stop, t0+x.stopAt)
		case x.crashAt > 0:
			stop = min(stop, t0+x.crashAt)
		}
		for _, j := range runs[xi] {
			s := t0 + j.start
			if s > stop {
				continue
			}
			base := eventbus.Event{Executor: x.id, ID: j.id, Job: j.id, Thread: int64(j.thread)}
			e := base
			e.Type, e.Executable, e.Redelivered = eventbus.TypeJobStarted, j.exe, eventbus.Ptr(j.redelivered)
			emit(s, e)
			m := eventbus.Metrics{Executor: x.id, Thread: int64(j.thread), Hostname: x.host}
			m.Timestamps.JobStarted = s
			inBytes := int64(1<<20 + (j.thread*7919+len(j.id)*104729+int(j.start*1000)*131)%(64<<20))
			outBytes := inBytes / 3
			// Progress, as the executor's ticker sends it from the job's
			// start while it is in a phase.
			if pe := spec.progressEvery; pe > 0 {
				last := stop
				if j.end > 0 {
					last = min(last, t0+j.end)
				}
				for t := s + pe; t < last; t += pe {
					phase, since := j.phaseAt(t - t0)
					if phase == "" {
						continue
					}
					el := t - (t0 + since)
					e := base
					e.Type, e.Phase, e.Elapsed, e.Executable = eventbus.TypeJobProgress, phase, eventbus.Ptr(el), j.exe
					switch phase {
					case eventbus.PhaseStageIn:
						var b int64
						if j.stallAt > 0 {
							b = int64((min(t-t0, j.stallAt) - since) * 1.5 * (1 << 20)) // 1.5 MiB/s until it stalls
						} else {
							b = int64(float64(inBytes) * el / (j.phases[0][1] - since))
						}
						e.Bytes = eventbus.Ptr(b)
					case eventbus.PhaseStageOut:
						e.Bytes = eventbus.Ptr(int64(float64(outBytes) * el / (j.phases[2][1] - since)))
						e.BytesTotal = eventbus.Ptr(outBytes)
					default:
						e.RSS = eventbus.Ptr(int64(min(16+8*el, 900)) << 20)
						e.CPU = eventbus.Ptr(0.93 * el)
					}
					emit(t, e)
				}
			}
			finish := func(end float64) {
				if j.end == 0 || end > stop {
					return
				}
				m.OutputSize = outBytes
				if j.exit != 0 {
					m.OutputSize = 0
				}
				m.Timestamps.JobFinished = end
				fm := m
				e := base
				e.Type, e.Executable, e.ExitStatus, e.Metrics = eventbus.TypeJobFinished, j.exe, eventbus.Ptr(j.exit), &fm
				e.Exceptions = []string{}
				if j.exit != 0 {
					f := genFailures[j.exe]
					n := 3 + (j.thread*31+len(j.id)*7+int(j.start))%97
					exc := fmt.Sprintf("command exited with status %d", j.exit)
					if f.exception != "" {
						exc = f.exception
					}
					if f.stderr != "" {
						if strings.Contains(f.stderr, "%s") {
							e.StderrTail = fmt.Sprintf(f.stderr, j.id)
						} else {
							e.StderrTail = fmt.Sprintf(f.stderr, n)
						}
					}
					if j.stageFail {
						exc, e.StderrTail = fmt.Sprintf(stageInFailure, j.id), ""
					}
					e.Exceptions = []string{exc}
				}
				emit(end, e)
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
				e.Type, e.Time, e.Bytes = eventbus.TypeStageInFinished, eventbus.Ptr(b-a), eventbus.Ptr(inBytes)
				if j.stageFail {
					e.Bytes = eventbus.Ptr(inBytes / 5)
				}
				emit(b, e)
				m.Timestamps.StageInStarted, m.Timestamps.StageInFinished, m.StageIn = a, b, b-a
				if j.stageFail {
					m.InputSize = inBytes / 5
					finish(t0 + j.end)
					continue
				}
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
			if !j.staged {
				inBytes = 0
			}
			m.Timestamps.ExecutionStarted, m.Timestamps.ExecutionFinished, m.Execution = a, b, b-a
			m.InputSize, m.CPUUser, m.CPUSystem, m.MaxRSS = inBytes, (b-a)*0.9, (b-a)*0.05, int64(20<<20+j.thread<<20)
			mm := m
			e.Type, e.ExitStatus, e.Time, e.Metrics = eventbus.TypeExecFinished, eventbus.Ptr(j.exit), eventbus.Ptr(b-a), &mm
			emit(b, e)
			if !j.staged {
				outBytes = 0
			}
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
				e.Type, e.Time, e.Bytes = eventbus.TypeStageOutFinished, eventbus.Ptr(b-a), eventbus.Ptr(outBytes)
				emit(b, e)
				m.Timestamps.StageOutStarted, m.Timestamps.StageOutFinished, m.StageOut = a, b, b-a
			}
			finish(t0 + j.end)
		}
		// Heartbeats every 5 s, then the stop.
		for hb := x.startAt + 5; t0+hb < stop; hb += 5 {
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
					phase, since := j.phaseAt(now - t0)
					if phase == "" {
						phase, since = eventbus.PhaseExecution, j.phases[1][0]
						if j.phases[1][1] == 0 || now-t0 < since {
							phase, since = eventbus.PhaseStageIn, j.phases[0][0]
						}
					}
					rj := eventbus.RunningJob{ID: j.id, Thread: int64(j.thread), Phase: phase, Since: t0 + since, Executable: j.exe}
					if x.consumerTimeout > 0 {
						rj.Deadline = s + x.consumerTimeout
					}
					running = append(running, rj)
				}
			}
			if running == nil {
				running = []eventbus.RunningJob{}
			}
			emit(now, eventbus.Event{Executor: x.id, Type: eventbus.TypeExecutorHeartbeat, Busy: eventbus.Ptr(len(running)),
				Threads: x.threads, JobsDone: eventbus.Ptr(done), JobsFailed: eventbus.Ptr(failed), Running: &running, Interval: 5,
				ConsumerTimeout: x.consumerTimeout, Hostname: x.host, Storage: x.storage, Version: "1.0.0", Queue: "hyperflow.jobs", Broker: x.broker})
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

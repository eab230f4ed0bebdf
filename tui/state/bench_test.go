package state_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// stream generates the events executors publish (encoded as the executor
// does), for jobs run one after the other on execs×threads slots: every
// other job staged (8 events), the rest local (4 events), a heartbeat per
// executor every 5 s with its running list.
type stream struct {
	execs, threads int
	prefix         string // of job ids, to make each stream's ids unique
	base           float64
	next           int // jobs made
	hb             float64
	pending        []eventbus.Message
	// progress: a job.progress event in every phase of every job, as the
	// executor sends them every 5 s (these jobs are shorter).
	progress bool
}

func (s *stream) msg(ev *eventbus.Event) eventbus.Message {
	body, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return eventbus.Message{RoutingKey: ev.RoutingKey(), Body: body,
		Received: eventbus.FromTimestamp(ev.Timestamp).Add(2 * time.Millisecond)}
}

// job appends the events of the next job to dst.
func (s *stream) job(dst []eventbus.Message) []eventbus.Message {
	n := s.next
	s.next++
	slots := s.execs * s.threads
	slot := n % slots
	exec := fmt.Sprintf("exec-%03d", slot/s.threads)
	thread := int64(slot%s.threads + 1)
	id := s.prefix + strconv.Itoa(n)
	t := s.base + float64(n/slots)*2 + float64(slot)*0.001
	exe := fmt.Sprintf("/usr/bin/task%d", n%20)
	staged := n%2 == 0
	ev := func(typ string, at float64) *eventbus.Event {
		return &eventbus.Event{Executor: exec, Timestamp: at, Type: typ, ID: id, Job: id, Thread: thread}
	}
	m := eventbus.Metrics{Executor: exec, Thread: thread, Hostname: "node-" + exec[5:]}
	m.Timestamps.JobStarted = t
	e := ev(eventbus.TypeJobStarted, t)
	e.Executable, e.Redelivered = exe, eventbus.Ptr(false)
	dst = append(dst, s.msg(e))
	x := t + 0.01
	prog := func(phase string, at, elapsed float64) {
		if !s.progress {
			return
		}
		e := ev(eventbus.TypeJobProgress, at)
		e.Phase, e.Elapsed, e.Executable = phase, eventbus.Ptr(elapsed), exe
		switch phase {
		case eventbus.PhaseExecution:
			e.RSS, e.CPU = eventbus.Ptr(int64(40<<20)), eventbus.Ptr(elapsed*0.9)
		case eventbus.PhaseStageOut:
			e.Bytes, e.BytesTotal = eventbus.Ptr(int64(2048)), eventbus.Ptr(int64(4096))
		default:
			e.Bytes = eventbus.Ptr(int64(1 << 19))
		}
		dst = append(dst, s.msg(e))
	}
	if staged {
		dst = append(dst, s.msg(ev(eventbus.TypeStageInStarted, t+0.001)))
		prog(eventbus.PhaseStageIn, t+0.1, 0.099)
		e := ev(eventbus.TypeStageInFinished, t+0.2)
		e.Time, e.Bytes = eventbus.Ptr(0.199), eventbus.Ptr(int64(1<<20))
		dst = append(dst, s.msg(e))
		m.Timestamps.StageInStarted, m.Timestamps.StageInFinished = t+0.001, t+0.2
		m.StageIn, m.InputSize = 0.199, 1<<20
		x = t + 0.21
	}
	e = ev(eventbus.TypeExecStarted, x)
	e.Executable = exe
	dst = append(dst, s.msg(e))
	dur := 1 + float64(n%7)*0.1
	prog(eventbus.PhaseExecution, x+0.5, 0.5)
	m.Timestamps.ExecutionStarted, m.Timestamps.ExecutionFinished = x, x+dur
	m.Execution, m.CPUUser, m.CPUSystem, m.MaxRSS = dur, dur*0.9, 0.05, 50<<20
	e = ev(eventbus.TypeExecFinished, x+dur)
	e.Executable, e.ExitStatus, e.Time = exe, eventbus.Ptr(0), eventbus.Ptr(dur)
	mc := m
	e.Metrics = &mc
	dst = append(dst, s.msg(e))
	end := x + dur + 0.01
	if staged {
		dst = append(dst, s.msg(ev(eventbus.TypeStageOutStarted, x+dur+0.001)))
		prog(eventbus.PhaseStageOut, x+dur+0.05, 0.049)
		e := ev(eventbus.TypeStageOutFinished, x+dur+0.1)
		e.Time, e.Bytes = eventbus.Ptr(0.099), eventbus.Ptr(int64(4096))
		dst = append(dst, s.msg(e))
		m.Timestamps.StageOutStarted, m.Timestamps.StageOutFinished = x+dur+0.001, x+dur+0.1
		m.StageOut, m.OutputSize = 0.099, 4096
		end = x + dur + 0.11
	}
	m.Timestamps.JobFinished = end
	status := 0
	if n%50 == 0 {
		status = 1
	}
	e = ev(eventbus.TypeJobFinished, end)
	e.Executable, e.ExitStatus, e.Metrics, e.Exceptions = exe, eventbus.Ptr(status), &m, []string{}
	if status != 0 {
		e.Exceptions, e.StderrTail = []string{"command exited with status 1"}, "oops"
	}
	dst = append(dst, s.msg(e))
	if t >= s.hb {
		s.hb = t + 5
		for i := range s.execs {
			running := []eventbus.RunningJob{{ID: id, Thread: thread, Phase: eventbus.PhaseExecution, Since: x}}
			dst = append(dst, s.msg(&eventbus.Event{Executor: fmt.Sprintf("exec-%03d", i), Timestamp: t + 0.0005,
				Type: eventbus.TypeExecutorHeartbeat, Busy: eventbus.Ptr(1), Threads: s.threads,
				JobsDone: eventbus.Ptr(int64(n)), JobsFailed: eventbus.Ptr(int64(0)), Running: &running, Interval: 5}))
		}
	}
	return dst
}

func newStream(prefix string) *stream {
	return &stream{execs: 8, threads: 8, prefix: prefix, base: 1700000000}
}

// BenchmarkApply measures how many executor events per second the model
// ingests (goal: 200k/s).
func BenchmarkApply(b *testing.B) { benchmarkApply(b, false) }

// BenchmarkApplyWithProgress is BenchmarkApply with a job.progress event in
// every phase of every job (a quarter of the events).
func BenchmarkApplyWithProgress(b *testing.B) { benchmarkApply(b, true) }

func benchmarkApply(b *testing.B, progress bool) {
	s := newStream("job-")
	s.progress = progress
	var msgs []eventbus.Message
	for len(msgs) < 100_000 {
		msgs = s.job(msgs)
	}
	var bytes int64
	for _, m := range msgs {
		bytes += int64(len(m.Body))
	}
	b.SetBytes(bytes / int64(len(msgs)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	m := state.New(state.Options{})
	i := 0
	for range b.N {
		if i == len(msgs) {
			// Every job again would be duplicates: start afresh.
			b.StopTimer()
			m = state.New(state.Options{})
			i = 0
			b.StartTimer()
		}
		_ = m.Apply(msgs[i])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/(cpuTime()-cpu).Seconds(), "events/cpu-s")
	}
	if a := m.Anomalies(); a.Total() != 0 {
		b.Fatalf("anomalies: %+v", a)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory100kJobs reports the heap a model holds after 100k
// finished jobs with MaxJobs 10000: it is bounded by MaxJobs, not by the
// jobs seen.
func BenchmarkMemory100kJobs(b *testing.B) {
	for range b.N {
		before := heapInUse()
		m := state.New(state.Options{MaxJobs: 10000})
		s := newStream("job-")
		var buf []eventbus.Message
		var at50k uint64
		for s.next < 100_000 {
			buf = s.job(buf[:0])
			for _, msg := range buf {
				if err := m.Apply(msg); err != nil {
					b.Fatal(err)
				}
			}
			if s.next == 50_000 {
				at50k = heapInUse()
			}
		}
		clear(buf)
		buf = nil
		after := heapInUse()
		b.ReportMetric((float64(at50k)-float64(before))/(1<<20), "MiB-held-at-50k")
		tot := m.Totals(m.Latest())
		if tot.Done+tot.Failed != 100_000 || tot.Kept > 10000+64 {
			b.Fatalf("totals = %+v", tot)
		}
		held := float64(after) - float64(before)
		b.ReportMetric(held/(1<<20), "MiB-held")
		b.ReportMetric(held/float64(tot.Kept), "B/job-kept")
		runtime.KeepAlive(m)
	}
}

// BenchmarkJobsSorted10k: one page of the jobs table over 10k jobs after
// every change (re-sorting), and when nothing changed (cached). Goal ≤ 5 ms.
func BenchmarkJobsSorted10k(b *testing.B) {
	m := state.New(state.Options{MaxJobs: 10000})
	s := newStream("job-")
	var buf []eventbus.Message
	for s.next < 10_000 {
		buf = s.job(buf)
	}
	for _, msg := range buf {
		_ = m.Apply(msg)
	}
	if _, n := m.Jobs(state.JobQuery{}, 0, 0); n != 10_000 {
		b.Fatalf("%d jobs", n)
	}
	// Events that change a job each time: a new job per iteration.
	extra := newStream("more-")
	extra.base = 1800000000
	var more []eventbus.Message
	for len(more) < 200_000 {
		more = extra.job(more)
	}
	i := 0 // shared, so that every run applies new events
	for _, k := range []struct {
		name string
		q    state.JobQuery
	}{
		{"started", state.JobQuery{Reverse: true}},
		{"execution", state.JobQuery{Sort: state.SortExecution, Reverse: true}},
		{"executable", state.JobQuery{Sort: state.SortExecutable}},
		{"text-filter", state.JobQuery{Text: "TASK1", Sort: state.SortDuration}},
	} {
		b.Run(k.name+"/changed", func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				_ = m.Apply(more[i%len(more)])
				i++
				page, _ := m.Jobs(k.q, 0, 60)
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
			reportCPU(b, cpu)
		})
		b.Run(k.name+"/cached", func(b *testing.B) {
			cpu := cpuTime()
			for range b.N {
				page, _ := m.Jobs(k.q, 0, 60)
				if len(page) == 0 {
					b.Fatal("empty page")
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the process's CPU time per operation since start (on
// a shared machine, steadier than the wall time of ns/op).
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkFrame is what a view reads per frame with 10k jobs.
func BenchmarkFrame(b *testing.B) {
	m := state.New(state.Options{MaxJobs: 10000})
	s := newStream("job-")
	var buf []eventbus.Message
	for s.next < 10_000 {
		buf = s.job(buf)
	}
	for _, msg := range buf {
		_ = m.Apply(msg)
	}
	now := m.Latest()
	b.ResetTimer()
	cpu := cpuTime()
	defer reportCPU(b, cpu)
	for range b.N {
		m.Tick(now)
		m.Totals(now)
		m.Throughput(now, 60)
		for _, x := range m.Executors() {
			m.Threads(x.ID, now.Add(-10*time.Minute))
		}
		m.ExecStats()
		m.Anomalies()
	}
}

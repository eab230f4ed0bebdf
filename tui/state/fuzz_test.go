package state_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// FuzzApply feeds arbitrary event sequences (bodies separated by newlines,
// each under a routing key picked by its first byte) to a model that has
// seen the recorded streams: it must never panic, and its counts must stay
// consistent.
func FuzzApply(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, file := range files {
		var seed []byte
		for _, msg := range load(f, filepath.Base(file)) {
			seed = append(seed, keyByte(msg.RoutingKey))
			seed = append(seed, bytes.ReplaceAll(msg.Body, []byte("\n"), nil)...)
			seed = append(seed, '\n')
		}
		f.Add(seed)
	}
	base := []eventbus.Message{}
	for _, file := range []string{"local_job.jsonl", "late_start.jsonl", "lost.jsonl", "late_progress.jsonl"} {
		base = append(base, load(f, file)...)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := state.New(state.Options{MaxJobs: 3, MaxIntervals: 2, MaxExecutors: 3, MaxAnomalies: 2, MaxFailureGroups: 2})
		for _, msg := range base {
			_ = m.Apply(msg)
		}
		at := base[len(base)-1].Received
		for i, line := range bytes.Split(data, []byte("\n")) {
			if i > 200 {
				break
			}
			key := "job.x.started"
			if len(line) > 0 {
				key = fuzzKeys[int(line[0])%len(fuzzKeys)]
				line = line[1:]
			}
			at = at.Add(time.Duration(i%3) * 700 * time.Millisecond)
			_ = m.Apply(eventbus.Message{RoutingKey: key, Body: line, Received: at})
		}
		m.Tick(at.Add(time.Minute))
		checkInvariants(t, m)
		for _, x := range m.Executors() {
			m.Threads(x.ID, at.Add(-time.Hour))
		}
		jobs, _ := m.Jobs(state.JobQuery{Sort: state.SortThread}, 0, -1)
		for _, j := range jobs {
			if _, ok := m.Job(j.ID); !ok {
				t.Fatalf("job %s listed but not found", j.ID)
			}
		}
		m.ExecStats()
		m.Throughput(at, 30)
		m.Anomalies()
		tot := m.Totals(at)
		groups := m.FailureGroups()
		if len(groups) > 2 || tot.FailureGroups != len(groups) {
			t.Fatalf("%d failure groups, totals say %d", len(groups), tot.FailureGroups)
		}
		for _, g := range groups {
			if g.Count < 1 || len(g.Jobs) == 0 || len(g.Jobs) > state.MaxGroupJobs {
				t.Fatalf("group %+v", g)
			}
			m.Jobs(state.JobQuery{Group: g.Key}, 0, -1)
		}
		for _, x := range m.Executors() {
			u, threads, ok := m.Utilisation(x.ID, at)
			if ok && (u.Busy() < 0 || u.Busy() > 1 || u.Idle() < 0 || len(threads) == 0) {
				t.Fatalf("utilisation of %s = %+v", x.ID, u)
			}
			m.Diagnosis(x.ID, at)
		}
		m.ClusterUtilisation(at)
		for _, r := range m.StorageRates(at) {
			if r.Rate < 0 || r.Active < 0 || r.Transfers < 0 {
				t.Fatalf("storage rate %+v", r)
			}
		}
		for _, f := range []state.JobFlags{state.FlagStalled, state.FlagNearDeadline, state.FlagRedelivered} {
			m.Jobs(state.JobQuery{Flags: f, Sort: state.SortDeadline}, 0, -1)
		}
	})
}

var fuzzKeys = []string{
	"executor.ready", "executor.heartbeat", "executor.stopped", "job.a.started", "job.a.finished",
	"job.b.stage_in.started", "job.b.stage-in.finished", "job.a.execution.started", "job.c.execution.finished",
	"job.c.stage-out.started", "job.c.stage_out.finished", "job.a.progress", "", "weird",
	"job.lp1.progress", "job.lp4.progress",
}

func keyByte(key string) byte {
	for i, k := range fuzzKeys {
		if k == key {
			return byte(i)
		}
	}
	return 3
}

package state_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// hbQ is a heartbeat of an executor consuming queue q with busy of threads.
func hbQ(id, q string, busy, threads int) eventbus.Event {
	return eventbus.Event{Executor: id, Type: eventbus.TypeExecutorHeartbeat, Queue: q,
		Busy: eventbus.Ptr(busy), Threads: threads, Interval: 5,
		JobsDone: eventbus.Ptr(int64(0)), JobsFailed: eventbus.Ptr(int64(0)), Running: &[]eventbus.RunningJob{}}
}

func queueOf(t *testing.T, m *state.Model, name string, now float64) state.QueueView {
	t.Helper()
	m.Tick(at(now))
	for _, q := range m.Queues(at(now)) {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("queue %s not listed", name)
	return state.QueueView{}
}

func sample(m *state.Model, q string, s float64, ready, consumers int) {
	m.SetQueueSample(q, state.QueueSample{Ready: ready, Consumers: consumers, At: at(s)})
}

func TestQueueRatesAndDrain(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, hbQ("x1", "hyperflow.jobs", 2, 4))
	// 20 jobs started and 20 finished over 20 s: 1/s each.
	for i := range 20 {
		id := "job-" + string(rune('a'+i))
		l.send(float64(i)+1, eventbus.Event{Executor: "x1", Type: eventbus.TypeJobStarted, ID: id, Thread: 1, Redelivered: eventbus.Ptr(false)})
		l.send(float64(i)+1.5, eventbus.Event{Executor: "x1", Type: eventbus.TypeJobFinished, ID: id, Thread: 1, ExitStatus: eventbus.Ptr(0)})
	}
	l.send(20.5, hbQ("x1", "hyperflow.jobs", 2, 4))
	// The ready count falls from 100 to 90 in 20 s: 0.5/s net.
	sample(l.m, "hyperflow.jobs", 1, 100, 1)
	sample(l.m, "hyperflow.jobs", 21, 90, 1)
	q := queueOf(t, l.m, "hyperflow.jobs", 21)
	if q.Started < 0.9 || q.Started > 1.1 || q.Finished < 0.9 || q.Finished > 1.1 {
		t.Fatalf("started %.2f/s finished %.2f/s, want about 1/s", q.Started, q.Finished)
	}
	if !q.HasReadyRate || q.ReadyRate != -0.5 {
		t.Fatalf("ready rate %v (%v), want -0.5/s", q.ReadyRate, q.HasReadyRate)
	}
	if q.Arrival < 0.4 || q.Arrival > 0.6 {
		t.Fatalf("arrival %.2f/s, want about 0.5/s (started 1/s, ready -0.5/s)", q.Arrival)
	}
	// 90 ready + 2 unacked at a net 0.5/s: about 184 s.
	if !q.HasDrain || q.Drain < 150*time.Second || q.Drain > 220*time.Second {
		t.Fatalf("drain %v (%v), want about 3 min", q.Drain, q.HasDrain)
	}
	if q.Unacked != 2 || q.Prefetch != 4 || q.Live != 1 {
		t.Fatalf("unacked %d prefetch %d live %d, want 2 4 1", q.Unacked, q.Prefetch, q.Live)
	}
	if q.Diagnosis != "" {
		t.Fatalf("diagnosis %q on a queue that moves", q.Diagnosis)
	}

	// Growing: never drains.
	sample(l.m, "hyperflow.jobs", 23, 200, 1)
	if q := queueOf(t, l.m, "hyperflow.jobs", 23); q.HasDrain {
		t.Fatalf("a growing queue drains in %v", q.Drain)
	}
}

func TestQueueDiagnosis(t *testing.T) {
	const jobs = "hyperflow.jobs"
	cases := []struct {
		name string
		feed func(l *life)
		now  float64
		want string
		warn bool
	}{
		{"no consumer", func(l *life) {
			l.send(0, hbQ("x1", jobs, 0, 2))
			sample(l.m, jobs, 1, 42, 0)
		}, 2, "no consumer: 42 messages wait", true},
		{"missing queue", func(l *life) {
			l.send(0, hbQ("x1", jobs, 0, 2))
			l.m.SetQueueSample(jobs, state.QueueSample{At: at(1), Err: errors.New(`queue "hyperflow.jobs" not found`)})
		}, 2, `broker: queue "hyperflow.jobs" not found`, true},
		{"flow control", func(l *life) {
			ev := hbQ("x1", jobs, 1, 2)
			ev.Blocked = eventbus.Ptr(true)
			l.send(0, ev)
			sample(l.m, jobs, 1, 5, 1)
		}, 2, "broker flow control (connection.blocked) reported by 1 executor", true},
		{"flow control over", func(l *life) {
			ev := hbQ("x1", jobs, 1, 2)
			ev.Blocked = eventbus.Ptr(true)
			l.send(0, ev)
			ev = hbQ("x1", jobs, 1, 2)
			ev.Blocked = eventbus.Ptr(false)
			l.send(5, ev)
			sample(l.m, jobs, 6, 0, 1)
		}, 6, "", false},
		{"lost", func(l *life) {
			l.send(0, hbQ("x1", jobs, 1, 2))
			l.send(1, eventbus.Event{Executor: "x1", Type: eventbus.TypeJobStarted, ID: "j1", Thread: 1, Redelivered: eventbus.Ptr(false)})
			l.send(2, hbQ("x2", jobs, 0, 2))
			l.send(60, hbQ("x2", jobs, 0, 2))
			sample(l.m, jobs, 60, 3, 1)
		}, 61, "executors 1 LOST: silent", true},
		{"stale", func(l *life) {
			l.send(0, hbQ("x1", jobs, 0, 2))
			l.send(2, hbQ("x2", jobs, 0, 2))
			l.send(60, hbQ("x2", jobs, 0, 2))
			sample(l.m, jobs, 60, 0, 1)
		}, 61, "executors 1 stale: silent", true},
		{"near the delivery limit", func(l *life) {
			ev := hbQ("x1", jobs, 1, 2)
			ev.MaxDeliveries = 5
			l.send(0, ev)
			l.send(1, eventbus.Event{Executor: "x1", Type: eventbus.TypeJobStarted, ID: "j1", Thread: 1,
				Redelivered: eventbus.Ptr(true), DeliveryCount: eventbus.Ptr(int64(4))})
			sample(l.m, jobs, 2, 0, 1)
		}, 2, "1 job started near the delivery limit (x-delivery-count ≥ 3 of max_deliveries 5)", true},
		{"far from the delivery limit", func(l *life) {
			ev := hbQ("x1", jobs, 1, 2)
			ev.MaxDeliveries = 5
			l.send(0, ev)
			l.send(1, eventbus.Event{Executor: "x1", Type: eventbus.TypeJobStarted, ID: "j1", Thread: 1,
				Redelivered: eventbus.Ptr(true), DeliveryCount: eventbus.Ptr(int64(1))})
			sample(l.m, jobs, 2, 0, 1)
		}, 2, "", false},
		{"every executor busy", func(l *life) {
			l.send(0, hbQ("x1", jobs, 2, 2))
			l.send(0.5, hbQ("x2", jobs, 4, 4))
			sample(l.m, jobs, 1, 30, 2)
		}, 2, "every executor busy at its prefetch (6/6), 30 waiting", false},
		{"busy, nothing waits", func(l *life) {
			l.send(0, hbQ("x1", jobs, 2, 2))
			sample(l.m, jobs, 1, 0, 1)
		}, 2, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLife(t, state.Options{})
			c.feed(l)
			q := queueOf(t, l.m, jobs, c.now)
			switch {
			case c.want == "" && q.Diagnosis != "":
				t.Fatalf("diagnosis %q, want none", q.Diagnosis)
			case !strings.HasPrefix(q.Diagnosis, c.want):
				t.Fatalf("diagnosis %q, want it to begin %q", q.Diagnosis, c.want)
			case q.Warn != c.warn:
				t.Fatalf("warn %v, want %v (%q)", q.Warn, c.warn, q.Diagnosis)
			}
		})
	}
}

// A worker pool's task queues are one row each, from the job.started
// events' queue too.
func TestQueuesOfWorkerPools(t *testing.T) {
	l := newLife(t, state.Options{})
	l.send(0, hbQ("p1", "hyperflow.tasks.mAdd", 1, 2))
	l.send(0.5, hbQ("p2", "hyperflow.tasks.mShrink", 0, 2))
	l.send(1, eventbus.Event{Executor: "p1", Type: eventbus.TypeJobStarted, ID: "t1", Thread: 1,
		Queue: "hyperflow.tasks.mAdd", Name: "mAdd", Redelivered: eventbus.Ptr(false)})
	qs := l.m.Queues(at(2))
	if len(qs) != 2 || qs[0].Name != "hyperflow.tasks.mAdd" || qs[1].Name != "hyperflow.tasks.mShrink" {
		t.Fatalf("queues %+v, want the two task queues", qs)
	}
	if qs[0].Started == 0 || qs[1].Started != 0 {
		t.Fatalf("started %.2f and %.2f: the task counts on its own queue only", qs[0].Started, qs[1].Started)
	}
}

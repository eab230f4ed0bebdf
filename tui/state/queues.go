package state

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// QueueSample is what the broker said of a job queue (a passive
// queue.declare): its messages ready and its consumers, at At; Err when
// the declare failed (the queue does not exist, no connection).
type QueueSample struct {
	Ready     int
	Consumers int
	At        time.Time
	Err       error
}

// QueueView is one job queue as the queue view shows it.
type QueueView struct {
	Name string
	// Sample is the broker's latest word (HasSample false before one).
	Sample    QueueSample
	HasSample bool

	// Unacked is the sum of busy of the live executors consuming from the
	// queue (from their heartbeats, else the jobs seen running): the
	// deliveries they hold. Prefetch is the sum of their threads (each
	// executor's prefetch is its threads).
	Unacked, Prefetch int
	// Executors on the queue: live (online or draining), stale, lost,
	// and those whose last heartbeat said the broker blocked them.
	Live, Stale, Lost, Blocked int

	// Rates over the last RateWindow, per second: jobs started and
	// finished (job events), and the change of the ready count (broker
	// samples; HasReadyRate false with fewer than two).
	Started, Finished      float64
	ReadyRate              float64
	HasReadyRate           bool
	Arrival                float64 // Started + ReadyRate: messages arriving
	NearLimit, DeliveryMax int     // jobs started near the delivery limit, the limit
	// Drain is the time to empty the queue (ready and unacked) at the
	// current rates; HasDrain false when it does not shrink.
	Drain    time.Duration
	HasDrain bool
	// Diagnosis is one line on why the queue does not move, if it
	// matters ("" otherwise); Warn when it needs a look.
	Diagnosis string
	Warn      bool
}

// queueStat is what the model keeps of a job queue.
type queueStat struct {
	started, finished rateRing
	near              rateRing // job.started with a delivery count near the limit
	samples           []QueueSample
	hasSample         bool
	deliveryMax       int
}

// maxQueueSamples bounds the samples kept per queue (at one every 2 s,
// a minute).
const maxQueueSamples = 32

// rateRing counts events per second over the last len(ring) seconds.
type rateRing struct {
	sec [60]int64
	n   [60]int32
}

func (r *rateRing) add(ts float64) {
	s := int64(ts)
	i := s % int64(len(r.sec))
	if i < 0 {
		i += int64(len(r.sec))
	}
	if r.sec[i] != s {
		r.sec[i], r.n[i] = s, 0
	}
	r.n[i]++
}

// count is the events of the window ending at now.
func (r *rateRing) count(now time.Time, window time.Duration) int {
	end := now.Unix()
	start := end - int64(window/time.Second)
	total := 0
	for i, s := range r.sec {
		if s > start && s <= end {
			total += int(r.n[i])
		}
	}
	return total
}

func (m *model) queue(name string) *queueStat {
	if m.queues == nil {
		m.queues = make(map[string]*queueStat)
	}
	q, ok := m.queues[name]
	if !ok {
		if len(m.queues) >= m.opts.MaxExecutors {
			return nil // bounded like the executors
		}
		q = &queueStat{}
		m.queues[m.str(name)] = q
	}
	return q
}

// jobQueue is the queue a job came from: the one its job.started named
// (a worker pool's task queue), else its executor's.
func jobQueue(j *job) string {
	if j.queue != "" {
		return j.queue
	}
	if j.exec != nil {
		return j.exec.queue
	}
	return ""
}

// queueStarted counts a job.started on its queue, and whether its delivery
// count is near the limit the executor enforces (max_deliveries).
func (m *model) queueStarted(e *event, j *job) {
	if e.w.Queue != "" {
		j.queue = m.str(e.w.Queue)
	}
	name := jobQueue(j)
	if name == "" {
		return
	}
	q := m.queue(name)
	if q == nil {
		return
	}
	q.started.add(e.ts)
	limit := 0
	if j.exec != nil {
		limit = j.exec.maxDeliveries
	}
	if limit > 0 {
		q.deliveryMax = limit
	}
	if n := e.w.DeliveryCount; n != nil && limit > 0 && *n+1 >= int64(limit)-1 {
		q.near.add(e.ts)
	}
}

func (m *model) queueFinished(e *event, j *job) {
	if name := jobQueue(j); name != "" {
		if q := m.queue(name); q != nil {
			q.finished.add(e.ts)
		}
	}
}

// setQueueSample records what the broker said of queue name.
func (m *model) setQueueSample(name string, s QueueSample) {
	q := m.queue(name)
	if q == nil {
		return
	}
	m.version++
	if s.Err != nil {
		// The count is not known any more; the rates start again.
		q.samples = append(q.samples[:0], s)
		q.hasSample = true
		return
	}
	if n := len(q.samples); n > 0 && q.samples[n-1].Err != nil {
		q.samples = q.samples[:0]
	}
	if len(q.samples) >= maxQueueSamples {
		q.samples = append(q.samples[:0], q.samples[1:]...)
	}
	q.samples = append(q.samples, s)
	q.hasSample = true
}

// queueNames are the job queues known: those of the executors that are
// not gone, and those sampled.
func (m *model) queueNames() []string {
	var names []string
	for _, x := range m.execs {
		if x.queue != "" && x.status != StatusGone && !slices.Contains(names, x.queue) {
			names = append(names, x.queue)
		}
	}
	for name := range m.queues {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func (m *model) queuesView(now time.Time) []QueueView {
	names := m.queueNames()
	out := make([]QueueView, 0, len(names))
	for _, name := range names {
		out = append(out, m.queueView(name, now))
	}
	return out
}

func (m *model) queueView(name string, now time.Time) QueueView {
	v := QueueView{Name: name}
	for _, x := range m.execs {
		if x.queue != name {
			continue
		}
		switch {
		case x.status == StatusGone || x.status == StatusStopped:
			continue
		case x.lost:
			v.Lost++
		case x.status == StatusStale:
			v.Stale++
		default:
			v.Live++
			busy := len(x.running)
			if x.hasCounts {
				busy = x.busy
			}
			v.Unacked += busy
			v.Prefetch += x.threadsN
		}
		if x.blocked {
			v.Blocked++
		}
	}
	window := RateWindow
	q := m.queues[name]
	if q != nil {
		secs := window.Seconds()
		// A monitor younger than the window averages over its life.
		if m.firstRecv != 0 {
			if age := now.Sub(time.Unix(0, m.firstRecv)).Seconds(); age > 1 && age < secs {
				secs = age
			}
		}
		v.Started = float64(q.started.count(now, window)) / secs
		v.Finished = float64(q.finished.count(now, window)) / secs
		v.NearLimit, v.DeliveryMax = q.near.count(now, window), q.deliveryMax
		if n := len(q.samples); n > 0 {
			v.Sample, v.HasSample = q.samples[n-1], true
			if first, last := q.samples[0], q.samples[n-1]; n > 1 && last.Err == nil {
				if dt := last.At.Sub(first.At).Seconds(); dt > 0 {
					v.ReadyRate, v.HasReadyRate = float64(last.Ready-first.Ready)/dt, true
				}
			}
		}
	}
	v.Arrival = v.Started
	if v.HasReadyRate {
		v.Arrival = max(v.Started+v.ReadyRate, 0)
	}
	outstanding := v.Unacked
	if v.HasSample && v.Sample.Err == nil {
		outstanding += v.Sample.Ready
	}
	switch net := v.Finished - v.Arrival; {
	case outstanding == 0:
		v.HasDrain = true
	case net > 0:
		v.Drain, v.HasDrain = time.Duration(float64(outstanding)/net*float64(time.Second)), true
	}
	v.Diagnosis, v.Warn = diagnose(&v)
	return v
}

// diagnose is the one line on why the queue does not move, the most
// pressing first.
func diagnose(v *QueueView) (string, bool) {
	sampled := v.HasSample && v.Sample.Err == nil
	ready := 0
	if sampled {
		ready = v.Sample.Ready
	}
	switch {
	case v.HasSample && v.Sample.Err != nil:
		return "broker: " + v.Sample.Err.Error(), true
	case sampled && v.Sample.Consumers == 0 && ready > 0:
		return fmt.Sprintf("no consumer: %d %s wait and no executor takes them", ready, plural(ready, "message", "messages")), true
	case v.Blocked > 0:
		return fmt.Sprintf("broker flow control (connection.blocked) reported by %d %s: events dropped, replies wait; see the broker's memory and disk alarms",
			v.Blocked, plural(v.Blocked, "executor", "executors")), true
	case v.Lost > 0 || v.Stale > 0:
		parts := []string{}
		if v.Lost > 0 {
			parts = append(parts, fmt.Sprintf("%d LOST", v.Lost))
		}
		if v.Stale > 0 {
			parts = append(parts, fmt.Sprintf("%d stale", v.Stale))
		}
		return fmt.Sprintf("executors %s: silent; their unacknowledged jobs return to the queue only when the broker drops their connections",
			strings.Join(parts, ", ")), true
	case v.NearLimit > 0 && v.DeliveryMax > 0:
		return fmt.Sprintf("%d %s started near the delivery limit (x-delivery-count ≥ %d of max_deliveries %d): a job may crash its executor",
			v.NearLimit, plural(v.NearLimit, "job", "jobs"), max(v.DeliveryMax-2, 0), v.DeliveryMax), true
	case ready > 0 && v.Prefetch > 0 && v.Unacked >= v.Prefetch:
		return fmt.Sprintf("every executor busy at its prefetch (%d/%d), %d waiting: more executors or threads would take them",
			v.Unacked, v.Prefetch, ready), false
	}
	return "", false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

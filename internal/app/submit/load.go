package submit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
)

type jobState uint8

const (
	pending  jobState = iota // published, waiting for its reply
	answered                 // its first reply came
	expired                  // no reply within the reply timeout
)

type tracked struct {
	published time.Time
	state     jobState
}

// loadRun is the state of a load run. Goroutines: one publisher (publishAll),
// one consumer of the replies (consume), one expiry watchdog (expire) and the
// waiter that ends the run; all shared state is behind mu. The semaphore sem
// holds one token per pending job: the publisher takes a token before it
// registers a job, and the token is given back when the job is answered or
// expires, under mu.
type loadRun struct {
	count   int
	timeout time.Duration // 0: jobs never expire
	sem     chan struct{}
	allDone chan struct{} // closed when every job is answered or expired

	mu        sync.Mutex
	jobs      map[string]tracked // by correlation id
	order     []string           // correlation ids in publication order
	head      int                // order[:head] are no longer pending
	resolved  int                // answered + expired
	latencies []time.Duration
	first     time.Time // first publication
	last      time.Time // last first reply
	sum       Summary
}

func newLoadRun(o Options) *loadRun {
	return &loadRun{
		count:     o.Count,
		timeout:   o.ReplyTimeout,
		sem:       make(chan struct{}, o.Inflight),
		allDone:   make(chan struct{}),
		jobs:      make(map[string]tracked, o.Count),
		order:     make([]string, 0, o.Count),
		latencies: make([]time.Duration, 0, o.Count),
		sum: Summary{
			Jobs:         o.Count,
			Inflight:     o.Inflight,
			ExitStatuses: map[string]int{},
		},
	}
}

// runLoad publishes o.Count copies of body and collects the replies until
// every job is answered or expired, then lingers o.Linger for strays. It
// returns the summary, also when the run was cut short by ctx or an error.
func runLoad(ctx context.Context, s *session, body []byte, o Options) (Summary, error) {
	l := newLoadRun(o)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return l.consume(gctx, s) })
	g.Go(func() error { return l.publishAll(gctx, s, body) })
	g.Go(func() error { return l.expire(gctx) })
	g.Go(func() error {
		select {
		case <-l.allDone:
		case <-gctx.Done():
			return nil
		}
		if o.Linger > 0 {
			t := time.NewTimer(o.Linger)
			defer t.Stop()
			select {
			case <-t.C:
			case <-gctx.Done():
			}
		}
		stop() // the end: the other goroutines return
		return nil
	})
	err := g.Wait()
	return l.summary(), err
}

func (l *loadRun) publishAll(ctx context.Context, s *session, body []byte) error {
	for i := range l.count {
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		id := uuid.NewString()
		l.register(id, time.Now()) // before publishing: the reply may be quick
		if err := s.publish(ctx, id, body); err != nil {
			l.unregister(id)
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("job %d of %d: %w", i+1, l.count, err)
		}
	}
	return nil
}

// register records a job as published at now; its caller holds a token
// of sem for it.
func (l *loadRun) register(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs[id] = tracked{published: now}
	l.order = append(l.order, id)
	if l.sum.Published == 0 {
		l.first = now
	}
	l.sum.Published++
}

// unregister forgets a job whose publication failed.
func (l *loadRun) unregister(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.jobs, id)
	l.sum.Published--
}

func (l *loadRun) consume(ctx context.Context, s *session) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-s.replies:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("reading replies: %w", s.lost())
			}
			l.handle(d.CorrelationId, d.Body, time.Now())
		}
	}
}

// handle accounts for one reply received at now.
func (l *loadRun) handle(id string, body []byte, now time.Time) {
	rep, checkErr := CheckReply(body) // outside the lock: the costly part
	l.mu.Lock()
	defer l.mu.Unlock()
	j, known := l.jobs[id]
	switch {
	case !known:
		l.sum.Unknown++
		l.problemLocked("reply with an unknown correlation id %q", id)
		return
	case j.state == answered:
		l.sum.Duplicates++
		l.problemLocked("duplicate reply to job %s", id)
		return
	case j.state == expired:
		l.sum.Late++
		l.problemLocked("late reply to job %s, %v after its publication", id, now.Sub(j.published).Round(time.Millisecond))
		return
	}
	j.state = answered
	l.jobs[id] = j
	l.sum.Replies++
	l.latencies = append(l.latencies, now.Sub(j.published))
	l.last = now
	if checkErr != nil {
		l.sum.Malformed++
		l.problemLocked("reply to job %s: %v", id, checkErr)
	} else {
		l.sum.ExitStatuses[strconv.Itoa(rep.ExitStatus)]++
		if rep.ExitStatus != 0 {
			l.sum.Failed++
		}
	}
	l.resolveLocked()
}

// resolveLocked ends the wait for one pending job.
func (l *loadRun) resolveLocked() {
	<-l.sem // never blocks: the pending job holds a token
	l.resolved++
	if l.resolved == l.count {
		close(l.allDone)
	}
}

func (l *loadRun) problemLocked(format string, args ...any) {
	if len(l.sum.Problems) < maxProblems {
		l.sum.Problems = append(l.sum.Problems, fmt.Sprintf(format, args...))
	}
}

// expire marks the jobs published more than l.timeout ago without a reply
// as missing, so that their inflight slots are free again.
func (l *loadRun) expire(ctx context.Context) error {
	if l.timeout <= 0 {
		return nil
	}
	period := min(max(l.timeout/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			l.expireBefore(now.Add(-l.timeout))
		}
	}
}

func (l *loadRun) expireBefore(deadline time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ; l.head < len(l.order); l.head++ {
		id := l.order[l.head]
		j, ok := l.jobs[id]
		if !ok || j.state != pending {
			continue
		}
		if j.published.After(deadline) {
			return // the rest were published later still
		}
		j.state = expired
		l.jobs[id] = j
		l.problemLocked("no reply to job %s within %v", id, l.timeout)
		l.resolveLocked()
	}
}

func (l *loadRun) summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sum
	s.ExitStatuses = make(map[string]int, len(l.sum.ExitStatuses))
	for k, v := range l.sum.ExitStatuses {
		s.ExitStatuses[k] = v
	}
	s.Problems = append([]string(nil), l.sum.Problems...)
	if s.Replies > 0 {
		elapsed := l.last.Sub(l.first)
		s.ElapsedSeconds = elapsed.Seconds()
		if elapsed > 0 {
			s.JobsPerSecond = float64(s.Replies) / elapsed.Seconds()
		}
	}
	s.LatencyMS = summariseLatency(append([]time.Duration(nil), l.latencies...))
	s.finish()
	return s
}

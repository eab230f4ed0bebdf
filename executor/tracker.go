package executor

import (
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// tracker remembers jobs by correlation id: those running now and a bounded
// number of recently finished ones. A delivery of a job that is running is
// attached to it instead of starting a second copy; a delivery of a job
// already answered is acknowledged without running it again. Deliveries come
// back after a lost connection or channel (their old delivery tags are gone)
// and after the broker's consumer timeout.
type tracker struct {
	mu       sync.Mutex
	running  map[string]*tracked
	finished map[string]bool // id -> the reply was confirmed by the broker
	order    []string        // ring of finished ids, oldest first
	next     int
}

// tracked is a running job and the later deliveries of the same job.
type tracked struct {
	extra []amqp.Delivery
}

func newTracker(size int) *tracker {
	return &tracker{
		running:  map[string]*tracked{},
		finished: map[string]bool{},
		order:    make([]string, size),
	}
}

// verdict says what to do with a delivery.
type verdict int

const (
	runIt    verdict = iota // new job: run it
	attached                // the job runs here already; the delivery waits for it
	answered                // the job was answered already: acknowledge
)

// admit decides about a delivery. Deliveries without a correlation id are
// always run.
func (t *tracker) admit(d amqp.Delivery) verdict {
	id := d.CorrelationId
	if id == "" {
		return runIt
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.running[id]; ok {
		r.extra = append(r.extra, d)
		return attached
	}
	if replied, ok := t.finished[id]; ok && replied {
		return answered
	}
	t.running[id] = &tracked{}
	return runIt
}

// finish records the end of a running job and returns the deliveries that
// were attached to it meanwhile; they are settled like the original.
func (t *tracker) finish(id string, replied bool) []amqp.Delivery {
	if id == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.running[id]
	delete(t.running, id)
	if replied {
		if old := t.order[t.next]; old != "" {
			delete(t.finished, old)
		}
		t.order[t.next] = id
		t.next = (t.next + 1) % len(t.order)
		t.finished[id] = true
	}
	if r == nil {
		return nil
	}
	return r.extra
}

package workerpool

import (
	"crypto/sha256"
	"sync"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	amqp "github.com/rabbitmq/amqp091-go"
)

// tracker remembers messages and tasks, so that what the broker delivers
// again is neither run twice by this process nor redelivered forever.
// Worker-pool messages carry no id: a message is known by the SHA-256 of
// its body.
//
//   - A message delivered again while it runs here (its channel was lost,
//     or the broker's consumer timeout fired) is attached to the running
//     one and settled with it.
//   - A task whose completion this process has written is not run again
//     when its message is redelivered (the acknowledgement was lost). A new
//     publication of the same task by the engine (its retries, not flagged
//     redelivered) does run.
//   - Deliveries are counted per message, so that a message that keeps
//     coming back is stopped after max_deliveries (the queue is classic:
//     the broker does not count).
type tracker struct {
	mu       sync.Mutex
	running  map[[32]byte]*tracked
	counts   map[[32]byte]int // deliveries seen of messages not yet settled for good
	finished map[TaskID]bool  // tasks completed by this process
	order    []TaskID         // ring of finished ids, oldest first
	next     int
}

type tracked struct{ extra []amqp.Delivery }

func newTracker(size int) *tracker {
	return &tracker{
		running:  map[[32]byte]*tracked{},
		counts:   map[[32]byte]int{},
		finished: map[TaskID]bool{},
		order:    make([]TaskID, size),
	}
}

// admit decides about a delivery: attached is true when the same message
// runs here already (the delivery is kept for it). Otherwise the message
// is to be run and count is how many times it was delivered, this one
// included: the broker's x-delivery-count + 1 when the queue gives one,
// else as counted here.
func (t *tracker) admit(d amqp.Delivery) (key [32]byte, attached bool, count int) {
	key = sha256.Sum256(d.Body)
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.running[key]; ok {
		r.extra = append(r.extra, d)
		return key, true, 0
	}
	t.running[key] = &tracked{}
	t.counts[key]++
	count = t.counts[key]
	if n, ok := eventbus.DeliveryCount(d.Headers); ok {
		count = max(count, int(n)+1)
	}
	if len(t.counts) > len(t.order) {
		// Bounded memory: forget the counts (a poison message then gets
		// a few more deliveries before it is stopped).
		clear(t.counts)
		t.counts[key] = count
	}
	return key, false, count
}

// settled ends a running message and returns the deliveries attached to
// it. forget drops its delivery count (the message is settled for good:
// acknowledged or rejected).
func (t *tracker) settled(key [32]byte, forget bool) []amqp.Delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.running[key]
	delete(t.running, key)
	if forget {
		delete(t.counts, key)
	}
	if r == nil {
		return nil
	}
	return r.extra
}

// completed records that the task's completion was written.
func (t *tracker) completed(id TaskID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished[id] {
		return
	}
	if old := t.order[t.next]; old != "" {
		delete(t.finished, old)
	}
	t.order[t.next] = id
	t.next = (t.next + 1) % len(t.order)
	t.finished[id] = true
}

// wasCompleted reports whether this process wrote the task's completion.
func (t *tracker) wasCompleted(id TaskID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.finished[id]
}

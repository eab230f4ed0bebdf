package eventbus

import (
	"context"
	"math/rand/v2"
	"time"
)

// Reconnection delays: the one policy of every component that connects to
// the broker (the executor, the monitor, the collector).
const (
	ReconnectMin = 500 * time.Millisecond
	ReconnectMax = 30 * time.Second
)

// Backoff gives the delays between connection attempts: capped exponential
// (Min, doubling up to Max) with jitter (each delay is drawn from [d/2,
// 3d/2)), so that executors that lost the same broker do not all come back
// at the same instant. The zero value uses ReconnectMin and ReconnectMax.
// A Backoff is used by one goroutine.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns the delay before the next attempt and grows the one after.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = ReconnectMin
	}
	if hi <= 0 {
		hi = ReconnectMax
	}
	if b.next < lo {
		b.next = lo
	}
	d := b.next
	b.next = min(2*b.next, hi)
	return d/2 + rand.N(d)
}

// Reset starts the delays again from Min (after a successful connection).
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits d, or until ctx is done; it reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

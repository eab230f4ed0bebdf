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

// After a connection that worked, delays stay short for a while: a broker
// that was reachable a moment ago is most likely restarting or failing
// over, and consuming should resume within about ReconnectFastCap of its
// return, not after a delay grown during the outage.
const (
	ReconnectFastCap    = time.Second
	ReconnectFastWindow = 5 * time.Minute
)

// Backoff gives the delays between connection attempts: capped exponential
// (Min, doubling up to Max) with jitter (each delay is drawn from [d/2,
// 3d/2)), so that executors that lost the same broker do not all come back
// at the same instant. Within ReconnectFastWindow of the last successful
// connection (Up), the delay is capped at ReconnectFastCap instead. The
// zero value uses ReconnectMin and ReconnectMax. A Backoff is used by one
// goroutine.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
	upAt     time.Time
	// Now is the clock (tests); time.Now when nil.
	Now func() time.Time
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
	if !b.upAt.IsZero() && b.now().Sub(b.upAt) < ReconnectFastWindow {
		hi = min(hi, max(lo, ReconnectFastCap))
	}
	if b.next < lo {
		b.next = lo
	}
	d := min(b.next, hi)
	b.next = min(2*b.next, hi)
	return d/2 + rand.N(d)
}

// Reset starts the delays again from Min.
func (b *Backoff) Reset() { b.next = 0 }

// Up records a successful connection: the delays start again from Min, and
// stay short for ReconnectFastWindow.
func (b *Backoff) Up() {
	b.next = 0
	b.upAt = b.now()
}

func (b *Backoff) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

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

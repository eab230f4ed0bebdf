package eventbus

import (
	"context"
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	// Nominal delays 100, 200, 400, 800, 800 ms; each drawn from [d/2, 3d/2).
	for i, nominal := range []time.Duration{100, 200, 400, 800, 800} {
		nominal *= time.Millisecond
		d := b.Next()
		if d < nominal/2 || d >= nominal*3/2 {
			t.Errorf("delay %d = %v, want in [%v, %v)", i, d, nominal/2, nominal*3/2)
		}
	}
	b.Reset()
	if d := b.Next(); d >= 150*time.Millisecond {
		t.Errorf("after Reset: %v, want < 150ms", d)
	}
}

func TestBackoffZeroValueIsThePolicy(t *testing.T) {
	var b Backoff
	if d := b.Next(); d < ReconnectMin/2 || d >= ReconnectMin*3/2 {
		t.Errorf("first delay %v, want around %v", d, ReconnectMin)
	}
	for range 20 {
		if d := b.Next(); d >= ReconnectMax*3/2 {
			t.Fatalf("delay %v above the cap %v", d, ReconnectMax)
		}
	}
}

func TestSleepStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep reported the delay elapsed after cancel")
	}
	if !Sleep(t.Context(), time.Millisecond) {
		t.Error("Sleep did not report the delay elapsed")
	}
}

// After an outage of a broker that was reachable a moment ago, the delay
// must not have grown to many seconds: consuming resumes about a second
// after the broker is back.
func TestBackoffStaysShortAfterRecentConnection(t *testing.T) {
	now := time.Unix(1000, 0)
	b := Backoff{Now: func() time.Time { return now }}
	b.Up()
	for i := range 20 { // 20 refused attempts during a broker restart
		now = now.Add(time.Second)
		if d := b.Next(); d >= ReconnectFastCap*3/2 {
			t.Fatalf("attempt %d: delay %v, want < %v within %v of the last connection", i, d, ReconnectFastCap*3/2, ReconnectFastWindow)
		}
	}
	// A long outage: the delays grow again.
	now = now.Add(ReconnectFastWindow)
	var longest time.Duration
	for range 10 {
		longest = max(longest, b.Next())
	}
	if longest < 4*time.Second {
		t.Errorf("longest delay %v after the fast window, want the delays to grow again", longest)
	}
}

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

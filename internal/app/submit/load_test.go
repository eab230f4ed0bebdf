package submit

import (
	"maps"
	"strings"
	"testing"
	"time"
)

const goodReply = `{"exit_status":0,"stdout":"","stderr":"","exceptions":[],"metrics":{}}`

// TestLoadAccounting drives the load run's bookkeeping without a broker.
func TestLoadAccounting(t *testing.T) {
	l := newLoadRun(Options{Count: 4, Inflight: 4, ReplyTimeout: time.Minute})
	t0 := time.Now()
	publish := func(id string, at time.Time) {
		t.Helper()
		select {
		case l.sem <- struct{}{}:
		default:
			t.Fatalf("no inflight slot for %s", id)
		}
		l.register(id, at)
	}
	publish("a", t0)
	publish("b", t0.Add(time.Millisecond))
	publish("c", t0.Add(2*time.Millisecond))
	publish("d", t0.Add(3*time.Millisecond))

	l.handle("a", []byte(goodReply), t0.Add(10*time.Millisecond))
	l.handle("a", []byte(goodReply), t0.Add(11*time.Millisecond))   // duplicate
	l.handle("zzz", []byte(goodReply), t0.Add(12*time.Millisecond)) // unknown
	l.handle("b", []byte(`{"exit_status":"0"}`), t0.Add(21*time.Millisecond))
	l.handle("d", []byte(`{"exit_status":2,"exceptions":["command exited with status 2"],"metrics":{}}`), t0.Add(43*time.Millisecond))
	if len(l.sem) != 1 {
		t.Errorf("%d inflight slots taken, want 1 (c)", len(l.sem))
	}

	// c expires: d, published later, is answered already and must not
	// stop the scan, nor must jobs published after the deadline expire.
	l.expireBefore(t0.Add(2 * time.Millisecond))
	select {
	case <-l.allDone:
	default:
		t.Fatal("allDone not closed after every job was answered or expired")
	}
	if len(l.sem) != 0 {
		t.Errorf("%d inflight slots still taken", len(l.sem))
	}
	l.handle("c", []byte(goodReply), t0.Add(time.Hour)) // late

	s := l.summary()
	want := Summary{
		Jobs: 4, Inflight: 4, Published: 4, Replies: 3, Missing: 1, Malformed: 1,
		Duplicates: 1, Late: 1, Unknown: 1, Failed: 1,
		ExitStatuses: map[string]int{"0": 1, "2": 1},
	}
	if s.Jobs != want.Jobs || s.Published != want.Published || s.Replies != want.Replies ||
		s.Missing != want.Missing || s.Malformed != want.Malformed || s.Duplicates != want.Duplicates ||
		s.Late != want.Late || s.Unknown != want.Unknown || s.Failed != want.Failed ||
		!maps.Equal(s.ExitStatuses, want.ExitStatuses) || s.OK {
		t.Errorf("summary = %+v\nwant counts of %+v and OK false", s, want)
	}
	if s.ElapsedSeconds != 0.043 {
		t.Errorf("elapsed = %v s, want 0.043 (first publication to last first reply)", s.ElapsedSeconds)
	}
	if s.LatencyMS.Min != 10 || s.LatencyMS.Max != 40 || s.LatencyMS.P50 != 20 {
		t.Errorf("latency = %+v, want min 10, p50 20, max 40", s.LatencyMS)
	}
	text := strings.Join(s.Problems, "\n")
	for _, p := range []string{"duplicate reply to job a", `unknown correlation id "zzz"`,
		"reply to job b: malformed reply: exit_status is not a number", "no reply to job c within 1m0s", "late reply to job c"} {
		if !strings.Contains(text, p) {
			t.Errorf("problems %q lack %q", s.Problems, p)
		}
	}
}

func TestLoadAllGood(t *testing.T) {
	l := newLoadRun(Options{Count: 2, Inflight: 1})
	t0 := time.Now()
	for i, id := range []string{"x", "y"} {
		l.sem <- struct{}{}
		l.register(id, t0.Add(time.Duration(i)*time.Second))
		l.handle(id, []byte(goodReply), t0.Add(time.Duration(i)*time.Second+5*time.Millisecond))
	}
	l.expireBefore(t0.Add(time.Hour)) // nothing pending: no effect
	s := l.summary()
	if !s.OK || s.Missing != 0 || s.Replies != 2 || s.ExitStatuses["0"] != 2 || len(s.Problems) != 0 {
		t.Errorf("summary = %+v, want OK", s)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil || !strings.Contains(b.String(), "result       OK") {
		t.Errorf("WriteText = %q, %v", b.String(), err)
	}
}

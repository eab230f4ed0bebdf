package record_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

var t0 = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

func messages() []eventbus.Message {
	return []eventbus.Message{
		{RoutingKey: "executor.ready", Received: t0,
			Body: []byte(`{"executor":"x","timestamp":1714557600.1,"type":"executor.ready","hostname":"n<1>&"}`)},
		{RoutingKey: "job.a.started", Received: t0.Add(time.Second),
			Body: []byte(`{"executor":"x","timestamp":1714557601,"type":"job.started","id":"a","thread":1}`)},
		{RoutingKey: "job.a.finished", Received: t0.Add(1500 * time.Millisecond), Body: []byte("{not json\n")},
		{RoutingKey: "weird \"key\"\t", Received: t0.Add(2 * time.Second), Body: []byte(`[1,2]`)},
		{RoutingKey: "x", Received: t0.Add(3 * time.Second), Body: []byte(`"a string"`)},
		{RoutingKey: "x", Received: t0.Add(4 * time.Second), Body: []byte(``)},
		{RoutingKey: "x", Received: t0.Add(5 * time.Second), Body: []byte(" {\"pretty\": true}")},
		{RoutingKey: "x", Received: t0.Add(6 * time.Second), Body: []byte("{\n \"pretty\": true\n}")},
	}
}

func record1(t *testing.T, msgs []eventbus.Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	r := record.NewRecorder(&buf)
	for _, m := range msgs {
		if err := r.Record(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.Count() != int64(len(msgs)) {
		t.Errorf("Count = %d", r.Count())
	}
	return buf.Bytes()
}

func sameMessages(t *testing.T, got, want []eventbus.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.RoutingKey != w.RoutingKey || !g.Received.Equal(w.Received) || !bytes.Equal(g.Body, w.Body) {
			t.Errorf("message %d = %q %v %q, want %q %v %q", i, g.RoutingKey, g.Received, g.Body,
				w.RoutingKey, w.Received, w.Body)
		}
	}
}

func TestRecordLoadRoundTrip(t *testing.T) {
	data := record1(t, messages())
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(messages()) {
		t.Fatalf("%d lines:\n%s", len(lines), data)
	}
	// A well-formed event is stored as the object itself.
	want := `{"t":"2024-05-01T10:00:00.123456789Z","key":"executor.ready","body":{"executor":"x","timestamp":1714557600.1,"type":"executor.ready","hostname":"n<1>&"}}`
	if lines[0] != want {
		t.Errorf("line 1 =\n%s\nwant\n%s", lines[0], want)
	}
	// A malformed one as a string.
	if !strings.Contains(lines[2], `"body":"{not json\n"`) {
		t.Errorf("line 3 = %s", lines[2])
	}
	got, err := record.Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sameMessages(t, got, messages())
}

func TestLoadTolerance(t *testing.T) {
	data := record1(t, messages()[:3])
	tests := []struct {
		name    string
		data    string
		n       int
		wantErr error
	}{
		{"complete", string(data), 3, nil},
		{"truncated last line", string(data[:len(data)-20]), 2, nil},
		{"no final newline", strings.TrimSuffix(string(data), "\n"), 3, nil},
		{"blank lines", "\n" + strings.ReplaceAll(string(data), "\n", "\n\n"), 3, nil},
		{"bad line in the middle", strings.Replace(string(data), "\n", "\ngarbage\n", 1), 1, record.ErrBadLine},
		{"empty", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := record.Load(strings.NewReader(tt.data))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != tt.n {
				t.Errorf("%d events, want %d", len(got), tt.n)
			}
		})
	}
}

func TestRecorderFlushesRegularly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	r, err := record.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	msgs := messages()
	for _, m := range msgs[:2] { // one second apart: the second flushes
		if err := r.Record(m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := record.LoadFile(path)
	if err != nil || len(got) != 2 {
		t.Errorf("before Close: %d events, %v", len(got), err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(msgs[2]); err == nil {
		t.Error("Record after Close succeeded")
	}
	if _, err := record.Create(filepath.Join(t.TempDir(), "no", "such", "dir")); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}

// fakeClock advances only when slept on.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func play(t *testing.T, p record.Player, data []byte) []eventbus.Message {
	t.Helper()
	out := make(chan eventbus.Message, 100)
	if err := p.Play(context.Background(), bytes.NewReader(data), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []eventbus.Message
	for m := range out {
		got = append(got, m)
	}
	return got
}

func TestReplayPacing(t *testing.T) {
	data := record1(t, messages()[:4]) // at 0, 1, 1.5, 2 s
	tests := []struct {
		speed  float64
		sleeps []time.Duration
	}{
		{1, []time.Duration{time.Second, 500 * time.Millisecond, 500 * time.Millisecond}},
		{2, []time.Duration{500 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}},
		{0, nil},
	}
	for _, tt := range tests {
		clock := &fakeClock{now: time.Unix(1000, 0)}
		got := play(t, record.Player{Speed: tt.speed, Now: clock.Now, Sleep: clock.Sleep}, data)
		sameMessages(t, got, messages()[:4])
		if len(clock.sleeps) != len(tt.sleeps) {
			t.Errorf("speed %v: sleeps %v, want %v", tt.speed, clock.sleeps, tt.sleeps)
			continue
		}
		for i := range tt.sleeps {
			if clock.sleeps[i] != tt.sleeps[i] {
				t.Errorf("speed %v: sleeps %v, want %v", tt.speed, clock.sleeps, tt.sleeps)
				break
			}
		}
	}
}

func TestReplayRealClock(t *testing.T) {
	data := record1(t, messages()[:4]) // 2 s of recording
	out := make(chan eventbus.Message, 10)
	start := time.Now()
	if err := record.Replay(context.Background(), bytes.NewReader(data), 100, out); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 19*time.Millisecond || el > 2*time.Second {
		t.Errorf("2 s at speed 100 took %v", el)
	}
	if len(out) != 4 {
		t.Errorf("%d messages", len(out))
	}
}

func TestReplayCancel(t *testing.T) {
	data := record1(t, messages()[:2])
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan eventbus.Message) // unbuffered: nobody reads the second
	done := make(chan error, 1)
	go func() { done <- record.Replay(ctx, bytes.NewReader(data), 0.001, out) }()
	<-out
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Replay = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Replay did not stop")
	}
}

// TestReplayIntoModel: a replayed recording gives the model the same state
// as the events themselves.
func TestReplayIntoModel(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "state", "testdata", "nfs_job.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msgs, err := record.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	direct := state.New(state.Options{})
	for _, m := range msgs {
		_ = direct.Apply(m)
	}
	// Record what the model received, then replay that recording.
	data := record1(t, msgs)
	out := make(chan eventbus.Message)
	errc := make(chan error, 1)
	go func() {
		errc <- record.Replay(context.Background(), bytes.NewReader(data), 0, out)
		close(out)
	}()
	replayed := state.New(state.Options{})
	for m := range out {
		_ = replayed.Apply(m)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	now := replayed.Latest()
	if !now.Equal(direct.Latest()) {
		t.Errorf("Latest %v, want %v", now, direct.Latest())
	}
	if a, b := replayed.Totals(now), direct.Totals(now); a != b {
		t.Errorf("totals %+v, want %+v", a, b)
	}
	a, _ := replayed.Job("j2")
	b, _ := direct.Job("j2")
	if a.State != b.State || a.StageIn != b.StageIn || a.Metrics != b.Metrics || len(a.Timeline) != len(b.Timeline) {
		t.Errorf("job j2 %+v, want %+v", a, b)
	}
}

func TestOpenResume(t *testing.T) {
	msgs := messages()
	full := record1(t, msgs[:3])
	tests := []struct {
		name    string
		data    string // "" with missing: no file
		missing bool
		n       int
	}{
		{"missing file", "", true, 0},
		{"empty file", "", false, 0},
		{"complete", string(full), false, 3},
		{"truncated last line", string(full[:len(full)-20]), false, 2},
		{"no final newline", strings.TrimSuffix(string(full), "\n"), false, 3},
		{"trailing blank lines", string(full) + "\n\n", false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec.jsonl")
			if !tt.missing {
				if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, r, err := record.OpenResume(path)
			if err != nil {
				t.Fatal(err)
			}
			sameMessages(t, got, msgs[:tt.n])
			for _, m := range msgs[3:5] {
				if err := r.Record(m); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			back, err := record.LoadFile(path)
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
			sameMessages(t, back, append(slices.Clone(msgs[:tt.n]), msgs[3:5]...))
		})
	}
}

func TestOpenResumeRefusesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	data := "not a recording\n" + string(record1(t, messages()[:1]))
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, r, err := record.OpenResume(path); !errors.Is(err, record.ErrBadLine) || r != nil {
		t.Errorf("OpenResume = %v, %v", r, err)
	}
	if after, _ := os.ReadFile(path); string(after) != data {
		t.Error("the file was changed")
	}
	if _, _, err := record.OpenResume(filepath.Join(t.TempDir(), "no", "such", "dir", "f")); err == nil {
		t.Error("OpenResume in a missing directory succeeded")
	}
}

// TestResumeKeepsHistory: a monitor records part of a stream and dies in
// the middle of a line; the next one resumes the recording and records
// the rest. The recording then holds the whole stream, and gives the model
// the state the stream gives.
func TestResumeKeepsHistory(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "state", "testdata", "progress_stall.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := record.Load(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	half := len(stream) / 2
	path := filepath.Join(t.TempDir(), "rec.jsonl")
	r, err := record.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stream[:half] {
		_ = r.Record(m)
	}
	_ = r.Close()
	cut := record.AppendLine(nil, stream[half])
	fh, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fh.Write(cut[:len(cut)/2]) // killed mid-line
	fh.Close()

	msgs, r, err := record.OpenResume(path)
	if err != nil {
		t.Fatal(err)
	}
	resumed := state.New(state.Options{})
	for _, m := range msgs {
		_ = resumed.Apply(m)
	}
	if len(msgs) != half {
		t.Fatalf("%d events resumed, want %d", len(msgs), half)
	}
	for _, m := range stream[half:] {
		_ = resumed.Apply(m)
		if err := r.Record(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	direct := state.New(state.Options{})
	for _, m := range stream {
		_ = direct.Apply(m)
	}
	all, err := record.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameMessages(t, all, stream)
	replayed := state.New(state.Options{})
	for _, m := range all {
		_ = replayed.Apply(m)
	}
	now := direct.Latest()
	for _, m := range []*state.Model{resumed, replayed} {
		if a, b := m.Totals(now), direct.Totals(now); a != b {
			t.Errorf("totals %+v, want %+v", a, b)
		}
		a, _ := m.Job("p1")
		b, _ := direct.Job("p1")
		if a.JobView != b.JobView {
			t.Errorf("p1 %+v, want %+v", a.JobView, b.JobView)
		}
	}
}

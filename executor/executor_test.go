package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// published is one message the executor handed to its publisher.
type published struct {
	confirmed bool
	exchange  string
	key       string
	msg       amqp.Publishing
	call      int       // which call of the publisher carried it (1, 2, ...)
	at        time.Time // when
}

// recorder stands in for the AMQP client in unit tests: it records what the
// executor publishes, in order. (Integration tests use the real broker.)
type recorder struct {
	mu    sync.Mutex
	msgs  []published
	calls int
}

// The executor reuses a message's body once the publisher returns: the
// recorder keeps a copy.
func (r *recorder) Publish(_ context.Context, exchange, key string, msg amqp.Publishing) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	r.add(false, exchange, key, msg)
	return nil
}

// add records one message of the current call; the caller holds r.mu.
func (r *recorder) add(confirmed bool, exchange, key string, msg amqp.Publishing) {
	msg.Body = bytes.Clone(msg.Body)
	r.msgs = append(r.msgs, published{confirmed, exchange, key, msg, r.calls, time.Now()})
}

func (r *recorder) PublishBatch(_ context.Context, msgs []eventbus.Outgoing) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, m := range msgs {
		r.add(false, m.Exchange, m.Key, m.Msg)
	}
	return nil
}

func (r *recorder) PublishConfirmed(_ context.Context, exchange, key string, msg amqp.Publishing, before ...eventbus.Outgoing) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, m := range before {
		r.add(false, m.Exchange, m.Key, m.Msg)
	}
	r.add(true, exchange, key, msg)
	return nil
}

// acks records how a delivery was settled.
type acks struct {
	mu      sync.Mutex
	settled []string
}

func (a *acks) Ack(uint64, bool) error { a.add("ack"); return nil }
func (a *acks) Nack(_ uint64, _ bool, requeue bool) error {
	a.add(map[bool]string{true: "nack-requeue", false: "nack"}[requeue])
	return nil
}
func (a *acks) Reject(_ uint64, requeue bool) error {
	a.add(map[bool]string{true: "reject-requeue", false: "reject"}[requeue])
	return nil
}
func (a *acks) add(s string) { a.mu.Lock(); a.settled = append(a.settled, s); a.mu.Unlock() }

type bundle struct {
	ex  *Executor
	pub *recorder
	tmp string
}

func setup(t *testing.T, tweak func(*config.Settings)) bundle {
	t.Helper()
	cfg := config.Default()
	cfg.Storage = "local"
	cfg.Threads = 2
	cfg.TmpDir = t.TempDir()
	if tweak != nil {
		tweak(&cfg)
	}
	reg, err := storage.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := New(cfg, Params{Storages: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ex.pub = rec
	return bundle{ex: ex, pub: rec, tmp: cfg.TmpDir}
}

// result is what one delivery produced.
type result struct {
	events  []eventbus.Event
	keys    []string
	reply   eventbus.Reply
	order   []string // "event:<type>" and "reply", in publish order
	calls   []int    // the publisher call of each, as order
	at      []time.Time
	settled []string
}

func (b bundle) deliver(t *testing.T, body []byte) result {
	t.Helper()
	a := &acks{}
	b.pub.mu.Lock()
	b.pub.msgs = nil
	b.pub.mu.Unlock()
	d := amqp.Delivery{Acknowledger: a, Body: body, CorrelationId: "job-" + t.Name(), ReplyTo: "reply-q", DeliveryTag: 1}
	b.ex.handle(d, 1)
	var res result
	b.pub.mu.Lock()
	msgs := b.pub.msgs
	b.pub.mu.Unlock()
	for _, m := range msgs {
		res.calls = append(res.calls, m.call)
		res.at = append(res.at, m.at)
		if m.exchange == "" {
			if !m.confirmed || m.key != "reply-q" || m.msg.CorrelationId != d.CorrelationId ||
				m.msg.ContentType != "application/json" || m.msg.DeliveryMode != amqp.Persistent {
				t.Errorf("reply published wrongly: %+v", m)
			}
			if err := json.Unmarshal(m.msg.Body, &res.reply); err != nil {
				t.Fatalf("reply is not JSON: %v: %s", err, m.msg.Body)
			}
			res.order = append(res.order, "reply")
			continue
		}
		var ev eventbus.Event
		if err := json.Unmarshal(m.msg.Body, &ev); err != nil {
			t.Fatalf("event is not JSON: %v", err)
		}
		res.events = append(res.events, ev)
		res.keys = append(res.keys, m.key)
		res.order = append(res.order, "event:"+ev.Type)
	}
	res.settled = a.settled
	return res
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLocalJobRepliesAndEventsInOrder(t *testing.T) {
	b := setup(t, nil)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.txt"), []byte("12345"), 0o644)
	res := b.deliver(t, mustJSON(t, map[string]any{
		"executable": "/bin/sh",
		"args":       []any{"-c", "cat $in_files > out.txt; echo hi; echo oops >&2", 1000},
		"inputs":     []any{map[string]any{"name": "in", "files": "in.txt"}},
		"outputs":    []any{map[string]any{"name": "out.txt"}},
		"options":    map[string]any{"storage": "local", "workdir": dir},
	}))
	want := []string{"event:job.started", "event:job.execution.started", "event:job.execution.finished", "event:job.finished", "reply"}
	if strings.Join(res.order, " ") != strings.Join(want, " ") {
		t.Fatalf("publish order = %v, want %v", res.order, want)
	}
	if got := res.settled; len(got) != 1 || got[0] != "ack" {
		t.Errorf("settled = %v, want [ack]", got)
	}
	r := res.reply
	if r.ExitStatus != 0 || r.Stdout != "hi\n" || r.Stderr != "oops\n" || r.Exceptions == nil || len(r.Exceptions) != 0 {
		t.Errorf("reply = %+v", r)
	}
	m := r.Metrics
	if m == nil {
		t.Fatal("reply has no metrics")
	}
	if m.Executor != b.ex.ID() || m.Thread != 1 || m.InputSize != 5 || m.OutputSize != 5 || m.StageIn != 0 || m.StageOut != 0 {
		t.Errorf("metrics = %+v", m)
	}
	ts := m.Timestamps
	if !(ts.JobStarted > 0 && ts.JobStarted <= ts.ExecutionStarted && ts.ExecutionStarted <= ts.ExecutionFinished &&
		ts.ExecutionFinished <= ts.JobFinished) || ts.StageInStarted != 0 || ts.StageOutStarted != 0 {
		t.Errorf("timestamps out of order or stage timestamps for local storage: %+v", ts)
	}
	for i, ev := range res.events {
		if ev.ID != "job-"+t.Name() || ev.Job != ev.ID || ev.Thread != 1 || ev.Executor != b.ex.ID() || ev.Timestamp == 0 {
			t.Errorf("event %d lacks job fields: %+v", i, ev)
		}
		if want := eventbus.JobRoutingKey(ev.ID, ev.Type); res.keys[i] != want {
			t.Errorf("routing key %q, want %q", res.keys[i], want)
		}
	}
	fin := res.events[3]
	if fin.ExitStatus == nil || *fin.ExitStatus != 0 || fin.Metrics == nil || fin.Executable != "/bin/sh" || fin.StderrTail != "" {
		t.Errorf("job.finished = %+v", fin)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "out.txt")); string(data) != "12345" {
		t.Errorf("out.txt = %q", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "signals.json")); err == nil {
		t.Error("signals.json written into a shared local workdir")
	}
}

func TestNFSJobStagesFilesAndCleansUp(t *testing.T) {
	b := setup(t, nil)
	shared := t.TempDir()
	os.MkdirAll(filepath.Join(shared, "sub"), 0o755)
	os.WriteFile(filepath.Join(shared, "sub", "a.dat"), []byte("aaaa"), 0o644)
	os.WriteFile(filepath.Join(shared, "b.dat"), []byte("bbbbbb"), 0o644)
	res := b.deliver(t, mustJSON(t, map[string]any{
		"executable": "/bin/sh",
		"args":       []any{"-c", "mkdir -p res && cat sub/a.dat b.dat > res/out.dat && cp signals.json sig.json"},
		"inputs":     []any{map[string]any{"name": "pair", "files": "sub/a.dat:b.dat"}},
		"outputs":    []any{map[string]any{"name": "res/out.dat"}, map[string]any{"name": "sig.json"}},
		"options":    map[string]any{"storage": "nfs", "workdir": shared},
	}))
	if res.reply.ExitStatus != 0 {
		t.Fatalf("reply = %+v", res.reply)
	}
	want := "event:job.started event:job.stage-in.started event:job.stage-in.finished event:job.execution.started " +
		"event:job.execution.finished event:job.stage-out.started event:job.stage-out.finished event:job.finished reply"
	if got := strings.Join(res.order, " "); got != want {
		t.Fatalf("order = %s", got)
	}
	if got, _ := os.ReadFile(filepath.Join(shared, "res", "out.dat")); string(got) != "aaaabbbbbb" {
		t.Errorf("res/out.dat = %q", got)
	}
	sig, _ := os.ReadFile(filepath.Join(shared, "sig.json"))
	var signals struct{ Inputs, Outputs []map[string]any }
	if err := json.Unmarshal(sig, &signals); err != nil || len(signals.Inputs) != 1 || signals.Inputs[0]["files"] != "sub/a.dat:b.dat" {
		t.Errorf("signals.json = %s (%v)", sig, err)
	}
	sigSize := int64(len(sig))
	m := res.reply.Metrics
	if m.InputSize != 10 || m.OutputSize != 10+sigSize {
		t.Errorf("sizes in=%d out=%d", m.InputSize, m.OutputSize)
	}
	if bytes := res.events[2].Bytes; bytes == nil || *bytes != 10 || res.events[2].Time == nil {
		t.Errorf("stage-in.finished = %+v", res.events[2])
	}
	if bytes := res.events[6].Bytes; bytes == nil || *bytes != 10+sigSize {
		t.Errorf("stage-out.finished = %+v", res.events[6])
	}
	if m.Timestamps.StageInStarted == 0 || m.Timestamps.StageOutFinished < m.Timestamps.ExecutionFinished {
		t.Errorf("timestamps %+v", m.Timestamps)
	}
	left, _ := os.ReadDir(b.tmp)
	if len(left) != 0 {
		t.Errorf("work directories left behind: %v", left)
	}
}

func TestFailuresAreAnswered(t *testing.T) {
	shared := t.TempDir()
	os.WriteFile(filepath.Join(shared, "a.dat"), []byte("a"), 0o644)
	cases := []struct {
		name     string
		job      map[string]any
		status   int
		inExcept string
	}{
		{"non-zero exit", map[string]any{"executable": "/bin/sh", "args": []any{"-c", "echo bad >&2; exit 3"}}, 3, "command exited with status 3"},
		{"signal", map[string]any{"executable": "/bin/sh", "args": []any{"-c", "kill -9 $$"}}, 137, "signal 9"},
		{"not found", map[string]any{"executable": "/no/such/program"}, -1, "/no/such/program"},
		{"timeout", map[string]any{"executable": "/bin/sleep", "args": []any{"10"}, "options": map[string]any{"timeout": 0.2}}, -3, "timed out"},
		{"missing input", map[string]any{"executable": "/bin/true", "inputs": []any{map[string]any{"name": "nope.dat"}},
			"options": map[string]any{"storage": "nfs", "workdir": shared}}, -2, "nope.dat"},
		{"missing output", map[string]any{"executable": "/bin/true", "outputs": []any{map[string]any{"name": "never.dat"}},
			"options": map[string]any{"storage": "nfs", "workdir": shared}}, -2, "never.dat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, nil)
			opts, _ := tc.job["options"].(map[string]any)
			if opts == nil {
				opts = map[string]any{}
				tc.job["options"] = opts
			}
			if opts["storage"] == nil {
				opts["storage"], opts["workdir"] = "local", t.TempDir()
			}
			res := b.deliver(t, mustJSON(t, tc.job))
			if res.reply.ExitStatus != tc.status {
				t.Fatalf("exit_status = %d, want %d (%v)", res.reply.ExitStatus, tc.status, res.reply.Exceptions)
			}
			if !strings.Contains(strings.Join(res.reply.Exceptions, "\n"), tc.inExcept) {
				t.Errorf("exceptions %q lack %q", res.reply.Exceptions, tc.inExcept)
			}
			fin := res.events[len(res.events)-1]
			if fin.Type != eventbus.TypeJobFinished || *fin.ExitStatus != tc.status || len(fin.Exceptions) == 0 {
				t.Errorf("job.finished = %+v", fin)
			}
			if tc.name == "non-zero exit" && fin.StderrTail != "bad\n" {
				t.Errorf("stderr_tail = %q", fin.StderrTail)
			}
			if len(res.settled) != 1 || res.settled[0] != "ack" {
				t.Errorf("settled = %v, want [ack]", res.settled)
			}
		})
	}
}

// TestBadFixtures runs every bad message of the wire fixtures: each gets a
// -2 reply naming the problem, is rejected without requeue, and runs nothing.
func TestBadFixtures(t *testing.T) {
	files, _ := filepath.Glob("job/testdata/wire/bad/*")
	if len(files) < 10 {
		t.Fatalf("only %d bad fixtures found", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b := setup(t, nil)
			body, want := loadBadFixture(t, f, t.TempDir(), t.TempDir())
			res := b.deliver(t, body)
			if res.reply.ExitStatus != -2 {
				t.Fatalf("exit_status = %d, want -2", res.reply.ExitStatus)
			}
			if got := strings.Join(res.reply.Exceptions, "\n"); !strings.Contains(got, want) {
				t.Errorf("exceptions %q do not contain %q", got, want)
			}
			for _, o := range res.order {
				if o == "event:job.execution.started" {
					t.Error("a bad job ran")
				}
			}
			wantSettle := "ack"
			if strings.HasSuffix(f, ".txt") || !strings.Contains(want, "/nonexistent") && want != "floppy" {
				wantSettle = "reject"
			}
			if len(res.settled) != 1 || res.settled[0] != wantSettle {
				t.Errorf("settled = %v, want [%s]", res.settled, wantSettle)
			}
		})
	}
}

// loadBadFixture returns the message body of a bad fixture (placeholders
// replaced) and the text its error must contain.
func loadBadFixture(t *testing.T, path, workdir, shared string) ([]byte, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".txt") {
		return data, "JSON"
	}
	var fx struct {
		Body        json.RawMessage `json:"body"`
		ExpectError string          `json:"expect_error"`
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(`"WORKDIR"`, `"`+workdir+`"`, `"SHAREDDIR"`, `"`+shared+`"`).Replace(string(fx.Body))
	return []byte(body), fx.ExpectError
}

func TestHeartbeatListsRunningJobs(t *testing.T) {
	b := setup(t, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.ex.handle(amqp.Delivery{Acknowledger: &acks{}, CorrelationId: "long",
			Body: mustJSON(t, map[string]any{"executable": "/bin/sleep", "args": []any{"0.5"},
				"options": map[string]any{"storage": "local", "workdir": t.TempDir()}})}, 2)
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		hb := b.ex.heartbeatEvent()
		if hb.Running != nil && len(*hb.Running) == 1 && (*hb.Running)[0].Phase == eventbus.PhaseExecution {
			rj := (*hb.Running)[0]
			if rj.ID != "long" || rj.Thread != 2 || rj.Phase != eventbus.PhaseExecution || rj.Executable != "/bin/sleep" || *hb.Busy != 1 {
				t.Errorf("running = %+v busy=%d", rj, *hb.Busy)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("running job never listed in heartbeat")
		}
		time.Sleep(10 * time.Millisecond)
	}
	<-done
	hb := b.ex.heartbeatEvent()
	body := mustJSON(t, hb)
	if !strings.Contains(string(body), `"running":[]`) || !strings.Contains(string(body), `"busy":0`) || *hb.JobsDone != 1 {
		t.Errorf("idle heartbeat = %s", body)
	}
}

package submit

// Integration tests against a real broker (testenv.AMQPURL: skipped without
// one, failed under make test). A small fake executor consumes the job queue
// and replies as told: it is a test double for the executor, the broker is
// real.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

// fakeReply is one reply the fake executor sends; an empty CorrelationID
// means the job's own.
type fakeReply struct {
	CorrelationID string
	Body          string
}

// answer decides the replies to the n-th job (0-based) received.
type answer func(n int, d amqp.Delivery) []fakeReply

func replyWith(status int, exceptions ...string) []fakeReply {
	if exceptions == nil {
		exceptions = []string{}
	}
	b, _ := json.Marshal(map[string]any{
		"exit_status": status, "stdout": "out\n", "stderr": "", "exceptions": exceptions,
		"metrics": map[string]any{"execution": 0.001, "input_size": 0, "output_size": 0},
	})
	return []fakeReply{{Body: string(b)}}
}

func ok(int, amqp.Delivery) []fakeReply { return replyWith(0) }

// setup returns the broker URL and a queue name of the test's own, deleted
// at the end.
func setup(t *testing.T) (url, queue string) {
	t.Helper()
	url = testenv.AMQPURL(t)
	queue = "test.submit." + uuid.NewString()
	t.Cleanup(func() {
		conn, err := amqp.Dial(url)
		if err != nil {
			return
		}
		defer conn.Close()
		if ch, err := conn.Channel(); err == nil {
			ch.QueueDelete(queue, false, false, false)
		}
	})
	return url, queue
}

// startExecutor runs the fake executor on queue until the test ends. It
// declares the queue as the engine and the real executor do, so a different
// declaration by hyperflow-submit would fail the test. Every delivery is
// sent on the returned channel (buffered) after it was answered.
func startExecutor(t *testing.T, url, queue string, ans answer) <-chan amqp.Delivery {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("fake executor: dial: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("fake executor: channel: %v", err)
	}
	if err := eventbus.DeclareJobQueue(ch, queue, nil); err != nil {
		t.Fatalf("fake executor: %v", err)
	}
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("fake executor: consume: %v", err)
	}
	seen := make(chan amqp.Delivery, 100000)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for d := range deliveries {
			for _, r := range ans(n, d) {
				id := r.CorrelationID
				if id == "" {
					id = d.CorrelationId
				}
				err := ch.Publish("", d.ReplyTo, false, false, amqp.Publishing{
					ContentType: "application/json", CorrelationId: id,
					DeliveryMode: amqp.Persistent, Body: []byte(r.Body),
				})
				if err != nil {
					t.Errorf("fake executor: reply: %v", err)
					return
				}
			}
			n++
			seen <- d
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
	return seen
}

func runSubmit(t *testing.T, args []string) (code int, stdout, stderr string, err error) {
	t.Helper()
	o, perr := ParseArgs(args, func(string) string { return "" })
	if perr != nil {
		t.Fatalf("ParseArgs(%q): %v", args, perr)
	}
	var out, errOut bytes.Buffer
	r := &Runner{Opts: o, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code, err = r.Run(ctx)
	return code, out.String(), errOut.String(), err
}

func TestSingleJobWire(t *testing.T) {
	url, queue := setup(t)
	seen := startExecutor(t, url, queue, func(int, amqp.Delivery) []fakeReply {
		return replyWith(3, "command exited with status 3")
	})
	args := []string{"--amqp-url", url, "--queue", queue, "--env", "A=1", "--", "/bin/sh", "-c", "exit 3", "1000"}
	code, stdout, stderr, err := runSubmit(t, args)
	if err != nil || code != 3 {
		t.Fatalf("Run = %d, %v; want 3, nil", code, err)
	}
	if !strings.Contains(stdout, "\n  \"exit_status\": 3,\n") {
		t.Errorf("stdout is not the indented reply:\n%s", stdout)
	}
	if stderr != "command exited with status 3\n" {
		t.Errorf("stderr = %q, want the exceptions", stderr)
	}

	d := <-seen
	want := `{"executable":"/bin/sh","args":["-c","exit 3","1000"],"env":{"A":"1"},"inputs":[],"outputs":[],"options":{}}`
	if string(d.Body) != want {
		t.Errorf("body = %s\nwant %s", d.Body, want)
	}
	if d.Exchange != "" || d.RoutingKey != queue {
		t.Errorf("published to exchange %q with key %q, want the default exchange with key %q", d.Exchange, d.RoutingKey, queue)
	}
	if d.ContentType != "application/json" {
		t.Errorf("content_type = %q", d.ContentType)
	}
	if _, err := uuid.Parse(d.CorrelationId); err != nil {
		t.Errorf("correlation_id %q is not a UUID: %v", d.CorrelationId, err)
	}
	if !strings.HasPrefix(d.ReplyTo, "amq.gen-") {
		t.Errorf("reply_to = %q, want a server-named queue", d.ReplyTo)
	}
	if d.DeliveryMode != 0 || len(d.Headers) != 0 || d.Priority != 0 || d.Expiration != "" {
		t.Errorf("delivery mode %d, headers %v, priority %d, expiration %q: want none",
			d.DeliveryMode, d.Headers, d.Priority, d.Expiration)
	}
}

// TestQueueDeclaredAsEngine checks the job queue is durable, not
// exclusive, not auto-delete, without arguments: the engine's declaration
// (made after hyperflow-submit's) succeeds and a different one fails.
func TestQueueDeclaredAsEngine(t *testing.T) {
	url, queue := setup(t)
	// No executor: the reply never comes; the run ends by timeout, and the
	// queue, not auto-delete, stays.
	if code, _, _, err := runSubmit(t, []string{"--amqp-url", url, "--queue", queue, "--timeout-reply", "100ms", "--", "x"}); code != ExitTimedOut {
		t.Fatalf("Run = %d, %v; want %d", code, err, ExitTimedOut)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("queue %s not there after the run: %v", queue, err)
	}
	if q.Messages != 1 {
		t.Errorf("queue holds %d messages, want the job", q.Messages)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Errorf("the engine's declaration fails: %v", err)
	}
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err == nil {
		t.Errorf("a non-durable declaration succeeds: the queue is not durable")
	}
}

func TestSingleJobExitCodes(t *testing.T) {
	url, queue := setup(t)
	replies := map[string][]fakeReply{
		"ok":          replyWith(0),
		"signal":      replyWith(137, "command killed by signal 9"),
		"not-started": replyWith(-1, "exec: not found"),
		"job-error":   replyWith(-2, "stage in: no such file"),
		"timed-out":   replyWith(-3, "timed out after 1s"),
		"odd-status":  replyWith(-7, "?"),
		"not-json":    {{Body: "Traceback..."}},
		"no-metrics":  {{Body: `{"exit_status":4,"exceptions":["x"]}`}},
		"drop":        nil,
	}
	startExecutor(t, url, queue, func(_ int, d amqp.Delivery) []fakeReply {
		var job struct{ Executable string }
		json.Unmarshal(d.Body, &job)
		return replies[job.Executable]
	})
	tests := []struct {
		executable string
		want       int
		wantErr    string
	}{
		{"ok", 0, ""},
		{"signal", 137, ""},
		{"not-started", 127, ""},
		{"job-error", 125, ""},
		{"timed-out", 124, ""},
		{"odd-status", 125, ""},
		{"not-json", 125, "malformed reply: not a JSON object"},
		{"no-metrics", 4, ""}, // a usable status wins; the problem is a warning
		{"drop", 124, "no reply to job"},
	}
	for _, tt := range tests {
		t.Run(tt.executable, func(t *testing.T) {
			code, stdout, _, err := runSubmit(t, []string{"--amqp-url", url, "--queue", queue, "--timeout-reply", "1s", "--quiet", "--", tt.executable})
			if code != tt.want {
				t.Errorf("exit code %d, want %d (err %v)", code, tt.want, err)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("--quiet printed %q", stdout)
			}
		})
	}
}

func TestSingleJobFromStdin(t *testing.T) {
	url, queue := setup(t)
	seen := startExecutor(t, url, queue, ok)
	const job = `{"executable":"/bin/echo","args":["hi",1000],"future_field":{"x":1}}`
	o, err := ParseArgs([]string{"--amqp-url", url, "--queue", queue, "-"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &Runner{Opts: o, Stdin: strings.NewReader(job + "\n"), Stdout: &out, Stderr: &out}
	if code, err := r.Run(t.Context()); code != 0 || err != nil {
		t.Fatalf("Run = %d, %v", code, err)
	}
	if d := <-seen; string(d.Body) != job {
		t.Errorf("sent %s, want the file as it is: %s", d.Body, job)
	}
}

func loadSummary(t *testing.T, stdout string) Summary {
	t.Helper()
	var s Summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, stdout)
	}
	return s
}

func TestLoadAllAnswered(t *testing.T) {
	url, queue := setup(t)
	startExecutor(t, url, queue, func(n int, d amqp.Delivery) []fakeReply {
		if n%10 == 9 {
			return replyWith(1, "command exited with status 1")
		}
		return replyWith(0)
	})
	const n = 2000
	code, stdout, stderr, err := runSubmit(t, []string{"--amqp-url", url, "--queue", queue,
		"--count", "2000", "--inflight", "64", "--json", "--linger", "100ms", "--", "/bin/true"})
	if code != 0 || err != nil {
		t.Fatalf("Run = %d, %v\n%s%s", code, err, stdout, stderr)
	}
	s := loadSummary(t, stdout)
	if !s.OK || s.Published != n || s.Replies != n || s.Missing != 0 || s.Failed != n/10 ||
		s.ExitStatuses["0"] != n-n/10 || s.ExitStatuses["1"] != n/10 {
		t.Errorf("summary = %+v", s)
	}
	if s.JobsPerSecond <= 0 || s.LatencyMS.P50 <= 0 || s.LatencyMS.P50 > s.LatencyMS.P99 || s.LatencyMS.P99 > s.LatencyMS.Max {
		t.Errorf("figures = %.1f jobs/s, latency %+v", s.JobsPerSecond, s.LatencyMS)
	}
	if !strings.Contains(stderr, "result       OK") {
		t.Errorf("text summary not on stderr with --json:\n%s", stderr)
	}
	t.Logf("%d jobs: %.0f jobs/s, latency %+v ms", n, s.JobsPerSecond, s.LatencyMS)
}

// TestLoadInflightBound holds the replies to the first --inflight jobs and
// checks that no further job is published until one is answered.
func TestLoadInflightBound(t *testing.T) {
	url, queue := setup(t)
	const inflight, count = 5, 12
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.DeclareJobQueue(ch, queue, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	answer := func(d amqp.Delivery) {
		err := ch.Publish("", d.ReplyTo, false, false, amqp.Publishing{
			CorrelationId: d.CorrelationId, Body: []byte(replyWith(0)[0].Body)})
		if err != nil {
			t.Errorf("reply: %v", err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []amqp.Delivery
		for len(held) < inflight {
			held = append(held, <-deliveries)
		}
		select {
		case d := <-deliveries:
			t.Errorf("job %s published with %d jobs unanswered", d.CorrelationId, inflight)
			answer(d)
		case <-time.After(300 * time.Millisecond):
		}
		for _, d := range held {
			answer(d)
		}
		for range count - inflight {
			answer(<-deliveries)
		}
	}()
	code, stdout, _, err := runSubmit(t, []string{"--amqp-url", url, "--queue", queue,
		"--count", "12", "--inflight", "5", "--json", "--linger", "0", "--", "x"})
	if code != 0 || err != nil {
		t.Fatalf("Run = %d, %v", code, err)
	}
	<-done
	if s := loadSummary(t, stdout); !s.OK || s.Replies != count || s.LatencyMS.Max < 300 {
		t.Errorf("summary = %+v (max latency must include the 300 ms hold)", s)
	}
}

func TestLoadDetectsProblems(t *testing.T) {
	url, queue := setup(t)
	startExecutor(t, url, queue, func(n int, d amqp.Delivery) []fakeReply {
		switch n {
		case 3: // lost
			return nil
		case 5: // answered twice
			return append(replyWith(0), replyWith(0)...)
		case 7: // answered, plus a reply to a job never sent
			return append(replyWith(0), fakeReply{CorrelationID: "not-a-job", Body: replyWith(0)[0].Body})
		case 9: // failed job whose reply lacks exceptions
			return []fakeReply{{Body: `{"exit_status":1,"metrics":{}}`}}
		}
		return replyWith(0)
	})
	code, stdout, _, err := runSubmit(t, []string{"--amqp-url", url, "--queue", queue,
		"--count", "50", "--inflight", "10", "--timeout-reply", "700ms", "--linger", "300ms", "--json", "--quiet", "--", "x"})
	if code != ExitLoadProblem || err == nil {
		t.Fatalf("Run = %d, %v; want %d and an error", code, err, ExitLoadProblem)
	}
	s := loadSummary(t, stdout)
	if s.OK || s.Published != 50 || s.Replies != 49 || s.Missing != 1 || s.Duplicates != 1 ||
		s.Unknown != 1 || s.Malformed != 1 || s.Late != 0 || s.ExitStatuses["0"] != 48 {
		t.Errorf("summary = %+v", s)
	}
	problems := strings.Join(s.Problems, "\n")
	for _, p := range []string{"no reply to job", "duplicate reply", `unknown correlation id "not-a-job"`, "exceptions missing"} {
		if !strings.Contains(problems, p) {
			t.Errorf("problems lack %q:\n%s", p, problems)
		}
	}
}

func TestLoadInterrupted(t *testing.T) {
	url, queue := setup(t)
	startExecutor(t, url, queue, func(int, amqp.Delivery) []fakeReply { return nil })
	o, err := ParseArgs([]string{"--amqp-url", url, "--queue", queue, "--count", "10", "--json", "--quiet", "--", "x"},
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &Runner{Opts: o, Stdout: &out, Stderr: &out}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	code, _ := r.Run(ctx)
	if code != ExitInterrupted {
		t.Errorf("exit code %d, want %d", code, ExitInterrupted)
	}
	if s := loadSummary(t, out.String()); s.Published != 10 || s.Missing != 10 || s.OK {
		t.Errorf("summary = %+v", s)
	}
}

func TestBrokerDown(t *testing.T) {
	code, _, _, err := runSubmit(t, []string{"--amqp-url", "amqp://guest:secret@127.0.0.1:1/", "--", "x"})
	if code != ExitFailure || err == nil || !strings.Contains(err.Error(), "connect to broker") {
		t.Errorf("Run = %d, %v", code, err)
	}
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// A cluster's list with --amqp-url-order ordered (or AMQP_URL_ORDER) whose
// first node is dead (a closed loopback port): the job goes through the
// second, the first being tried first; an unknown order is refused with the
// flag or variable named.
func TestURLOrder(t *testing.T) {
	url, queue := setup(t)
	startExecutor(t, url, queue, ok)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "amqp://guest:deadsecret@" + ln.Addr().String() + "/"
	ln.Close()
	list := dead + "," + url

	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag", []string{"--amqp-url", list, "--amqp-url-order", "ordered"}, nil},
		{"env", nil, map[string]string{"AMQP_URL": list, "AMQP_URL_ORDER": "ordered"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := ParseArgs(append(c.args, "--queue", queue, "--", "true"), func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if o.Order != eventbus.OrderOrdered {
				t.Fatalf("order %q, want ordered", o.Order)
			}
			var logs bytes.Buffer
			r := &Runner{Opts: o, Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			if code, err := r.Run(ctx); code != 0 || err != nil {
				t.Fatalf("Run = %d, %v; want 0, nil", code, err)
			}
			// Ordered: the dead node was tried first, then the live one.
			if !strings.Contains(logs.String(), "connected to another broker node") || !strings.Contains(logs.String(), "nodes_refused=1") {
				t.Errorf("the log does not show the first node refused and the second used:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "deadsecret") {
				t.Errorf("the log shows a password:\n%s", logs.String())
			}
		})
	}

	if _, err := ParseArgs([]string{"--amqp-url", list, "--amqp-url-order", "random", "--", "true"}, func(string) string { return "" }); err == nil ||
		!strings.Contains(err.Error(), `--amqp-url-order: must be shuffle or ordered, got "random"`) {
		t.Errorf("--amqp-url-order random: %v", err)
	}
	env := map[string]string{"AMQP_URL_ORDER": "first"}
	if _, err := ParseArgs([]string{"--", "true"}, func(k string) string { return env[k] }); err == nil ||
		!strings.Contains(err.Error(), `AMQP_URL_ORDER: must be shuffle or ordered, got "first"`) {
		t.Errorf("AMQP_URL_ORDER=first: %v", err)
	}
}

package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// The queue view on a real broker: a job queue holding messages that no
// one consumes shows its real ready count, 0 consumers and the "no
// consumer" diagnosis; a queue that does not exist is named as such, and
// the declare that the broker refused (it closes the channel) does not
// stop the next queue from being asked about.
func TestQueueViewOnRealBroker(t *testing.T) {
	url := testenv.AMQPURL(t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	missing, jobs := "qv-a-missing-"+suffix, "qv-b-jobs-"+suffix

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// Durable: RabbitMQ 4 refuses transient non-exclusive queues.
	if _, err := ch.QueueDeclare(jobs, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = ch.QueueDelete(jobs, false, false, false) }()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		c, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", jobs, false, false,
			amqp.Publishing{Body: []byte(fmt.Sprintf(`{"i":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(t.Context()); !ok || err != nil {
			t.Fatalf("publish %d not confirmed: %v", i, err)
		}
	}

	st := state.New(state.Options{})
	for i, q := range []string{missing, jobs} {
		body, err := json.Marshal(&eventbus.Event{Executor: fmt.Sprintf("x%d", i), Type: eventbus.TypeExecutorHeartbeat,
			Timestamp: eventbus.Timestamp(time.Now()), Queue: q, Threads: 2, Busy: eventbus.Ptr(0), Interval: 5,
			JobsDone: eventbus.Ptr(int64(0)), JobsFailed: eventbus.Ptr(int64(0)), Running: &[]eventbus.RunningJob{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(eventbus.Message{RoutingKey: eventbus.TypeExecutorHeartbeat, Body: body, Received: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	poller := NewQueuePoller(url, "", eventbus.TLSFiles{}, nil)
	defer poller.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m := New(Options{State: st, Queues: poller, Context: ctx, Location: time.UTC})
	m.Update(tea.WindowSizeMsg{Width: 160, Height: 30})
	press(m, "6")
	cmd := m.pollQueues()
	if cmd == nil {
		t.Fatal("no poll with two queues known")
	}
	m.Update(cmd())

	var q, miss state.QueueView
	for _, v := range st.Queues(time.Now()) {
		switch v.Name {
		case jobs:
			q = v
		case missing:
			miss = v
		}
	}
	if !q.HasSample || q.Sample.Err != nil || q.Sample.Ready != n || q.Sample.Consumers != 0 {
		t.Fatalf("sample of %s: %+v, want %d ready, 0 consumers", jobs, q.Sample, n)
	}
	if miss.Sample.Err == nil || !strings.Contains(miss.Sample.Err.Error(), "not found") {
		t.Fatalf("sample of the missing queue: %+v, want not found", miss.Sample)
	}
	scr := screen(m)
	for _, want := range []string{jobs, "0 none", fmt.Sprintf("no consumer: %d messages wait", n), "queue \"" + missing + "\" not found"} {
		if !strings.Contains(scr, want) {
			t.Errorf("the queue view lacks %q:\n%s", want, scr)
		}
	}
	row := ""
	for l := range strings.SplitSeq(scr, "\n") {
		if strings.Contains(l, jobs) {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 2 || f[1] != fmt.Sprint(n) {
		t.Errorf("the row of %s shows ready %v, want %d: %q", jobs, f, n, row)
	}

	// A consumer comes: the next poll says so and the diagnosis goes.
	if _, err := ch.Consume(jobs, "", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	m.Update(m.pollQueues()())
	for _, v := range st.Queues(time.Now()) {
		if v.Name == jobs && (v.Sample.Consumers != 1 || strings.HasPrefix(v.Diagnosis, "no consumer")) {
			t.Fatalf("after a consumer came: %+v", v)
		}
	}
}

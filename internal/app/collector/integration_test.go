package collector

// Integration test against a real broker (testenv.AMQPURL: skipped without
// one, failed under make test).

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

func TestCollectorPrintsFinishedJobs(t *testing.T) {
	url := testenv.AMQPURL(t)
	exchange := "test.events." + uuid.NewString()

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	defer ch.ExchangeDelete(exchange, false, false)
	publish := func(key, body string) {
		t.Helper()
		err := ch.Publish(exchange, key, false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(body)})
		if err != nil {
			t.Fatalf("publish %s: %v", key, err)
		}
	}

	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	c := &Collector{Opts: Options{AMQPURL: url, Exchange: exchange, Header: true}, Out: pw}
	runErr := make(chan error, 1)
	go func() {
		err := c.Run(ctx)
		pw.Close()
		runErr <- err
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("output ended")
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line within 10s")
		}
		return ""
	}

	if got := next(); got != Header {
		t.Fatalf("first line %q, want the header", got)
	}
	// The collector's queue exists only once it subscribed: publish probes
	// until one comes through.
	const probe = `{"executor":"e","id":"probe","thread":1,"executable":"probe"}`
	var first string
probing:
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		publish("job.probe.finished", probe)
		select {
		case first = <-lines:
			break probing
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(first, "\tprobe\tprobe\t") {
		t.Fatalf("probe line %q", first)
	}

	before := time.Now().UTC().Add(-time.Second)
	publish("job.j-1.started", `{"executor":"e","id":"j-1","thread":1,"executable":"/bin/sh"}`) // not bound
	publish("job.j-1.finished", `{"executor":"e-1","timestamp":1.7e9,"type":"job.finished","id":"j-1","job":"j-1","thread":2,`+
		`"executable":"/bin/sh","exit_status":0,"exceptions":[],"metrics":{"execution":3.5,"input_size":1048576,"output_size":2048}}`)
	publish("job.j-2.finished", `not JSON at all`) // warned about, skipped
	publish("job.j-3.finished", `{"executor":"e-2","job":"j-3","thread":70123456789012,"executable":"x"}`)

	want := []string{
		"e-1\t2\tj-1\t/bin/sh\t3.5\t1048576\t2048",
		"e-2\t70123456789012\tj-3\tx\tNA\tNA\tNA",
	}
	for _, w := range want {
		var got string
		for got = next(); strings.Contains(got, "\tprobe\t"); got = next() {
		}
		ts, rest, _ := strings.Cut(got, "\t")
		if rest != w {
			t.Errorf("line %q, want columns %q after the time", got, w)
		}
		when, err := time.Parse(TimeFormat, ts)
		if err != nil || when.Before(before) || when.After(time.Now().Add(time.Second)) || !strings.HasSuffix(ts, "Z") || len(ts) != 24 {
			t.Errorf("time column %q (%v) is not the UTC time of receipt", ts, err)
		}
	}

	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}

func TestCollectorBrokerDown(t *testing.T) {
	c := &Collector{Opts: Options{AMQPURL: "amqp://guest:secret@127.0.0.1:1/", Exchange: DefaultExchange}, Out: io.Discard}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := c.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "connect to broker") || strings.Contains(err.Error(), "secret") {
		t.Errorf("Run = %v, want a connection error without the password", err)
	}
}

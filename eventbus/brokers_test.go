package eventbus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

func TestSplitURLs(t *testing.T) {
	got := SplitURLs(" amqp://a/ ,amqp://b/,, amqp://c/ ")
	if want := []string{"amqp://a/", "amqp://b/", "amqp://c/"}; !slices.Equal(got, want) {
		t.Errorf("SplitURLs = %q, want %q", got, want)
	}
	if got := SplitURLs(" , "); len(got) != 0 {
		t.Errorf("SplitURLs(only commas) = %q", got)
	}
}

func TestNewBrokersOrder(t *testing.T) {
	raw := "amqp://a/,amqp://b/,amqp://c/,amqp://d/,amqp://e/"
	b, err := NewBrokers(raw, OrderOrdered)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.urls, SplitURLs(raw)) {
		t.Errorf("ordered: %q", b.urls)
	}
	// Shuffled: over many lists, some first URL other than a (the chance
	// that 200 shuffles of 5 all start with a is 5^-200).
	moved := false
	for range 200 {
		b, err := NewBrokers(raw, "")
		if err != nil {
			t.Fatal(err)
		}
		if b.Len() != 5 {
			t.Fatalf("shuffled list has %d URLs", b.Len())
		}
		if b.urls[0] != "amqp://a/" {
			moved = true
			break
		}
	}
	if !moved {
		t.Error("the default order never shuffled the list")
	}
	if _, err := NewBrokers(raw, "random"); err == nil || !strings.Contains(err.Error(), `amqp_url_order: must be shuffle or ordered, got "random"`) {
		t.Errorf("bad order: %v", err)
	}
	if _, err := NewBrokers(" , ", ""); err == nil {
		t.Error("an empty list was accepted")
	}
}

// deadURL is an amqp URL on a loopback port nothing listens on, with a
// password that must never be shown.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "amqp://guest:deadsecret@" + addr + "/"
}

// TestBrokersFailOver: the first node down, the second answers; the next
// dial starts after the node that served, and an error of a round names
// every node, with no password.
func TestBrokersFailOver(t *testing.T) {
	live := testenv.AMQPURL(t)
	dead1, dead2 := deadURL(t), deadURL(t)

	b, err := NewBrokers(dead1+","+live+","+dead2, OrderOrdered)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Dial(DialOptions{Name: "brokers-test"})
	if err != nil {
		t.Fatalf("dial with one live node of three: %v", err)
	}
	if c.Broker() != redact.URL(live) {
		t.Errorf("Broker() = %q, want %q", c.Broker(), redact.URL(live))
	}
	c.Close()
	if b.next != 2 {
		t.Errorf("after the live node (index 1) the next dial starts at %d, want 2", b.next)
	}
	// The next round tries dead2, then dead1, then the live node again.
	c, err = b.Dial(DialOptions{Name: "brokers-test"})
	if err != nil {
		t.Fatalf("second dial: %v", err)
	}
	c.Close()

	// DialWith takes the list as well.
	c, err = DialWith(dead1+", "+live, DialOptions{Name: "brokers-test", Order: OrderOrdered})
	if err != nil {
		t.Fatalf("DialWith(list): %v", err)
	}
	c.Close()

	_, err = DialWith(dead1+","+dead2, DialOptions{Name: "brokers-test"})
	if err == nil {
		t.Fatal("two dead nodes: no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "deadsecret") {
		t.Errorf("the error shows a password: %s", msg)
	}
	for _, want := range []string{"no broker node of 2 answered", redact.URL(dead1), redact.URL(dead2)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

// TestBrokersConnect: Connect's rounds with the reconnection policy. All
// nodes dead: it gives up after the attempts limit, its error naming every
// node and no password, each failed round logged; ctx done: ctx.Err(); the
// first node dead: the second serves.
func TestBrokersConnect(t *testing.T) {
	dead1, dead2 := deadURL(t), deadURL(t)
	b, err := NewBrokers(dead1+","+dead2, OrderOrdered)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	o := DialOptions{Name: "brokers-test", Log: slog.New(slog.NewTextHandler(&logs, nil))}
	backoff := Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	_, err = b.Connect(t.Context(), o, 3, &backoff)
	if err == nil {
		t.Fatal("two dead nodes: no error")
	}
	msg := err.Error()
	for _, want := range []string{"broker unreachable after 3 attempts", "no broker node of 2 answered", redact.URL(dead1), redact.URL(dead2)} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if n := strings.Count(logs.String(), "broker unreachable, retrying"); n != 2 {
		t.Errorf("%d rounds logged as retried, want 2 (the third gives up):\n%s", n, logs.String())
	}
	if strings.Contains(msg+logs.String(), "deadsecret") {
		t.Errorf("a password is shown: %s\n%s", msg, logs.String())
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Connect(ctx, o, 0, &backoff); !errors.Is(err, context.Canceled) {
		t.Errorf("Connect with ctx done = %v, want context.Canceled", err)
	}

	live := testenv.AMQPURL(t)
	b, err = NewBrokers(dead1+","+live, OrderOrdered)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.Connect(t.Context(), o, 1, &backoff)
	if err != nil {
		t.Fatalf("one live node of two, one attempt: %v", err)
	}
	defer c.Close()
	if c.Broker() != redact.URL(live) {
		t.Errorf("Broker() = %q, want %q", c.Broker(), redact.URL(live))
	}
}

package eventbus

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
)

func TestMaxAge(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7D"},
		{36 * time.Hour, "36h"},
		{90 * time.Minute, "90m"},
		{45 * time.Second, "45s"},
		{1500 * time.Millisecond, "1s"},
		{24 * time.Hour, "1D"},
	} {
		if got := MaxAge(c.d); got != c.want {
			t.Errorf("MaxAge(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestEventTime(t *testing.T) {
	ev := Event{Executor: "e1", Timestamp: 1764111563.5, Type: TypeJobStarted, ID: "j", Job: "j", Thread: 1}
	body, err := ev.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := EventTime(body)
	if want := time.Unix(1764111563, 5e8); !ok || !got.Equal(want) {
		t.Errorf("EventTime(%s) = %v %v, want %v", body, got, ok, want)
	}
	for _, bad := range []string{`{}`, `{"timestamp":"x"}`, `{"timestamp":-1}`, `not json`} {
		if got, ok := EventTime([]byte(bad)); ok {
			t.Errorf("EventTime(%s) = %v, want none", bad, got)
		}
	}
}

// TestStreamRefusals: on the real broker, a stream redeclared with another
// retention, and a queue that is not a stream read as one, are explained.
func TestStreamRefusals(t *testing.T) {
	url := testenv.AMQPURL(t)
	c, err := DialWith(url, DialOptions{Name: "stream-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ex := "stream-test-" + uuid.NewString()[:8]
	stream := ex + ".history"
	if err := c.DeclareEvents(ex); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if ch, err := c.Channel(); err == nil {
			ch.QueueDelete(stream, false, false, false)
			ch.QueueDelete(ex+".classic", false, false, false)
			ch.ExchangeDelete(ex, false, false)
			ch.Close()
		}
	}()
	if err := c.DeclareStream(ex, stream, 7*24*time.Hour, 1e9); err != nil {
		t.Fatalf("declare: %v", err)
	}
	if err := c.DeclareStream(ex, stream, 7*24*time.Hour, 1e9); err != nil {
		t.Fatalf("declare again, same arguments: %v", err)
	}
	err = c.DeclareStream(ex, stream, 24*time.Hour, 1e9)
	if err == nil || !strings.Contains(err.Error(), stream) || !strings.Contains(err.Error(), "events_stream_max_age") {
		t.Errorf("declare with another max age: %v, want an error naming the stream and events_stream_max_age", err)
	}

	// A classic queue with an event in it, read as a stream: refused, and
	// the event stays.
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	classic := ex + ".classic"
	if _, err := ch.QueueDeclare(classic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", classic, false, false, amqp.Publishing{Body: []byte(`{"timestamp":1}`)}); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	sub, err := c.SubscribeStream(t.Context(), classic, StreamFrom{})
	if err == nil {
		for range sub.C {
			t.Error("an event of a queue that is not a stream was delivered")
		}
		err = sub.Err()
	}
	if err == nil || !strings.Contains(err.Error(), "not a stream") {
		t.Errorf("read a classic queue as a stream: %v, want an error saying it is not a stream", err)
	}
}

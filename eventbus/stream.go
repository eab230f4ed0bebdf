package eventbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultHistoryStream is the stream hyperflow-top --history reads when
// none is named; executors create it with events_stream set to this name.
const DefaultHistoryStream = "hyperflow.events.history"

// ErrNoStream is returned (wrapped) when the stream to read does not exist.
var ErrNoStream = errors.New("no such stream")

// streamPrefetch is the unacknowledged deliveries a stream consumer allows
// (a stream consumer must set one, and acknowledge manually).
const streamPrefetch = 1000

// MaxAge is d as a RabbitMQ x-max-age value: whole days as "7D", else whole
// hours, minutes or seconds ("36h", "90m", "45s").
func MaxAge(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "D"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(max(d/time.Second, 1)), 10) + "s"
}

// DeclareStream declares the durable stream queue stream (x-queue-type
// stream, retention x-max-age maxAge and x-max-length-bytes maxBytes) and
// binds it to the events exchange with "#", so that it keeps every event.
// The exchange must exist (DeclareEvents). A stream declared before with
// other retention arguments is refused by the broker: the error says so.
func (c *Client) DeclareStream(exchange, stream string, maxAge time.Duration, maxBytes int64) error {
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	args := amqp.Table{
		"x-queue-type":       "stream",
		"x-max-age":          MaxAge(maxAge),
		"x-max-length-bytes": maxBytes,
	}
	if _, err := ch.QueueDeclare(stream, true, false, false, false, args); err != nil {
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			return fmt.Errorf("declare events stream %s (events_stream): it exists with other arguments (not a stream, or another max age or size: delete it or set events_stream_max_age and events_stream_max_bytes as it was declared): %w", stream, err)
		}
		return fmt.Errorf("declare events stream %s (events_stream): %w", stream, err)
	}
	if err := ch.QueueBind(stream, "#", exchange, false, nil); err != nil {
		return fmt.Errorf("bind events stream %s to %s: %w", stream, exchange, err)
	}
	return nil
}

// StreamFrom is where a stream subscription starts: at Offset when
// HasOffset, else at the first event at or after Since when it is set,
// else at the first retained event.
type StreamFrom struct {
	Offset    int64
	HasOffset bool
	Since     time.Time
}

func (f StreamFrom) arg() any {
	switch {
	case f.HasOffset:
		return f.Offset
	case !f.Since.IsZero():
		return f.Since
	}
	return "first"
}

func (f StreamFrom) String() string {
	switch {
	case f.HasOffset:
		return "offset " + strconv.FormatInt(f.Offset, 10)
	case !f.Since.IsZero():
		return "since " + f.Since.Format(time.RFC3339)
	}
	return "the first retained event"
}

// SubscribeStream reads the stream queue stream from from, then follows it
// as events are appended, until ctx is done or the connection is lost. Each
// Message carries its Offset. Received is when it arrived, except for an
// event older than the subscription (history): then it is the event's own
// timestamp, so that a monitor sees history at the time it happened.
// A missing stream is ErrNoStream (wrapped, naming the stream and the
// executor setting that creates it); a queue that is not a stream ends the
// subscription with an error (Subscription.Err).
func (c *Client) SubscribeStream(ctx context.Context, stream string, from StreamFrom) (*Subscription, error) {
	ch, err := c.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Qos(streamPrefetch, 0, false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("set stream prefetch: %w", err)
	}
	started := time.Now()
	deliveries, err := ch.Consume(stream, "", false, false, false, false, amqp.Table{"x-stream-offset": from.arg()})
	if err != nil {
		ch.Close()
		var ae *amqp.Error
		if errors.As(err, &ae) && ae.Code == amqp.NotFound {
			return nil, fmt.Errorf("read stream %s: %w: the executors create it when started with events_stream: %s (EVENTS_STREAM, --events-stream); %s", stream, ErrNoStream, stream, ae.Reason)
		}
		if errors.As(err, &ae) && ae.Code == amqp.PreconditionFailed {
			return nil, fmt.Errorf("read stream %s: the queue is not a stream (name a stream queue, declared by the executors' events_stream): %w", stream, err)
		}
		return nil, fmt.Errorf("consume stream %s from %s: %w", stream, from, err)
	}
	out := make(chan Message, 256)
	sub := &Subscription{ch: ch, C: out}
	go func() {
		defer close(out)
		defer ch.Close()
		var unacked uint64 // delivery tag of the last delivery not acknowledged
		for {
			var d amqp.Delivery
			var ok bool
			select {
			case <-ctx.Done():
				return
			case d, ok = <-deliveries:
			}
			if !ok {
				return
			}
			off, isStream := streamOffset(d.Headers)
			if !isStream {
				sub.setErr(fmt.Errorf("queue %s is not a stream (its deliveries carry no x-stream-offset): name a stream queue, declared by the executors' events_stream", stream))
				return // closing the channel returns the delivery
			}
			msg := Message{RoutingKey: d.RoutingKey, Body: d.Body, Received: time.Now(), Offset: off, HasOffset: true}
			if ts, ok := EventTime(d.Body); ok && ts.Before(started) {
				msg.Received = ts
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
			// Acknowledgements only give the stream consumer credit; one
			// for many deliveries when more are waiting.
			unacked = d.DeliveryTag
			if len(deliveries) == 0 || unacked%(streamPrefetch/4) == 0 {
				if err := ch.Ack(unacked, true); err != nil {
					sub.setErr(fmt.Errorf("acknowledge stream %s deliveries: %w", stream, err))
					return
				}
			}
		}
	}()
	return sub, nil
}

// streamOffset is the x-stream-offset header of a stream delivery.
func streamOffset(h amqp.Table) (int64, bool) { return intHeader(h, "x-stream-offset") }

// EventTime is the "timestamp" field (seconds since the epoch) of an
// event's JSON body, found without decoding the rest.
func EventTime(body []byte) (time.Time, bool) {
	const key = `"timestamp":`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := body[i+len(key):]
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	n := 0
	for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '.' || rest[n] == 'e' || rest[n] == 'E' || rest[n] == '+' || rest[n] == '-') {
		n++
	}
	f, err := strconv.ParseFloat(string(rest[:n]), 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

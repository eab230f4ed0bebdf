package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// FollowState is where a Follower stands.
type FollowState int

// Follower states, reported to Follower.Notify.
const (
	FollowConnecting FollowState = iota // dialling the broker
	FollowUp                            // subscribed: events arrive
	FollowDown                          // connection lost or refused: retrying after RetryIn
)

// FollowNotice is a change of a Follower's state.
type FollowNotice struct {
	State   FollowState
	Text    string        // a sentence for people: where, what, when again
	Err     error         // FollowDown: why
	RetryIn time.Duration // FollowDown: the delay before the next attempt
}

// Follower is a subscription to the events exchange that survives the loss
// of its connection: it dials, subscribes (Client.Subscribe) and hands each
// event to a handler; when the connection is lost or refused it connects
// again after a Backoff delay, reset once a subscription was made. This is
// the one reconnecting subscriber of the monitor and the collector.
//
// Events published while it is disconnected are not seen (its queue is
// exclusive and auto-delete), unless it reads a stream (Stream): then it
// reads the stream from From and follows it, and after a reconnect resumes
// at the offset after the last event handled, so that nothing is lost or
// handled twice.
type Follower struct {
	URL      string   // the broker, or the comma-separated URLs of a cluster's nodes
	Order    string   // how a list of URLs is tried: OrderShuffle ("") or OrderOrdered
	TLS      TLSFiles // for an amqps:// URL
	Name     string   // the connection's name in the broker ("hyperflow-top")
	Exchange string   // DefaultExchange when empty
	Bindings []string // binding keys; "#" when empty
	// Stream, when set, is a stream queue (the executors' events_stream)
	// read instead of a private queue; Exchange and Bindings are not used.
	Stream string
	// From is where the stream is first read (the first retained event
	// when zero).
	From StreamFrom
	// FailFast: when the first connection or subscription fails, Run
	// returns its error instead of retrying (a command run once, headless).
	FailFast bool
	Log      *slog.Logger
	// Notify, when set, is told of every state change, from Run's
	// goroutine: it must not block.
	Notify func(FollowNotice)
	// Backoff overrides the delays (tests); the zero value is the policy.
	Backoff Backoff
}

// Run follows the events until ctx is done (it returns nil) or handle
// returns an error (it returns that error). handle is called from Run's
// goroutine, one event at a time, in the order received.
func (f *Follower) Run(ctx context.Context, handle func(Message) error) error {
	log := f.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where := redact.URL(f.URL)
	brokers, err := NewBrokers(f.URL, f.Order)
	if err != nil {
		return fmt.Errorf("broker URL %s: %w", where, err)
	}
	from := f.From
	for attempt := 0; ; attempt++ {
		f.notify(FollowNotice{State: FollowConnecting, Text: "connecting to " + where})
		connected, handleErr, err := f.once(ctx, brokers, handle, log, &from)
		switch {
		case ctx.Err() != nil:
			return nil
		case handleErr != nil:
			return handleErr
		case f.FailFast && attempt == 0 && !connected:
			return err
		}
		if connected {
			f.Backoff.Up()
		}
		wait := f.Backoff.Next().Round(time.Millisecond)
		log.Warn("events connection lost; connecting again", "broker", where, "err", err, "in", wait)
		f.notify(FollowNotice{State: FollowDown, Err: err, RetryIn: wait,
			Text: fmt.Sprintf("%v; retrying in %s", err, wait)})
		if !Sleep(ctx, wait) {
			return nil
		}
	}
}

func (f *Follower) notify(n FollowNotice) {
	if f.Notify != nil {
		f.Notify(n)
	}
}

// once runs one connection until ctx is done, it is lost, or handle fails.
// from is where a stream is read, moved past each event handled.
func (f *Follower) once(ctx context.Context, brokers *Brokers, handle func(Message) error, log *slog.Logger, from *StreamFrom) (connected bool, handleErr, err error) {
	name := f.Name
	if name == "" {
		name = "hyperflow"
	}
	exchange := f.Exchange
	if exchange == "" {
		exchange = DefaultExchange
	}
	client, err := brokers.Dial(DialOptions{Name: name, TLS: f.TLS, Log: log})
	if err != nil {
		return false, nil, err
	}
	defer client.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.Stream != "" {
		return f.followStream(subCtx, client, handle, log, from)
	}
	sub, err := client.Subscribe(subCtx, exchange, f.Bindings...)
	if err != nil {
		return false, nil, fmt.Errorf("subscribe to %s: %w", exchange, err)
	}
	bindings := strings.Join(f.Bindings, " ")
	if bindings == "" {
		bindings = "#"
	}
	text := fmt.Sprintf("connected to %s, exchange %s, binding %s", client.Broker(), exchange, bindings)
	log.Info(text)
	f.notify(FollowNotice{State: FollowUp, Text: text})
	for msg := range sub.C {
		if err := handle(msg); err != nil {
			return true, err, nil
		}
	}
	if err := client.Err(); err != nil {
		return true, nil, err
	}
	return true, nil, errors.New("subscription ended")
}

// followStream reads the stream from *from on client until ctx is done,
// the connection is lost or handle fails, moving *from past each event
// handled (an event before it, which a broker may resend from the start of
// a chunk, is skipped; so are the events timestamped before From.Since,
// which the broker sends from the start of the chunk holding that time).
func (f *Follower) followStream(ctx context.Context, client *Client, handle func(Message) error, log *slog.Logger, from *StreamFrom) (connected bool, handleErr, err error) {
	sub, err := client.SubscribeStream(ctx, f.Stream, *from)
	if err != nil {
		return false, nil, err
	}
	text := fmt.Sprintf("connected to %s, stream %s from %s", client.Broker(), f.Stream, from)
	log.Info(text)
	f.notify(FollowNotice{State: FollowUp, Text: text})
	since := from.Since // the broker starts at the chunk holding it
	for msg := range sub.C {
		if from.HasOffset && msg.Offset < from.Offset {
			continue
		}
		if !from.HasOffset && !since.IsZero() {
			if ts, ok := EventTime(msg.Body); ok && ts.Before(since) {
				continue
			}
		}
		if err := handle(msg); err != nil {
			return true, err, nil
		}
		*from = StreamFrom{Offset: msg.Offset + 1, HasOffset: true}
	}
	if err := sub.Err(); err != nil {
		return true, err, nil
	}
	if err := client.Err(); err != nil {
		return true, nil, err
	}
	return true, nil, errors.New("stream subscription ended")
}

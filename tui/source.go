package tui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/record"
)

// ConnState is where a source of events stands.
type ConnState int

// Source states.
const (
	ConnConnecting ConnState = iota // dialling the broker
	ConnUp                          // receiving (subscribed, or replaying)
	ConnDown                        // connection lost or refused: retrying
	ConnEnded                       // no more events (a replay played to its end)
)

// Notice is a change of a source's state, shown in the header and the
// status line.
type Notice struct {
	State ConnState
	Text  string
	Err   error
}

// Source is a running source of events: a broker subscription or a
// replay. Its goroutine owns the connection (or the file) and the
// recorder; it hands events over on Events, which it closes when it ends.
type Source struct {
	// Events carries the events in the order received; closed at the end.
	Events <-chan eventbus.Message
	// Notices carries the source's state changes; a slow reader misses
	// some (the latest matters), and it is never closed.
	Notices <-chan Notice
	// Label names the source for the header: the broker's address, or the
	// recording and its speed.
	Label string
	// Replay: the events are a recording's (their receive times are the
	// clock).
	Replay bool

	notices chan Notice
	done    chan struct{}
	err     error
	count   atomic.Int64

	// up is closed once the source first received (subscribed, or began a
	// replay); lastErr is its latest connection error.
	up      chan struct{}
	upOnce  sync.Once
	mu      sync.Mutex
	lastErr error
}

// Up is closed once the source is (or was) receiving: subscribed to the
// broker, or replaying.
func (s *Source) Up() <-chan struct{} { return s.up }

// Connected says whether the source ever received: subscribed to the
// broker, or began a replay.
func (s *Source) Connected() bool {
	select {
	case <-s.up:
		return true
	default:
		return false
	}
}

// LastErr is the latest connection error, nil if none.
func (s *Source) LastErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *Source) markUp() { s.upOnce.Do(func() { close(s.up) }) }

// Wait waits until the source's goroutine ended and returns its error
// (nil when it ended because ctx was done, or a replay played to its end).
func (s *Source) Wait() error {
	<-s.done
	return s.err
}

// Count is the number of events the source has received so far.
func (s *Source) Count() int64 { return s.count.Load() }

func (s *Source) note(n Notice) {
	select {
	case s.notices <- n:
	default: // the reader is behind; it will see the next one
	}
}

func newSource(label string, replay bool) (*Source, chan eventbus.Message) {
	events := make(chan eventbus.Message, 4096)
	notices := make(chan Notice, 16)
	return &Source{Events: events, Notices: notices, notices: notices, Label: label, Replay: replay,
		done: make(chan struct{}), up: make(chan struct{})}, events
}

// AMQPSource says which events to subscribe to.
type AMQPSource struct {
	URL      string
	Order    string // how a list of URLs is tried: eventbus.OrderShuffle ("") or OrderOrdered
	TLS      eventbus.TLSFiles
	Exchange string
	Bindings []string
	// Stream, when set, is read from From instead of subscribing to the
	// exchange (--history).
	Stream string
	From   eventbus.StreamFrom
	// FailFast: when the first connection fails, end with its error
	// instead of retrying (headless collection).
	FailFast bool
}

// StartAMQP subscribes to the events exchange through an exclusive,
// auto-delete queue of its own and delivers the events until ctx is done.
// A lost or refused connection is retried with the broker policy's growing
// delay (eventbus.Follower), reported on Notices. Every event is recorded
// to rec first when rec is not nil.
func StartAMQP(ctx context.Context, cfg AMQPSource, rec *record.Recorder, log *slog.Logger) *Source {
	src, out := newSource(hostOf(cfg.URL), false)
	f := &eventbus.Follower{
		URL: cfg.URL, Order: cfg.Order, TLS: cfg.TLS, Name: "hyperflow-top", Exchange: cfg.Exchange, Bindings: cfg.Bindings,
		Stream: cfg.Stream, From: cfg.From, FailFast: cfg.FailFast, Log: log,
		Notify: func(n eventbus.FollowNotice) {
			switch {
			case n.State == eventbus.FollowUp:
				src.markUp()
			case n.Err != nil:
				src.mu.Lock()
				src.lastErr = n.Err
				src.mu.Unlock()
			}
			src.note(Notice{State: connStates[n.State], Text: n.Text, Err: n.Err})
		},
	}
	go func() {
		defer close(src.done)
		defer close(out)
		rs := &recordState{rec: rec}
		src.err = f.Run(ctx, func(msg eventbus.Message) error { return src.pass(ctx, rs, msg, out) })
	}()
	return src
}

// connStates maps the follower's states to the source's.
var connStates = map[eventbus.FollowState]ConnState{
	eventbus.FollowConnecting: ConnConnecting,
	eventbus.FollowUp:         ConnUp,
	eventbus.FollowDown:       ConnDown,
}

// hostOf is the host:port of a broker URL, without credentials; of each
// URL of a cluster's comma-separated list, comma-separated.
func hostOf(rawURL string) string {
	urls := eventbus.SplitURLs(rawURL)
	if len(urls) > 1 {
		hosts := make([]string, len(urls))
		for i, u := range urls {
			hosts[i] = hostOf(u)
		}
		return strings.Join(hosts, ",")
	}
	r := redact.URL(rawURL)
	if _, rest, ok := strings.Cut(r, "://"); ok {
		if _, h, ok := strings.Cut(rest, "@"); ok {
			rest = h
		}
		return strings.TrimSuffix(rest, "/")
	}
	return r
}

// recordState is a source's recorder and whether it failed.
type recordState struct {
	rec    *record.Recorder
	failed bool
}

// pass records msg (the first recording error stops the recording and is
// noticed), counts it and hands it over, unless ctx is done.
func (s *Source) pass(ctx context.Context, rs *recordState, msg eventbus.Message, out chan<- eventbus.Message) error {
	if rs.rec != nil && !rs.failed {
		if err := rs.rec.Record(msg); err != nil {
			rs.failed = true
			s.note(Notice{State: ConnUp, Err: err, Text: "recording stopped: " + err.Error()})
		}
	}
	s.count.Add(1)
	select {
	case out <- msg:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forward records and hands over the events of in until it is closed or
// ctx is done.
func (s *Source) forward(ctx context.Context, in <-chan eventbus.Message, rec *record.Recorder, out chan<- eventbus.Message) error {
	rs := &recordState{rec: rec}
	for msg := range in {
		if err := s.pass(ctx, rs, msg, out); err != nil {
			return err
		}
	}
	return nil
}

// StartReplay plays the recording at path with the gaps between events
// divided by speed (0: as fast as possible), recording to rec if not nil.
// The file is opened before it returns, so a wrong path is reported at
// once.
func StartReplay(ctx context.Context, path string, speed float64, rec *record.Recorder) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	label := "replay"
	if speed > 0 {
		label += " x" + strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", speed), "0"), ".")
	} else {
		label += " (fast)"
	}
	src, out := newSource(label, true)
	go func() {
		defer close(src.done)
		defer close(out)
		defer f.Close()
		src.markUp()
		src.note(Notice{State: ConnUp, Text: "replaying " + path})
		mid := make(chan eventbus.Message, 256)
		playErr := make(chan error, 1)
		go func() {
			defer close(mid)
			playErr <- record.Player{Speed: speed}.Play(ctx, f, mid)
		}()
		ferr := src.forward(ctx, mid, rec, out)
		for range mid { // let the player end
		}
		err := <-playErr
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			src.err = fmt.Errorf("replay %s: %w", path, err)
			src.note(Notice{State: ConnEnded, Err: src.err, Text: src.err.Error()})
		case ferr == nil:
			src.note(Notice{State: ConnEnded, Text: fmt.Sprintf("replay finished: %d events from %s", src.Count(), path)})
		}
	}()
	return src, nil
}

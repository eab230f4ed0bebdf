package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
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
}

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
		done: make(chan struct{})}, events
}

// Reconnection delays of the broker source.
const (
	reconnectMin = time.Second
	reconnectMax = 30 * time.Second
)

// AMQPSource says which events to subscribe to.
type AMQPSource struct {
	URL      string
	Exchange string
	Bindings []string
	// FailFast: when the first connection fails, end with its error
	// instead of retrying (headless collection).
	FailFast bool
}

// StartAMQP subscribes to the events exchange through an exclusive,
// auto-delete queue of its own and delivers the events until ctx is done.
// A lost or refused connection is retried with a growing delay (1 s to
// 30 s), reported on Notices. Every event is recorded to rec first when
// rec is not nil.
func StartAMQP(ctx context.Context, cfg AMQPSource, rec *record.Recorder, log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, out := newSource(hostOf(cfg.URL), false)
	go func() {
		defer close(src.done)
		defer close(out)
		src.err = src.runAMQP(ctx, cfg, rec, out, log)
	}()
	return src
}

// hostOf is the host:port of a broker URL, without credentials.
func hostOf(rawURL string) string {
	r := eventbus.RedactURL(rawURL)
	if _, rest, ok := strings.Cut(r, "://"); ok {
		if _, h, ok := strings.Cut(rest, "@"); ok {
			rest = h
		}
		return strings.TrimSuffix(rest, "/")
	}
	return r
}

func (s *Source) runAMQP(ctx context.Context, cfg AMQPSource, rec *record.Recorder, out chan<- eventbus.Message, log *slog.Logger) error {
	delay := reconnectMin
	where := eventbus.RedactURL(cfg.URL)
	for attempt := 0; ; attempt++ {
		s.note(Notice{State: ConnConnecting, Text: "connecting to " + where})
		connected, err := s.subscribe(ctx, cfg, rec, out, log)
		if ctx.Err() != nil {
			return nil
		}
		if cfg.FailFast && attempt == 0 && !connected {
			return err
		}
		if connected {
			delay = reconnectMin
		}
		log.Warn("events connection lost; connecting again", "err", err, "in", delay)
		s.note(Notice{State: ConnDown, Err: err, Text: fmt.Sprintf("%v; retrying in %s", err, delay)})
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, reconnectMax)
	}
}

// subscribe runs one connection until ctx is done or it is lost.
func (s *Source) subscribe(ctx context.Context, cfg AMQPSource, rec *record.Recorder, out chan<- eventbus.Message, log *slog.Logger) (connected bool, err error) {
	client, err := eventbus.DialNamed(cfg.URL, "hyperflow-top", log)
	if err != nil {
		return false, err
	}
	defer client.Close()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := client.Subscribe(subCtx, cfg.Exchange, cfg.Bindings...)
	if err != nil {
		return false, fmt.Errorf("subscribe to %s: %w", cfg.Exchange, err)
	}
	bindings := strings.Join(cfg.Bindings, " ")
	if bindings == "" {
		bindings = "#"
	}
	text := fmt.Sprintf("connected to %s, exchange %s, binding %s", eventbus.RedactURL(cfg.URL), cfg.Exchange, bindings)
	log.Info(text)
	s.note(Notice{State: ConnUp, Text: text})
	if err := s.forward(ctx, sub.C, rec, out); err != nil {
		return true, err
	}
	if err := client.Err(); err != nil {
		return true, err
	}
	return true, errors.New("subscription ended")
}

// forward records and hands over the events of in until it is closed or
// ctx is done.
func (s *Source) forward(ctx context.Context, in <-chan eventbus.Message, rec *record.Recorder, out chan<- eventbus.Message) error {
	recErr := false
	for msg := range in {
		if rec != nil && !recErr {
			if err := rec.Record(msg); err != nil {
				recErr = true
				s.note(Notice{State: ConnUp, Err: err, Text: "recording stopped: " + err.Error()})
			}
		}
		s.count.Add(1)
		select {
		case out <- msg:
		case <-ctx.Done():
			return ctx.Err()
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

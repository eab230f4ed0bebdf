// Package record writes the events hyperflow-top receives to a file
// (--record), plays such a file back without a broker (--replay), and goes
// on with one after a restart of the monitor (--resume, OpenResume), so
// that its history survives.
//
// A recording is JSON lines, one per event received, in the order received:
//
//	{"t":"2024-05-01T10:00:00.123456789Z","key":"job.42.started","body":{...}}
//
// t is the receive time (RFC 3339, UTC), key the routing key and body the
// event as received: the JSON object itself, or, for a body that is not a
// JSON object on one line (a malformed event), a JSON string holding it, so
// that replaying gives the model the very same bytes to judge.
package record

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// FlushEvery is how often (in receive time) a Recorder flushes its buffer
// while events arrive.
const FlushEvery = time.Second

// ErrBadLine is wrapped by the errors for a line that is not a recorded
// event (other than a truncated last line, which is ignored).
var ErrBadLine = errors.New("record: not a recorded event")

// Line is one line of a recording.
type Line struct {
	T    time.Time       `json:"t"`
	Key  string          `json:"key"`
	Body json.RawMessage `json:"body"`
}

// Recorder appends received events to a recording. It is safe for
// concurrent use (events recorded by the receiving goroutine, Flush called
// from a UI tick). It flushes when its buffer fills, every FlushEvery of
// receive time, and on Flush and Close.
type Recorder struct {
	mu        sync.Mutex
	w         *bufio.Writer
	c         io.Closer
	lastFlush time.Time
	line      []byte
	n         int64
	err       error
}

// NewRecorder records to w.
func NewRecorder(w io.Writer) *Recorder {
	return &Recorder{w: bufio.NewWriterSize(w, 64<<10)}
}

// Create creates (or truncates) the file at path and records to it; Close
// closes the file.
func Create(path string) (*Recorder, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	r := NewRecorder(f)
	r.c = f
	return r, nil
}

// Record appends one event. After a write error every call returns it.
func (r *Recorder) Record(msg eventbus.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.line = AppendLine(r.line[:0], msg)
	if _, err := r.w.Write(r.line); err != nil {
		r.err = fmt.Errorf("record event: %w", err)
		return r.err
	}
	r.n++
	if t := msg.Received; !t.IsZero() {
		if r.lastFlush.IsZero() {
			r.lastFlush = t
		} else if t.Sub(r.lastFlush) >= FlushEvery {
			r.lastFlush = t
			return r.flush()
		}
	}
	return nil
}

// Count is the number of events recorded.
func (r *Recorder) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Flush writes out what is buffered.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flush()
}

func (r *Recorder) flush() error {
	if r.err != nil {
		return r.err
	}
	if err := r.w.Flush(); err != nil {
		r.err = fmt.Errorf("flush recording: %w", err)
	}
	return r.err
}

// Close flushes and closes the file of Create (a Recorder of NewRecorder
// leaves its writer open).
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.flush()
	if r.c != nil {
		if cerr := r.c.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close recording: %w", cerr)
		}
		r.c = nil
	}
	if r.err == nil {
		r.err = errors.New("record: recorder closed")
	}
	return err
}

// AppendLine appends msg's line (with its newline) to b.
func AppendLine(b []byte, msg eventbus.Message) []byte {
	b = append(b, `{"t":"`...)
	b = msg.Received.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","key":`...)
	b = appendString(b, msg.RoutingKey)
	b = append(b, `,"body":`...)
	if isObjectLine(msg.Body) {
		b = append(b, msg.Body...)
	} else {
		b = appendString(b, string(msg.Body))
	}
	return append(b, "}\n"...)
}

// isObjectLine: body is a valid JSON object with no line break in it.
func isObjectLine(body []byte) bool {
	t := bytes.TrimSpace(body)
	return len(t) == len(body) && len(t) > 0 && t[0] == '{' &&
		bytes.IndexAny(body, "\r\n") < 0 && json.Valid(body)
}

// appendString appends s as a JSON string. A JSON string cannot hold
// invalid UTF-8: such bytes become U+FFFD (the body stays malformed).
func appendString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s) // a string always encodes
	return append(b, enc...)
}

// parseLine reads one line into msg.
func parseLine(line []byte, msg *eventbus.Message) error {
	var l Line
	if err := json.Unmarshal(line, &l); err != nil {
		return err
	}
	if len(l.Body) == 0 {
		return errors.New("no body")
	}
	msg.RoutingKey = l.Key
	msg.Received = l.T
	if l.Body[0] == '"' {
		var s string
		if err := json.Unmarshal(l.Body, &s); err != nil {
			return err
		}
		msg.Body = []byte(s)
	} else {
		msg.Body = []byte(l.Body)
	}
	return nil
}

// reader reads the lines of a recording one by one.
type reader struct {
	br   *bufio.Reader
	line int
	name string
	// off is the offset read up to; good the offset after the last line
	// that was read whole (an event or a blank line ended by a newline),
	// goodNL whether that line ended with its newline.
	off, good int64
	goodNL    bool
}

func newReader(r io.Reader) *reader {
	name := "recording"
	if f, ok := r.(*os.File); ok {
		name = f.Name()
	}
	return &reader{br: bufio.NewReaderSize(r, 256<<10), name: name}
}

// next reads the next event; io.EOF at the end (a truncated last line
// counts as the end).
func (rd *reader) next(msg *eventbus.Message) error {
	for {
		raw, err := rd.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			buf := append([]byte(nil), raw...)
			for errors.Is(err, bufio.ErrBufferFull) {
				raw, err = rd.br.ReadSlice('\n')
				buf = append(buf, raw...)
			}
			raw = buf
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", rd.name, err)
		}
		rd.off += int64(len(raw))
		last := errors.Is(err, io.EOF)
		if len(raw) == 0 && last {
			return io.EOF
		}
		rd.line++
		t := bytes.TrimSpace(raw)
		if len(t) == 0 {
			if last {
				return io.EOF
			}
			rd.good, rd.goodNL = rd.off, true
			continue
		}
		if perr := parseLine(t, msg); perr != nil {
			if last {
				return io.EOF // a line cut short by a crash: ignored
			}
			return fmt.Errorf("%s line %d: %w: %v", rd.name, rd.line, ErrBadLine, perr)
		}
		rd.good, rd.goodNL = rd.off, raw[len(raw)-1] == '\n'
		return nil
	}
}

// Load reads a whole recording. On an error it returns the events read
// before it.
func Load(r io.Reader) ([]eventbus.Message, error) {
	rd := newReader(r)
	var out []eventbus.Message
	for {
		var msg eventbus.Message
		err := rd.next(&msg)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, msg)
	}
}

// LoadFile reads the recording at path.
func LoadFile(path string) ([]eventbus.Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return Load(f)
}

// OpenResume opens the recording at path to go on with it (hyperflow-top
// --resume): it returns the events recorded so far, to apply to the model
// first, and a Recorder that appends to the file. A last line cut short (a
// monitor killed in the middle of writing it) is cut off the file first,
// and a last line without its newline gets one, so the events appended
// start on a line of their own. A file that does not exist is created (no
// events). A line that is not a recorded event, other than the last, is an
// error wrapping ErrBadLine, and the file is left as it was: appending to
// a file that is not a recording would spoil it.
//
// Only one process should record to a file at a time; nothing enforces it.
func OpenResume(path string) ([]eventbus.Message, *Recorder, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open recording: %w", err)
	}
	fail := func(err error) ([]eventbus.Message, *Recorder, error) {
		f.Close()
		return nil, nil, err
	}
	rd := newReader(f)
	var msgs []eventbus.Message
	for {
		var msg eventbus.Message
		err := rd.next(&msg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		msgs = append(msgs, msg)
	}
	if rd.good < rd.off {
		if err := f.Truncate(rd.good); err != nil {
			return fail(fmt.Errorf("cut the unfinished last line of %s: %w", path, err))
		}
	}
	if _, err := f.Seek(rd.good, io.SeekStart); err != nil {
		return fail(fmt.Errorf("resume recording %s: %w", path, err))
	}
	if rd.good > 0 && !rd.goodNL {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return fail(fmt.Errorf("resume recording %s: %w", path, err))
		}
	}
	r := NewRecorder(f)
	r.c = f
	return msgs, r, nil
}

// Player plays a recording back.
type Player struct {
	// Speed divides the gaps between events: 1 is real time, 10 ten times
	// faster; 0, a negative number or +Inf plays as fast as possible.
	Speed float64
	// Now and Sleep are the clock (the real one when nil); tests pass a
	// fake one.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Replay plays the recording r into out with the gaps between the events'
// receive times divided by speed (see Player.Speed). The messages keep
// their recorded receive times: a model fed by a replay should use its
// Latest time as now. It returns nil at the end of the recording, ctx's
// error when cancelled, and never closes out.
func Replay(ctx context.Context, r io.Reader, speed float64, out chan<- eventbus.Message) error {
	return Player{Speed: speed}.Play(ctx, r, out)
}

// Play is Replay with p's speed and clock.
func (p Player) Play(ctx context.Context, r io.Reader, out chan<- eventbus.Message) error {
	now, sleep := p.Now, p.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	paced := p.Speed > 0 && !math.IsInf(p.Speed, 1) && !math.IsNaN(p.Speed)
	rd := newReader(r)
	var first time.Time // recording time of the first event
	var start time.Time // wall time it was played
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var msg eventbus.Message
		err := rd.next(&msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if paced && !msg.Received.IsZero() {
			if first.IsZero() {
				first, start = msg.Received, now()
			} else if off := msg.Received.Sub(first); off > 0 {
				// Pace against the start, so that gaps do not drift.
				due := start.Add(time.Duration(float64(off) / p.Speed))
				if d := due.Sub(now()); d > 0 {
					if err := sleep(ctx, d); err != nil {
						return err
					}
				}
			}
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

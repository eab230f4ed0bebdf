package runner

import (
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tail is an io.Writer that keeps only the last n bytes written to it and
// counts every byte written. Its memory is bounded: the buffer grows with
// what is written up to n bytes (a command that prints little costs little)
// and is then used as a ring. Writes never fail.
//
// A Tail is safe for concurrent use: Bytes, String and Total may be called
// while another goroutine writes.
type Tail struct {
	mu    sync.Mutex
	limit int    // capacity n
	buf   []byte // the kept bytes; a ring of len limit once full
	full  bool   // buf is a full ring: pos is the oldest byte
	pos   int    // with full: index of the oldest kept byte (and of the next write)
	total int64  // bytes written in all
}

// NewTail returns a Tail keeping the last n bytes (none if n <= 0).
func NewTail(n int) *Tail {
	return &Tail{limit: max(n, 0)}
}

// Write keeps the last bytes of p (as many as fit) and always reports
// len(p) bytes written.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	written := len(p)
	t.total += int64(written)
	n := t.limit
	if n == 0 || len(p) == 0 {
		return written, nil
	}
	if !t.full {
		if len(t.buf)+len(p) < n {
			if need := len(t.buf) + len(p); need > cap(t.buf) {
				grown := make([]byte, len(t.buf), min(max(2*cap(t.buf), need, 512), n))
				copy(grown, t.buf)
				t.buf = grown
			}
			t.buf = append(t.buf, p...)
			return written, nil
		}
		// This write fills the buffer: turn it into a full ring holding
		// the last n bytes of buf+p.
		ring := make([]byte, n)
		if len(p) >= n {
			copy(ring, p[len(p)-n:])
		} else {
			keep := n - len(p)
			copy(ring, t.buf[len(t.buf)-keep:])
			copy(ring[keep:], p)
		}
		t.buf, t.full, t.pos = ring, true, 0
		return written, nil
	}
	if len(p) >= n {
		copy(t.buf, p[len(p)-n:])
		t.pos = 0
		return written, nil
	}
	k := copy(t.buf[t.pos:], p)
	copy(t.buf, p[k:]) // the part that wraps around, if any
	t.pos = (t.pos + len(p)) % n
	return written, nil
}

// copyBuffers are shared by ReadFrom and the output pipes, so that the output of many short
// jobs does not allocate a copy buffer per job and stream.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom copies r into the Tail until EOF (io.Copy, and so os/exec, uses
// it instead of a buffer of its own).
func (t *Tail) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			t.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Bytes returns a copy of the kept bytes, oldest first.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytesLocked()
}

func (t *Tail) bytesLocked() []byte {
	out := make([]byte, len(t.buf))
	if !t.full {
		copy(out, t.buf)
		return out
	}
	k := copy(out, t.buf[t.pos:])
	copy(out[k:], t.buf[:t.pos])
	return out
}

// String returns the kept bytes as valid UTF-8: when earlier bytes were
// dropped, the partial rune the buffer may start with is skipped, and any
// invalid sequence is replaced with U+FFFD (as strings.ToValidUTF8 does).
// The replacements may make the result longer than the Tail's capacity.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bytesLocked()
	if t.total > int64(len(b)) {
		// The cut may have fallen inside a multi-byte rune: skip its
		// continuation bytes (at most UTFMax-1 of them belong to it).
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return strings.ToValidUTF8(string(b), string(utf8.RuneError))
}

// Total returns the number of bytes written in all, kept or not.
func (t *Tail) Total() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

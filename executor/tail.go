package executor

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// Tail is an io.Writer that keeps only the last n bytes written to it and
// counts every byte written. Its memory is constant: one ring buffer of n
// bytes, allocated by NewTail. Writes never fail.
//
// A Tail is safe for concurrent use: Bytes, String and Total may be called
// while another goroutine writes.
type Tail struct {
	mu    sync.Mutex
	buf   []byte // ring buffer, len(buf) == capacity
	pos   int    // index where the next byte goes; the oldest kept byte once full
	size  int    // bytes kept, <= len(buf)
	total int64  // bytes written in all
}

// NewTail returns a Tail keeping the last n bytes (none if n <= 0).
func NewTail(n int) *Tail {
	return &Tail{buf: make([]byte, max(n, 0))}
}

// Write keeps the last bytes of p (as many as fit) and always reports
// len(p) bytes written.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	written := len(p)
	t.total += int64(written)
	n := len(t.buf)
	if n == 0 {
		return written, nil
	}
	if len(p) >= n {
		// p alone fills the buffer: keep its last n bytes.
		copy(t.buf, p[len(p)-n:])
		t.pos, t.size = 0, n
		return written, nil
	}
	k := copy(t.buf[t.pos:], p)
	copy(t.buf, p[k:]) // the part that wraps around, if any
	t.pos = (t.pos + len(p)) % n
	t.size = min(t.size+len(p), n)
	return written, nil
}

// Bytes returns a copy of the kept bytes, oldest first.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytesLocked()
}

func (t *Tail) bytesLocked() []byte {
	out := make([]byte, t.size)
	if t.size < len(t.buf) {
		// Not wrapped yet: the bytes are buf[:size] and pos == size.
		copy(out, t.buf[:t.size])
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

package eventbus

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"testing"
)

// countingConn records the writes that reach the socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingConn) Close() error { return nil }

func TestCorkHoldsWritesUntilTheLastUncork(t *testing.T) {
	inner := &countingConn{}
	c := &corkConn{Conn: inner}
	c.Write([]byte("a"))
	c.cork()
	c.Write([]byte("b"))
	c.cork() // nested
	c.Write([]byte("c"))
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	if len(inner.writes) != 1 {
		t.Fatalf("writes while corked reached the socket: %q", inner.writes)
	}
	c.Write([]byte("d"))
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("e"))
	want := []string{"a", "bcd", "e"}
	if len(inner.writes) != len(want) {
		t.Fatalf("writes %q, want %q", inner.writes, want)
	}
	for i, w := range want {
		if string(inner.writes[i]) != w {
			t.Fatalf("writes %q, want %q", inner.writes, want)
		}
	}
	// Nothing held: uncork writes nothing.
	c.cork()
	if err := c.uncork(); err != nil || len(inner.writes) != 3 {
		t.Fatalf("an empty batch wrote: %q, %v", inner.writes, err)
	}
}

func TestCorkFailedFlushFailsLaterWrites(t *testing.T) {
	boom := errors.New("connection reset")
	inner := &countingConn{}
	c := &corkConn{Conn: inner}
	c.cork()
	c.Write([]byte("held"))
	inner.fail = boom
	if err := c.uncork(); !errors.Is(err, boom) {
		t.Fatalf("uncork = %v, want %v", err, boom)
	}
	inner.fail = nil
	if _, err := c.Write([]byte("later")); !errors.Is(err, boom) {
		t.Fatalf("write after a failed flush = %v, want %v", err, boom)
	}
}

package eventbus

import (
	"net"
	"sync"
)

// corkConn is the broker connection's socket with a cork: while corked,
// what the AMQP client writes is kept in memory and sent in one write when
// the last cork is pulled. The amqp091 client flushes every message with a
// write of its own; a job's events and its reply, published back to back,
// then reach the broker in one segment instead of one per message (fewer
// system calls here, fewer reads and wake-ups in the broker).
//
// A corked section must never wait for the broker: everything written in
// it is only sent at uncork. Client.publishBatch is the only user, and it
// only publishes between cork and uncork (waiting for a confirmation comes
// after). Writes of other goroutines meanwhile (another job's reply, an
// acknowledgement, a heartbeat frame) wait in the buffer too, for the few
// microseconds the section lasts, and keep their order.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked int
	buf    []byte
	err    error // a failed buffered write: every later write fails too
}

// Write sends p, or keeps it while corked. The AMQP client calls it with
// its own send lock held, so writes never interleave.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.corked > 0 {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked++
	c.mu.Unlock()
}

// uncork pulls one cork; the last one sends what was kept. When that write
// fails the socket is closed, so that the client's reader sees the loss
// (the client believed the kept bytes were sent).
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked--
	if c.corked > 0 || len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 64<<10 {
		c.buf = nil // a large batch (a long stderr tail) is not kept
	} else {
		c.buf = c.buf[:0]
	}
	if err != nil {
		c.err = err
		c.Conn.Close()
	}
	return err
}

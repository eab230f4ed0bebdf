package eventbus

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
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

// TestCorkUnderTLS: amqp091 puts TLS on top of the corked socket; records
// written while corked reach the peer, in order, at uncork.
func TestCorkUnderTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	a, b := net.Pipe()
	sock := &corkConn{Conn: a}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := tls.Client(sock, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{pair}})
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		var all []byte
		for len(all) < len("onetwothree") {
			n, err := server.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- string(all)
	}()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	sock.cork()
	client.Write([]byte("one"))
	client.Write([]byte("two"))
	select {
	case s := <-got:
		t.Fatalf("the peer read %q while corked", s)
	case <-time.After(50 * time.Millisecond):
	}
	client.Write([]byte("three"))
	if err := sock.uncork(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "onetwothree" {
			t.Fatalf("the peer read %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the peer after uncork")
	}
}

package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
)

// DefaultExchange is the topic exchange events are published to.
const DefaultExchange = "hyperflow.events"

// Client owns one AMQP connection and the channel everything is published on.
// It publishes on two channels: Publish (events, best effort) on a plain
// channel, PublishConfirmed (replies) on a channel in confirm mode, so that
// the confirmation of a reply never waits for the broker to route the
// events published before it. Consumers get channels of their own from
// Channel. A Client is safe for concurrent use.
//
// Ownership: the Client is the only place that holds the connection; when it
// is lost, Done is closed and the owner builds a new Client.
type Client struct {
	conn *amqp.Connection
	sock *corkConn // the connection's socket, nil when not dialled by DialNamed
	log  *slog.Logger

	mu  sync.Mutex // serialises confirmed publishes so confirms match publish order
	pub *amqp.Channel
	ev  *amqp.Channel // events: no confirms

	blocked atomic.Bool  // broker flow control (connection.blocked)
	blocks  atomic.Int64 // connection.blocked notifications received
	server  amqp.Table   // the broker's server properties (product, version)

	broker string // the URL connected to, password hidden

	done    chan struct{}
	closeMu sync.Mutex
	err     error
}

// Dial connects to url and opens the confirm-mode publishing channel.
func Dial(rawURL string, log *slog.Logger) (*Client, error) {
	return DialWith(rawURL, DialOptions{Name: "hyperflow", Log: log})
}

// DialNamed is Dial with the connection name the broker shows (rabbitmqctl
// list_connections, the management UI).
func DialNamed(rawURL, name string, log *slog.Logger) (*Client, error) {
	return DialWith(rawURL, DialOptions{Name: name, Log: log})
}

// DialOptions are the optional parts of a connection.
type DialOptions struct {
	Name string // the connection's name in the broker
	TLS  TLSFiles
	Log  *slog.Logger
	// Order is how a comma-separated list of URLs is tried by DialWith:
	// OrderShuffle ("", the default) or OrderOrdered.
	Order string
}

// dialTimeout bounds the TCP connection, and the TLS and AMQP handshakes
// (amqp.DefaultDial sets the deadline).
const dialTimeout = 10 * time.Second

// DialWith connects to rawURL (amqp:// or amqps://, see TLSFiles) and opens
// the publishing channels. An error names the broker (password hidden) and,
// for TLS, the cause and the setting that fixes it.
//
// rawURL may be a comma-separated list of the URLs of a cluster's nodes:
// the first that answers, in o.Order, is used (see Brokers; a connection
// loop keeps a Brokers of its own so that it moves on to the next node).
func DialWith(rawURL string, o DialOptions) (*Client, error) {
	if strings.Contains(rawURL, ",") {
		b, err := NewBrokers(rawURL, o.Order)
		if err != nil {
			return nil, fmt.Errorf("broker URL %s: %w", redact.URL(rawURL), err)
		}
		return b.Dial(o)
	}
	return dialOne(rawURL, o)
}

// Broker is the URL of the node connected to, password hidden.
func (c *Client) Broker() string { return c.broker }

func dialOne(rawURL string, o DialOptions) (*Client, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := o.Name
	if name == "" {
		name = "hyperflow"
	}
	where := redact.URL(rawURL)
	uri, err := amqp.ParseURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("broker URL %s: not an amqp:// or amqps:// URL", where)
	}
	tlsCfg, err := o.TLS.tlsConfig(uri)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", where, err)
	}
	var sock *corkConn
	dial := amqp.DefaultDial(dialTimeout)
	cfg := amqp.Config{
		Heartbeat:       10 * time.Second,
		Locale:          "en_US",
		Properties:      amqp.Table{"connection_name": name},
		TLSClientConfig: tlsCfg,
		// The socket gets a cork, for batches (cork.go); amqp091 puts
		// TLS, if any, on top of it.
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := dial(network, addr)
			if err != nil {
				return nil, err
			}
			sock = &corkConn{Conn: c}
			return sock, nil
		},
	}
	conn, err := amqp.DialConfig(rawURL, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", where, explainTLS(err, tlsCfg))
	}
	c, err := newClient(conn, log)
	if err != nil {
		return nil, fmt.Errorf("connect to broker %s: %w", where, err)
	}
	c.server = conn.Properties
	c.sock = sock
	c.broker = where
	return c, nil
}

// newClient opens the publishing channels of conn.
func newClient(conn *amqp.Connection, log *slog.Logger) (*Client, error) {
	pub, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open publishing channel: %w", err)
	}
	if err := pub.Confirm(false); err != nil {
		conn.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	ev, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open events channel: %w", err)
	}
	c := &Client{conn: conn, pub: pub, ev: ev, log: log, done: make(chan struct{})}
	// Notification channels must be buffered and always drained.
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	pubClosed := pub.NotifyClose(make(chan *amqp.Error, 1))
	evClosed := ev.NotifyClose(make(chan *amqp.Error, 1))
	blockings := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() {
		for b := range blockings {
			c.blocked.Store(b.Active)
			if b.Active {
				c.blocks.Add(1)
				log.Warn("broker blocked publishing (flow control); events are dropped and replies wait", "reason", b.Reason)
			} else {
				log.Info("broker unblocked publishing")
			}
		}
	}()
	go func() {
		var e *amqp.Error
		select {
		case e = <-connClosed:
		case e = <-pubClosed:
		case e = <-evClosed:
		}
		c.shut(e)
	}()
	return c, nil
}

func (c *Client) shut(e *amqp.Error) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	if e != nil {
		c.err = fmt.Errorf("broker connection lost: %w", e)
	} else {
		c.err = errors.New("broker connection closed")
	}
	close(c.done)
}

// ServerInfo is what the broker says of itself when the connection opens.
type ServerInfo struct {
	Product string // "RabbitMQ"
	Version string // "4.0.5"
	Major   int    // 4, or 0 when the version cannot be read
	Minor   int
}

// Server returns what the broker said of itself.
func (c *Client) Server() ServerInfo {
	info := ServerInfo{}
	info.Product, _ = c.server["product"].(string)
	info.Version, _ = c.server["version"].(string)
	parts := strings.SplitN(info.Version, ".", 3)
	if len(parts) >= 2 {
		info.Major, _ = strconv.Atoi(parts[0])
		info.Minor, _ = strconv.Atoi(parts[1])
	}
	return info
}

// AtLeast reports whether the broker is RabbitMQ major.minor or later.
func (i ServerInfo) AtLeast(major, minor int) bool {
	return i.Major > major || (i.Major == major && i.Minor >= minor)
}

// Done is closed when the connection or the publishing channel is gone.
func (c *Client) Done() <-chan struct{} { return c.done }

// ErrNacked is returned by PublishConfirmed when the broker refused the
// message (a negative confirmation): sending it again will not help.
var ErrNacked = errors.New("broker refused the message (nack)")

// Lost reports whether the connection or the publishing channel is gone.
// Unlike Done it is true as soon as the library has seen the connection
// close, before the notifications have been read.
func (c *Client) Lost() bool {
	select {
	case <-c.done:
		return true
	default:
		return c.conn.IsClosed()
	}
}

// Err says why Done was closed.
func (c *Client) Err() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.err
}

// Close closes the connection. It is idempotent.
func (c *Client) Close() error {
	if c.conn.IsClosed() {
		return nil
	}
	return c.conn.Close()
}

// Channel opens a new channel on the connection (for consuming or declaring).
func (c *Client) Channel() (*amqp.Channel, error) {
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	return ch, nil
}

// DeclareEvents declares the events exchange: topic, durable (wire.md §3).
func (c *Client) DeclareEvents(exchange string) error {
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", exchange, err)
	}
	return nil
}

// DeclareJobQueue declares the job queue exactly as the HyperFlow engine does:
// durable, not exclusive, not auto-delete, with args (nil = none; wire.md §1).
func DeclareJobQueue(ch *amqp.Channel, queue string, args amqp.Table) error {
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", queue, err)
	}
	return nil
}

// ErrBlocked is returned by Publish while the broker blocks publishing.
var ErrBlocked = errors.New("broker is blocking publishers (flow control)")

// Blocked reports whether the broker currently blocks publishing.
func (c *Client) Blocked() bool { return c.blocked.Load() }

// Blockings is how many times the broker blocked this connection's
// publishing (connection.blocked) so far.
func (c *Client) Blockings() int64 { return c.blocks.Load() }

// BlockReport turns a connection's flow-control state into the
// heartbeat's blocked field: true while the broker blocks publishing and
// in the first report after a block ended (the heartbeats built during the
// block are dropped with every other event, so that report is the one a
// monitor gets), false after that, nil when c is nil or never was blocked.
// A new client (after a reconnect) starts its count afresh. It is safe for
// concurrent use.
type BlockReport struct {
	mu     sync.Mutex
	client *Client
	seen   int64 // c.Blockings() at the last report made while not blocked
}

// Since reports the flow-control state of c since the previous report.
func (r *BlockReport) Since(c *Client) *bool {
	if c == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != c {
		r.client, r.seen = c, 0
	}
	if c.Blocked() {
		return Ptr(true)
	}
	n := c.Blockings()
	before := r.seen
	r.seen = n
	switch {
	case n > before:
		return Ptr(true)
	case n > 0:
		return Ptr(false)
	}
	return nil
}

// Publish sends msg on the events channel, unconfirmed (best effort:
// events). Messages published from one goroutine keep their order. While
// the broker blocks publishers it returns ErrBlocked at once instead of
// waiting.
func (c *Client) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	if c.blocked.Load() {
		return ErrBlocked
	}
	if err := c.ev.PublishWithContext(ctx, exchange, key, false, false, msg); err != nil {
		return fmt.Errorf("publish to %q with key %q: %w", exchange, key, err)
	}
	return nil
}

// Outgoing is one message of a batch (PublishBatch, PublishConfirmed).
type Outgoing struct {
	Exchange, Key string
	Msg           amqp.Publishing
}

// PublishBatch sends msgs on the events channel like Publish, in their
// order, in one write to the socket (the client otherwise writes every
// message on its own). It stops at the first failure. The bodies are not
// kept: the caller may reuse them once it returns.
func (c *Client) PublishBatch(ctx context.Context, msgs []Outgoing) error {
	if len(msgs) == 0 {
		return nil
	}
	if c.blocked.Load() {
		return ErrBlocked
	}
	c.corkSock()
	err := c.publishEvents(ctx, msgs)
	if uerr := c.uncorkSock(); err == nil && uerr != nil {
		err = fmt.Errorf("publish: %w", uerr)
	}
	return err
}

func (c *Client) publishEvents(ctx context.Context, msgs []Outgoing) error {
	for i := range msgs {
		m := &msgs[i]
		if err := c.ev.PublishWithContext(ctx, m.Exchange, m.Key, false, false, m.Msg); err != nil {
			return fmt.Errorf("publish to %q with key %q: %w", m.Exchange, m.Key, err)
		}
	}
	return nil
}

func (c *Client) corkSock() {
	if c.sock != nil {
		c.sock.cork()
	}
}

func (c *Client) uncorkSock() error {
	if c.sock != nil {
		return c.sock.uncork()
	}
	return nil
}

// PublishConfirmed sends msg and waits until the broker confirmed it.
// Events given as before are published first (best effort, as Publish:
// their failure, or the broker's flow control, does not stop msg), in the
// same write to the socket as msg.
func (c *Client) PublishConfirmed(ctx context.Context, exchange, key string, msg amqp.Publishing, before ...Outgoing) error {
	c.corkSock()
	if len(before) > 0 && !c.blocked.Load() {
		if err := c.publishEvents(ctx, before); err != nil {
			c.log.Debug("events before a reply not published", "err", err)
		}
	}
	c.mu.Lock()
	dc, err := c.pub.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, msg)
	c.mu.Unlock()
	if uerr := c.uncorkSock(); err == nil && uerr != nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("publish to %q with key %q: %w", exchange, key, err)
	}
	select {
	case <-dc.Done():
		if dc.Acked() {
			return nil
		}
		// The library answers every pending confirmation with a nack when
		// the channel closes: that is a loss, not the broker's refusal.
		if c.pub.IsClosed() || c.conn.IsClosed() {
			return fmt.Errorf("publish to %q with key %q: the connection closed before the broker confirmed", exchange, key)
		}
		return fmt.Errorf("publish to %q with key %q: %w", exchange, key, ErrNacked)
	case <-c.done:
		return fmt.Errorf("publish to %q with key %q: %w", exchange, key, c.Err())
	case <-ctx.Done():
		return fmt.Errorf("publish to %q with key %q: waiting for confirmation: %w", exchange, key, ctx.Err())
	}
}

// DeliveryCount reads the x-delivery-count header that quorum queues set on
// redeliveries (the broker sends it as any integer type).
func DeliveryCount(h amqp.Table) (int64, bool) { return intHeader(h, "x-delivery-count") }

// intHeader reads header key as an int64, whatever integer type the
// broker sent it as.
func intHeader(h amqp.Table, key string) (int64, bool) {
	switch v := h[key].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	}
	return 0, false
}

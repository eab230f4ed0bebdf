package workerpool

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// link holds the current broker connection, replaced after a loss. Run
// sets and drops it; task goroutines publish events through it.
type link struct {
	mu     sync.Mutex
	client *eventbus.Client
}

func (l *link) set(c *eventbus.Client) {
	l.mu.Lock()
	l.client = c
	l.mu.Unlock()
}

func (l *link) drop() {
	l.mu.Lock()
	l.client = nil
	l.mu.Unlock()
}

func (l *link) current() *eventbus.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// broker is the URL of the node connected to, password hidden ("" when
// not connected).
func (l *link) broker() string {
	if c := l.current(); c != nil {
		return c.Broker()
	}
	return ""
}

// emit publishes an event on the events exchange, best effort: a failed
// publish is logged and never fails a task. slot and task are 0 and "" for
// the executor's own events. Events of one task are published from its
// goroutine, so they keep their order.
func (p *Pool) emit(ctx context.Context, slot int, task TaskID, ev *eventbus.Event) {
	ev.Executor = p.id
	ev.Timestamp = eventbus.Timestamp(time.Now())
	if task != "" {
		ev.ID, ev.Job, ev.Thread = string(task), string(task), int64(slot)
	}
	client := p.link.current()
	if client == nil {
		p.log.Debug("event dropped: not connected to the broker", "type", ev.Type)
		return
	}
	body, err := json.Marshal(ev)
	if err != nil {
		p.log.Warn("encode event", "type", ev.Type, "err", err)
		return
	}
	err = client.Publish(ctx, p.cfg.EventsExchange, ev.RoutingKey(), amqp.Publishing{
		ContentType: "application/json",
		Body:        body,
	})
	switch {
	case err == nil:
	case errors.Is(err, eventbus.ErrBlocked), ctx.Err() != nil:
		p.log.Debug("event dropped", "type", ev.Type, "err", err)
	default:
		p.log.Warn("publish event", "type", ev.Type, "err", err)
	}
}

func (p *Pool) setRunning(slot int, rj eventbus.RunningJob) {
	p.mu.Lock()
	p.running[slot] = rj
	p.mu.Unlock()
}

func (p *Pool) clearRunning(slot int) {
	p.mu.Lock()
	delete(p.running, slot)
	p.mu.Unlock()
}

// heartbeat publishes executor.heartbeat every HeartbeatInterval until ctx
// is done (nothing while disconnected).
func (p *Pool) heartbeat(ctx context.Context) {
	t := time.NewTicker(p.cfg.HeartbeatInterval)
	defer t.Stop()
	p.lastTick.Store(time.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.lastTick.Store(now.UnixNano())
			p.emit(ctx, 0, "", p.heartbeatEvent())
		}
	}
}

// storageName is what the pool's events give as storage: tasks share a
// work directory and nothing is staged.
const storageName = "shared"

func (p *Pool) readyEvent() *eventbus.Event {
	return &eventbus.Event{Type: eventbus.TypeExecutorReady, Hostname: p.hostname, Threads: p.cfg.Threads,
		Storage: storageName, Version: p.version, Queue: p.cfg.PoolQueue, Broker: p.link.broker()}
}

func (p *Pool) heartbeatEvent() *eventbus.Event {
	p.mu.Lock()
	running := make([]eventbus.RunningJob, 0, len(p.running))
	for _, rj := range p.running {
		running = append(running, rj)
	}
	p.mu.Unlock()
	sort.Slice(running, func(i, j int) bool { return running[i].Thread < running[j].Thread })
	return &eventbus.Event{
		Type: eventbus.TypeExecutorHeartbeat,
		// What executor.ready said, for monitors started later.
		Hostname: p.hostname, Storage: storageName, Version: p.version, Queue: p.cfg.PoolQueue,
		Broker:        p.link.broker(),
		MaxDeliveries: p.cfg.MaxDeliveries,
		Busy:          eventbus.Ptr(int(p.busy.Load())),
		Threads:       p.cfg.Threads,
		JobsDone:      eventbus.Ptr(p.tasksDone.Load()),
		JobsFailed:    eventbus.Ptr(p.tasksFailed.Load()),
		Running:       &running,
		Interval:      p.cfg.HeartbeatInterval.Seconds(),
		Blocked:       p.blockedSinceLastHeartbeat(),
	}
}

// blockedSinceLastHeartbeat is the heartbeat's blocked (broker flow
// control now or since the last heartbeat; see eventbus.BlockReport).
func (p *Pool) blockedSinceLastHeartbeat() *bool {
	return p.blocks.Since(p.link.current())
}

// lastBytes returns at most n bytes of the end of s, cut at a rune start.
func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s) && i < 4; i++ {
		if s[i]&0xC0 != 0x80 {
			return s[i:]
		}
	}
	return s
}

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// publisher is what the executor needs of eventbus.Client.
type publisher interface {
	Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error
	PublishConfirmed(ctx context.Context, exchange, key string, msg amqp.Publishing) error
}

// Params are the executor's collaborators.
type Params struct {
	Logger   *slog.Logger
	Version  string
	Storages *storage.Registry
	// Ready, when set, is called once the consumer is running.
	Ready func()
}

// Executor takes jobs from the job queue and runs them, up to
// Settings.Threads at a time, each on a numbered worker slot.
//
// Goroutines and what they own: Run owns the AMQP client and the consumer
// channel and hands each delivery to a job goroutine together with a free
// slot; a job goroutine owns its jobRun and acknowledges its own delivery;
// the heartbeat goroutine only reads the shared state below, which is
// guarded by mu or atomic.
type Executor struct {
	cfg      config.Settings
	log      *slog.Logger
	storages *storage.Registry
	version  string
	ready    func()

	id       string
	hostname string
	baseEnv  []string

	pub publisher // set by Run before any job starts

	busy       atomic.Int32
	jobsDone   atomic.Int64
	jobsFailed atomic.Int64

	mu      sync.Mutex
	running map[int]eventbus.RunningJob // by slot
}

// New checks the settings and builds an executor.
func New(cfg config.Settings, p Params) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Storages == nil {
		return nil, errors.New("executor: no storage registry")
	}
	if _, err := p.Storages.Get(cfg.Storage); err != nil {
		return nil, fmt.Errorf("storage setting: %w", err)
	}
	host, _ := os.Hostname()
	e := &Executor{
		cfg:      cfg,
		log:      p.Logger,
		storages: p.Storages,
		version:  p.Version,
		ready:    p.Ready,
		id:       uuid.NewString(),
		hostname: host,
		running:  make(map[int]eventbus.RunningJob),
	}
	for _, kv := range os.Environ() {
		// A job has no business with the broker's credentials.
		if strings.HasPrefix(kv, "AMQP_URL=") {
			continue
		}
		e.baseEnv = append(e.baseEnv, kv)
	}
	return e, nil
}

// ID is the executor's UUID, new at every start.
func (e *Executor) ID() string { return e.id }

// Run connects to the broker, consumes jobs until ctx is done, then stops
// taking jobs, lets the running ones finish, publishes executor.stopped and
// returns nil. It returns an error when the broker cannot be reached or the
// connection is lost.
func (e *Executor) Run(ctx context.Context) error {
	client, err := eventbus.Dial(e.cfg.AMQPURL.Reveal(), e.log)
	if err != nil {
		return err
	}
	defer client.Close()
	e.pub = client
	if err := client.DeclareEvents(e.cfg.EventsExchange); err != nil {
		return err
	}
	ch, err := client.Channel()
	if err != nil {
		return err
	}
	if err := eventbus.DeclareJobQueue(ch, e.cfg.Queue, nil); err != nil {
		return err
	}
	if err := ch.Qos(e.cfg.Threads, 0, false); err != nil {
		return fmt.Errorf("set prefetch %d: %w", e.cfg.Threads, err)
	}
	tag := "hyperflow-executor-" + e.id
	deliveries, err := ch.Consume(e.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume %s: %w", e.cfg.Queue, err)
	}

	e.emit(context.Background(), nil, &eventbus.Event{
		Type: eventbus.TypeExecutorReady, Hostname: e.hostname, Threads: e.cfg.Threads,
		Storage: e.cfg.Storage, Version: e.version, Queue: e.cfg.Queue,
	})
	e.log.Info("executor ready", "executor", e.id, "queue", e.cfg.Queue, "threads", e.cfg.Threads,
		"storage", e.cfg.Storage, "broker", eventbus.RedactURL(e.cfg.AMQPURL.Reveal()))
	if e.ready != nil {
		e.ready()
	}

	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	var hbDone sync.WaitGroup
	hbDone.Go(func() { e.heartbeat(hbCtx) })

	slots := make(chan int, e.cfg.Threads)
	for i := 1; i <= e.cfg.Threads; i++ {
		slots <- i
	}
	var jobs sync.WaitGroup
	// Running jobs are not cancelled by the stop signal: they finish.
	jobCtx := context.WithoutCancel(ctx)

	var runErr error
consume:
	for {
		select {
		case <-ctx.Done():
			break consume
		case <-client.Done():
			runErr = client.Err()
			break consume
		case d, ok := <-deliveries:
			if !ok {
				runErr = fmt.Errorf("consumer on %s stopped: %w", e.cfg.Queue, client.Err())
				break consume
			}
			var slot int
			select {
			case slot = <-slots:
			case <-ctx.Done():
				_ = d.Nack(false, true)
				break consume
			}
			jobs.Go(func() {
				defer func() { slots <- slot }()
				e.handle(jobCtx, d, slot)
			})
		}
	}

	// Stop taking jobs; return what was prefetched but not started.
	if runErr == nil {
		if err := ch.Cancel(tag, false); err != nil {
			e.log.Warn("cancel consumer", "err", err)
		}
		for d := range deliveries {
			_ = d.Nack(false, true)
		}
	}
	if n := e.busy.Load(); n > 0 {
		e.log.Info("stopping: waiting for running jobs", "running", n)
	}
	jobs.Wait()
	stopHeartbeat()
	hbDone.Wait()
	reason := "signal"
	if runErr != nil {
		reason = runErr.Error()
	}
	e.emit(context.Background(), nil, &eventbus.Event{Type: eventbus.TypeExecutorStopped, Reason: reason})
	e.log.Info("executor stopped", "executor", e.id, "reason", reason,
		"jobs_done", e.jobsDone.Load(), "jobs_failed", e.jobsFailed.Load())
	return runErr
}

// handle runs one delivery on a slot and answers it. It never panics.
func (e *Executor) handle(ctx context.Context, d amqp.Delivery, slot int) {
	e.busy.Add(1)
	defer e.busy.Add(-1)
	r := &jobRun{id: d.CorrelationId, slot: slot, redelivered: d.Redelivered}
	if r.id == "" {
		r.id = d.MessageId
	}
	started := time.Now()
	r.metrics = eventbus.Metrics{Executor: e.id, Thread: int64(slot), Hostname: e.hostname}
	r.metrics.Timestamps.JobStarted = eventbus.Timestamp(started)
	r.reply.Exceptions = []string{}

	job, parseErr := ParseJob(d.Body)
	if job != nil {
		r.job = job
	}
	executable := ""
	if job != nil {
		executable = job.Executable
	}
	e.setRunning(r, eventbus.RunningJob{ID: r.id, Thread: int64(slot), Phase: eventbus.PhaseStageIn,
		Since: eventbus.Timestamp(started), Executable: executable})
	defer e.clearRunning(r)
	e.emit(ctx, r, &eventbus.Event{Type: eventbus.TypeJobStarted, Executable: executable,
		Redelivered: eventbus.Ptr(d.Redelivered)})

	if parseErr != nil {
		r.reply.ExitStatus = eventbus.ExitJobError
		r.reply.Exceptions = append(r.reply.Exceptions, parseErr.Error())
	} else {
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.reply.ExitStatus = eventbus.ExitJobError
					r.reply.Exceptions = append(r.reply.Exceptions, fmt.Sprintf("executor error: %v", p))
					e.log.Error("panic while running job", "job", r.id, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			e.runPipeline(ctx, r)
		}()
	}

	finished := time.Now()
	r.metrics.Timestamps.JobFinished = eventbus.Timestamp(finished)
	r.reply.Metrics = &r.metrics
	if r.reply.ExitStatus != 0 && len(r.reply.Exceptions) == 0 {
		r.reply.Exceptions = append(r.reply.Exceptions, fmt.Sprintf("job failed with status %d", r.reply.ExitStatus))
	}
	if r.reply.ExitStatus == 0 {
		e.jobsDone.Add(1)
	} else {
		e.jobsFailed.Add(1)
	}
	fin := &eventbus.Event{Type: eventbus.TypeJobFinished, Executable: executable,
		ExitStatus: eventbus.Ptr(r.reply.ExitStatus), Metrics: &r.metrics, Exceptions: r.reply.Exceptions}
	if r.reply.ExitStatus != 0 {
		fin.StderrTail = lastBytes(r.reply.Stderr, stderrTailSize)
	}
	e.emit(ctx, r, fin)
	e.log.Info("job finished", "job", r.id, "thread", slot, "executable", executable,
		"exit_status", r.reply.ExitStatus, "stage_in", r.metrics.StageIn, "execution", r.metrics.Execution,
		"stage_out", r.metrics.StageOut, "input_size", r.metrics.InputSize, "output_size", r.metrics.OutputSize)

	// Answer, then acknowledge only once the reply is confirmed.
	if err := e.reply(ctx, d, &r.reply); err != nil {
		e.log.Error("reply not sent: the job stays unacknowledged and will be delivered again",
			"job", r.id, "err", err)
		return
	}
	var err error
	if parseErr != nil {
		// Poison: never back into the queue (a dead-letter exchange keeps it).
		err = d.Reject(false)
	} else {
		err = d.Ack(false)
	}
	if err != nil {
		e.log.Error("acknowledge job", "job", r.id, "err", err)
	}
}

// reply publishes the job's reply to its reply_to queue and waits for the
// broker's confirmation.
func (e *Executor) reply(ctx context.Context, d amqp.Delivery, rep *eventbus.Reply) error {
	if d.ReplyTo == "" {
		e.log.Warn("job has no reply_to: the result is only in events", "job", d.CorrelationId)
		return nil
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	return e.pub.PublishConfirmed(ctx, "", d.ReplyTo, amqp.Publishing{
		ContentType:   "application/json",
		CorrelationId: d.CorrelationId,
		DeliveryMode:  amqp.Persistent,
		Timestamp:     time.Now(),
		Body:          body,
	})
}

// emit publishes an event, best effort: a failed publish is logged and never
// fails the job. r is nil for executor events.
func (e *Executor) emit(ctx context.Context, r *jobRun, ev *eventbus.Event) {
	ev.Executor = e.id
	ev.Timestamp = eventbus.Timestamp(time.Now())
	if r != nil {
		ev.ID, ev.Job, ev.Thread = r.id, r.id, int64(r.slot)
	}
	body, err := json.Marshal(ev)
	if err != nil {
		e.log.Warn("encode event", "type", ev.Type, "err", err)
		return
	}
	if err := e.pub.Publish(ctx, e.cfg.EventsExchange, ev.RoutingKey(), amqp.Publishing{
		ContentType: "application/json",
		Body:        body,
	}); err != nil {
		e.log.Warn("publish event", "type", ev.Type, "err", err)
	}
}

func (e *Executor) setRunning(r *jobRun, rj eventbus.RunningJob) {
	e.mu.Lock()
	e.running[r.slot] = rj
	e.mu.Unlock()
}

func (e *Executor) clearRunning(r *jobRun) {
	e.mu.Lock()
	delete(e.running, r.slot)
	e.mu.Unlock()
}

func (e *Executor) setPhase(r *jobRun, phase string) {
	e.mu.Lock()
	rj := e.running[r.slot]
	rj.Phase = phase
	rj.Since = eventbus.Timestamp(time.Now())
	e.running[r.slot] = rj
	e.mu.Unlock()
}

// heartbeat publishes executor.heartbeat every HeartbeatInterval until ctx
// is done.
func (e *Executor) heartbeat(ctx context.Context) {
	t := time.NewTicker(e.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.emit(ctx, nil, e.heartbeatEvent())
		}
	}
}

func (e *Executor) heartbeatEvent() *eventbus.Event {
	e.mu.Lock()
	running := make([]eventbus.RunningJob, 0, len(e.running))
	for _, rj := range e.running {
		running = append(running, rj)
	}
	e.mu.Unlock()
	sort.Slice(running, func(i, j int) bool { return running[i].Thread < running[j].Thread })
	return &eventbus.Event{
		Type:       eventbus.TypeExecutorHeartbeat,
		Busy:       eventbus.Ptr(int(e.busy.Load())),
		Threads:    e.cfg.Threads,
		JobsDone:   eventbus.Ptr(e.jobsDone.Load()),
		JobsFailed: eventbus.Ptr(e.jobsFailed.Load()),
		Running:    &running,
		Interval:   e.cfg.HeartbeatInterval.Seconds(),
	}
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

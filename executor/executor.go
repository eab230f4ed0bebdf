package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// publisher is what the executor needs of the broker connection. None of
// its methods keeps a message's body after it returns: the executor reuses
// the buffers.
type publisher interface {
	Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error
	PublishBatch(ctx context.Context, msgs []eventbus.Outgoing) error
	PublishConfirmed(ctx context.Context, exchange, key string, msg amqp.Publishing, before ...eventbus.Outgoing) error
}

// Params are the executor's collaborators.
type Params struct {
	Logger   *slog.Logger
	Version  string
	Storages *storage.Registry
	// Ready, when set, is called once, when the consumer first runs.
	Ready func()
	// Stopping, when set, is called once when the executor stops taking jobs.
	Stopping func()
	// JobFinished, when set, is called after each answered job with its
	// storage, exit status and metrics (for the Prometheus endpoint).
	JobFinished func(storage string, exitStatus int, m eventbus.Metrics)
	// Reaper, when set, is the process's orphan reaper: job commands are
	// registered with it (see package reaper).
	Reaper *reaper.Reaper
}

// Stats is a snapshot of the executor's counters.
type Stats struct {
	Threads, Busy        int
	JobsDone, JobsFailed int64
	Duplicates           int64 // redeliveries answered without running again
	Reconnects           int64 // connections opened again after a loss
	ConsumerRestarts     int64 // consumer channels opened again on a live connection (consumer timeout, cancel)
	Connected            bool
	Broker               string    // the URL of the broker node in use, password hidden ("" when not connected)
	LastHeartbeat        time.Time // last tick of the heartbeat loop (liveness)
}

// Stats returns the current counters. Safe for concurrent use.
func (e *Executor) Stats() Stats {
	return Stats{
		Threads:          e.cfg.Threads,
		Busy:             int(e.busy.Load()),
		JobsDone:         e.jobsDone.Load(),
		JobsFailed:       e.jobsFailed.Load(),
		Duplicates:       e.duplicates.Load(),
		Reconnects:       e.reconnects.Load(),
		ConsumerRestarts: e.consumerRestarts.Load(),
		Connected:        e.link.current() != nil,
		Broker:           e.broker(),
		LastHeartbeat:    time.Unix(0, e.lastTick.Load()),
	}
}

// broker is the URL of the node connected to, password hidden, or "".
func (e *Executor) broker() string {
	if c := e.link.current(); c != nil {
		return c.Broker()
	}
	return ""
}

// TLSFiles are the TLS settings of the broker connection.
func TLSFiles(s config.Settings) eventbus.TLSFiles {
	return eventbus.TLSFiles{CAFile: s.AMQPTLSCAFile, CertFile: s.AMQPTLSCertFile,
		KeyFile: s.AMQPTLSKeyFile, ServerName: s.AMQPTLSServerName}
}

// finishedMemory is how many finished job ids are remembered to answer
// redeliveries.
const finishedMemory = 10000

// Executor takes jobs from the job queue and runs them, up to
// Settings.Threads at a time, each on a numbered worker slot.
//
// See the package documentation for the goroutines, what each owns, and the
// shutdown order.
type Executor struct {
	cfg      config.Settings
	log      *slog.Logger
	storages *storage.Registry
	version  string
	ready    func()
	stopping func()
	finished func(storage string, exitStatus int, m eventbus.Metrics)
	reaper   *reaper.Reaper

	id       string
	hostname string
	baseEnv  []string

	backoff eventbus.Backoff  // reconnection delays; used by Run's goroutine only
	brokers *eventbus.Brokers // the nodes of amqp_url, in amqp_url_order; connect moves on to the next after a loss

	pub   publisher // the link in production, a recorder in unit tests
	link  *link
	track *tracker

	jobCtx context.Context // running jobs; cancelled by Kill
	kill   context.CancelFunc
	slots  chan int             // free slots
	work   []chan amqp.Delivery // by slot-1: the slot's worker takes its job there (consumer.go)
	jobs   sync.WaitGroup       // running jobs

	busy             atomic.Int32
	jobsDone         atomic.Int64
	jobsFailed       atomic.Int64
	duplicates       atomic.Int64 // redeliveries answered without running again
	reconnects       atomic.Int64
	consumerRestarts atomic.Int64
	readyCalled      atomic.Bool
	draining         atomic.Bool  // the shutdown began: no new job is taken
	timeoutNoted     atomic.Bool  // the broker's consumer timeout was explained once
	lastTick         atomic.Int64 // unix nanoseconds
	// blocks: flow control since the last heartbeat (a block since then is
	// reported in the next one).
	blocks eventbus.BlockReport

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
		stopping: p.Stopping,
		finished: p.JobFinished,
		reaper:   p.Reaper,
		id:       uuid.NewString(),
		hostname: host,
		link:     newLink(),
		track:    newTracker(finishedMemory),
		slots:    make(chan int, cfg.Threads),
		running:  make(map[int]eventbus.RunningJob),
	}
	e.pub = e.link
	brokers, err := eventbus.NewBrokers(cfg.AMQPURL.Reveal(), cfg.AMQPURLOrder)
	if err != nil {
		return nil, fmt.Errorf("amqp_url: %w", err)
	}
	e.brokers = brokers
	e.jobCtx, e.kill = context.WithCancel(context.Background())
	for i := 1; i <= cfg.Threads; i++ {
		e.slots <- i
	}
	e.baseEnv = append(jobBaseEnv(os.Environ()), jobMarker+"="+e.id)
	return e, nil
}

// hiddenFromJobs are the executor's environment variables a job does not
// inherit: the broker's credentials and the storage secrets, and a marker
// inherited from another executor (the job gets this executor's own).
var hiddenFromJobs = []string{"AMQP_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", jobMarker}

func jobBaseEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
next:
	for _, kv := range environ {
		for _, h := range hiddenFromJobs {
			if strings.HasPrefix(kv, h+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// ID is the executor's UUID, new at every start.
func (e *Executor) ID() string { return e.id }

// Kill stops running jobs at once (the second signal): their process groups
// are killed and their deliveries go back to the queue. Safe to call any
// time, more than once.
func (e *Executor) Kill() { e.kill() }

// Run consumes jobs until ctx is done, reconnecting whenever the connection
// is lost, then shuts down as described on Executor and returns nil. It
// returns an error when the broker stays unreachable for ConnectAttempts.
func (e *Executor) Run(ctx context.Context) error {
	release := e.claimTmpDir()
	defer release()

	stopWorkers := e.startWorkers()

	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	var hb sync.WaitGroup
	hb.Go(func() { e.heartbeat(hbCtx) })
	hb.Go(func() { e.sweepLoop(hbCtx) })

	var runErr error
	for {
		client, err := e.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
		e.link.set(client)
		err = e.consume(ctx, client)
		if err == nil {
			break
		}
		e.link.drop()
		client.Close()
		e.reconnects.Add(1)
		e.log.Warn("lost the broker; reconnecting (running jobs go on)", "broker", client.Broker(), "err", err)
	}

	if e.stopping != nil {
		e.stopping()
	}
	reason := "signal"
	if runErr != nil {
		// Without a broker no job can be answered: stop them now, their
		// deliveries are back in the queue already.
		reason = runErr.Error()
		e.kill()
	}
	e.draining.Store(true)
	if e.link.current() != nil {
		e.emitExecutor(context.Background(), e.drainingEvent(reason))
	}
	if e.waitJobs() {
		reason += "; running jobs killed after the shutdown grace period and requeued"
	}
	stopWorkers()
	stopHeartbeat()
	hb.Wait()
	if client := e.link.current(); client != nil {
		e.emitExecutor(context.Background(), &eventbus.Event{Type: eventbus.TypeExecutorStopped, Reason: reason})
		client.Close()
	}
	e.log.Info("executor stopped", "executor", e.id, "reason", reason,
		"jobs_done", e.jobsDone.Load(), "jobs_failed", e.jobsFailed.Load(),
		"duplicates", e.duplicates.Load(), "reconnects", e.reconnects.Load())
	return runErr
}

// waitJobs waits for the running jobs, killing them when the grace period
// ends or Kill is called. It reports whether jobs had to be killed.
func (e *Executor) waitJobs() bool {
	done := make(chan struct{})
	go func() { e.jobs.Wait(); close(done) }()
	if n := e.busy.Load(); n > 0 {
		e.log.Info("stopping: waiting for running jobs", "running", n, "grace", e.cfg.ShutdownGrace)
	}
	grace := time.NewTimer(e.cfg.ShutdownGrace)
	defer grace.Stop()
	killed := false
	select {
	case <-done:
		return false
	case <-grace.C:
		e.log.Warn("shutdown grace period over: killing running jobs, their deliveries go back to the queue")
		killed = true
		e.kill()
	case <-e.jobCtx.Done():
		killed = e.busy.Load() > 0
	}
	<-done
	return killed
}

// connect dials the broker's nodes, retrying with the reconnection policy
// (eventbus.Backoff) until ctx is done or ConnectAttempts attempts failed.
func (e *Executor) connect(ctx context.Context) (*eventbus.Client, error) {
	return e.brokers.Connect(ctx, eventbus.DialOptions{Name: "hyperflow-executor " + e.id, TLS: TLSFiles(e.cfg), Log: e.log},
		e.cfg.ConnectAttempts, &e.backoff)
}

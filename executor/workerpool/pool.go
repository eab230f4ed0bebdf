package workerpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/reaper"
)

// Params are the pool's collaborators.
type Params struct {
	Logger  *slog.Logger
	Version string
	// Ready, when set, is called once, when the consumer first runs.
	Ready func()
	// Stopping, when set, is called once when the pool stops taking tasks.
	Stopping func()
	// TaskFinished, when set, is called after each completed task with
	// its exit code and metrics (for the Prometheus endpoint).
	TaskFinished func(storage string, exitStatus int, m eventbus.Metrics)
	// Reaper, when set, is the process's orphan reaper: task commands
	// are registered with it (see package reaper).
	Reaper *reaper.Reaper
}

// Stats is a snapshot of the pool's counters.
type Stats struct {
	Threads, Busy          int
	TasksDone, TasksFailed int64
	Dropped                int64 // messages rejected as unusable or delivered too often
	Reconnects             int64
	Connected              bool
	LastHeartbeat          time.Time // last tick of the heartbeat loop (liveness)
}

// Pool consumes a worker-pool queue: see the package documentation.
type Pool struct {
	cfg      config.Settings
	log      *slog.Logger
	version  string
	ready    func()
	stopping func()
	finished func(storage string, exitStatus int, m eventbus.Metrics)
	reaper   *reaper.Reaper

	id       string // executor id in events, new at every start
	hostname string // HF_LOG_NODE_NAME, else the host's name
	handler  string // the listener's handler id, in log file names
	workDir  string
	logDir   string
	baseEnv  []string
	prefetch int

	store *store
	link  link
	// blocks: broker flow control since the last heartbeat.
	blocks eventbus.BlockReport
	// brokers are the nodes of the broker URL, in amqp_url_order; connect
	// moves on to the next after a loss; redial: the delays between
	// connection attempts, used by Run's goroutine only.
	brokers *eventbus.Brokers
	redial  eventbus.Backoff

	track *tracker
	// waitDelay is the pause between checks of the input files.
	waitDelay func(int) time.Duration

	jobCtx context.Context // running tasks; cancelled by Kill
	kill   context.CancelFunc
	slots  chan int
	jobs   sync.WaitGroup

	busy        atomic.Int32
	tasksDone   atomic.Int64
	tasksFailed atomic.Int64
	dropped     atomic.Int64
	reconnects  atomic.Int64
	readyCalled atomic.Bool
	lastTick    atomic.Int64 // unix nanoseconds

	mu      sync.Mutex
	running map[int]eventbus.RunningJob // by slot
}

// New checks the settings, resolves the work and log directories and
// builds a pool; it connects to nothing yet.
func New(cfg config.Settings, p Params) (*Pool, error) {
	if !cfg.WorkerPool {
		return nil, errors.New("worker_pool: the settings are not those of the worker-pool mode")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	workDir, err := resolveWorkDir(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	logDir := cfg.LogDir
	if logDir == "" {
		logDir = filepath.Join(workDir, "logs-hf")
	}
	logDir = absIn(workDir, logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("log_dir: %w", err)
	}
	st, err := newStore(cfg.RedisURL.Reveal(), p.Logger)
	if err != nil {
		return nil, err
	}
	host := cfg.NodeName
	if host == "" {
		host, _ = os.Hostname()
	}
	pool := &Pool{
		cfg: cfg, log: p.Logger, version: p.Version, ready: p.Ready, stopping: p.Stopping, finished: p.TaskFinished, reaper: p.Reaper,
		id: uuid.NewString(), hostname: host, handler: newHandlerID(),
		workDir: workDir, logDir: logDir, baseEnv: taskEnv(os.Environ()),
		prefetch:  cfg.Prefetch,
		store:     st,
		track:     newTracker(finishedMemory),
		waitDelay: waitDelay,
		slots:     make(chan int, cfg.Threads),
		running:   map[int]eventbus.RunningJob{},
	}
	if pool.brokers, err = eventbus.NewBrokers(cfg.PoolBrokerURL().Reveal(), cfg.AMQPURLOrder); err != nil {
		st.Close()
		return nil, fmt.Errorf("amqp_url: %w", err)
	}
	if pool.prefetch == 0 {
		pool.prefetch = cfg.Threads
	}
	pool.jobCtx, pool.kill = context.WithCancel(context.Background())
	for i := 1; i <= cfg.Threads; i++ {
		pool.slots <- i
	}
	return pool, nil
}

// stableSession is how long a consuming broker session must last for the
// next one to start at once after it ends.
const stableSession = time.Second

// finishedMemory is how many completed tasks the pool remembers, to
// recognise the redelivery of a message it has answered (see tracker).
const finishedMemory = 10000

// resolveWorkDir is the listener's choice: HF_VAR_WORK_DIR, else /work_dir
// if it exists, else the current directory. The result is absolute and
// must be a directory.
func resolveWorkDir(dir string) (string, error) {
	if dir == "" {
		if fi, err := os.Stat("/work_dir"); err == nil && fi.IsDir() {
			dir = "/work_dir"
		} else if dir, err = os.Getwd(); err != nil {
			return "", fmt.Errorf("work_dir: current directory: %w", err)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("work_dir %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("work_dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("work_dir %s: not a directory", abs)
	}
	return abs, nil
}

// hiddenFromTasks are the environment variables a task does not inherit:
// the broker's and Redis's credentials and the storage secrets.
var hiddenFromTasks = []string{"AMQP_URL", "RABBIT_HOSTNAME", "REDIS_URL",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

func taskEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
next:
	for _, kv := range environ {
		for _, h := range hiddenFromTasks {
			if strings.HasPrefix(kv, h+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// ID is the pool's executor id in events, new at every start.
func (p *Pool) ID() string { return p.id }

// Stats returns the current counters. Safe for concurrent use.
func (p *Pool) Stats() Stats {
	return Stats{
		Threads: p.cfg.Threads, Busy: int(p.busy.Load()),
		TasksDone: p.tasksDone.Load(), TasksFailed: p.tasksFailed.Load(),
		Dropped: p.dropped.Load(), Reconnects: p.reconnects.Load(),
		Connected: p.link.current() != nil, LastHeartbeat: time.Unix(0, p.lastTick.Load()),
	}
}

// Kill stops running tasks at once (the second signal): their process
// groups are killed and their messages go back to the queue. Safe to call
// any time, more than once.
func (p *Pool) Kill() { p.kill() }

// Run consumes tasks until ctx is done, reconnecting to the broker
// whenever the connection is lost, then shuts down as the package
// documentation describes and returns nil. It returns an error when the
// broker stays unreachable for ConnectAttempts.
func (p *Pool) Run(ctx context.Context) error {
	defer p.store.Close()
	if err := p.store.Ping(ctx); err != nil {
		// Not fatal: completions wait for Redis, as at any later outage.
		p.log.Warn("redis does not answer yet; completions will wait for it", "err", err)
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	var hb sync.WaitGroup
	hb.Go(func() { p.heartbeat(hbCtx) })

	var runErr error
	var again eventbus.Backoff // between sessions that end soon after they began
	for {
		client, err := p.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
		p.link.set(client)
		began, consuming := time.Now(), false
		err = p.serve(ctx, client, &consuming)
		if err == nil {
			break
		}
		p.link.drop()
		client.Close()
		p.reconnects.Add(1)
		if consuming && time.Since(began) > stableSession {
			again.Reset()
			p.log.Warn("lost the broker; reconnecting (running tasks go on)", "err", err)
			continue
		}
		// The broker accepts the connection but refuses what follows (a
		// declaration), or ends each session at once: try again, slower
		// each time.
		wait := again.Next()
		p.log.Error("broker session failed; retrying", "retry_in", wait.Round(time.Millisecond), "err", err)
		if !eventbus.Sleep(ctx, wait) {
			break
		}
	}

	if p.stopping != nil {
		p.stopping()
	}
	reason := "signal"
	if runErr != nil {
		reason = runErr.Error()
		p.kill()
	}
	if p.waitJobs() {
		reason += "; running tasks killed after the shutdown grace period and requeued"
	}
	stopHeartbeat()
	hb.Wait()
	if client := p.link.current(); client != nil {
		p.emit(context.Background(), 0, "", &eventbus.Event{Type: eventbus.TypeExecutorStopped, Reason: reason})
		client.Close()
	}
	p.log.Info("worker pool stopped", "executor", p.id, "reason", reason,
		"tasks_done", p.tasksDone.Load(), "tasks_failed", p.tasksFailed.Load(),
		"dropped", p.dropped.Load(), "reconnects", p.reconnects.Load())
	return runErr
}

// waitJobs waits for the running messages, killing their tasks when the
// grace period ends or Kill is called. It reports whether tasks had to be
// killed.
func (p *Pool) waitJobs() bool {
	done := make(chan struct{})
	go func() { p.jobs.Wait(); close(done) }()
	if n := p.busy.Load(); n > 0 {
		p.log.Info("stopping: waiting for running tasks", "running", n, "grace", p.cfg.ShutdownGrace)
	}
	grace := time.NewTimer(p.cfg.ShutdownGrace)
	defer grace.Stop()
	killed := false
	select {
	case <-done:
		return false
	case <-grace.C:
		p.log.Warn("shutdown grace period over: killing running tasks, their messages go back to the queue")
		killed = true
		p.kill()
	case <-p.jobCtx.Done():
		killed = p.busy.Load() > 0
	}
	<-done
	return killed
}

// connect dials the broker's nodes with eventbus's reconnection policy
// until ctx is done or ConnectAttempts attempts failed. Used by Run's
// goroutine only.
func (p *Pool) connect(ctx context.Context) (*eventbus.Client, error) {
	return p.brokers.Connect(ctx, eventbus.DialOptions{Name: "hyperflow-worker-pool " + p.id, TLS: executor.TLSFiles(p.cfg), Log: p.log},
		p.cfg.ConnectAttempts, &p.redial)
}

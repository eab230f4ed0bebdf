package workerpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
)

// store is the pool's Redis side: whether a task was completed already and
// the completions. Every call retries across Redis outages with capped
// exponential backoff and jitter until it succeeds or ctx is done, so a
// task's result is kept until Redis takes it (at least once).
type store struct {
	rdb *redis.Client
	log *slog.Logger
	// backoff bounds the retry delays (eventbus's policy, shorter).
	backoff eventbus.Backoff
}

// permanentAttempts is how often an error that is no outage (a refusal by
// the server: WRONGTYPE, NOAUTH, ...) is tried before the call gives up.
const permanentAttempts = 3

// newStore parses a Redis URL (redis://[user:password@]host:port[/db],
// rediss:// for TLS) and creates the client; it does not connect yet.
func newStore(rawURL string, log *slog.Logger) (*store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	opts.ClientName = "hyperflow-worker-pool"
	// Our own retry loop handles outages; the client's retries only cover
	// a single dropped connection.
	opts.MaxRetries = 1
	opts.DialTimeout = 5 * time.Second
	opts.ReadTimeout = 10 * time.Second
	opts.WriteTimeout = 10 * time.Second
	return &store{rdb: redis.NewClient(opts), log: log,
		backoff: eventbus.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}}, nil
}

// Close closes the client's connections.
func (s *store) Close() error { return s.rdb.Close() }

// Ping checks that Redis answers (one attempt).
func (s *store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s: %w", s.addr(), err)
	}
	return nil
}

func (s *store) addr() string { return s.rdb.Options().Addr }

// Completed reports whether the engine has already processed the task as
// successful (SISMEMBER wf:<wfId>:completedTasks <taskId>).
func (s *store) Completed(ctx context.Context, id TaskID) (bool, error) {
	var done bool
	err := s.retry(ctx, "check completedTasks of "+string(id), func(ctx context.Context) error {
		var err error
		done, err = s.rdb.SIsMember(ctx, CompletedKey(id), string(id)).Result()
		return err
	})
	return done, err
}

// Complete writes the completion in one transaction, retrying until Redis
// has taken it or ctx is done.
func (s *store) Complete(ctx context.Context, c Completion) error {
	cmds := c.Commands()
	return s.retry(ctx, fmt.Sprintf("write completion of %s (%s)", c.Task, c.Transport), func(ctx context.Context) error {
		_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, args := range cmds {
				p.Do(ctx, args...)
			}
			return nil
		})
		return err
	})
}

// retry runs op until it succeeds, ctx is done, or Redis refused it
// permanentAttempts times (a server error that waiting does not cure);
// outages are logged once per attempt with the next delay.
func (s *store) retry(ctx context.Context, what string, op func(context.Context) error) error {
	b := s.backoff
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if attempt > 1 {
				s.log.Info("redis answered again", "op", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s on redis %s: %w", what, s.addr(), errors.Join(err, ctx.Err()))
		}
		if refused(err) && attempt >= permanentAttempts {
			return fmt.Errorf("%s on redis %s: refused %d times: %w", what, s.addr(), attempt, err)
		}
		wait := b.Next()
		s.log.Warn("redis unavailable, retrying", "op", what, "redis", s.addr(), "attempt", attempt,
			"retry_in", wait.Round(time.Millisecond), "err", err)
		if !eventbus.Sleep(ctx, wait) {
			return fmt.Errorf("%s on redis %s: %w", what, s.addr(), errors.Join(err, ctx.Err()))
		}
	}
}

// refused reports whether err is the server's refusal of the command, not
// an outage: an error reply other than those of a server that is starting,
// busy or failing over.
func refused(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return false
	}
	msg := reply.Error()
	for _, transient := range []string{"LOADING", "BUSY", "TRYAGAIN", "READONLY", "MASTERDOWN", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, transient) {
			return false
		}
	}
	return true
}

// RedisLibraryLogger routes the Redis client library's own messages
// (dial failures in its connection pool) into log at debug level: the
// pool's retries already report outages. Give it to redis.SetLogger once,
// in main: the library has one logger per process.
func RedisLibraryLogger(log *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return libraryLogger{log}
}

type libraryLogger struct{ log *slog.Logger }

func (l libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

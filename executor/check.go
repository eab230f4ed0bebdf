package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
	amqp "github.com/rabbitmq/amqp091-go"
)

// CheckResult is one line of the --check report.
type CheckResult struct {
	Name string
	Err  error
	// Warn: Err is a warning, which does not fail the check.
	Warn bool
}

// Check verifies what the executor needs before it takes jobs: the broker is
// reachable, the job queue exists with the declaration the engine uses (or
// can be declared), the events exchange can be declared, the default storage
// is known and the temporary directory is writable.
func Check(ctx context.Context, cfg config.Settings, reg *storage.Registry) []CheckResult {
	var out []CheckResult
	add := func(name string, err error) { out = append(out, CheckResult{Name: name, Err: err}) }

	add("settings", cfg.Validate())
	b, err := reg.Get(cfg.Storage)
	add(fmt.Sprintf("storage %q available", cfg.Storage), err)
	if c, ok := b.(storage.Checker); ok && err == nil {
		add(fmt.Sprintf("storage %q settings work", cfg.Storage), c.Check(ctx))
	}
	add(fmt.Sprintf("temporary directory %s writable", cfg.TmpDir), checkWritable(cfg.TmpDir))

	// Every node of a cluster (amqp_url with several URLs) is checked; the
	// queue and the exchange through the first that answers.
	var client *eventbus.Client
	for _, url := range eventbus.SplitURLs(cfg.AMQPURL.Reveal()) {
		c, err := eventbus.DialWith(url, eventbus.DialOptions{Name: "hyperflow-executor --check", TLS: TLSFiles(cfg)})
		add("broker "+redact.URL(url)+" reachable", err)
		switch {
		case err != nil:
		case client == nil:
			client = c
		default:
			c.Close()
		}
	}
	if client == nil {
		return out
	}
	defer client.Close()
	server := client.Server()
	add(fmt.Sprintf("broker %s is %s %s", client.Broker(), server.Product, server.Version), nil)
	for _, w := range brokerWarnings(server) {
		out = append(out, CheckResult{Name: "broker", Err: w, Warn: true})
	}
	add("events exchange "+cfg.EventsExchange+" (topic, durable)", client.DeclareEvents(cfg.EventsExchange))
	if st := cfg.EventsStream; st != "" {
		add(fmt.Sprintf("events stream %s (max age %s, max %d bytes)", st, eventbus.MaxAge(cfg.EventsStreamMaxAge), cfg.EventsStreamMaxBytes),
			client.DeclareStream(cfg.EventsExchange, st, cfg.EventsStreamMaxAge, int64(cfg.EventsStreamMaxBytes)))
	}
	ch, err := client.Channel()
	if err == nil {
		// Declaring with the engine's arguments fails with
		// PRECONDITION_FAILED when the queue exists with others.
		err = eventbus.DeclareJobQueue(ch, cfg.Queue, nil)
		ch.Close()
	}
	add("job queue "+cfg.Queue+" (durable, no arguments)", err)
	if quorum := isQuorum(client, cfg.Queue); quorum && cfg.DeadLetterExchange == "" {
		out = append(out, CheckResult{Name: "job queue " + cfg.Queue + " is a quorum queue", Warn: true,
			Err: errors.New("without a dead-letter exchange a message redelivered more than the delivery limit (20 by default on RabbitMQ 4.x; requeues on shutdown count) is dropped: set dead_letter_exchange, or a dead-letter-exchange policy")})
	} else if quorum {
		add("job queue "+cfg.Queue+" is a quorum queue with dead-letter exchange "+cfg.DeadLetterExchange, nil)
	}
	return out
}

// brokerWarnings are what an operator should know of this broker.
func brokerWarnings(s eventbus.ServerInfo) []error {
	var out []error
	if s.Product == "RabbitMQ" && !s.AtLeast(3, 13) {
		out = append(out, fmt.Errorf("RabbitMQ %s is out of support; RabbitMQ 4.x is tested too (see the README's Brokers section)", s.Version))
	}
	if s.AtLeast(4, 0) {
		out = append(out, errors.New("RabbitMQ 4.x ignores per-consumer timeouts: long jobs need a consumer-timeout policy on the job queue (README: Long jobs)"))
	}
	return out
}

// isQuorum tells whether queue is a quorum queue: declaring it again with
// x-queue-type quorum succeeds only then (on a channel of its own, which a
// refusal closes).
func isQuorum(client *eventbus.Client, queue string) bool {
	ch, err := client.Channel()
	if err != nil {
		return false
	}
	defer ch.Close()
	return eventbus.DeclareJobQueue(ch, queue, amqp.Table{"x-queue-type": "quorum"}) == nil
}

// PrintCheck writes the report and says whether every check passed.
func PrintCheck(w io.Writer, results []CheckResult) bool {
	ok := true
	for _, r := range results {
		if r.Warn {
			fmt.Fprintf(w, "WARN  %s: %v\n", r.Name, r.Err)
			continue
		}
		if r.Err != nil {
			ok = false
			fmt.Fprintf(w, "FAIL  %s: %v\n", r.Name, r.Err)
		} else {
			fmt.Fprintf(w, "ok    %s\n", r.Name)
		}
	}
	return ok
}

func checkWritable(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".hyperflow-check-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

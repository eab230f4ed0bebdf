package executor

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/redact"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/storage"
)

// CheckResult is one line of the --check report.
type CheckResult struct {
	Name string
	Err  error
}

// Check verifies what the executor needs before it takes jobs: the broker is
// reachable, the job queue exists with the declaration the engine uses (or
// can be declared), the events exchange can be declared, the default storage
// is known and the temporary directory is writable.
func Check(ctx context.Context, cfg config.Settings, reg *storage.Registry) []CheckResult {
	var out []CheckResult
	add := func(name string, err error) { out = append(out, CheckResult{name, err}) }

	add("settings", cfg.Validate())
	b, err := reg.Get(cfg.Storage)
	add(fmt.Sprintf("storage %q available", cfg.Storage), err)
	if c, ok := b.(storage.Checker); ok && err == nil {
		add(fmt.Sprintf("storage %q settings work", cfg.Storage), c.Check(ctx))
	}
	add(fmt.Sprintf("temporary directory %s writable", cfg.TmpDir), checkWritable(cfg.TmpDir))

	client, err := eventbus.DialWith(cfg.AMQPURL.Reveal(), eventbus.DialOptions{Name: "hyperflow-executor --check", TLS: TLSFiles(cfg)})
	add("broker "+redact.URL(cfg.AMQPURL.Reveal())+" reachable", err)
	if err != nil {
		return out
	}
	defer client.Close()
	add("events exchange "+cfg.EventsExchange+" (topic, durable)", client.DeclareEvents(cfg.EventsExchange))
	ch, err := client.Channel()
	if err == nil {
		// Declaring with the engine's arguments fails with
		// PRECONDITION_FAILED when the queue exists with others.
		err = eventbus.DeclareJobQueue(ch, cfg.Queue, nil)
		ch.Close()
	}
	add("job queue "+cfg.Queue+" (durable, no arguments)", err)
	return out
}

// PrintCheck writes the report and says whether every check passed.
func PrintCheck(w io.Writer, results []CheckResult) bool {
	ok := true
	for _, r := range results {
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

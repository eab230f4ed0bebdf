package workerpool

import (
	"context"
	"os"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
)

// Check verifies what the pool needs before it takes tasks, for --check:
// the settings, the work and log directories, Redis answers, the broker is
// reachable, the events exchange and the queue (with the engine's
// declaration) can be declared.
func Check(ctx context.Context, cfg config.Settings) []executor.CheckResult {
	var out []executor.CheckResult
	add := func(name string, err error) { out = append(out, executor.CheckResult{Name: name, Err: err}) }
	add("settings", cfg.Validate())
	workDir, err := resolveWorkDir(cfg.WorkDir)
	add("work directory "+workDir+" writable", firstErr(err, func() error { return checkWritable(workDir) }))
	if err == nil {
		logDir := cfg.LogDir
		if logDir == "" {
			logDir = workDir + "/logs-hf"
		}
		add("log directory "+absIn(workDir, logDir)+" writable", firstErr(os.MkdirAll(absIn(workDir, logDir), 0o755),
			func() error { return checkWritable(absIn(workDir, logDir)) }))
	}
	st, err := newStore(cfg.RedisURL.Reveal(), nil)
	if err == nil {
		err = st.Ping(ctx)
		st.Close()
	}
	add("redis "+cfg.RedisURL.String()+" answers", err)

	url := cfg.PoolBrokerURL()
	client, err := eventbus.DialWith(url.Reveal(), eventbus.DialOptions{Name: "hyperflow-worker-pool --check",
		TLS: executor.TLSFiles(cfg), Order: cfg.AMQPURLOrder})
	add("broker "+url.String()+" reachable", err)
	if err != nil {
		return out
	}
	defer client.Close()
	add("events exchange "+cfg.EventsExchange+" (topic, durable)", client.DeclareEvents(cfg.EventsExchange))
	ch, err := client.Channel()
	if err == nil {
		err = DeclareQueue(ch, cfg.PoolQueue)
		ch.Close()
	}
	add("queue "+cfg.PoolQueue+" (not durable, x-expires 6000000, as the engine declares it)", err)
	return out
}

func firstErr(err error, next func() error) error {
	if err != nil {
		return err
	}
	return next()
}

func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".hyperflow-check-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

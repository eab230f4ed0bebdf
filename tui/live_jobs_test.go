package tui

// The monitor's model fed from the real exchange while the real executor
// (in-process) runs jobs from the real broker: every job appears and
// finishes with the exit status and byte counts the executor reported.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

func TestModelFollowsLiveExecutor(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.model-" + uuid.NewString()[:8]
	exchange := queue + ".events"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := StartAMQP(ctx, AMQPSource{URL: url, Exchange: exchange, Bindings: []string{"#"}}, nil, nil)
	waitUp(t, src)
	st := state.New(state.Options{})

	cfg := config.Default()
	cfg.AMQPURL = config.Secret(url)
	cfg.Queue, cfg.EventsExchange = queue, exchange
	cfg.Threads = 3
	cfg.Storage = "nfs"
	cfg.TmpDir = t.TempDir()
	cfg.HeartbeatInterval = time.Second
	ex := runExecutor(t, cfg)
	t.Cleanup(func() { deleteQueue(t, url, queue) })

	// The jobs: staged ones that succeed, commands that fail, commands
	// that cannot start.
	shared := t.TempDir()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	type want struct {
		status        int
		in, out       int64
		state         state.JobState
		staged, reply bool
	}
	jobs := map[string]want{}
	for i := range 45 {
		id := fmt.Sprintf("model-%02d-%s", i, uuid.NewString()[:6])
		var job map[string]any
		var w want
		switch i % 3 {
		case 0:
			in := fmt.Sprintf("in-%d.dat", i)
			size := 1000 + i*37
			os.WriteFile(filepath.Join(shared, in), make([]byte, size), 0o644)
			job = map[string]any{"executable": "/bin/sh", "args": []any{"-c", fmt.Sprintf("head -c %d /dev/zero > out-%d.dat", 2*size, i)},
				"inputs": []any{map[string]any{"name": in}}, "outputs": []any{map[string]any{"name": fmt.Sprintf("out-%d.dat", i)}},
				"options": map[string]any{"storage": "nfs", "workdir": shared}}
			w = want{status: 0, in: int64(size), out: int64(2 * size), state: state.StateDone, staged: true}
		case 1:
			job = map[string]any{"executable": "/bin/sh", "args": []any{"-c", "exit 4"},
				"options": map[string]any{"storage": "local", "workdir": shared}}
			w = want{status: 4, state: state.StateFailed}
		case 2:
			job = map[string]any{"executable": "/no/such/program",
				"options": map[string]any{"storage": "local", "workdir": shared}}
			w = want{status: -1, state: state.StateFailed}
		}
		body, _ := json.Marshal(job)
		if err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			ContentType: "application/json", CorrelationId: id, Body: body}); err != nil {
			t.Fatal(err)
		}
		jobs[id] = w
	}

	deadline := time.After(60 * time.Second)
	for {
		tot := st.Totals(time.Now())
		if tot.Done+tot.Failed >= int64(len(jobs)) {
			break
		}
		select {
		case msg := <-src.Events:
			if err := st.Apply(msg); err != nil {
				t.Errorf("event refused by the model: %v: %s", err, msg.Body)
			}
		case <-deadline:
			t.Fatalf("after 60s the model has %+v", st.Totals(time.Now()))
		}
	}
	for id, w := range jobs {
		j, ok := st.Job(id)
		if !ok {
			t.Errorf("%s: not in the model", id)
			continue
		}
		if j.State != w.state || !j.HasExit || j.ExitStatus != w.status {
			t.Errorf("%s: state %s exit %d (known %v), want %s %d", id, j.State, j.ExitStatus, j.HasExit, w.state, w.status)
		}
		if j.Executor != ex.ID() || (j.Thread != "1" && j.Thread != "2" && j.Thread != "3") {
			t.Errorf("%s: executor %s thread %s", id, j.Executor, j.Thread)
		}
		if w.staged && (j.StageIn.Bytes != w.in || j.StageOut.Bytes != w.out || !j.StageIn.Known() || !j.StageOut.Known()) {
			t.Errorf("%s: stage-in %+v stage-out %+v, want %d and %d bytes", id, j.StageIn, j.StageOut, w.in, w.out)
		}
	}
	if a := st.Anomalies(); a.Total() != 0 {
		t.Errorf("anomalies on a clean stream: %+v", a)
	}
}

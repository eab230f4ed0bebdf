package e2e

// The monitor (hyperflow-top: package tui and its state model tui/state)
// fed from the real events exchange while the real executor (in-process,
// internal/testing/harness) runs jobs from the real broker. The monitor is
// driven through its exported API only: its source (tui.StartAMQP) and its
// bubbletea model, run by monitorProgram as bubbletea would run it.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/config"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/harness"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/plgdatatest"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/internal/testing/testenv"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

// TestStalledTransferLive: the stall, end to end. The executor stages a
// job's input from the PL-Grid Data reference server, which stops sending
// half-way through the file; the monitor, fed from the events exchange,
// marks the job stalled and shows it; then the server sends the rest and
// the job finishes.
func TestStalledTransferLive(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.stall-" + uuid.NewString()[:8]
	exchange := queue + ".events"

	// The storage server: the input is 4 MiB; the first download sends
	// 1 MiB, then nothing until release is closed.
	cert := plgdatatest.FakeProxy(t)
	srv := plgdatatest.New(t, cert)
	const prefix = "/people/plgtest/stall"
	data := []byte(strings.Repeat("0123456789abcdef", 4<<20/16))
	srv.Seed(t, prefix+"/in.dat", data)
	release := make(chan struct{})
	released := false
	unstall := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(unstall)
	srv.SetHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/in.dat") || n != 1 {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data[:1<<20])
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return true
		}
		w.Write(data[1<<20:])
		return true
	})

	// The monitor subscribes first, so that it sees the executor start.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := tui.StartAMQP(ctx, tui.AMQPSource{URL: url, Exchange: exchange, Bindings: []string{"#"}}, nil, nil)
	st := state.New(state.Options{StallAfter: time.Second})
	m := tui.New(tui.Options{State: st, Source: src, Now: time.Now, Location: time.UTC})
	p := startMonitor(t, m)
	p.Update(tea.WindowSizeMsg{Width: 160, Height: 48})
	p.until("the monitor to connect", 30*time.Second, func() string { return "" }, func() bool {
		return strings.Contains(p.screen(), "● live")
	})

	// The executor: plgdata storage on the reference server, progress
	// every 200 ms.
	harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 1, Tweak: func(cfg *config.Settings) {
		cfg.EventsExchange = exchange
		cfg.Storage = "plgdata"
		cfg.PLGData = config.PLGData{Endpoint: srv.URL, Proxy: plgdatatest.WriteProxy(t, cert)}
		cfg.ProgressInterval = 200 * time.Millisecond
		cfg.ConsumerTimeout = time.Hour
	}})

	// The engine sends the job.
	eng := harness.NewEngine(t, url, queue, nil)
	jobID := eng.Send(map[string]any{
		"executable": "/bin/sh",
		"args":       []string{"-c", "wc -c < in.dat > out.txt"},
		"inputs":     []map[string]any{{"name": "in.dat"}},
		"outputs":    []map[string]any{{"name": "out.txt"}},
		"options":    map[string]any{"storage": "plgdata", "prefix": prefix},
	})

	job := func() state.JobDetail {
		j, _ := st.Job(jobID)
		return j
	}
	jobState := func() string { return fmt.Sprintf("job %+v", job().JobView) }
	p.until("the job stalls in stage-in", 30*time.Second, jobState, func() bool { return job().Stalled })
	j := job()
	if j.Phase != state.PhaseStageIn || !j.Progress.HasBytes || j.Progress.Bytes != 1<<20 {
		t.Errorf("stalled job: phase %q, progress %+v; want stage-in with 1 MiB moved", j.Phase, j.Progress)
	}
	if tot := st.Totals(time.Now()); tot.Stalled != 1 {
		t.Errorf("totals: %d stalled, want 1", tot.Stalled)
	}
	// The views show it: the header, the lane, the jobs table, the detail.
	p.press("2")
	if l := lineWith(p.screen(), jobID[:8]); !strings.Contains(l, "STALLED in 1.0MiB") {
		t.Errorf("the lane does not show the stall: %q\n%s", l, p.screen())
	}
	if !strings.Contains(p.screen(), "stalled 1") {
		t.Errorf("the header does not count the stall:\n%s", p.screen())
	}
	p.press("3")
	if l := lineWith(p.screen(), jobID[:8]); !strings.Contains(l, "STALLED") {
		t.Errorf("the jobs table does not mark the stall: %q\n%s", l, p.screen())
	}
	p.press("enter")
	if !strings.Contains(p.screen(), "STALLED  no bytes moved for") {
		t.Errorf("the detail does not show the stall:\n%s", p.screen())
	}

	// The server sends the rest: the job goes on and finishes.
	unstall()
	p.until("the job finishes", 60*time.Second, jobState, func() bool { return job().State.Finished() })
	j = job()
	if j.State != state.StateDone || j.Stalled || !j.StageIn.HasBytes || j.StageIn.Bytes != int64(len(data)) {
		t.Errorf("after the stall: state %s, stalled %v, stage-in %+v; want done with %d bytes", j.State, j.Stalled, j.StageIn, len(data))
	}
	if tot := st.Totals(time.Now()); tot.Stalled != 0 || tot.Done != 1 {
		t.Errorf("totals after: %d stalled, %d done", tot.Stalled, tot.Done)
	}
	deadline := time.Now().Add(30 * time.Second)
	for eng.Count(jobID) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := eng.Replies(jobID); len(r) == 0 {
		t.Error("no reply")
	} else if r[0].ExitStatus != 0 {
		t.Errorf("reply: exit %d, exceptions %v", r[0].ExitStatus, r[0].Exceptions)
	}
	p.press("esc", "3")
	if l := lineWith(p.screen(), jobID[:8]); !strings.Contains(l, "done") || strings.Contains(l, "STALLED") {
		t.Errorf("the jobs table after the stall: %q", l)
	}
}

// TestModelFollowsLiveExecutor: the monitor's state model fed from the
// real exchange while the executor runs jobs: every job appears and
// finishes with the exit status and byte counts the executor reported.
func TestModelFollowsLiveExecutor(t *testing.T) {
	url := testenv.AMQPURL(t)
	queue := "hyperflow.jobs.model-" + uuid.NewString()[:8]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := tui.StartAMQP(ctx, tui.AMQPSource{URL: url, Exchange: queue + ".events", Bindings: []string{"#"}}, nil, nil)
	waitUp(t, src)
	st := state.New(state.Options{})

	ex := harness.StartExecutor(t, harness.Options{URL: url, Queue: queue, Threads: 3,
		Tweak: func(cfg *config.Settings) { cfg.Storage = "nfs" }}).Ex

	// The jobs: staged ones that succeed, commands that fail, commands
	// that cannot start. They go without a reply_to: the monitor sees
	// them through the events only.
	shared := t.TempDir()
	ch := harness.NewEngine(t, url, queue, nil).Channel()
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
		if err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			ContentType: "application/json", CorrelationId: id, Body: mustJSON(t, job)}); err != nil {
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

// waitUp waits until src is subscribed.
func waitUp(t *testing.T, src *tui.Source) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-src.Notices:
			if n.State == tui.ConnUp {
				return
			}
		case <-deadline:
			t.Fatal("the source did not connect")
		}
	}
}

// monitorProgram runs the monitor's root model as bubbletea does, without
// a terminal: the commands the model returns run on goroutines of their
// own, and the messages they produce are applied, one at a time, on the
// test's goroutine by until, press and Update. So the model sees its
// source's events in batches and its ticks as in hyperflow-top, and the
// test reads its screen between two messages.
type monitorProgram struct {
	t    *testing.T
	m    *tui.Model
	msgs chan tea.Msg
	stop chan struct{}
}

// startMonitor starts m's commands (Init); they end with the test.
func startMonitor(t *testing.T, m *tui.Model) *monitorProgram {
	p := &monitorProgram{t: t, m: m, msgs: make(chan tea.Msg), stop: make(chan struct{})}
	t.Cleanup(func() { close(p.stop) })
	p.run(m.Init())
	return p
}

// run runs cmd on a goroutine and hands its message to the test's
// goroutine.
func (p *monitorProgram) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		select {
		case p.msgs <- msg:
		case <-p.stop:
		}
	}()
}

// Update applies msg to the model and runs the command it returns; a batch
// of commands runs each.
func (p *monitorProgram) Update(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, cmd := range msg {
			p.run(cmd)
		}
	default:
		_, cmd := p.m.Update(msg)
		p.run(cmd)
	}
}

// until applies the model's messages until cond holds; after limit it
// fails the test, with state() and the screen.
func (p *monitorProgram) until(what string, limit time.Duration, state func() string, cond func() bool) {
	p.t.Helper()
	deadline := time.After(limit)
	for !cond() {
		select {
		case msg := <-p.msgs:
			p.Update(msg)
		case <-deadline:
			p.t.Fatalf("%s: not after %s; %s\n%s", what, limit, state(), p.screen())
		}
	}
}

// press sends the keys, named as bubbletea names them.
func (p *monitorProgram) press(keys ...string) {
	for _, k := range keys {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		default:
			r := []rune(k)
			if len(r) != 1 {
				p.t.Fatalf("unknown key %s", k)
			}
			msg = tea.KeyPressMsg{Code: r[0], Text: k}
		}
		p.Update(msg)
	}
}

// screen is the model's frame without styles.
func (p *monitorProgram) screen() string { return ansi.Strip(p.m.View().Content) }

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

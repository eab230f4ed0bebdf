package state_test

import (
	"fmt"
	"time"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/tui/state"
)

func ExampleModel() {
	m := state.New(state.Options{MaxJobs: 10000})
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for i, ev := range []struct{ key, body string }{
		{"executor.ready", `{"executor":"e1","timestamp":1714557600,"type":"executor.ready","hostname":"node-1","threads":2}`},
		{"job.j1.started", `{"executor":"e1","timestamp":1714557601,"type":"job.started","id":"j1","thread":1,"executable":"/bin/date"}`},
		{"job.j1.execution.started", `{"executor":"e1","timestamp":1714557601.5,"type":"job.execution.started","id":"j1","thread":1}`},
		{"job.j1.finished", `{"executor":"e1","timestamp":1714557603,"type":"job.finished","id":"j1","thread":1,"exit_status":0}`},
		{"job.j2.started", `{"executor":"e1","timestamp":1714557604,"type":"job.started","id":"j2","thread":2,"executable":"/bin/sleep"}`},
		{"job.j3.started", `not JSON`},
	} {
		// Apply never fails the model: an anomaly is counted and returned.
		if err := m.Apply(eventbus.Message{RoutingKey: ev.key, Body: []byte(ev.body),
			Received: at.Add(time.Duration(i) * time.Second)}); err != nil {
			fmt.Println("anomaly:", err)
		}
	}
	now := at.Add(6 * time.Second) // live: time.Now(); replay: m.Latest()
	m.Tick(now)

	t := m.Totals(now)
	fmt.Printf("running %d, done %d, failed %d, anomalies %d\n", t.Running, t.Done, t.Failed, t.Anomalies)
	page, total := m.Jobs(state.JobQuery{Reverse: true}, 0, 20)
	fmt.Println(total, "jobs")
	for _, j := range page {
		fmt.Println(j.ID, j.State, j.Phase, j.Executable)
	}
	for _, th := range m.Threads("e1", now.Add(-10*time.Minute)) {
		fmt.Println("thread", th.Thread, th.Phase, th.Job, len(th.Intervals), "intervals")
	}
	// Output:
	// anomaly: state: malformed event: job.j3.started: body is not a JSON object
	// running 1, done 1, failed 0, anomalies 1
	// 2 jobs
	// j2 running stage-in /bin/sleep
	// j1 done  /bin/date
	// thread 1 idle  1 intervals
	// thread 2 stage-in j2 0 intervals
}

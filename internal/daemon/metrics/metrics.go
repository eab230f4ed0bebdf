// Package metrics serves the executor's Prometheus metrics and /healthz.
//
// Metric names (all prefixed hyperflow_executor_):
//
//	jobs_total{storage,outcome}        counter: answered jobs; outcome is
//	                                   success, failed (command exit 1..255),
//	                                   not_started (-1), job_error (-2), timeout (-3)
//	stage_duration_seconds{stage}      histogram: stage_in, execution, stage_out
//	stage_bytes_total{stage}           counter: bytes moved by stage_in, stage_out
//	threads                            gauge: worker slots
//	threads_busy                       gauge: slots running a job
//	reconnects_total                   counter: broker reconnections
//	duplicate_deliveries_total         counter: redeliveries answered without running again
//	broker_connected                   gauge: 1 while connected to the broker
//	broker_node{url}                   gauge: 1 for the broker node connected to (its
//	                                   URL, password hidden); absent while disconnected
//
// /healthz answers 200 "ok" while the executor is connected to the broker
// and its heartbeat loop is alive, 503 with the reason otherwise.
package metrics

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hyperflow-wms/hyperflow-amqp-executor/eventbus"
	"github.com/hyperflow-wms/hyperflow-amqp-executor/executor"
)

const ns = "hyperflow_executor"

// Metrics holds the collectors of one executor, in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	stats    func() executor.Stats
	maxAge   time.Duration
}

// New registers the collectors. stats reads the executor's counters;
// heartbeat is its heartbeat interval (the loop counts as stuck after three).
func New(stats func() executor.Stats, heartbeat time.Duration) *Metrics {
	m := &Metrics{
		reg:   prometheus.NewRegistry(),
		stats: stats,
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "jobs_total",
			Help: "Answered jobs by storage and outcome."}, []string{"storage", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "stage_duration_seconds",
			Help:    "Duration of job stages.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)}, []string{"stage"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "stage_bytes_total",
			Help: "Bytes moved by staging."}, []string{"stage"}),
		maxAge: 3 * heartbeat,
	}
	gauge := func(name, help string, f func(executor.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help},
			func() float64 { return f(m.stats()) })
	}
	counter := func(name, help string, f func(executor.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help},
			func() float64 { return f(m.stats()) })
	}
	m.reg.MustRegister(m.jobs, m.duration, m.bytes,
		gauge("threads", "Worker slots.", func(s executor.Stats) float64 { return float64(s.Threads) }),
		gauge("threads_busy", "Worker slots running a job.", func(s executor.Stats) float64 { return float64(s.Busy) }),
		gauge("broker_connected", "1 while connected to the broker.", func(s executor.Stats) float64 {
			if s.Connected {
				return 1
			}
			return 0
		}),
		counter("reconnects_total", "Broker reconnections.", func(s executor.Stats) float64 { return float64(s.Reconnects) }),
		counter("consumer_restarts_total", "Consumer channels opened again on a live connection (after a consumer timeout or cancel).",
			func(s executor.Stats) float64 { return float64(s.ConsumerRestarts) }),
		counter("duplicate_deliveries_total", "Redeliveries answered without running the job again.",
			func(s executor.Stats) float64 { return float64(s.Duplicates) }),
		brokerNode{desc: prometheus.NewDesc(ns+"_broker_node",
			"The broker node connected to (URL, password hidden): 1 while connected.", []string{"url"}, nil),
			stats: func() executor.Stats { return m.stats() }},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// JobFinished records an answered job; it fits executor.Params.JobFinished.
func (m *Metrics) JobFinished(storage string, exitStatus int, met eventbus.Metrics) {
	if storage == "" {
		storage = "none"
	}
	m.jobs.WithLabelValues(storage, Outcome(exitStatus)).Inc()
	if met.Timestamps.StageInStarted != 0 {
		m.duration.WithLabelValues("stage_in").Observe(met.StageIn)
		m.bytes.WithLabelValues("stage_in").Add(float64(met.InputSize))
	}
	if met.Timestamps.ExecutionStarted != 0 {
		m.duration.WithLabelValues("execution").Observe(met.Execution)
	}
	if met.Timestamps.StageOutStarted != 0 {
		m.duration.WithLabelValues("stage_out").Observe(met.StageOut)
		m.bytes.WithLabelValues("stage_out").Add(float64(met.OutputSize))
	}
}

// Outcome names an exit status for the jobs_total label.
func Outcome(status int) string {
	switch {
	case status == 0:
		return "success"
	case status == eventbus.ExitNotStarted:
		return "not_started"
	case status == eventbus.ExitJobError:
		return "job_error"
	case status == eventbus.ExitTimeout:
		return "timeout"
	default:
		return "failed"
	}
}

// Healthy says whether the executor is connected and its loops alive.
func (m *Metrics) Healthy() error {
	s := m.stats()
	if !s.Connected {
		return fmt.Errorf("not connected to the broker")
	}
	if age := time.Since(s.LastHeartbeat); age > m.maxAge {
		return fmt.Errorf("heartbeat loop silent for %v", age.Round(time.Second))
	}
	return nil
}

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := m.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// brokerNode reports the node of a cluster the executor is connected to.
type brokerNode struct {
	desc  *prometheus.Desc
	stats func() executor.Stats
}

func (b brokerNode) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

func (b brokerNode) Collect(ch chan<- prometheus.Metric) {
	if s := b.stats(); s.Connected && s.Broker != "" {
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, 1, s.Broker)
	}
}

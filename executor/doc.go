// Package executor is the HyperFlow AMQP job executor daemon: it takes job
// messages from the job queue, runs each one on a numbered worker slot
// (Settings.Threads at a time), replies to the engine and publishes the
// job's lifecycle events.
//
// A job goes through: admit (size and delivery-count limits, redelivery
// tracking: tracker.go), parse (package executor/job), work directory,
// stage in (package storage), run (package executor/runner), stage out,
// reply (confirmed by the broker before the delivery is acknowledged) and
// events (handle.go, pipeline.go). The running-jobs table behind heartbeats
// and ack deadlines is in running.go; progress reports in progress.go.
//
// # Files
//
//	executor.go  Executor, New, Run (the connection loop), Stats
//	consumer.go  one connection's consumer: prefetch, deliveries to slots
//	handle.go    one delivery: admit, run safely, reply, settle, events
//	pipeline.go  one job: work directory, stage in, run, stage out
//	running.go   running jobs: heartbeats, phases, deadlines, redeliveries
//	events.go    job events: held, then published in batches; the events setting
//	progress.go  job.progress reports (bytes in flight, rss and cpu)
//	tracker.go   correlation ids of running and finished jobs
//	link.go      the current broker client, shared by job goroutines
//	sweep.go     work directories left by executors that died
//	check.go     --check
//
// # Goroutines and what they own
//
// Run owns the connection loop and the consumer channel and hands each
// delivery to the worker goroutine of a free slot (one per slot, for the
// executor's life: consumer.go). While it runs a job, a worker owns its
// jobRun and settles its deliveries. A job's events are held on the jobRun
// and published in batches (events.go). The heartbeat goroutine only reads
// the shared counters and the running table (atomics and Executor.mu). The
// tracker has its own lock; link its own. Progress reports run from a timer
// armed per job, on the job's own data.
//
// # Shutdown, in order
//
//  1. ctx is cancelled: the consumer is cancelled and deliveries not yet
//     started go back to the queue;
//  2. running jobs get Settings.ShutdownGrace to finish and be answered;
//  3. then, or at once on Kill (the second signal), their process groups are
//     killed and their deliveries returned to the queue unanswered;
//  4. executor.stopped is published and the connection closed.
package executor

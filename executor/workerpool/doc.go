// Package workerpool is the executor's worker-pool mode: a drop-in
// replacement for HyperFlow's Node job listener (`hflow-job-listener.js`
// of @hyperflow/job-executor), which today's Kubernetes deployments run in
// each worker image, one Deployment per task type.
//
// # Protocol
//
// The engine (@hyperflow/hyperflow, k8sCommand with
// workflow.config.executionModels.json) publishes to the task type's queue,
// declared not durable with x-expires 6000000 (DeclareQueue), bodies
// {"tasks": [{"id": "hfId:wfId:procId:firingId", "message": {...}}]}
// (ParseBody). For each task in turn the pool skips it if
// wf:<wfId>:completedTasks holds it, runs its command in the shared work
// directory (never through a shell unless the message says "shell"; its
// output also goes to logs-hf/task-<id>@<handler>__stdout.log and
// __stderr.log and to the message's stdout/stderr files), retries a
// failing command with the listener's random backoff, and writes the exit
// code to Redis (Completion: the "set" transport or, when the message asks
// for it, the "stream" transport). A command killed by signal N gives
// 128+N; one that cannot start -1; a refused message or input files that
// never appeared -2 (eventbus.ExitNotStarted, ExitJobError).
//
// # Reliability
//
// A message is acknowledged only after the completions of all its tasks
// are written. Redis outages are waited out (store retries with backoff
// for as long as the pool runs); broker losses are reconnected while the
// tasks go on, with the executor's connection loop (eventbus.Brokers.Connect:
// the nodes of a cluster's amqp_url in amqp_url_order, the next node after a
// loss, the reconnection backoff, connect_attempts), and a redelivery of a message running here is attached to
// it (tracker). A body that cannot be used is rejected at once, and a
// message delivered more than max_deliveries times has its tasks failed
// and is rejected: never the listener's endless requeue.
//
// # Goroutines and shutdown
//
// Run owns the connection loop and the consumer channel and hands each
// delivery to a goroutine holding one of Threads slots; that goroutine runs
// the message's tasks and settles the message. The heartbeat goroutine
// reads only counters and the running table (mu). Shutdown, in order: (1)
// ctx is cancelled: the consumer is cancelled and prefetched messages go
// back to the queue; (2) running messages get ShutdownGrace to finish; (3)
// then, or at once on Kill, their process groups are killed and their
// messages go back to the queue unanswered; (4) executor.stopped is
// published and the connections are closed.
//
// Events are those of the executor (eventbus), the task id as job id;
// job.started also carries the task's name and the queue, so that
// hyperflow-top shows worker pools as they run.
package workerpool

// Package submit is the logic of the hyperflow-submit command: it sends job
// messages to the executors' queue exactly as the HyperFlow 1.7 engine's
// amqpCommand does (wire.md §1) and reads their replies (wire.md §2).
//
// What goes on the wire: the job queue is declared durable, not exclusive,
// not auto-delete, without arguments; replies come back on an exclusive,
// auto-delete, server-named queue consumed with auto-ack; each job is
// published to the default exchange with routing key = queue name,
// content_type application/json, a new UUID as correlation_id, reply_to the
// reply queue, and no delivery mode (not persistent). The engine (amqplib)
// sends an empty headers table; amqp091-go leaves an empty table out of the
// frame, which a consumer cannot tell apart from no headers.
//
// Single mode publishes one job, waits for its reply (forever by default, as
// the engine does), prints the reply indented on stdout and its exceptions
// on stderr, and exits with the job's status mapped by ExitCode:
//
//	0..255  the command's own exit status (128+N: killed by signal N)
//	127     exit_status -1: the command could not be started
//	125     exit_status -2: the job failed outside the command (bad message,
//	        staging, work directory); also any status outside the contract,
//	        a reply that is not JSON or whose exit_status is not an integer,
//	        and every failure of hyperflow-submit itself (usage, job file,
//	        broker)
//	124     exit_status -3: the command timed out; also no reply within
//	        --timeout-reply
//	130     interrupted (SIGINT/SIGTERM) before the reply came
//
// These follow the conventions of timeout(1) and env(1).
//
// Load mode (--count N) publishes N copies of the job, at most --inflight at
// a time, from one goroutine with a pre-encoded body, on one reply queue;
// replies are matched by correlation id. It prints the throughput, the
// latency percentiles (latency = reply received - published, nearest-rank
// percentiles) and the count of each exit status, and exits 0 when every
// job got exactly one well-formed reply (see CheckReply), 1 when a reply is
// missing (none within --timeout-reply of its publication), malformed,
// duplicated, late or has an unknown correlation id, 125 on a failure of
// the tool itself and 130 when interrupted. Job failures (non-zero exit
// statuses) are counted, not treated as errors.
package submit

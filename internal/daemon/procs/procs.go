// Package procs chooses how many threads run the executor's Go code at
// once (GOMAXPROCS).
//
// The executor does little work of its own per job: it parses the message,
// starts the command, waits for it, encodes a few events and the reply
// (about 0.4-0.6 ms of CPU for a trivial job, docs/benchmarks.md). The
// jobs' commands are processes of their own and are not bound by
// GOMAXPROCS. With a P per CPU, most hand-offs between the executor's
// goroutines (a delivery to its worker, a confirmation to the job waiting
// for it, an exit seen by the poller) find another P idle and wake a thread
// for it: a context switch, costly in a virtual machine. Measured on a
// 2-CPU VM with trivial jobs, one P instead of two cut the executor's CPU
// per job by 20-30 % at THREADS=1, 2 and 8, and the latency it adds to a
// job run alone from +0.56 ms to +0.06-0.38 ms (five runs).
//
// But a command's start holds its P: Go forks with vfork in a raw system
// call, and the P stays with the forking thread until the child has
// exec'd (0.2-0.3 ms per start on that VM). With one P nothing else of the
// executor runs meanwhile: no confirmation is read, no job acknowledged,
// no delivery handed on, and the broker and the CPUs wait. A second P
// costs thread wake-ups again. Measured with trivial jobs, in turn with
// the baseline with confirms, six rounds each: at THREADS=8 two Ps left
// the CPUs idle 6 % of the time instead of 14 % and answered 8 % more jobs
// per second (0.853 against 0.790 of the baseline); at THREADS=4 the idle
// time fell from 16 % to 9 % but the executor's CPU per job rose from 0.52
// to 0.63 ms, for the same jobs per second (0.792 against 0.790); at
// THREADS=2 one P was as fast and cheaper.
//
// So the executor runs with one P per JobsPerProc job slots, rounded up
// (at least one, at most the runtime's default: the CPUs it may use). One
// P staged one file from the private S3 server at 650-820 MB/s
// (docs/benchmarks.md). An operator who wants otherwise sets GOMAXPROCS in
// the environment: it is then left as it is.
package procs

import "runtime"

// JobsPerProc is how many job slots (THREADS) share one P.
const JobsPerProc = 4

// For returns the GOMAXPROCS of an executor with threads job slots when
// the runtime's default is limit.
func For(threads, limit int) int {
	n := (threads + JobsPerProc - 1) / JobsPerProc
	return max(1, min(n, limit))
}

// Set applies For to the running program unless getenv("GOMAXPROCS") is
// set. It returns the GOMAXPROCS in effect and whether Set chose it.
func Set(threads int, getenv func(string) string) (n int, chosen bool) {
	current := runtime.GOMAXPROCS(0)
	if getenv("GOMAXPROCS") != "" {
		return current, false
	}
	n = For(threads, current)
	if n != current {
		runtime.GOMAXPROCS(n)
	}
	return n, true
}

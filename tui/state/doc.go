// Package state is hyperflow-top's state model: the events of the executors
// (wire.md §3) go in through Model.Apply, and the views read executors,
// threads with their stage intervals, jobs, totals, rates and per-executable
// timings out of it. It is pure: no terminal, no broker, no clock of its
// own (the caller passes now), so it is tested by feeding it recorded event
// streams.
//
// The model is tolerant: malformed, unknown, duplicate, out-of-order and
// late events are counted (Model.Anomalies) and never break it, and the
// events of the original Ruby executor (routing keys with stage_in, the
// field job instead of id, a large number as thread, no heartbeats) are
// understood.
//
// Memory is bounded: all running jobs and the last Options.MaxJobs finished
// ones are kept, stage intervals per thread are capped in time and number,
// percentiles come from fixed-size histograms; totals stay exact.
//
// Beyond the event log itself the model derives: the progress of running
// jobs (job.progress events: bytes and rate while staging, memory and CPU
// while executing) and stalled transfers (Tick; Options.StallAfter);
// executors lost (silent while jobs ran: no heartbeat, no event),
// draining (executor.draining: shutting down, waiting for their jobs) and
// gone (dead for Options.GoneAfter); acknowledgement
// deadlines from heartbeats (JobView.Deadline, DeadlineLevel); failure
// groups (FailureGroups); utilisation per thread and executor over a
// window, split into staging and execution, with a one-line Diagnosis;
// staging traffic per storage backend (StorageRates); and redeliveries
// (JobView.Redelivered, Totals.Redelivered, FlagRedelivered).
//
// # Clocks
//
// Two clocks meet here. Receive times (eventbus.Message.Received, the
// monitor's clock) drive what is relative to now: executor staleness, the
// per-second throughput and the rates of the last minute. Event timestamps
// (the executor's clock) date what happened to jobs: stage starts and ends,
// the Gantt intervals, durations, deadlines, utilisation. Stalls are
// measured in receive time (no progress event for so long, as the monitor
// saw it); transfer rates of a job from its progress events' timestamps. Pass now = time.Now() when live, and
// Model.Latest() (the last receive time) when replaying a recording.
//
// # Using it from a view
//
// One goroutine owns the model (bubbletea's Update): it applies the
// messages as they come and calls Tick(now) on its frame timer. The
// accessors return fresh copies, cheap enough to call every frame; Jobs
// caches its sorted selection until JobsVersion moves, and Version moves
// on any visible change, so a view can cache what it renders on it.
package state

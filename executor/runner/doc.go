// Package runner runs a job's command: never through a shell, in a process
// group of its own, with bounded tails of stdout and stderr (Tail), a
// timeout and a cancellation that end the whole group (TERM, then KILL
// after a grace), and the command's resource use. Exit statuses follow the
// wire contract (eventbus.ExitNotStarted, eventbus.ExitTimeout, 128+N for a
// signal). When the command exits, what it left running (its group, and
// processes that left it but carry its HYPERFLOW_JOB_MARKER) is ended and
// counted (leftovers.go); with a reaper.Reaper, the command is registered
// so that the orphan reaper never reaps it.
package runner

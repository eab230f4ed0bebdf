// Package tui is hyperflow-top: a live terminal monitor of the executors'
// events (wire.md §3), built on bubbletea v2.
//
// The pieces, from the command line inward:
//
//   - ParseArgs and Run (cli.go, app.go): the flags, then one of three
//     modes: the terminal UI, headless collection into a CSV file, a
//     Nextflow trace or a Chrome trace (--csv, --trace, --chrome-trace),
//     or, without a terminal and without those, a clear error.
//   - Sources (source.go): a subscription to the events exchange that
//     reconnects by itself, or the replay of a recording (--replay); either
//     is optionally recorded (--record), or a subscription goes on with an
//     earlier recording (--resume: its events are applied first). A source
//     owns its goroutine and hands events to the UI over a channel.
//   - Model (model.go): the root bubbletea model. It owns the state model
//     (package state), applies events in batches, ticks once a second, and
//     dispatches keys to one sub-model per view: executors (with their
//     utilisation, diagnosis and the storage traffic), threads (the Gantt
//     lanes, with each job's progress and stalls), jobs (stall and
//     deadline marks), job detail and failure groups. Only the root
//     returns a tea.View; the views render strings of exactly their size.
//   - Exports (export.go): the jobs table as CSV, Nextflow trace or Chrome
//     trace, picked by the file name's extension.
//
// Rendering is kept cheap: the views read the state on refresh (at most a
// few times a second, and never while the display is paused), and the jobs
// view asks the state for the visible page only.
//
// Nothing here reads the clock directly: Options.Now is the clock (a
// replay's clock is the receive time of its latest event), so tests and
// golden files are deterministic.
package tui

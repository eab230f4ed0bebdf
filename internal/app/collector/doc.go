// Package collector is the logic of hyperflow-amqp-metric-collector, the
// compatibility command of the original executor's metric collector
// (wire.md §5). It binds job.*.finished on the events exchange and prints
// one tab-separated line per finished job, flushed at once, with the
// columns
//
//	time executor thread job executable execution input_size output_size
//
// which are:
//
//   - time: when the event was received, in UTC, RFC 3339 with milliseconds
//     ("2006-01-02T15:04:05.000Z"; fixed width, sorts as text). The original
//     printed Ruby's Time#to_s; that format was local and second-precision.
//   - executor, thread: the event's fields (thread printed exactly as sent,
//     however large); when absent, the ones of its metrics object.
//   - job: the event's id, else its job field (the original executor sent
//     job, its README documented id).
//   - executable: the event's field.
//   - execution, input_size, output_size: from the event's metrics object;
//     numbers are printed in plain decimal notation (no exponent).
//
// A missing, null or empty value, or one that is an object or an array, is
// printed as NA; tabs and line breaks inside strings become spaces, so a
// line always has eight columns. An event that is not a JSON object is
// reported on the logger and skipped. With --header a first line names the
// columns (the original printed none).
//
// After a lost connection the collector connects again (events published in
// between are lost: the queue is the collector's own); only a failure of the
// first connection ends it with an error.
package collector

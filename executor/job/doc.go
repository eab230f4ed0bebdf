// Package job reads HyperFlow's job message (wire.md §1): Parse decodes and
// validates a message body into a Job, naming the offending field in every
// error; SubstitutionTable and Substitute expand $name references in args
// and env; SplitArgs splits a string "args"; FormatNumber formats JSON
// numbers as the engine's JavaScript would; ValidFileName guards staged
// file names. It knows nothing of AMQP, storage or processes.
package job

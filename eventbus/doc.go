// Package eventbus is the AMQP side shared by the executor, the monitor and
// the tools: the connection and its confirm-mode publishing channel (Client),
// the queue and exchange declarations of the wire contract, the event, metrics
// and reply types (wire.md §2-4), and a subscriber to the events exchange.
//
// One Client owns one connection. Notification channels registered with the
// AMQP library are buffered and always drained, as amqp091-go requires.
package eventbus

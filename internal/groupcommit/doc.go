// Package groupcommit lets many concurrent writers share the fsyncs of one
// JetStream stream.
//
// On a server that syncs every write (the safe durability profile), each
// publish to a stream waits for an fsync of its own, and the disk's fsync
// rate bounds the writes per second of the whole engine: a command that
// writes five times costs five fsyncs. A Publisher groups the messages that
// arrive for one stream while an earlier write is in flight into one atomic
// batch (ADR-50, the stream needs AllowAtomicPublish), which the server
// stores with a single fsync and acknowledges only after it. Every message
// is as durable when its ack comes as it is without grouping.
//
// A lone message is published as it is, and so is one that a batch cannot
// carry (larger than the payload limit, or expecting the stream's last
// sequence or message ID). A message with the same message ID as one in the
// batch, or with an expectation on a subject the batch already writes,
// waits for the next batch (the server would refuse the whole batch). If the server
// refuses a batch before committing it (one message's expectation failed, a
// duplicate message ID, batch limits, atomic publish turned off), the batch
// wrote nothing, and each of its messages is published again on its own, so
// that each writer gets exactly the answer, and the effect, that a plain
// publish would have given. Any other outcome that does not account for
// the batch (no answer in time, an ack that does not match the batch, a
// refusal while committing, after which part of it may be stored) reaches
// each writer as a transient error (the timeout itself, or
// ErrUnexpectedAck), like a plain publish whose ack was lost: the message
// may or may not be stored, and the writer's usual rules for that (message
// IDs, expectations, reading back) apply.
//
// A KV bucket reopened with create-or-update (by any engine instance, at
// its start) has atomic publish off until an instance with group commit
// sets it again. A Publisher that meets that refusal publishes message by
// message for Options.Pause, then tries a batch again. Every instance on
// one NATS should run with the same setting.
package groupcommit

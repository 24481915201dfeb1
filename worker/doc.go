// Package worker is bankbook's one consumer loop: every background part that
// works off a JetStream pull consumer (reactors, timers, later dispatchers)
// is a Loop with a Handler, and ends each message with an explicit outcome.
//
// # Outcomes
//
// The Handler's error is the outcome (see Handler): nil acknowledges;
// RetryAfter(d, nil) redelivers after d without counting a failure (work not
// due yet); RetryAfter(d, err) and plain errors are failures, redelivered
// after d or after a backoff doubling from MinBackoff to MaxBackoff;
// Permanent(err), or MaxAttempts failures, dead-letters the message. A panic
// is recovered into a failure and logged with its stack. While the handler
// works — and while a pulled message waits for a free handler — the loop
// sends InProgress every third of the consumer's AckWait, so long work is
// not redelivered to another instance. Concurrency handlers run at once.
// Delivery is at least once: handlers must be idempotent.
//
// Failures are counted by the Loop per stream sequence, in memory: a
// deferral never counts (a timer may wait for hours), and a restart or
// another instance counts afresh, so a message is tried at least
// MaxAttempts times before it is given up, never fewer.
//
// # Dead letters
//
// A dead letter is a recorded fact, never a silent drop: before the original
// is terminated (Term), DeadLetters.Record stores part, stream, sequence,
// subject, attempts, deliveries, last error and time in the dead-letter
// stream (default BANKBOOK_DEAD, subject bankbook.dead.<part>). If recording
// fails, the message is redelivered instead. DeadLetters lists them (by
// part, paginated), counts them per part (bankbook_dead_letters), and
// discards one with a reason. Loop.Redrive fetches the original from its
// stream by sequence and hands it to the part's own Handler in the caller's
// goroutine; only when that succeeds is the dead letter removed. Both
// redrive and discard leave a Resolution on bankbook.dead.<part>.<action>.
// Redrive is a direct call rather than a message the loop consumes, so it
// needs no second consumer and its caller learns the outcome at once; any
// instance that runs the part can redrive its dead letters.
//
// # A consumer that goes away
//
// Consume wraps jetstream's Consume and watches it: the consumer deleted
// (409), missing (found out after missed heartbeats by asking the server),
// or the connection closed ends the Subscription with an error matching
// ErrConsumerGone. Loop.Run returns that error, so its supervisor starts it
// again and the Consumer function creates the consumer anew; eventstore's
// Follow watches its consumer through the same Subscription. Nothing waits
// forever on a consumer that is gone.
package worker

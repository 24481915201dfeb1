// Package transient tells a NATS failure that may go away by itself (no
// answer in time, no responders during a leader election, a connection
// being re-established, a JetStream cluster that is temporarily without a
// leader or quorum) from one that will not, and retries the first kind
// within a time budget.
//
// # Classification
//
// Is reports whether an error is transient: ErrUnavailable (or a sentinel
// made with Sentinel) anywhere in its chain; context.DeadlineExceeded (an
// attempt's or the caller's deadline ran out: the server did not answer);
// the nats.go errors for no responders, a request timeout and a connection
// that is closed, draining, reconnecting or disconnected; jetstream's "no
// response from stream"; and the JetStream API errors the server gives while
// a stream or the meta layer has no leader or quorum, is catching up, or
// JetStream is not running: JSClusterNotAvailErr ("JetStream system
// temporarily unavailable"), JSClusterNotLeaderErr, JSClusterNoPeersErrF
// ("no suitable peers"), JSStreamOfflineErr,
// JSStreamDuplicateMessageConflict, JSStreamExpectedLastSeqPerSubjectNotReady
// and a few more (errors.go lists them by code and name).
// context.Canceled is not transient: the caller gave up. Everything else
// (a stream that does not exist, a wrong expected sequence, a key not
// found, a bad request) is not transient either: retrying cannot change it.
//
// The API layer maps every transient error to 503 "unavailable"; a command
// that failed that way may or may not have been recorded, and a repeat with
// the same Idempotency-Key finds out.
//
// # Retrying
//
// A Policy bounds each attempt (AttemptTimeout, 1s by default) so that one
// lost answer does not use up the caller's whole deadline, and bounds all
// attempts together (Budget, 5s by default) when the caller's context has no
// deadline. Do and Run retry an operation after a transient failure, with a
// short growing pause (50ms doubling to 250ms, jittered), while the budget
// allows; a closed or draining connection is not retried, as it never comes
// back. Only operations whose repetition is harmless may be retried this
// way: reads, and writes that are idempotent (a KV put of the same value, a
// publish deduplicated by Nats-Msg-Id). The error of the last attempt is
// returned marked with ErrUnavailable (Mark), so callers need not classify
// it again.
package transient

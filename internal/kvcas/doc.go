// Package kvcas is the read → decide → write loop over a JetStream KV entry
// that bankbook's KV-backed stores (reservations, idempotency, watermarks)
// share.
//
// Update reads an entry, asks the caller's decide function what it should
// become, and writes that with optimistic concurrency: create-if-absent when
// the entry was absent, update-at-revision when it was present. If another
// writer got there first, the write fails with a conflict, the entry is read
// again and decide is asked again, up to Options.MaxAttempts conflicts.
//
// Guarantees:
//   - A value is written only at the revision decide saw (or only if the key
//     was still absent), so of two concurrent updates neither is lost: the
//     later one is decided again on top of the earlier.
//   - decide may be called several times for one Update and must have no side
//     effects beyond computing its answer; only its last answer counts.
//   - An error from decide ends Update at once, without writing, and is
//     returned unchanged. ErrUnchanged ends it without writing and without an
//     error.
//   - Running out of attempts returns an error matching ErrTooManyConflicts.
//     Any other KV error is returned wrapped (errors.Is sees through it), as
//     is the context's error once ctx ends.
//   - Every read and write has a timeout of its own (Options.Retry). A read
//     that fails transiently (no answer, no leader; see internal/transient)
//     is made again. A write that does is not simply repeated: its outcome
//     is unknown, so the entry is read again. If it holds exactly the bytes
//     of that write, the write is taken as stored and its revision
//     returned; otherwise decide is asked again on what is there. (So a
//     caller whose decisions could coincide byte for byte with another
//     writer's must accept that writer's identical value as its own; the
//     stores here put a time or an owner in every value.) When the deadline
//     (or Options.Retry.Budget) runs out, the error matches
//     transient.ErrUnavailable.
//
// There is no sleep after a conflict: a conflict means another writer made
// progress, so the next read sees a newer entry. After a write that got no
// answer, Update pauses briefly before reading again.
package kvcas

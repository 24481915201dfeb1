// Package kvcas is the read → decide → write loop over a JetStream KV entry
// that bankbook's KV-backed stores (reservations, idempotency, watermarks)
// share.
//
// Update reads an entry, asks the caller's decide function what it should
// become, and writes that with optimistic concurrency: create-if-absent when
// the entry was absent, update-at-revision when it was present. If another
// writer got there first, the write fails with a conflict, the entry is read
// again and decide is asked again, up to Options.MaxAttempts writes.
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
//
// There is no sleep between attempts: a conflict means another writer made
// progress, so the next read sees a newer entry.
package kvcas

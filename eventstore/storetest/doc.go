// Package storetest is the contract every event store implementation must
// pass: the JetStream store (eventstore.Store) and the in-memory one
// (eventstore/inmem) run the same suite, so code tested against one behaves
// the same against the other.
//
// The contract: an append stores one commit, all or nothing, on one
// aggregate, provided the aggregate's last commit is at the expected sequence
// (optimistic concurrency); a stale expectation writes nothing and returns a
// *eventstore.ConflictError matching eventstore.ErrConflict, unless the
// commit that followed it is the very commit being appended (a retry), which
// succeeds with its stored sequence. Sequences are global, gap-free and
// increasing across aggregates. Load returns an aggregate's commits after a
// sequence, oldest first, with every envelope field as appended, upcast by
// the store's Upcaster, as copies the caller may change. Malformed requests
// fail with eventstore.ErrInvalid and neither read nor write anything: an
// append without events or commit ID, and an append or load of an aggregate
// whose type or ID is not one subject token (a wildcard such as ">" must not
// reach another aggregate's commits).
package storetest

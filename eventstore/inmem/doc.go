// Package inmem is an event store held in process memory, for unit tests
// of code that appends and loads aggregates (the command layer) without a
// NATS server. Nothing survives the process.
//
// It keeps the append and load semantics of the JetStream store
// (eventstore.Store), and passes the same contract suite
// (eventstore/storetest):
//
//   - Append stores one commit on an aggregate provided the aggregate's last
//     commit is still at the expected sequence; otherwise it writes nothing
//     and returns a *eventstore.ConflictError matching eventstore.ErrConflict
//     — unless the commit that followed the expectation is this very commit
//     (a retried append), which then succeeds with its stored sequence.
//   - Sequences are global, start at 1, and increase by one per commit
//     across all aggregates.
//   - Load returns an aggregate's commits after a sequence, oldest first,
//     each a fresh copy decoded from its stored bytes and upcast with the
//     configured Upcaster.
//
// It serves no consumers (Follow, Reactor): projections and reactors are
// tested against the real store.
package inmem

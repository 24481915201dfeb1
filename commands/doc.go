// Package commands executes bankbook's commands: validate, load the
// aggregate from the event store, decide with the pure domain, append.
//
// A stale load (another command appended to the same aggregate meanwhile)
// surfaces as eventstore.ErrConflict; the command reloads and decides again,
// up to Config.ConflictRetries times, then fails with ErrContention (409).
// Commands on different aggregates never wait for each other.
//
// A command that carries an idempotency key stamps it on its events. Before
// deciding, a command looks for a commit with its key on the aggregate: if a
// previous attempt already appended (and then lost its reply, or its engine
// died), the command answers from those events and appends nothing.
package commands

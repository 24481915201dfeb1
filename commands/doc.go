// Package commands executes bankbook's commands: validate, load the
// aggregate from the event store, decide with the pure domain, append.
//
// # Shape
//
// Each aggregate type is a domain.Aggregate value (type token and Apply).
// One generic Repository per type loads it, caches its latest state and
// appends to it; nothing else is written per aggregate type. Commands are
// methods of small handlers per area — Orders, Deposits, Wallets, Payouts —
// that embed a shared Core (event store, codec, Config, IDs, clock). A step
// on another area's aggregate (a deposit pays an order, a refund credits a
// wallet) goes through that aggregate's repository or the Wallets handler,
// which New shares between the areas: one repository, so one cache, per
// type and instance.
//
// The stores are small interfaces (EventStore, Names, Timers, Watermarks).
// The JetStream event store and the in-memory one (eventstore/inmem) pass
// the same contract suite (eventstore/storetest), so the handlers can be
// unit-tested on either. Work that must follow events — payouts through
// firm banking, refunds a dead command left behind — is not here: the
// process managers (package process) run it through these handlers.
//
// # Conflicts
//
// A stale load (another command appended to the same aggregate meanwhile)
// surfaces as eventstore.ErrConflict; the command reloads and decides again,
// up to Config.ConflictRetries times, then fails with ErrContention (409).
// Commands on different aggregates never wait for each other. A refusal,
// or a decision to append nothing, is only ever made on a state just read.
//
// # Idempotency
//
// A command that carries an idempotency key stamps it on its events. Before
// deciding, a command looks for a commit with its key on the aggregate: if a
// previous attempt already appended (and then lost its reply, or its engine
// died), the command answers from those events and appends nothing. Steps
// that span aggregates (recording a deposit pays the order, credits a
// wallet, then records the deposit) are each idempotent on the deposit,
// refund or payout they carry out, so a retry completes what a first
// attempt began and never repeats it.
package commands

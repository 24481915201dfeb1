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
// The commands of one instance on one aggregate take turns (in arrival
// order), so a burst on one hot aggregate — 200 withdrawals from one wallet
// at once — runs one after the other and never conflicts. A stale load
// (another instance appended to the same aggregate meanwhile) surfaces as
// eventstore.ErrConflict; the command reloads and decides again, with a
// growing, jittered pause, up to Config.ConflictRetries times, then fails
// with ErrContention (409). Commands on different aggregates never wait for
// each other. A refusal, or a decision to append nothing, is only ever made
// on a state just read.
//
// # Snapshots
//
// With Config.Snapshots (package snapshots), a repository stores an
// aggregate's state every Config.SnapshotEvery commits (default 100) under
// "<type>/<id>", and a cold load starts there and reads only the later
// commits, so loading a long-lived aggregate (a wallet with 10,000
// movements) stays bounded. A snapshot records the sequence, ID and version
// of the commit its state is at, which the load checks against the stream
// (it reads that commit again): a snapshot that is ahead of the stream or
// from another one, unreadable, of another state type (a hash of the Go
// type's structure) or of another format is ignored and every commit is
// read. Only states of commits that are in the stream are stored. A resumed
// command reads every commit, since its first attempt may be older than the
// snapshot. Aggregate states round-trip through encoding/json
// (domain.Wallet encodes its applied refs); a change to an Apply that
// builds other states from the same events without changing the state's
// type must raise snapshotFormat.
//
// # Timers and names
//
// A timer an event will need is armed before the event is appended, so
// every stored order has its expiry (TimerExpireOrder, at the payment
// deadline) and every cancel reservation its finalisation
// (TimerFinaliseCancel); a timer whose event never got stored finds nothing
// to do. ExpireOrder and FinaliseCancel are idempotent and wait, rather
// than act, until the bank scan covers their time.
//
// A submit refuses what it may refuse — an order ID in use, a buyer at
// Config.MaxUnpaidOrders, depositor names all held among Config.NameProbes
// tried — before it reserves a name, and a submit refused after reserving
// a name (it lost a race for its order ID) frees that name and arms the
// winner's expiry again. It arms the order's expiry while it reserves the
// name (two writes waited for together); refused for its names, it
// disarms that expiry if the order ID was generated for it (Meta.FreshID),
// and otherwise leaves it to find no order.
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

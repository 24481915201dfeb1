// Package projections folds the event stream into read models kept in one
// bbolt file, and answers queries from that file alone.
//
// # Registered projections
//
// Each read model is a Projection: a name, a version, the top-level buckets
// it owns and an ApplyFunc that folds one event into them. Options carries
// the registry (nil: DefaultProjections — orders, wallets, ledger,
// deposits, candidates, payouts, bills, links, store_payments,
// settlements, notifications, deposit_index, payout_index, reconciliations,
// series, reconcile_carry). Every projection has its own checkpoint, the
// stream sequence of the last commit it applied, stored beside its version
// in bucket "meta".
//
// On Open, a projection that is new to the file, or stored at another
// version, has its buckets dropped and recreated and its checkpoint set to
// 0; the projections that are unchanged keep their data and checkpoints.
// Buckets that no registered projection owns are dropped. Runner.Run then
// first catches every projection that is behind the highest checkpoint in
// the file up, from its own checkpoint, through an ordered (non-durable)
// consumer that stops at that checkpoint; only after that does it report
// ready (Runner.Ready) and follow the stream live with all of them. A
// rebuild that stops half-way resumes from the checkpoint it reached.
//
// Bump a projection's Version whenever its ApplyFunc would write different
// bytes for the same events.
//
// # Guarantees
//
//   - Atomic batches. Store.Apply applies a batch of commits to every
//     projection and writes each projection's checkpoint in ONE bbolt
//     transaction. After a crash the file holds either the whole batch and
//     its checkpoints, or neither.
//   - Ack after commit. The Runner follows the stream with eventstore.Follow
//     and a durable consumer, which acknowledges a batch to JetStream only
//     after the handler returned nil, that is after the bbolt transaction
//     committed. A crash between the commit and the ack leaves the batch
//     unacknowledged.
//   - Exactly-once effect. Each projection skips every commit at or below
//     its own checkpoint, and the Runner restarts from the checkpoints on
//     disk, so a batch delivered again after such a crash is never applied
//     twice. A batch that does not continue right after a projection's
//     checkpoint fails with ErrGap and writes nothing.
//   - Nothing is skipped silently, and nothing freezes them. A damaged
//     commit — a message on the event stream that is not a commit
//     (eventstore.ErrDamaged), or a commit holding an event the codec cannot
//     decode: an unknown type, a newer schema version, a payload that does
//     not fit — is skipped: no projection applies any of it, the
//     checkpoints move past it and the later commits apply, so every other
//     aggregate is served. It is recorded in the file (Store.Skipped), and
//     the Runner reports it with its sequence until an operator sets it
//     aside (eventstore.Store.SetAside): an error log line (seq, subject,
//     aggregate, problem), a dead letter of part "projections", and its
//     part not ready in /readyz (supervisor Handle), naming the sequence.
//     Queries keep being answered meanwhile (Runner.Ready stays true). Once
//     the set-aside record is there (the Runner looks every second), the
//     dead letter is resolved and the part is ready again. If a later run
//     finds that it can read a skipped commit after all (an upgrade taught
//     it the event type), it rebuilds every projection from sequence 1, so
//     the commit is applied in its place. An event that does not fit a read
//     model (ErrInconsistent) is not damage but a bug: it fails its batch
//     with a *CommitError naming the commit, the Runner commits the
//     commits before it and Run returns the error for the supervisor to
//     report and retry. Replay skips exactly as the Runner does, so a
//     replay and the live read models never disagree about a commit.
//   - Projections are pure. An ApplyFunc sees only its own buckets and the
//     commit, envelope and event: never the clock, randomness, the instance
//     ID or another projection's buckets (which may stand at another
//     checkpoint during a rebuild).
//   - Queries read bbolt only, never JetStream. Runner.WaitFor lets a query
//     wait until every projection has reached the sequence of a write it has
//     just made (read-your-writes); Runner.Checkpoint is the lowest
//     projection checkpoint, so during a rebuild it is the rebuild's
//     progress.
//   - Every view records its sequence. OrderView, WalletView, OrphanView
//     (the deposit view), PayoutView and BillView carry "seq", the stream
//     sequence of the last commit applied to that order, wallet, deposit,
//     payout or bill; ledger entries carry the seq of their event. (Payment
//     lists and settlements carry none: their wire types have no seq.) The
//     view types are the wire types of package api.
//   - Deterministic. Read models are built from event data only, so Replay,
//     a rebuild from sequence 1 into a fresh file, gives the same Store.Hash
//     as the live file at the same checkpoint with the same registry.
//
// # Readiness and lag
//
// Runner.Ready is false, with a reason, until Run has caught every
// projection up ("rebuilding projections up to seq 500: wallets at seq
// 120"), and after Run has returned. Runner.Lag(head), with head from
// eventstore.Store.LastSeq, is the number of commits the read models are
// behind the stream (bankbook_projection_lag_events).
//
// # Read-only
//
// OpenReadOnly opens a file with bbolt's read-only mode and a shared lock,
// for replays and audits: it writes nothing (no bucket, no instance ID, no
// reset), queries and Hash work, Apply returns ErrReadOnly. A file that does
// not hold every registered projection at its version is refused with
// ErrStale. Readers and a writer exclude each other: whoever comes second
// fails with ErrLocked after one second.
//
// # Damaged files
//
// Open and OpenReadOnly check an existing file before using it: it must be
// at least as long as its pages say (a truncated file would otherwise kill
// the process with SIGBUS when a missing page is read), every bucket, key
// and value must be readable, and bbolt's consistency check must pass. The
// check reads the whole file once, with faults turned into errors. A file
// that fails it is refused with a *DamagedError (ErrDamaged) naming it;
// since the read models are derived from the log, MoveAside it and Open
// starts a new file that the Runner rebuilds from sequence 1.
//
// # Instances
//
// Each file gets a random instance ID (16 hex digits) on its first writable
// open. The Runner's durable consumer is "readmodels-<instance ID>": a wiped
// data directory starts a new durable from sequence 0 instead of resuming one
// that belongs to files that are gone. Only one Store may have a file open
// for writing; a second Open fails after one second with ErrLocked.
//
// # Layout
//
// Bucket "meta" holds "instance_id" and, per registered projection,
// "projection:<name>" → version (uint64) checkpoint (uint64), both
// big-endian. (Files from before projections had their own checkpoints hold
// one shared "checkpoint" key and no projection records: Open removes the
// key and rebuilds every projection.) The default projections own these
// top-level buckets:
//
//	orders    orders                 order_id → JSON of OrderView
//	          orders_open_by_amount  amount (uint64) order_id → nil, the open orders (orphan candidates)
//	          orders_by_status       status or "*" 0x00 submitted_at 0x00 order_id → nil (order.search)
//	          orders_by_depositor    normalised depositor name 0x00 submitted_at 0x00 order_id → nil
//	          orders_by_buyer_name   normalised buyer name 0x00 submitted_at 0x00 order_id → nil
//	wallets   wallets                user_id → JSON {user_id, balance, entries (count), seq}
//	          wallet_entries         user_id 0x00 seq(8) version(4) → JSON of WalletEntry
//	ledger    ledger_balances        account → balance (int64, big-endian two's complement; debit positive)
//	          ledger_entries         account 0x00 seq version posting → JSON of LedgerEntry
//	deposits  deposits               deposit_id → JSON of OrphanView (every deposit)
//	          orphans                deposited_at|deposit_id → deposit_id (unresolved orphans only)
//	candidates candidate_orders      amount(8) order_id → submitted (Unix µs, 8) normalised name: the open orders
//	          candidate_order_ids    order_id → amount(8) status: the open orders
//	          candidate_orphans      deposit_id → JSON {amount, name, at, open, ranked, more}: every orphan, with the
//	                                 best open orders of its amount and the best closed unpaid (the orphan
//	                                 queue's candidates)
//	          candidate_orphans_by_amount  amount(8) deposit_id → nil (unresolved orphans only)
//	          candidate_refs         order_id 0x00 deposit_id → nil: the orphans that rank an order
//	          candidate_closed_orders  amount(8) closed_at(8) order_id → as candidate_orders: the orders closed
//	                                 unpaid in the last 7 days, for the orphans recorded after them
//	          candidate_closed_by_time closed_at(8) amount(8) order_id → nil (to let the old ones go)
//	payouts   payouts                payout_id → JSON of PayoutView
//	          payouts_by_status      status or "*" 0x00 requested_at 0x00 payout_id → nil (payout.list)
//	bills     bills                  bill_id → JSON of BillView (payments [] there)
//	          bill_payments          bill_id 0x00 seq(8) version(4) → JSON of BillPayment, in recording order
//	          bills_current          distributor_id 0x00 store_id → bill_id (current bills only)
//	links     links_by_distributor   distributor_id 0x00 store_id → JSON of StoreView
//	store_payments store_payments_by_distributor  distributor_id 0x00 paid_at(8) deposit_id → JSON of BillPayment
//	          store_payments_by_store             store_id 0x00 paid_at(8) deposit_id → JSON of BillPayment
//	settlements settlements          distributor_id 0x00 date (YYYY-MM-DD) → JSON of Settlement
//	notifications, deposit_index, payout_index: see their files
//	reconciliations reconcile_runs   seq(8) run_id → JSON of ReconcileRunSummary (reconcile.list)
//	series    series_state           account → balance(8) open count(8), for the suspense and payouts-pending accounts
//	          series_open            account 0x00 key → JSON of OpenItem (domain.Clearing keys them)
//	          series_open_by_since   account 0x00 since 0x00 key → nil
//	          series_points          account 0x00 seq(8) → JSON of SeriesPoint (ledger.series)
//	reconcile_carry reconcile_carry  "bank" 0x00 account, or "payouts" → JSON {run_id, items, covered_from, covered_to, compared_seq}: the open timing differences, how far runs covered
//	          reconcile_payout_runs  run_id → JSON of domain.PayoutRunCover: what each payouts run compared of the recorded payouts
//	          reconcile_payouts_named payout_id → run_id: the first payouts run that named the payout in any category
//
// paid_at(8) is Unix microseconds as a big-endian uint64 with the sign bit
// flipped, so that byte order is time order.
//
// # Content hash
//
// Store.Hash is the lower-case hex SHA-256 of this byte sequence, where
// str(x) is len(x) as a big-endian uint32 followed by the bytes of x:
//
//	str("bankbook.readmodels.v1")
//	checkpoint as a big-endian uint64
//	for each bucket of a registered projection, in ascending byte order of name:
//	    str(name) contents(bucket)
//
//	contents(b) = for each key of b in bbolt (ascending byte) order:
//	                  0x01 str(key) str(value)        a value
//	                  0x02 str(key) contents(nested)  a nested bucket
//	              then 0x00
//
// The "meta" bucket is left out, and with it the instance ID and the
// versions, so a replay into a fresh file (with its own instance ID) hashes
// the same as the live file at the same checkpoint; the checkpoint itself is
// hashed explicitly. It is the one checkpoint every projection stands at:
// while they stand at different ones (during a rebuild) Hash returns
// ErrRebuilding.
package projections

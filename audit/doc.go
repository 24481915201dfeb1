// Package audit verifies the event stream and the live read models:
// `bankbook audit verify`. Verify reads the whole stream once, in order,
// with direct gets only (eventstore.Reader, what the auditor identity may
// do), folds it with the pure functions of package domain, and reports
// every finding with the check that made it and, where it has one, the
// stream sequence of the commit it is about. It writes nothing but a
// temporary replay, which it removes.
//
// What each check proves, and what it does not:
//
//   - trial_balance: every posting domain.Postings derives from the events
//     names two different, non-empty accounts and a positive amount, and
//     the sum of all account balances is 0 after every commit. Since a
//     well-formed posting always balances, this proves the ledger rebuilt
//     from the log is double-entry at every commit; a forged event whose
//     postings are well-formed balances too and is caught (if at all) by
//     the checks below. The first failing sequence is named with the
//     commit's account deltas. An account whose balance leaves the 64-bit
//     range (it wraps around, and the sum still comes to 0) is named at
//     the commit where it does.
//   - bank_transactions: no two deposit.recorded events name the same bank
//     transaction (normalized account number, bank_txn_id): every bank
//     transaction the log holds is accounted for once; each is recorded
//     under the deposit ID its account and bank transaction give
//     (domain.NewDepositID), on that deposit's aggregate, as the engine
//     knows it, and a deposit's other events are on its aggregate too.
//     It does not prove that every transaction at the bank is in the log
//     (that is reconciliation's).
//   - wallets: for every wallet aggregate, the balance folded from its own
//     wallet.credited/wallet.debited events (domain.Wallet) equals the
//     ledger account liabilities:wallet:<user> folded from the postings of
//     every event of the stream; no wallet is credited twice for one Ref;
//     the events of a wallet name its user. A mismatch names the sequence
//     from which the two have differed without agreeing again.
//   - clearing: the open items of liabilities:suspense:unmatched (orphan
//     deposits not resolved, or reopened) and of
//     liabilities:payouts:pending (payouts requested, not settled or
//     failed) are listed with their age, and each account's balance equals
//     the sum of its open items. It proves that every won in these
//     accounts is explained by an item; not that the items are right.
//   - chains: each aggregate's commits, in stream order, are linked as
//     eventstore.VerifyChain checks: every commit's prev_seq is the
//     aggregate's message before it and (format 2) its prev_hash is that
//     message's hash. A removed, inserted, reordered or changed commit of
//     an aggregate is named by the sequence of the first link it breaks.
//     It does not cover an aggregate's last commit, a whole aggregate
//     removed, or a stream truncated after an aggregate's last commit:
//     only a trusted stream digest (eventstore.Digest) does. Format 1
//     commits are linked by sequence only (Checked.Unchained counts them).
//     A forger holding the engine's keys can write a commit that links
//     correctly: the chains prove the log was not changed after the fact,
//     not that what was appended was legitimate (the other checks look at
//     that).
//   - aggregates: the events of each aggregate have versions 1, 2, 3, …
//     without a gap or a repeat (after a damaged commit the count resumes
//     from the next readable one). Orders move only as docs/domain.md's
//     table says (orderMoves), and a bill command's events on a link are
//     what the engine decides again on the link as it was (links).
//   - no_event_skipped: no commit of the stream is damaged (not a commit,
//     or an event the codec cannot decode, such as an unknown event type)
//     unless an operator set it aside (as recorded in the live read
//     models' skipped-commit records, or by Options.SetAside). Such a
//     commit is skipped by every projection, so nothing else checked here
//     sees it either.
//   - reconciliations: each reconciliation run's aggregate holds one
//     event, its result (reconcile.completed), under the ID its kind and
//     input file give (domain.NewReconciliationID), with counts its lists
//     hold (every item unless it says it left some out). It proves a run's recorded result was not
//     replaced or added to later, nor its counts changed apart from its
//     items; not that the comparison itself was right.
//   - read_models: the live read models' content hash (projections.Store.Hash)
//     equals that of a fresh replay of the stream up to the live
//     checkpoint: a corrupted file, a checkpoint moved back or forward, or
//     content no event explains is named with the live checkpoint. A file
//     whose projections stand at different checkpoints has no content
//     hash: each projection's buckets are compared with a fresh replay up
//     to its own checkpoint (projections.DiffProjections), and a
//     difference is named at that checkpoint; a projection merely behind
//     the others (an engine stopped while it rebuilt it) is no finding,
//     and Checked.ReadModelsBehind lists it. The live
//     file is opened read-only; while the engine holds it (bbolt's file
//     lock refuses a reader while a writer has it open, ErrLocked), the
//     live hash comes from Options.Live (the engine's
//     bankbook.q.projection.status with hash) instead, and with it the
//     commit, if any, that the engine's read models cannot apply (a
//     finding at that commit's sequence), and the set-aside records
//     (Options.SetAside).
//
// Verify returns an error (ErrCannotRun) only when it could not run; a
// Report with findings is the normal outcome of a failed verification.
package audit

// Package projections folds the event stream into read models kept in one
// bbolt file, and answers queries from that file alone.
//
// # Guarantees
//
//   - Atomic batches. Store.Apply applies a batch of commits to every read
//     model and writes the stream-sequence checkpoint (the sequence of the
//     batch's last commit) in ONE bbolt transaction. After a crash the file
//     holds either the whole batch and its checkpoint, or neither.
//   - Ack after commit. The Runner reads the stream with eventstore.Follow,
//     which acknowledges a batch to JetStream only after the handler returned
//     nil, that is after the bbolt transaction committed. A crash between the
//     commit and the ack leaves the batch unacknowledged.
//   - Exactly-once effect. Apply skips every commit at or below the
//     checkpoint, and the Runner restarts from the checkpoint on disk, so a
//     batch delivered again after such a crash is never applied twice. A batch
//     that does not continue right after the checkpoint fails with ErrGap and
//     writes nothing.
//   - Forward compatible. Events of a type this engine's domain.Codec does not
//     know (written by a newer engine) are skipped, and the checkpoint moves
//     past them. Any other decoding error (say a schema version newer than the
//     codec's) stops the batch, and the Runner retries it with backoff.
//   - Queries read bbolt only, never JetStream. Runner.WaitFor lets a query
//     wait until the read models have reached the sequence of a write it has
//     just made (read-your-writes).
//   - Deterministic. Read models are built from event data only (never the
//     clock, randomness or the instance ID), so Replay, a rebuild from
//     sequence 0 into a fresh file, gives the same Store.Hash as the live file
//     at the same checkpoint.
//
// # Instances
//
// Each file gets a random instance ID (16 hex digits) on its first open. The
// Runner's durable consumer is "readmodels-<instance ID>": a wiped data
// directory starts a new durable from sequence 0 instead of resuming one that
// belongs to files that are gone. Only one Store may have a file open; a
// second Open fails after one second with ErrLocked.
//
// # Layout
//
// Bucket "meta" holds "checkpoint" (uint64, big-endian) and "instance_id".
// The read models own these top-level buckets:
//
//	orders           order_id → JSON of OrderView
//	orders_open_by_amount  amount (uint64) order_id → nil, the open orders (orphan candidates)
//	wallets          user_id → JSON of WalletView
//	ledger_balances  account → balance (int64, big-endian two's complement; debit positive)
//	ledger_entries   account 0x00 seq version posting → JSON of LedgerEntry
//	deposits         deposit_id → JSON of OrphanView (every deposit)
//	orphans          deposited_at|deposit_id → deposit_id (unresolved orphans only)
//
// # Content hash
//
// Store.Hash is the lower-case hex SHA-256 of this byte sequence, where
// str(x) is len(x) as a big-endian uint32 followed by the bytes of x:
//
//	str("bankbook.readmodels.v1")
//	checkpoint as a big-endian uint64
//	for each top-level bucket except "meta", in ascending byte order of name:
//	    str(name) contents(bucket)
//
//	contents(b) = for each key of b in bbolt (ascending byte) order:
//	                  0x01 str(key) str(value)        a value
//	                  0x02 str(key) contents(nested)  a nested bucket
//	              then 0x00
//
// The "meta" bucket is left out, and with it the instance ID, so a replay
// into a fresh file (with its own instance ID) hashes the same as the live
// file at the same checkpoint; the checkpoint itself is hashed explicitly.
package projections

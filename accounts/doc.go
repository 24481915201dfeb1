// Package accounts is the directory of dedicated account numbers: each
// store link (a distributor–store pair, domain.LinkID) gets one number
// from a configured range, a virtual sub-account of the collection
// account, and deposits to that number are the store's payments. The
// directory lives in a JetStream KV bucket (default "bankbook_accounts")
// shared by every engine instance.
//
// # Keys
//
//	next               the counter: the next number to try (JSON)
//	num.<number>       the link ID the number is claimed for
//	link.<link ID>     the link's number
//
// Numbers are decimal, zero-padded to the width of the range's To.
//
// # Allocation
//
// Allocate(link) first reads link.<link>: a link that has a number gets it
// back, so linking again, or a retried link command, finds its own claim.
// Otherwise:
//
//  1. The counter is advanced by compare-and-swap (internal/kvcas); the
//     value it had is the candidate. Each candidate is handed out once.
//  2. num.<candidate> is created if absent, with the link ID. A number
//     that is already claimed for another link is skipped (step 1 again);
//     one already claimed for this link is taken as this link's.
//  3. link.<link> is created if absent, with the number. If another call
//     for the same link created it first, that call's number is the
//     link's and is returned; the number this call claimed is released
//     (num.<candidate> deleted at the revision claimed).
//
// Guarantees:
//   - A link's number never changes once link.<link> is written. Concurrent
//     Allocate calls for one link, on any instances, all return it.
//   - Two links never get the same number: num.<number> is created only
//     if absent, so at most one link holds a number, and a link's number is
//     always one it holds.
//   - Every number Allocate returns is in the range configured when it
//     was allocated. Changing the range later changes no number: widen a
//     range, do not move it.
//   - Lookup(number) finds the link for every number Allocate returned.
//
// Numbers that are never any link's (holes): a number released in step 3,
// and one claimed in step 2 by a call that then failed before step 3 (a
// crash, a deadline). The counter never goes back, so such a number is
// never handed out again; in the second case Lookup still names the link
// that claimed it, which is harmless, since no one was ever told the
// number. Holes use up the range: a range is exhausted when the counter
// has passed To, holes or not. Within one process, calls for the same link
// wait for each other, so holes come only from races between instances or
// from failures.
//
// # Restoring
//
// The bucket is not the record of which link has which number: the event
// stream is (each link's store.linked event carries it). A bucket that lost
// its entries has no counter (HasCounter false) and would start again at
// From, handing out numbers stores already have. Restore(links) writes
// the stream's numbers back, claimed and bound as Allocate does, and moves
// the counter past the highest of the range's; the engine does it at start
// when the counter is absent and the stream holds links, before it takes a
// command. Remaining reads the counter for the metrics.
//
// # Errors
//
// When the counter has passed To, Allocate fails with ErrExhausted, a
// domain error of kind KindRule (422 account_range_exhausted): the range
// is a limit the operator sets, and retrying does not help until it is
// widened. Links that have a number keep getting it.
//
// Every KV request has a timeout of its own (Config.AttemptTimeout, 1s): a
// read that gets no answer, or a transient refusal (no leader), is made
// again, and a write whose answer was lost is checked by reading the entry,
// within the caller's deadline (Config.Timeout, 5s, without one). An error
// that remains matches transient.ErrUnavailable (503). An Allocate that
// failed that way may have claimed a number (a hole, above); repeating it
// is always safe.
package accounts

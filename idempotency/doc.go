// Package idempotency keeps durable idempotency records in a JetStream KV
// bucket shared by every engine instance on the same NATS.
//
// A command that carries an Idempotency-Key first claims the key with Begin.
// The claim is a create-if-absent on the key, so exactly one request executes;
// the others see the stored reply (same body), ErrKeyReused (different body)
// or ErrInProgress (still executing). When the command finishes, Complete
// stores its reply, which is returned to every later repeat for as long as the
// record lives (Config.TTL, at least 7 days by default).
//
// A claim carries a Plan: the IDs the command generated before executing (the
// new order's ID, say). If the executing instance fails (Abandon) or dies
// (its lease runs out), the next repeat takes the claim over and executes
// with the same Plan, so it addresses the same aggregate; the command layer
// then finds the first attempt's events by their idempotency key instead of
// acting twice. This is why the outcome does not depend on JetStream's
// message-dedup window.
//
// The lease (Config.Lease, 15s by default) bounds how long a key stays in
// progress after the instance executing it died: at most that long after
// the attempt began, a repeat executes. ErrInProgress comes as an
// *InProgressError whose RetryAfter is the time left on the lease.
//
// Every KV request has a timeout of its own (Config.AttemptTimeout, 1s): a
// read that gets no answer, or a transient refusal (no leader), is made
// again, and a write whose answer was lost is checked by reading the record,
// all within the caller's deadline. An error that remains matches
// transient.ErrUnavailable: the claim may or may not be stored, and the
// next repeat finds out (it sees its own claim in progress, or claims).
package idempotency

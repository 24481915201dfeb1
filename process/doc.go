// Package process holds bankbook's process managers: the work that must
// follow an event for sure, run by reactors (eventstore.Store.Reactor) shared
// by every engine instance, outside the request path.
//
// ReactToOrder settles the wallet refunds order commits name. ReactToMoney
// records the payouts that withdrawals and refunds to the bank call for
// (payout.requested), and carries out orphan resolutions out of suspense; it
// never calls the provider. SendPayouts, on the payouts' own reactor (run
// only by instances with a provider), sends each requested payout through
// the firm-banking provider and records its result. ReturnFailedPayouts, on
// a reactor every instance runs, returns a failed payout's money to its
// source. So payouts run as concurrently as their reactor allows, a slow or
// refusing provider holds up no wallet or deposit reaction, and an instance
// without a provider takes no payout to send.
//
// Delivery is at least once and in no guaranteed order, so every step is
// idempotent: each is a command (package commands) that decides on the
// aggregate's recorded state and appends nothing when it already took
// effect (a payout's result is recorded once, its money returned once), and
// payouts are idempotent at the provider on the payout ID.
//
// Each handler error is an outcome of the worker contract (package worker):
//   - done (nil), also for a payout the provider fails or refuses
//     (firmbanking.ErrRefused: invalid, or an account it will not pay, and
//     Status shows no earlier attempt was accepted — if one was, the payout
//     follows that one): it is recorded as payout.failed, never retried;
//     its money goes back when that commit is handled (a commit of its
//     own, retried and dead-lettered like any other);
//   - a wait (worker.RetryAfter with a nil error), never dead-lettered: a
//     payout still pending at the provider, an event type this engine does not know (a newer version wrote it);
//   - worker.Permanent, dead-lettered at once: a refund to the bank without
//     a bank account, a payout ID the provider knows for a different
//     transfer (firmbanking.ErrIdempotencyMismatch: it may have been sent);
//   - any other error, a failure (the provider unavailable, timeouts, 429):
//     delivered again after a backoff and dead-lettered after the reactor's
//     attempts run out.
package process

// Package process holds bankbook's process managers: the work that must
// follow an event for sure, run by reactors (eventstore.Store.Reactor) shared
// by every engine instance, outside the request path.
//
// ReactToOrder settles the wallet refunds order commits name. ReactToMoney
// sends withdrawals and refunds to the bank through the firm-banking
// provider and records their result (a failed payout returns the money to
// its source), and carries out orphan resolutions out of suspense.
//
// Delivery is at least once and in no guaranteed order, so every step is
// idempotent: each is a command (package commands) that decides on the
// aggregate's recorded state and appends nothing when it already took
// effect, and payouts are idempotent at the provider on the payout ID.
//
// Each handler error is an outcome of the worker contract (package worker):
//   - a wait (worker.RetryAfter with a nil error), never dead-lettered: a
//     payout still pending at the provider, a payout without a provider, an
//     event type this engine does not know (a newer version wrote it);
//   - worker.Permanent, dead-lettered at once: a refund to the bank without
//     a bank account;
//   - any other error, a failure: delivered again after a backoff and
//     dead-lettered after the reactor's attempts run out.
package process

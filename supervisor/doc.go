// Package supervisor runs bankbook's long-running background parts
// (projections, reactors, timers, the bank scanner) and keeps them running.
//
// A part is a name and a Run(ctx) error. The supervisor guarantees:
//
//   - A part that returns before Stop — with an error, with nil, or by
//     panicking (the panic is recovered, with its stack logged) — is started
//     again after a backoff that doubles from Config.MinBackoff to
//     Config.MaxBackoff, and starts over from MinBackoff once a run has lasted
//     Config.ResetAfter. Nothing in the background stops quietly.
//   - Every part has a Status (state, since when, last error, restarts,
//     readiness and a detail line) that Statuses returns as a snapshot, for
//     /readyz and metrics.
//   - A running part can report finer health itself through the Handle that
//     From(ctx) returns: "running but not ready: catching up"
//     (Handle.SetReady) or "failing since T: err" while it keeps running
//     (Handle.Report). Outside a supervisor the Handle is a no-op.
//   - Stop cancels every part's context and waits for them at most until its
//     own context ends; it then names the parts that did not stop
//     (*StopError, matching ErrStopTimeout). Stop never waits without a bound.
//
// The supervisor does no I/O of its own: it imports no NATS and no bbolt.
package supervisor

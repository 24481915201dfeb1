// Package loadgen is the load generator of 'bankbook bench': the
// performance table of issue 13, measured the way a client sees the engine
// and beside the baseline it is judged against.
//
// It starts the engine as a separate process (internal/engineproc: the
// real binary, 'bankbook serve', a temporary data directory, loopback
// ports), once per durability profile, and drives it over TCP as clients
// do: the app identity, one connection per client, order submits with and
// without an Idempotency-Key and distinct buyers. The baseline is a
// synchronous JetStream publish of a message the size of a commit (900
// bytes) to a scratch stream with the event stream's settings, on the same
// server, at the same concurrency, with the engine identity (the only one
// that may use JetStream).
//
// What it guarantees:
//   - Every figure has its baseline from the same run: the rounds of a
//     cell alternate (baseline, engine, baseline, engine, ...) and the
//     report gives medians over the rounds; a ratio is the median of the
//     rounds' ratios.
//   - Engine CPU is read from /proc/<pid>/stat over each phase, from its
//     start until the engine is idle again (so the background work a
//     submit causes, projections and reactors, counts against it). The
//     raw publishes run on the same process, whose server is embedded.
//   - Command-to-query visibility is measured at half the submit rate the
//     engine sustained in the same run: a submit, then bankbook.q.order.get
//     with min_seq set to the reply's seq; the figure is reply to answer.
//   - Memory: the engine's RSS after a number of orders, and the RSS of a
//     bare nats-server ('bankbook bench bare-server') holding the same data
//     directory, with the streams' sizes.
//   - Nothing is asserted about timing: a Run fails only when the engine
//     cannot be started or a request fails.
//   - Every engine process is stopped when Run returns (and dies with the
//     caller's process).
package loadgen

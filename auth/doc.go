// Package auth decides who may reach bankbook over NATS and what each
// identity may do there.
//
// Every identity has a role (app, feed, operator, auditor, engine). On first
// start the engine creates one NKey per role and keeps each seed in
// <data-dir>/auth/<role>.nk (mode 0600, reused on restart); an operator can
// supply their own users instead (LoadFile). Render turns the identities
// into a nats-server configuration, which the embedded server loads and
// which external clusters can use as is (`bankbook auth config`):
//
//   - account ENGINE holds the engine identities only. It owns JetStream
//     (the event stream, the buckets, the timers) and exports the service
//     subjects (bankbook.cmd.>, bankbook.q.>, bankbook.sim.>, $SRV.>) and the
//     read-only event-stream API the auditors need;
//   - every other identity has an account of its own, named after it, that
//     imports only its role's subjects from ENGINE, with shared requester
//     information; its user may publish exactly those subjects and subscribe
//     only to its inbox. It cannot see another identity's replies, the
//     engine's subjects, or any JetStream or KV API beyond what it imports.
//
// Because imports share requester information, the NATS server adds the
// Nats-Request-Info header to every request that crosses into ENGINE, naming
// the requester's account. Actor reads the acting identity from that header:
// a client cannot choose it.
package auth

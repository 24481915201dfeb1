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
//     subjects (bankbook.q.>, bankbook.sim.>, $SRV.>), the read-only
//     event-stream API the auditors need, and to each other account alone
//     that account's commands (bankbook.from.<account>.cmd.>);
//   - every other identity has an account of its own, named after it, that
//     imports only its role's subjects from ENGINE, the commands mapped
//     under its own name (FromSubject); its user may publish exactly those
//     subjects and subscribe only to its inbox. It cannot see another
//     identity's replies, the engine's subjects, or any JetStream or KV API
//     beyond what it imports.
//
// Because each account's command import is mapped under its own name, a
// command arrives in ENGINE on a subject that names its sender, written by
// the server: Actor reads the acting identity from it, and no header a
// client writes changes it (ADR 0013).
package auth

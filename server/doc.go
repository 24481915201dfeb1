// Package server exposes bankbook over NATS as one nats.go micro service
// named "bankbook" (see docs/api.md for every subject, field and code).
//
// Requests are decoded strictly (unknown fields and trailing data are
// rejected), validated, and then executed on their own goroutine, bounded by
// Config.MaxInFlight: micro calls a handler serially per endpoint, and one
// slow command must not hold up commands on other aggregates.
//
// Commands that carry an Idempotency-Key go through the idempotency store:
// one execution per key, the stored reply for repeats (header
// Idempotency-Replayed: true), 422 for a reused key with another body, 409
// while the first is executing.
//
// Queries read the bbolt read models only. A query waits (briefly) until the
// read models include every commit this instance has appended, so a client
// that submits and then reads sees its own write.
//
// Stop drains: it stops taking requests and waits for those in flight.
package server

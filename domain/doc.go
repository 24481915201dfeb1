// Package domain holds bankbook's business rules as pure code.
//
// Aggregates expose decide functions (state + command → events or a domain
// error) and an Apply method (state + event → state, never fails). Time, IDs
// and random choices are passed in by the caller; nothing here does I/O,
// logging or concurrency, so every rule is testable as given/when/then.
//
// Errors returned by decide functions are *Error values with a Kind that the
// API layer maps to a status code (400, 404, 409, 422). Match them with
// errors.Is against the sentinels in errors.go; matching is by Code.
//
// Events are plain structs registered with a Codec under a type name and a
// schema version. The Codec upcasts stored payloads of older schema versions
// to the current one before decoding, so old events always load as new ones.
package domain

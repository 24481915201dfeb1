// Package snapshots keeps the latest snapshot of each aggregate, as opaque
// bytes under a key, in a JetStream KV bucket shared by every engine
// instance ("bankbook_snapshots" by default). A snapshot larger than one KV
// value (the server's max payload) is split into chunks.
//
// What it guarantees is little, on purpose: a snapshot is an optimisation
// (see commands.Repository, which decides what goes in one and checks every
// snapshot it reads against the event stream). Get returns the bytes of one
// complete Put, checked against the SHA-256 the Put recorded, or an error —
// never a torn value, and it never waits for a writer: a reader that races
// writers replacing the same key gets ErrChanged at once and its caller
// falls back to reading the events. Deleting the bucket loses nothing but
// time.
//
// Every KV request has a timeout of its own (Config.AttemptTimeout, 1s) and
// is made again after a transient failure (no answer, no leader) while the
// deadline allows; every request here may be repeated. An error that
// remains matches transient.ErrUnavailable.
//
// # Layout
//
// For a key k (stored base64url-encoded as K): "K" holds the header (JSON:
// slot, chunks, size, sha256) and "K.<slot>.<i>" the chunks, in one of two
// slots, "a" and "b". A Put writes the slot the current header does not
// name and then the header, so a reader of the current header is not
// disturbed by the next Put; values are overwritten in place (history 1),
// so replacing a snapshot leaves nothing behind.
package snapshots

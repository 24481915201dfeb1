// Package groupcommit lets concurrent writers share the syncs that make
// their JetStream writes durable.
//
// Under the safe durability profile the embedded server fsyncs every write
// before it acknowledges it, and the disk's sync rate (a few thousand a
// second, whatever the stream) bounds the engine: a command that writes six
// times costs six fsyncs, one after the other. With group commit the
// embedded server does not sync per write: it writes each message to the
// operating system before its ack, as under fast. The engine then makes the
// write durable itself before anyone relies on it: a Syncer syncs the file
// system that holds the server's store (syncfs(2), Linux only) and every
// writer that was waiting when that sync started is released by it. One
// sync covers every write of every stream that reached the operating
// system before it started, so at 64 concurrent clients one sync serves a
// dozen writes or more.
//
// What a writer sees is what the safe profile gives it:
//
//   - Wrap returns a jetstream.JetStream whose publishes, KV writes and
//     stream deletions first wait until what was answered before them is
//     durable (their writer may have read it), and return only after a
//     sync that started after the server answered them: an ack means the
//     write is on disk, and nothing is written on top of what is not. A
//     write that got no answer may be stored late: WaitDirty takes nothing
//     for clean until a sync that started UnknownWindow after it.
//   - A Deferred context (a command) skips both waits: the chain has sync
//     points of its own (SyncPointFunc before its append, WaitDirty before
//     its answer). A writer that learns from a read rather than an ack
//     that a write was stored waits with Settle.
//   - A reader that acts on what it read beyond its own writes waits first:
//     the projection runner before it commits a batch to its synced bbolt
//     file (WaitSeq: read models never get ahead of the stream), the worker loops
//     that call a third party (payouts, notifications) before the call,
//     and a command before it replies (it may have read another command's
//     write that is not synced yet). WaitDirty costs nothing when no write
//     is waiting for a sync.
//   - A sync that fails fails every later Wait as well (after a failed
//     fsync, Linux may drop the dirty pages and a later sync can succeed
//     without them): the engine stops acknowledging writes until it is
//     restarted.
//
// Syncer only works where the engine can reach the server's store: with the
// embedded server. docs/decisions/0012-group-commit-by-syncing-the-file-system.md
// says why it replaced atomic batches.
package groupcommit

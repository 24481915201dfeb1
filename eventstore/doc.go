// Package eventstore is bankbook's only door to the JetStream event stream.
//
// # Layout
//
// All events live in one stream (default BANKBOOK_EVENTS) with subjects
// <prefix>.<aggregate type>.<aggregate id>, one subject per aggregate. The
// stream denies delete and purge: sequences are gap-free and a projection that
// reads the stream in order cannot skip an event. An aggregate's type and ID
// are one subject token each (Ref.Validate): Append and Load refuse anything
// else with ErrInvalid, so a wildcard can never read or write another
// aggregate.
//
// # Commits
//
// A command's events are appended as one Commit: a single JetStream message
// whose body carries every event of the command. A commit is therefore visible
// entirely or not at all, at the cost of one stored message (see
// docs/decisions/0001-one-message-per-commit.md for the measurements against
// JetStream atomic batches). Each commit records PrevSeq, the stream sequence
// of the aggregate's previous commit, so the commits of an aggregate form a
// chain that Load walks backwards with direct gets by sequence: loading costs
// O(commits of the aggregate), independent of the size of the stream.
//
// # Hash chain and digest
//
// A commit's hash (Hash) is the SHA-256 of its stored message bytes. Append
// writes commit format 2: each commit also records PrevHash, the hash of
// the message at its PrevSeq (from a bounded cache of what the Store
// appended or read, or read by sequence), so an aggregate's commits form a
// hash chain that VerifyChain checks: an edited, removed or reordered
// commit breaks the next link, unless every later commit of the aggregate
// is rewritten too. Format 1 commits are still read, unchained. Digest
// hashes every message up to a sequence; against a digest the verifier
// trusts, any rewrite or truncation up to that sequence is detected. No
// signatures: see docs/decisions/0009-commit-hash-chain.md for what this
// proves and what it does not. ParseCommit reads a commit as stored (Seq
// and Hash set); Commit.Upcast is the separate upcasting step.
//
// # Concurrency
//
// Append takes the sequence of the aggregate's last commit as its expectation
// (Nats-Expected-Last-Subject-Sequence). A stale expectation fails with a
// *ConflictError matching ErrConflict and nothing is written; the caller
// reloads and decides again. Every commit carries its CommitID as Nats-Msg-Id.
// If a publish is retried after a lost acknowledgement, the server may answer
// with a stale-sequence error before it checks for duplicates (single replica);
// Append then looks at the aggregate's last commit and, if it is this very
// commit, reports success instead of a conflict. So an acknowledged append
// happens exactly once.
//
// # Availability
//
// Every JetStream request of Append, Load and LastSeq has a timeout of its
// own (Config.AttemptTimeout, 2s by default), shorter than a command's
// deadline: an attempt that gets no answer (a lost ack during a leader
// change) or a transient refusal (no leader, no quorum; see package
// internal/transient) is made again while the deadline allows. Reads are
// repeated as they are; an append is published again with the same
// Nats-Msg-Id, which the dedup window or the conflict check above resolves.
// When the deadline runs out the error matches ErrUnavailable: for an
// append, the commit may or may not be stored.
//
// # Reading
//
// Follow delivers commits in stream order to projections, through a durable
// consumer acknowledged only after the projection has committed, or through an
// ordered consumer for a one-off replay.
//
// Reader reads the whole stream with direct gets only (what the auditor
// identity may do). Its Read and ReadPrepared fetch ahead and decode commits
// on every core while the caller handles earlier ones, and still hand them
// over in stream order, without gaps, on the caller's goroutine.
//
// # Reacting
//
// Reactor returns a worker loop (package worker) that hands every commit of
// some aggregate types to a process manager, at least once, shared by every
// engine instance. A message that is not a commit is dead-lettered at once; a
// commit with an event schema this instance cannot upcast (written by a newer
// version) waits for an instance that can, and is never dead-lettered for it.
//
// # Damaged messages
//
// A message this engine cannot read as a commit is damaged (ErrDamaged, a
// *DamagedError naming its sequence): not a commit, a commit of another
// aggregate than its subject names, an event that cannot be upcast, or one
// that Config.Check refuses (the engine's codec: an unknown event type).
// Load refuses an aggregate whose chain or subject holds one, and Append to
// it fails the same way, so a command is refused with the sequence instead
// of timing out. Follow fails on one, or with FollowOptions.DeliverDamaged
// hands it to the handler in its place (the projections skip and report
// it). SetAside records an operator's decision, with a reason, that a
// damaged message is not history, in the KV bucket Config.SetAsideBucket
// (once; a valid commit cannot be set aside): Load then walks past it to
// the aggregate's message before it, returning a placeholder (Commit.Damaged
// set, no events) whose sequence the next Append expects; Follow marks it
// set aside; reactors acknowledge it without handling it. The message stays
// in the stream, which denies delete. Only damaged messages ever make a read
// of the set-aside bucket, so a healthy stream costs nothing.
package eventstore

// Package ratelimit is a rate limiter shared by every bankbook process on
// the same NATS: a GCRA schedule (the generic cell rate algorithm, as in
// go-redis/redis_rate and redis-cell) kept in a JetStream KV bucket, one key
// per scope. The notification dispatchers use it to keep to a chat
// provider's "at most N requests in any rolling second", however many
// dispatchers run in however many processes.
//
// # The schedule
//
// The bucket (Config.Bucket, default "bankbook_limits", history 1, file
// storage) holds under each scope's key (the scope itself, e.g. "chat") a
// small JSON value: the theoretical arrival time TAT, the last slot given,
// the shared pause-until, and the writer's limit. The key "_clock" is
// written by the clock calibration below; scopes cannot start with '_'.
//
// With emission interval T = (1s/Rate)·(1+Margin) and tolerance
// τ = T·(Burst−1), a reservation made at server time now gets the slot
//
//	slot = max(now, TAT − τ, pausedUntil)
//
// if slot − now ≤ maxWait, and TAT becomes max(TAT, slot) + T. The write is
// one compare-and-set on the key's revision (internal/kvcas); if another
// process wrote first, the key is read and the decision made again. Reserve
// does not sleep for its slot: it returns the slot (At, server time) and
// the Delay until it, and the caller sleeps. It may wait for the network,
// for a calibration, or for another goroutine of the same process to finish
// its compare-and-set on the same scope.
//
// # Guarantees
//
//   - Every slot is given once: the compare-and-set on the revision makes
//     two processes that decided on the same state fail all but one.
//   - With Burst 1, any two slots are at least T apart in server time,
//     whichever processes got them, so a window of length W holds at most
//     ⌈W/T⌉ slots: with an integer Rate, at most Rate in any rolling second
//     (open or closed). Rate+1 consecutive slots span Rate·T =
//     (1+Margin)·1s, so a request that reaches the provider up to Margin·1s
//     after its slot still keeps to the provider's rolling window; that is
//     what Margin buys, at the cost of Margin of the rate (default 0.05:
//     50ms of jitter, 95.2% of Rate). A Burst above 1 lets up to Burst
//     slots come together after a quiet time, which breaks a strict rolling
//     window (up to Burst−1 more in a second).
//   - Reserve claims nothing further than maxWait ahead: it returns a
//     *WaitError (matching ErrNotYet) with the wait instead, and writes
//     nothing.
//   - Pause(d) moves the shared pause-until and the schedule to at least
//     server-now + d, never back; every process's next slot is after it,
//     and slots after a pause come one interval apart (no burst).
//   - Check(r), right before acting, forfeits a slot claimed before a
//     pause that covers it (a *WaitError for the rest of the pause).
//   - Saturated, consecutive slots are exactly T apart: the limiter itself
//     wastes no capacity (BenchmarkLimiterUtilisation below).
//   - Every process limiting a scope must use the same Limit; the key
//     records the last writer's, and State shows it.
//
// # Server time
//
// Slots are in the JetStream server's time, taken from the timestamps the
// server puts on the bucket's messages (jetstream.KeyValueEntry.Created,
// the stored message's time: the server's clock when it stored the write).
// Each Store keeps a lower bound of offset = server time − local time,
// local time being Go's monotonic clock, so this machine's wall clock (its
// skew, its steps) plays no part: processes whose clocks disagree by hours
// share one schedule (TestSkewedProcessesShareOneSchedule). Every entry
// read, stamped s and answered at local t1, gives offset ≥ s − t1; an entry
// this process wrote (sent at t0, answered at t1), or one stored after such
// a write, also gives offset ≤ s − t0. The estimate is the highest lower
// bound, so "now" is underestimated, by at most the width of the best
// sample (a round trip: 0.3–4ms in the tests). When no sample at most 20ms
// wide was seen for a second, the next call calibrates first: it writes the
// "_clock" key and reads it back (two round trips; a busy process's own
// writes keep it fresh without that). An upper bound below the estimate
// proves it wrong (the server's clock went back, or the clocks drift): the
// estimate is reset, Stats.ClockResets counts it and a warning is logged.
//
// Underestimating now makes a caller sleep slightly longer than needed, so
// it never acts before its slot (the tests check every use). Its lateness
// (the estimate's error plus scheduling) must stay within Margin·1s for the
// rolling-window guarantee to hold for requests as well as slots.
//
// # Failure modes
//
// The KV bucket is unavailable (NATS down, a stream without leader or
// quorum): the limiter fails closed. Reserve, Pause and State fail with an
// error matching ErrUnavailable (and transient.ErrUnavailable) within the
// caller's deadline or Config.Timeout; no slot is given, and the caller
// waits and reserves again. A write whose answer was lost is checked by
// reading the key (kvcas); if the call gives up, that write may have
// claimed a slot nobody uses, which only makes the limit stricter. When the
// server comes back on the same store, the schedule carries on
// (TestUnavailableFailsClosedThenRecovers). If the key or the bucket is
// lost (deleted, or acknowledged writes lost with the machine under an R1
// bucket without sync-always), the schedule starts again: slots already
// given may be given again once, and a pause in force is forgotten; use
// Replicas 3 where that matters.
//
// A process stalls after reserving (a GC pause, a descheduled VM, a slow
// step before the send): a Reservation is good only from At until
// At + Margin·1s. Reservation.Valid(time.Now()) says whether the caller may
// still act; if not, it reserves again, and the stale slot is simply
// unused (some utilisation lost, never a burst). A stall after Valid and
// before the request reaches the provider is lateness: a request more than
// Margin·1s late can make one more than Rate in the provider's window.
//
// Clocks:
//   - This machine's wall clock: irrelevant, as above.
//   - A monotonic clock that stops (a suspended VM) makes the estimate lag
//     by the suspension until the next tight sample or calibration (at most
//     a second of running later, or at once if another process wrote the
//     key meanwhile); meanwhile a slot given can be one more than Rate in a
//     window.
//   - The server's clock steps forward: slots not yet used that were
//     reserved ahead (at most maxWait·Rate) can crowd together with new
//     ones once. It steps back: the schedule is in the future by the step,
//     so the limiter holds back (stricter) until server time catches up;
//     processes re-estimate on their next own write.
//   - With a replicated bucket, timestamps come from the stream leader: a
//     leader change between servers whose clocks differ is a step of the
//     difference. Keep the servers' clocks synchronised (NTP).
//
// Contention on the compare-and-set (bucket4j's warning about CAS-based
// distributed buckets: under many concurrent writers of one key most
// writes lose, and throughput and latency degrade): every contender reads
// the key and writes it at the revision read, and all but one lose and go
// round again. BenchmarkReserve on a 2-vCPU VM (embedded server in the
// same process, rate so high that nothing waits; three runs, Config
// defaults):
//
//	contenders                      acquisitions/s   p50         p99         CAS writes lost per acquisition
//	 1 (own Store each)             12,400-13,700    0.05ms      0.35ms      0
//	 8 (own Store each)              4,600-5,100     0.3-0.6ms   13-23ms     2.3-2.9
//	32 (own Store each)              1,600-2,000     6-8ms       104-132ms   9-11
//	32 goroutines on one Store      11,500-12,100    2.1ms       7-10ms      0
//
// So separate processes contending on one key lose throughput and,
// above all, tail latency; the goroutines of one process take turns at a
// scope (one compare-and-set at a time per Store and scope), so only
// processes compete. For bankbook's chat limit (a few requests per second
// from a few processes) contention is negligible: in the three-process
// saturated run (BenchmarkLimiterUtilisation, 60s at 50/s, four acquirers
// per process reserving up to a second ahead) 0.0014 writes were lost per
// acquisition, the rate reached was 47.62/s (100% of 1/T, 95.24% of Rate),
// no rolling second held more than 48 slots or 49 uses, acquirers acted
// 0.7ms (p50), 2.1ms (p99), 9.9ms (max) after their slot, and no
// reservation went stale. A call that loses Config.MaxConflicts (256)
// times fails with ErrContended.
//
// A value under a scope's key that cannot be decoded: every call fails with
// ErrCorrupt (fail closed) until an operator deletes the key.
//
// Store.Stats counts reservations, waits, pauses, lost writes, failures,
// calibrations and clock resets, for metrics.
package ratelimit

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

// MaxPause is the longest pause Pause sets (a longer one is cut to it).
const MaxPause = 24 * time.Hour

// Limiter is one scope's shared limit. It is safe for concurrent use, and
// any number of Limiters (in any number of processes) on the same bucket
// and scope share one schedule.
type Limiter struct {
	s     *Store
	scope string
	p     params
	turn  chan struct{} // shared by the Store's limiters of this scope
}

// Stats returns the counters of the Store the limiter is of (every scope's).
func (l *Limiter) Stats() Stats { return l.s.Stats() }

// take waits for this process's turn to write the scope's key: goroutines
// of one process take turns, so that only processes compete for the key
// (their compare-and-sets would mostly fail against each other). It
// returns the function that ends the turn.
func (l *Limiter) take(ctx context.Context) (func(), error) {
	select {
	case l.turn <- struct{}{}:
		return func() { <-l.turn }, nil
	case <-ctx.Done():
		return nil, transient.Mark(ctx.Err())
	}
}

// Reservation is a claimed slot.
type Reservation struct {
	// Delay is how long to wait before acting (0: act now).
	Delay time.Duration
	// At is the slot, in the server's time.
	At time.Time

	start, end time.Time // local (monotonic) instants of At and At+Margin
}

// Valid reports whether a request may be made at now (time.Now()) under
// this reservation: not before the slot, and not more than Margin·1s
// after it. A process that stalled between reserving and acting (a GC
// pause, a descheduled VM, a slow step before the send) finds its
// reservation invalid and reserves again, rather than crowd the slots
// after it. The zero Reservation is never valid.
func (r Reservation) Valid(now time.Time) bool {
	return !r.start.IsZero() && !now.Before(r.start) && !now.After(r.end)
}

// Reserve claims the next free slot if it is at most maxWait away,
// without sleeping: one compare-and-set on the scope's key, made again if
// another process wrote first. The caller waits Delay, checks Valid, and
// acts.
//
// If the next slot is further than maxWait, nothing is claimed and the
// error is a *WaitError (matching ErrNotYet) saying how far it is. Any
// other error means no slot: ErrUnavailable when the bucket could not be
// used in time (fail closed; the caller waits and reserves again),
// ErrContended, ErrCorrupt, or the context's error.
func (l *Limiter) Reserve(ctx context.Context, maxWait time.Duration) (Reservation, error) {
	if err := l.s.ensureClock(ctx); err != nil {
		return Reservation{}, l.fail("reserve", err)
	}
	done, err := l.take(ctx)
	if err != nil {
		return Reservation{}, l.fail("reserve", err)
	}
	defer done()
	kv := &observed{kv: l.s.kv, c: l.s.clock}
	by := l.s.nonce()
	rev, err := kvcas.Update(ctx, kv, l.scope, l.casOptions(), func(e kvcas.Entry) ([]byte, error) {
		st, err := l.decode(e)
		if err != nil {
			return nil, err
		}
		now := l.s.serverNow()
		st = l.trusted(st, now, maxWait)
		next, _, wait := l.p.reserve(st, now, maxWait)
		if wait > 0 {
			return nil, &WaitError{Wait: wait}
		}
		next.By = by
		return encodeState(next), nil
	})
	l.s.stats.conflicts.Add(kv.conflicts)
	if w, ok := errors.AsType[*WaitError](err); ok {
		l.s.stats.notYet.Add(1)
		return Reservation{}, w
	}
	if err != nil {
		return Reservation{}, l.fail("reserve", err)
	}
	value, ok := kv.stored(rev)
	if !ok {
		return Reservation{}, l.fail("reserve", fmt.Errorf("revision %d written but not seen", rev))
	}
	st, err := decodeState(value)
	if err != nil {
		return Reservation{}, l.fail("reserve", err)
	}
	l.s.stats.reserved.Add(1)
	local := l.s.clock.local()
	delay := time.Duration(max(st.Slot-l.s.serverNow(), 0))
	start := local.Add(delay)
	return Reservation{
		Delay: delay,
		At:    time.Unix(0, st.Slot),
		start: start,
		end:   start.Add(l.p.margin),
	}, nil
}

// Wait reserves the next slot, however far (within ctx's deadline, if it
// has one), and sleeps until it. It is for tests and benchmarks: a caller
// that may stall between Wait and its request should Reserve, sleep and
// check Valid. A slot beyond ctx's deadline gives a *WaitError at once.
func (l *Limiter) Wait(ctx context.Context) error {
	maxWait := time.Duration(math.MaxInt64)
	if dl, ok := ctx.Deadline(); ok {
		maxWait = time.Until(dl)
	}
	r, err := l.Reserve(ctx, maxWait)
	if err != nil {
		return err
	}
	t := time.NewTimer(r.Delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Pause stops every limiter of the scope, in every process, from giving a
// slot before server-now + d (a provider answered 429 with a retry-after
// of d). It moves the shared pause-until, and the schedule, forward and
// never back: a shorter pause than one in force changes nothing. Slots
// after a pause come one emission interval apart (no burst). A d of 0 or
// less does nothing; a d above MaxPause is MaxPause.
func (l *Limiter) Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	d = min(d, MaxPause)
	if err := l.s.ensureClock(ctx); err != nil {
		return l.fail("pause", err)
	}
	done, err := l.take(ctx)
	if err != nil {
		return l.fail("pause", err)
	}
	defer done()
	kv := &observed{kv: l.s.kv, c: l.s.clock}
	by := l.s.nonce()
	var changed bool
	_, err = kvcas.Update(ctx, kv, l.scope, l.casOptions(), func(e kvcas.Entry) ([]byte, error) {
		st, err := l.decode(e)
		if err != nil {
			return nil, err
		}
		now := l.s.serverNow()
		var next state
		next, changed = l.p.pause(l.trusted(st, now, 0), now, d)
		if !changed {
			return nil, kvcas.ErrUnchanged
		}
		next.By = by
		return encodeState(next), nil
	})
	l.s.stats.conflicts.Add(kv.conflicts)
	if err != nil {
		return l.fail("pause", err)
	}
	if changed {
		l.s.stats.pauses.Add(1)
	}
	return nil
}

// Check reports whether r's slot may still be used: nil, unless a pause
// set since r was claimed covers the slot (another request of the scope
// was answered 429 meanwhile). Then it returns a *WaitError (matching
// ErrNotYet) with the pause's remaining time: the slot is forfeit, and the
// caller reserves again once the wait is over. It reads the shared state
// once, and fails as State does (the caller must not act then either).
func (l *Limiter) Check(ctx context.Context, r Reservation) error {
	st, err := l.State(ctx)
	if err != nil {
		return err
	}
	if st.PausedUntil == nil || !st.PausedUntil.After(r.At) {
		return nil
	}
	return &WaitError{Wait: max(time.Duration(st.PausedUntil.UnixNano()-l.s.serverNow()), time.Millisecond)}
}

// State is a limiter's shared state as one process sees it.
type State struct {
	// RatePerS and Burst are the limit of the key's last writer (this
	// Limiter's own when nothing was written yet).
	RatePerS float64
	Burst    int
	// PausedUntil is the shared pause, in server time; nil unless it is
	// in the future.
	PausedUntil *time.Time
	// Next is the earliest slot a reservation made now would get, in
	// server time.
	Next time.Time
	// Revision is the key's KV revision (0: never written).
	Revision uint64
}

// State reads the limiter's shared state.
func (l *Limiter) State(ctx context.Context) (State, error) {
	if err := l.s.ensureClock(ctx); err != nil {
		return State{}, l.fail("state", err)
	}
	kv := &observed{kv: l.s.kv, c: l.s.clock}
	e, err := transient.Do(ctx, l.s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return kv.Get(ctx, l.scope)
	})
	var cur kvcas.Entry
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return State{}, l.fail("state", err)
	default:
		cur = kvcas.Entry{Value: e.Value(), Revision: e.Revision()}
	}
	st, err := l.decode(cur)
	if err != nil {
		return State{}, l.fail("state", err)
	}
	now := l.s.serverNow()
	out := State{RatePerS: l.p.rate, Burst: l.p.burst, Next: time.Unix(0, l.p.next(st, now)), Revision: cur.Revision}
	if !cur.Absent() {
		out.RatePerS, out.Burst = st.Rate, st.Burst
	}
	if st.PausedUntil > now {
		pu := time.Unix(0, st.PausedUntil)
		out.PausedUntil = &pu
	}
	return out, nil
}

func (l *Limiter) casOptions() *kvcas.Options {
	return &kvcas.Options{MaxAttempts: l.s.cfg.MaxConflicts, Retry: l.s.retry}
}

// decode reads a stored state; an absent key is an empty schedule.
func (l *Limiter) decode(e kvcas.Entry) (state, error) {
	if e.Absent() {
		return state{}, nil
	}
	return decodeState(e.Value)
}

// trusted is params.trusted, counting the schedules it restarts
// (Stats.Restarts).
func (l *Limiter) trusted(st state, now int64, maxWait time.Duration) state {
	st, ok := l.p.trusted(st, now, maxWait)
	if !ok {
		l.s.stats.restarts.Add(1)
	}
	return st
}

// fail wraps err with the scope and classifies it.
func (l *Limiter) fail(op string, err error) error {
	l.s.stats.failures.Add(1)
	l.s.revive(err)
	switch {
	case errors.Is(err, kvcas.ErrTooManyConflicts):
		return fmt.Errorf("ratelimit %s %s: %w: %w", op, l.scope, ErrContended, err)
	case errors.Is(err, ErrUnavailable):
		return fmt.Errorf("ratelimit %s %s: %w", op, l.scope, err)
	case transient.Is(err):
		return fmt.Errorf("ratelimit %s %s: %w: %w", op, l.scope, ErrUnavailable, err)
	}
	return fmt.Errorf("ratelimit %s %s: %w", op, l.scope, err)
}

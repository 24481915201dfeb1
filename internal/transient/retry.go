package transient

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// DefaultAttemptTimeout is Policy.AttemptTimeout's default: far above a
// healthy round trip (milliseconds, an fsync included), and short enough
// that a command whose ack was lost in a leader election is tried again
// within about a second of the new leader (the cluster test measures it).
// A repeat is harmless: appends are deduplicated by message ID and KV
// writes check what they find.
const DefaultAttemptTimeout = time.Second

// DefaultBudget is Policy.Budget's default.
const DefaultBudget = 5 * time.Second

// Pauses between attempts: the first, and the most any grows to.
const (
	firstPause = 50 * time.Millisecond
	maxPause   = 250 * time.Millisecond
)

// Policy says how long one attempt of a NATS operation may take and how
// long all attempts together may take. The zero value means the defaults.
type Policy struct {
	// AttemptTimeout bounds one attempt (never beyond the caller's own
	// deadline). Default DefaultAttemptTimeout (1s).
	AttemptTimeout time.Duration
	// Budget bounds all attempts together when the caller's context has
	// no deadline; with a deadline, the deadline is the budget. Default
	// DefaultBudget (5s).
	Budget time.Duration
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.AttemptTimeout <= 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.Budget <= 0 {
		p.Budget = DefaultBudget
	}
	return p
}

// Validate reports every problem with p (after defaults).
func (p Policy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.AttemptTimeout < 10*time.Millisecond {
		errs = append(errs, errors.New("attempt timeout must be at least 10ms"))
	}
	if p.AttemptTimeout > p.Budget {
		errs = append(errs, errors.New("attempt timeout must not exceed the budget (the timeout of a call without a deadline)"))
	}
	return errors.Join(errs...)
}

// Bound returns ctx limited to the budget if it has no deadline, for a
// sequence of attempts.
func (p Policy) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.WithDefaults().Budget)
}

// Attempt returns the context for one attempt: ctx limited to the attempt
// timeout.
func (p Policy) Attempt(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, p.WithDefaults().AttemptTimeout)
}

// Wait pauses after failed attempt n (1 for the first) and reports whether
// another attempt may start: false, without waiting, when ctx ends before
// the pause would.
func (p Policy) Wait(ctx context.Context, n int) bool {
	d := firstPause << min(max(n-1, 0), 8)
	d = min(d, maxPause)
	d = d/2 + rand.N(d/2+1) // jitter: instances that failed together retry apart
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Do calls op with a context for each attempt until op succeeds, fails
// with an error that is not Retryable, or the budget runs out. A transient
// error is returned marked (Mark); any other unchanged. op must be safe to
// repeat: a read, or an idempotent write.
func Do[T any](ctx context.Context, p Policy, op func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := p.Bound(ctx)
	defer cancel()
	for n := 1; ; n++ {
		actx, acancel := p.Attempt(ctx)
		v, err := op(actx)
		acancel()
		if err == nil || !Retryable(err) || ctx.Err() != nil || !p.Wait(ctx, n) {
			return v, Mark(err)
		}
	}
}

// Run is Do for an operation without a result.
func Run(ctx context.Context, p Policy, op func(ctx context.Context) error) error {
	_, err := Do(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}

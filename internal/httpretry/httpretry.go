package httpretry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy says how often and how long Do retries. The zero Policy tries once.
type Policy struct {
	// MaxAttempts is how many attempts Do makes at most; less than 1 means 1.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the wait before retry n (n ≥ 1)
	// when the server gave no Retry-After: Jitter(min(MaxBackoff,
	// BaseBackoff·2ⁿ⁻¹)).
	BaseBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one ends
	// Do with RetryAfterTooLong. 0 honours any.
	MaxRetryAfter time.Duration
	// StopBeforeDeadline ends Do with PastDeadline when the next wait would
	// end after the context's deadline, instead of waiting for the context
	// to run out.
	StopBeforeDeadline bool
	// Jitter picks the wait given its ceiling. nil means FullJitter.
	Jitter func(ceiling time.Duration) time.Duration
	// Sleep waits d or until ctx ends (returning the reason). nil means
	// Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Backoff is the ceiling of the wait before retry n (n ≥ 1), before jitter:
// min(MaxBackoff, BaseBackoff·2ⁿ⁻¹), without overflow.
func (p Policy) Backoff(n int) time.Duration {
	return ExpDelay(p.BaseBackoff, p.MaxBackoff, 2, n-1)
}

// retryError marks an attempt's error as worth retrying.
type retryError struct {
	err      error
	after    time.Duration
	hasAfter bool
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry marks err, an attempt's failure, as worth another attempt after the
// policy's backoff.
func Retry(err error) error { return &retryError{err: err} }

// RetryAfter marks err as worth another attempt after d, the server's
// Retry-After.
func RetryAfter(err error, d time.Duration) error {
	return &retryError{err: err, after: max(d, 0), hasAfter: true}
}

// IsRetry reports whether err was marked by Retry or RetryAfter.
func IsRetry(err error) bool {
	var re *retryError
	return errors.As(err, &re)
}

// Do calls attempt (with the attempt's number, from 1) until it succeeds,
// returns an error not marked by Retry or RetryAfter (returned unchanged),
// or p says to stop (a *GiveUpError).
func Do[T any](ctx context.Context, p Policy, attempt func(ctx context.Context, n int) (T, error)) (T, error) {
	var zero T
	sleep := p.Sleep
	if sleep == nil {
		sleep = Sleep
	}
	jitter := p.Jitter
	if jitter == nil {
		jitter = FullJitter
	}
	for n := 1; ; n++ {
		res, err := attempt(ctx, n)
		var re *retryError
		if !errors.As(err, &re) {
			if err != nil {
				return zero, err
			}
			return res, nil
		}
		giveUp := &GiveUpError{Attempts: n, Last: re.err, Asked: re.hasAfter}
		if ctx.Err() != nil {
			giveUp.Reason, giveUp.Err = Canceled, context.Cause(ctx)
			return zero, giveUp
		}
		if n >= p.MaxAttempts {
			giveUp.Reason = Exhausted
			return zero, giveUp
		}
		var wait time.Duration
		switch {
		case !re.hasAfter:
			wait = jitter(p.Backoff(n))
		case p.MaxRetryAfter > 0 && re.after > p.MaxRetryAfter:
			giveUp.Reason, giveUp.Wait = RetryAfterTooLong, re.after
			return zero, giveUp
		default:
			wait = re.after
		}
		if dl, ok := ctx.Deadline(); ok && p.StopBeforeDeadline && time.Until(dl) < wait {
			giveUp.Reason, giveUp.Wait = PastDeadline, wait
			return zero, giveUp
		}
		if err := sleep(ctx, wait); err != nil {
			giveUp.Reason, giveUp.Wait, giveUp.Err = Interrupted, wait, err
			return zero, giveUp
		}
	}
}

// ExpDelay is min(ceiling, base·factorⁿ) without overflow.
func ExpDelay(base, ceiling time.Duration, factor float64, n int) time.Duration {
	d := float64(base)
	for i := 0; i < n && d < float64(ceiling); i++ {
		d *= factor
	}
	if d >= float64(ceiling) {
		return ceiling
	}
	return time.Duration(d)
}

// FullJitter is a uniformly random duration in [0, ceiling].
func FullJitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Sleep waits d, or until ctx ends and returns its cause.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

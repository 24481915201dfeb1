package firmbanking

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/bankbook/bankbook/internal/httpretry"
)

// Backoff defaults, used for zero fields.
const (
	DefaultPollInitial = time.Second
	DefaultPollMax     = time.Minute
	DefaultPollFactor  = 2.0
)

// Backoff spaces the polls of Settle: poll n (0-based) waits
// min(Max, Initial·Factorⁿ), or with Jitter a uniformly random duration in
// [d/2, d] of that. Zero fields take the defaults above.
type Backoff struct {
	Initial, Max time.Duration
	Factor       float64
	Jitter       bool
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = DefaultPollInitial
	}
	if b.Max == 0 {
		b.Max = max(DefaultPollMax, b.Initial)
	}
	if b.Factor == 0 {
		b.Factor = DefaultPollFactor
	}
	return b
}

// Validate reports every problem with b (after defaults), each matching
// ErrInvalidConfig.
func (b Backoff) Validate() error {
	b = b.withDefaults()
	var errs []error
	if b.Initial < 0 {
		errs = append(errs, fmt.Errorf("%w: poll initial %v must not be negative", ErrInvalidConfig, b.Initial))
	}
	if b.Max < b.Initial {
		errs = append(errs, fmt.Errorf("%w: poll max %v must not be less than initial %v", ErrInvalidConfig, b.Max, b.Initial))
	}
	if !(b.Factor >= 1) { // also catches NaN
		errs = append(errs, fmt.Errorf("%w: poll factor %v must be at least 1", ErrInvalidConfig, b.Factor))
	}
	return errors.Join(errs...)
}

// Delay is the wait before poll n (0-based), without jitter. b must be valid.
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	return httpretry.ExpDelay(b.Initial, b.Max, b.Factor, n)
}

// Settle drives one transfer to a final result: Send (idempotent), then poll
// Status until settled or failed, with backoff between polls, bounded by ctx.
// A pending result after ctx ends returns ErrPending (the caller tries again
// later; the transfer may still settle).
//
// Only a returned Result whose Status is StatusFailed means the money was
// definitively not sent. With ErrPending the last pending Result is returned
// as well. An error matching ErrRefused (from Send) also means the money was
// not sent and never will be. Any other error comes from Send and leaves the
// outcome unknown unless it matches ErrInvalidConfig or ErrPermanent (and
// even then, see ErrIdempotencyMismatch); calling Settle again with the same
// transfer is always safe.
//
// Transient Status errors, including ErrUnknownTransfer from a provider that
// lags behind its own acceptance, do not stop the polling: only ctx does, so
// give it a deadline. A Status answer to come back later than ctx allows
// (*ThrottledError) stops it at once: the error then matches ErrPending and
// holds that *ThrottledError, whose Wait is what the provider asked for.
func Settle(ctx context.Context, p Provider, t Transfer, poll Backoff) (Result, error) {
	return settler{sleep: httpretry.Sleep, jitter: halfJitter}.settle(ctx, p, t, poll)
}

// settler holds Settle's clock hooks so tests can replace them.
type settler struct {
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(d time.Duration) time.Duration // picks a delay in [d/2, d]
}

func (s settler) settle(ctx context.Context, p Provider, t Transfer, poll Backoff) (Result, error) {
	if err := poll.Validate(); err != nil {
		return Result{}, err
	}
	poll = poll.withDefaults()
	res, err := p.Send(ctx, t)
	if err != nil {
		return Result{}, err
	}
	var last error // the latest Status error, for context
	for n := 0; !res.Status.Final(); n++ {
		d := poll.Delay(n)
		if poll.Jitter {
			d = s.jitter(d)
		}
		if err := s.sleep(ctx, d); err != nil {
			return res, pending(t.ID, n, err, last)
		}
		r, err := p.Status(ctx, t.ID)
		switch {
		case err == nil:
			res, last = r, nil
		case ctx.Err() != nil:
			return res, pending(t.ID, n+1, context.Cause(ctx), err)
		case errors.Is(err, ErrPermanent) || errors.Is(err, ErrInvalidTransfer) || errors.Is(err, ErrInvalidConfig):
			return res, fmt.Errorf("firmbanking: settle %q: %w", t.ID, err)
		case errors.As(err, new(*ThrottledError)):
			// The provider asked for a wait longer than ctx has left:
			// polling again before it would only be throttled again.
			return res, pending(t.ID, n+1, errors.New("the provider asked to be asked later"), err)
		default:
			last = err
		}
	}
	return res, nil
}

func pending(id string, polls int, cause, last error) error {
	if last != nil {
		return fmt.Errorf("%w: %q after %d polls: %w (last error: %w)", ErrPending, id, polls, cause, last)
	}
	return fmt.Errorf("%w: %q after %d polls: %w", ErrPending, id, polls, cause)
}

func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d-d/2+1)
}

package ratelimit

import (
	"errors"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/internal/transient"
)

var (
	// ErrNotYet means the next free slot is further away than the caller
	// was willing to wait. It is always returned inside a *WaitError, which
	// says how far; nothing was claimed.
	ErrNotYet = errors.New("ratelimit: no slot within the wait allowed")

	// ErrUnavailable means the limiter's state in the KV bucket could not
	// be read or written in time (NATS or JetStream unavailable, no leader,
	// no quorum). The limiter fails closed: no slot was granted, and the
	// caller must not act; it waits and reserves again. A write whose
	// answer was lost may have claimed a slot that nobody uses, which only
	// makes the limit stricter. It matches transient.ErrUnavailable too.
	ErrUnavailable = transient.Sentinel("ratelimit: limiter state unavailable")

	// ErrContended means every compare-and-set a call tried lost to
	// another writer of the same key (Config.MaxConflicts of them). No slot
	// was granted; the caller may reserve again at once.
	ErrContended = errors.New("ratelimit: the limiter's key kept changing")

	// ErrCorrupt means the value stored under a limiter's key cannot be
	// decoded. The limiter fails closed until an operator deletes the key
	// (bankbook's state there is only a schedule; deleting it forgets the
	// current pause and lets the next reservation start afresh).
	ErrCorrupt = errors.New("ratelimit: stored limiter state cannot be decoded")

	// ErrInvalidConfig is matched by every error of Config.Validate,
	// Limit.Validate and an invalid scope.
	ErrInvalidConfig = errors.New("ratelimit: invalid configuration")
)

// WaitError is returned by Reserve when the next free slot is further away
// than maxWait. It matches ErrNotYet. Nothing was claimed.
type WaitError struct {
	// Wait is how far the next free slot is from now (server time), as
	// seen by this process when it looked. It is positive. Another
	// process may take that slot meanwhile: the caller reserves again when
	// it is ready to act, it does not assume the slot is kept.
	Wait time.Duration
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("ratelimit: next slot in %v", e.Wait)
}

// Is makes errors.Is(err, ErrNotYet) true.
func (e *WaitError) Is(target error) bool { return target == ErrNotYet }

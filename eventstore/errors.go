package eventstore

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict means the aggregate changed since it was loaded: the
	// expected sequence is stale. Nothing was written. Reload and retry.
	ErrConflict = errors.New("eventstore: concurrent modification")
	// ErrCorrupt means a stored message is not a valid commit, or the chain of
	// an aggregate's commits is broken.
	ErrCorrupt = errors.New("eventstore: corrupt commit")
	// ErrInvalid means a request is malformed: an append without events or
	// commit ID, or an append or load of an aggregate whose type or ID is not
	// a subject token (see Ref.Validate). Nothing was read or written.
	ErrInvalid = errors.New("eventstore: invalid request")
	// ErrUnavailable means the stream did not answer in time. For an append
	// the outcome is unknown: the commit may or may not be stored, and a
	// retry of the same command must find out (idempotency keys do).
	ErrUnavailable = errors.New("eventstore: stream unavailable")
	// ErrClosed is returned by Follow when its context ends.
	ErrClosed = errors.New("eventstore: closed")
)

// ConflictError is returned by Append when the expectation is stale.
// It matches ErrConflict.
type ConflictError struct {
	Ref      Ref
	Expected Seq
	// Actual is the sequence of the aggregate's last commit, when known (0 if
	// the server did not say).
	Actual Seq
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("eventstore: concurrent modification of %s: expected last commit %d, found %d", e.Ref, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

package eventstore

import (
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/internal/transient"
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
	// ErrUnavailable means the stream did not answer in time, or could not
	// serve the request for now (no leader during an election, no quorum,
	// the connection re-establishing), after every attempt the deadline
	// allowed (Config.AttemptTimeout). For an append the outcome is
	// unknown: the commit may or may not be stored, and a retry of the same
	// command must find out (idempotency keys do). It matches
	// transient.ErrUnavailable, and the error it wraps stays in the chain.
	ErrUnavailable = transient.Sentinel("eventstore: stream unavailable")
	// ErrClosed is returned by Follow when its context ends.
	ErrClosed = errors.New("eventstore: closed")
	// ErrDamaged means a message of the event stream is not a commit this
	// engine can read: not a commit at all, a commit on another aggregate's
	// subject, or one holding an event this engine cannot decode (an
	// unknown type, a newer schema). The error is a *DamagedError naming
	// the sequence. Until an operator sets the message aside (SetAside),
	// Load refuses the aggregate it belongs to.
	ErrDamaged = errors.New("eventstore: damaged commit")
	// ErrNotDamaged is returned by SetAside for a message that is a commit
	// this engine reads: only damaged messages may be set aside.
	ErrNotDamaged = errors.New("eventstore: not a damaged commit")
	// ErrNoMessage means the stream holds no message at that sequence.
	ErrNoMessage = errors.New("eventstore: no message at that sequence")
)

// TailMissingError means the stream's last message is gone: its last
// sequence holds no message (a damaged store dropped the end of the log;
// bankbook's event stream denies deletes), and After is the last message
// that can still be read. With direct gets alone the stream's last
// sequence cannot be learned, only that it is beyond After. It matches
// ErrNoMessage.
type TailMissingError struct{ After Seq }

func (e *TailMissingError) Error() string {
	return fmt.Sprintf("eventstore: the event stream's last message is missing: nothing after seq %d can be read (the end of the log was lost)", e.After)
}

// Is makes errors.Is(err, ErrNoMessage) true.
func (e *TailMissingError) Is(target error) bool { return target == ErrNoMessage }

// MissingError means the stream holds no message at sequences From..To
// although a later one is there: messages were removed from inside the
// log (bankbook's event stream denies deletes and purges, so by editing
// the server's files or lowering the stream's limits). It matches
// ErrNoMessage.
type MissingError struct{ From, To Seq }

func (e *MissingError) Error() string {
	if e.From == e.To {
		return fmt.Sprintf("eventstore: the event stream has no message at seq %d, though later ones are there: a commit was removed from inside the log", e.From)
	}
	return fmt.Sprintf("eventstore: the event stream has no messages at seqs %d..%d, though later ones are there: %d commits were removed from inside the log", e.From, e.To, e.To-e.From+1)
}

// Is makes errors.Is(err, ErrNoMessage) true.
func (e *MissingError) Is(target error) bool { return target == ErrNoMessage }

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

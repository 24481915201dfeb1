package worker

import "errors"

var (
	// ErrConsumerGone means a consumer stopped delivering for good: it was
	// deleted, it (or its stream) no longer exists, or its connection was
	// closed. Run and Follow return it instead of waiting forever; the caller
	// (under a supervisor: the restart) creates the consumer again.
	ErrConsumerGone = errors.New("worker: consumer gone")
	// ErrNotFound means there is no dead letter with that ID.
	ErrNotFound = errors.New("worker: dead letter not found")
	// ErrWrongPart means a dead letter was redriven through a part other
	// than the one that dead-lettered it.
	ErrWrongPart = errors.New("worker: dead letter belongs to another part")
	// ErrOriginalGone means the message a dead letter refers to is no longer
	// in its stream (it aged out or was deleted), so it cannot be redriven.
	ErrOriginalGone = errors.New("worker: original message no longer in its stream")
	// ErrResolvedOtherwise means a dead letter was resolved in another way
	// (discarded while it was being redriven, say) by someone else first:
	// their record stands.
	ErrResolvedOtherwise = errors.New("worker: dead letter already resolved otherwise")
	// ErrNotRedriven means a redrive could not start: its lease could not
	// be taken or recorded (NATS did not answer). Nothing ran; try again.
	ErrNotRedriven = errors.New("worker: the redrive could not start")
	// ErrNotRunning means the loop has no consumer yet (Run has not created it).
	ErrNotRunning = errors.New("worker: not running")
)

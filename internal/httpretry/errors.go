package httpretry

import (
	"fmt"
	"time"
)

// Reason says why Do stopped retrying.
type Reason int

const (
	// Exhausted: every one of MaxAttempts attempts failed.
	Exhausted Reason = iota + 1
	// RetryAfterTooLong: the server asked to wait longer than
	// MaxRetryAfter.
	RetryAfterTooLong
	// PastDeadline: the next wait would end after the context's deadline
	// (only with StopBeforeDeadline).
	PastDeadline
	// Canceled: the context ended, seen after a failed attempt.
	Canceled
	// Interrupted: the wait before the next attempt was cut short, by the
	// context's end or by an error from Policy.Sleep.
	Interrupted
)

func (r Reason) String() string {
	switch r {
	case Exhausted:
		return "attempts exhausted"
	case RetryAfterTooLong:
		return "retry-after too long"
	case PastDeadline:
		return "next attempt past the deadline"
	case Canceled:
		return "canceled"
	case Interrupted:
		return "interrupted while waiting"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// GiveUpError is returned by Do when it stops retrying a failure that was
// worth retrying.
type GiveUpError struct {
	Reason Reason
	// Attempts is how many attempts were made.
	Attempts int
	// Wait is the wait that was not taken (RetryAfterTooLong,
	// PastDeadline) or was cut short (Interrupted).
	Wait time.Duration
	// Asked is true when Wait is the one the last answer asked for
	// (RetryAfter), not a backoff.
	Asked bool
	// Last is the last attempt's error, without its Retry mark.
	Last error
	// Err is the context's cause (Canceled) or the error of the wait
	// (Interrupted); nil otherwise.
	Err error
}

func (e *GiveUpError) Error() string {
	msg := fmt.Sprintf("gave up after %d attempts (%s", e.Attempts, e.Reason)
	if e.Reason == RetryAfterTooLong || e.Reason == PastDeadline {
		msg += fmt.Sprintf(": %v", e.Wait)
	}
	if e.Err != nil {
		msg += fmt.Sprintf(": %v", e.Err)
	}
	return msg + fmt.Sprintf("): %v", e.Last)
}

// Unwrap returns the context's (or the wait's) error and the last attempt's.
func (e *GiveUpError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Last} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

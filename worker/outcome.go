package worker

import (
	"errors"
	"fmt"
	"time"
)

// RetryAfterError asks for the message again after Delay. Build it with
// RetryAfter.
type RetryAfterError struct {
	Delay time.Duration
	// Err is why; nil means the work is not due yet, which is no failure.
	Err error
}

// RetryAfter returns an error that makes the loop deliver the message again
// after d (NakWithDelay). With a nil err the work is merely not due yet: the
// attempt is not counted as a failure and never leads to a dead letter. With
// a non-nil err it is a failure like any other, only with d in place of the
// backoff.
func RetryAfter(d time.Duration, err error) error {
	return &RetryAfterError{Delay: d, Err: err}
}

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry after %s", e.Delay)
	}
	return fmt.Sprintf("retry after %s: %v", e.Delay, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// PermanentError says retrying cannot help. Build it with Permanent.
type PermanentError struct{ Err error }

// Permanent returns an error that makes the loop dead-letter the message at
// once (a message that cannot be decoded, a subject it does not know).
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// PanicError is the failure recorded for a handler that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panic: %v", e.Value) }

// outcome is what the loop does with a handled message.
type outcome int

const (
	ack      outcome = iota // done
	deferred                // not due yet: redeliver after a delay, no failure
	retry                   // failed: redeliver after a delay, or dead-letter after MaxAttempts
	deadNow                 // permanent: dead-letter now
)

// classify maps a handler's error to an outcome and an explicit delay (0: backoff).
func classify(err error) (outcome, time.Duration) {
	if err == nil {
		return ack, 0
	}
	if _, ok := errors.AsType[*PermanentError](err); ok {
		return deadNow, 0
	}
	if ra, ok := errors.AsType[*RetryAfterError](err); ok {
		if ra.Err == nil {
			return deferred, ra.Delay
		}
		return retry, ra.Delay
	}
	return retry, 0
}

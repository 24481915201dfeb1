package firmbanking

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors returned by this package. Compare with errors.Is.
var (
	// ErrInvalidTransfer means a Transfer (or a transfer ID) failed Validate;
	// nothing was sent. The error also matches domain.ErrInvalidInput and
	// carries the offending field as a *domain.Error.
	ErrInvalidTransfer = errors.New("firmbanking: invalid transfer")
	// ErrInvalidConfig means a Client or Backoff failed Validate.
	ErrInvalidConfig = errors.New("firmbanking: invalid config")
	// ErrPermanent matches every *PermanentError: the provider refused the
	// request and repeating it unchanged will not help. It says nothing about
	// an earlier request with the same ID (see ErrIdempotencyMismatch).
	ErrPermanent = errors.New("firmbanking: request refused")
	// ErrIdempotencyMismatch matches a *PermanentError with status 422: the ID
	// was already used for a different transfer. That earlier transfer stands
	// and may well have been sent; this one was not.
	ErrIdempotencyMismatch = errors.New("firmbanking: transfer ID already used for a different transfer")
	// ErrRefused means this Send will never carry out the transfer as it
	// is: the transfer failed Validate (it also matches ErrInvalidTransfer;
	// nothing was sent this time), or the provider answered the Send 400 (it
	// also matches ErrPermanent). It says nothing about earlier attempts
	// under the same ID — a rule or an account may have changed since one
	// was accepted — so before recording the transfer as failed, ask Status:
	// only ErrUnknownTransfer means nothing was ever accepted. Only Send
	// returns it: a 400 to Status says nothing about the transfer.
	ErrRefused = errors.New("firmbanking: transfer refused")
	// ErrUnavailable means every attempt failed transiently (network error,
	// timeout, 5xx, 429, 409 in progress). The outcome of a Send is unknown:
	// retry later with the same ID.
	ErrUnavailable = errors.New("firmbanking: provider unavailable")
	// ErrUnknownTransfer is returned by Status when the provider never
	// accepted a transfer with that ID (HTTP 404).
	ErrUnknownTransfer = errors.New("firmbanking: unknown transfer")
	// ErrPending is returned by Settle when the context ends while the
	// provider still reports the transfer as pending. The transfer was
	// accepted and may still settle or fail: call Settle again later.
	ErrPending = errors.New("firmbanking: transfer still pending")
)

// ThrottledError is a provider's answer to come back later (429, or a 503
// with Retry-After) whose wait would have ended past the call's deadline.
// It matches ErrUnavailable. Wait is what the provider asked for.
type ThrottledError struct {
	Wait time.Duration
	Err  error
}

func (e *ThrottledError) Error() string { return e.Err.Error() }
func (e *ThrottledError) Unwrap() error { return e.Err }

// PermanentError is a 4xx answer that retrying will not change (any 4xx
// other than 404 on Status, 408, 409, 425 and 429). It matches ErrPermanent,
// and ErrIdempotencyMismatch when Status is 422.
type PermanentError struct {
	// Status is the HTTP status code.
	Status int
	// Body is the start of the response body, for logs.
	Body string
}

func (e *PermanentError) Error() string {
	return fmt.Sprintf("firmbanking: request refused: http %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

// Is reports whether target is ErrPermanent, or ErrIdempotencyMismatch for a
// 422.
func (e *PermanentError) Is(target error) bool {
	switch target {
	case ErrPermanent:
		return true
	case ErrIdempotencyMismatch:
		return e.Status == http.StatusUnprocessableEntity
	}
	return false
}

// refusal marks the error of a Send the provider will never carry out: it
// matches ErrRefused as well as its cause, and reads as its cause.
type refusal struct{ err error }

func (r *refusal) Error() string        { return r.err.Error() }
func (r *refusal) Unwrap() error        { return r.err }
func (r *refusal) Is(target error) bool { return target == ErrRefused }

// refuses reports whether a Send's error means the transfer was refused for
// good (ErrRefused): invalid before sending, or a 400 answer.
func refuses(err error) bool {
	if errors.Is(err, ErrInvalidTransfer) {
		return true
	}
	pe, ok := errors.AsType[*PermanentError](err)
	return ok && pe.Status == http.StatusBadRequest
}

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
	// ErrNotTaken matches the error of a Send that the provider certainly
	// did not act on: no attempt of it ended in a way that leaves the
	// outcome open (a 5xx, a timeout, a lost answer). The Client's Send
	// marks so every refusal (ErrRefused), and a Send throttled (429) or
	// refused with another 4xx on each attempt, or that never reached the
	// provider. Test with NotTaken, which counts every ErrRefused.
	ErrNotTaken = errors.New("firmbanking: not taken by the provider")
	// ErrUnavailable means every attempt failed transiently (network error,
	// timeout, 5xx, 429, 409 in progress). The outcome of a Send is unknown
	// unless its error also matches ErrNotTaken (only 429s, say): retry
	// later with the same ID.
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

// answerError is an answer worth asking again (retryable), with the start
// of its body.
type answerError struct {
	status int
	body   string
}

func (e *answerError) Error() string {
	return fmt.Sprintf("http %d %s: %s", e.status, http.StatusText(e.status), e.body)
}

// WithheldText is the provider's own words in the error (its body), which
// a part's status does not show (supervisor.Text).
func (e *answerError) WithheldText() string { return e.body }

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

// WithheldText is the provider's own words in the error (its body), which
// a part's status does not show (supervisor.Text).
func (e *PermanentError) WithheldText() string { return e.Body }

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
func (r *refusal) Is(target error) bool { return target == ErrRefused || target == ErrNotTaken }

// NotTaken reports whether err, a Send's, says that the provider did not
// act on that Send: it matches ErrNotTaken or ErrRefused. Any other error
// leaves the outcome unknown.
func NotTaken(err error) bool {
	return errors.Is(err, ErrNotTaken) || errors.Is(err, ErrRefused)
}

// notTaken marks the error of a Send no attempt of which the provider may
// have acted on: it matches ErrNotTaken as well as its cause, and reads as
// its cause.
type notTaken struct{ err error }

func (n *notTaken) Error() string        { return n.err.Error() }
func (n *notTaken) Unwrap() error        { return n.err }
func (n *notTaken) Is(target error) bool { return target == ErrNotTaken }

// refuses reports whether a Send's error means the transfer was refused for
// good (ErrRefused): invalid before sending, or a 400 answer.
func refuses(err error) bool {
	if errors.Is(err, ErrInvalidTransfer) {
		return true
	}
	pe, ok := errors.AsType[*PermanentError](err)
	return ok && pe.Status == http.StatusBadRequest
}

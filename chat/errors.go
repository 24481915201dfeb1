package chat

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Errors returned by this package. Compare with errors.Is.
//
// A Send error says what became of the message:
//
//   - *RateLimitedError (ErrRateLimited): the provider refused the request
//     for now and stored nothing; wait RetryAfter (every sender should: the
//     limit is the provider's, not this caller's) and send again.
//   - *RejectedError (ErrRejected): the provider refused the message for
//     good (wrong token, bad channel, invalid body) and stored nothing;
//     sending it again unchanged will not help.
//   - ErrTimeout (it also matches ErrUnavailable): the request was sent, or
//     may have been, and no answer came: the message may have arrived. Ask
//     Delivered before sending it again.
//   - ErrServerError (it also matches ErrUnavailable): the provider
//     answered 5xx. A provider that fails after storing the message answers
//     that, and so does a gateway in front of it that gave up waiting: the
//     message may have arrived, as after ErrTimeout. MayHaveStored tells
//     both.
//   - ErrUnavailable otherwise (408, 409, 425, connection refused, a
//     garbled answer to a read): transient; the provider is taken not to
//     have stored the message.
//   - ErrInvalidMessage, ErrInvalidConfig: nothing was sent; permanent.
var (
	// ErrInvalidConfig means a SendbirdConfig, WebhookConfig or SimConfig
	// failed Validate.
	ErrInvalidConfig = errors.New("chat: invalid config")
	// ErrInvalidMessage means a Message failed Validate; nothing was sent.
	ErrInvalidMessage = errors.New("chat: invalid message")
	// ErrRateLimited matches every *RateLimitedError.
	ErrRateLimited = errors.New("chat: rate limited")
	// ErrRejected matches every *RejectedError.
	ErrRejected = errors.New("chat: message refused")
	// ErrUnavailable means the provider could not be reached or failed
	// (5xx, 408, 409, 425, a connection error, a timeout): try again later.
	ErrUnavailable = errors.New("chat: provider unavailable")
	// ErrTimeout means no answer came to a request that was sent (or may
	// have been): the request timed out or the connection broke. The
	// outcome is unknown. It always comes with ErrUnavailable.
	ErrTimeout = errors.New("chat: no answer from the provider")
	// ErrServerError means the provider answered 5xx: it, or a gateway in
	// front of it, failed, perhaps after storing the message. It always
	// comes with ErrUnavailable.
	ErrServerError = errors.New("chat: server error")
	// ErrCannotCheck is returned by Delivered when the provider cannot tell
	// whether a message arrived (a webhook; too many messages to scan).
	// ErrChannelCreated means the recipient's channel did not exist and
	// was created: the message was not stored; send it again, in a new
	// slot of the provider's rate.
	ErrChannelCreated = errors.New("chat: channel created; send again")
	ErrCannotCheck    = errors.New("chat: provider cannot tell whether the message arrived")
)

// DefaultRetryAfter is the wait of a 429 that says nothing about it.
const DefaultRetryAfter = time.Second

// MaxRetryAfter caps the wait a 429 asks for: a garbled or absurd header
// must not stop every dispatcher for hours.
const MaxRetryAfter = 10 * time.Minute

// Sendbird's error codes used here (the "code" of an error body).
const (
	// CodeResourceNotFound (400201, HTTP 400): the channel (or the sender
	// user, when creating a channel) does not exist.
	CodeResourceNotFound = 400201
	// CodeResourceAlreadyExists (400202, HTTP 400): creating a channel
	// whose channel_url is taken.
	CodeResourceAlreadyExists = 400202
	// CodeInvalidValue (400111, HTTP 400): a parameter has an invalid value.
	CodeInvalidValue = 400111
	// CodeMissingParameter (400105, HTTP 400): a required parameter is
	// missing.
	CodeMissingParameter = 400105
	// CodeInvalidAPIToken (400401, HTTP 401): missing or wrong Api-Token.
	CodeInvalidAPIToken = 400401
	// CodeRateLimitExceeded (500910, HTTP 429): too many requests.
	CodeRateLimitExceeded = 500910
	// CodeInternalError (500901, HTTP 5xx): the provider failed.
	CodeInternalError = 500901
)

// RateLimitedError is a 429 answer. It matches ErrRateLimited.
type RateLimitedError struct {
	// RetryAfter is how long the provider asked to wait: the
	// X-RateLimit-RetryAfter header, else Retry-After, else the
	// "retry_after: 0.165s" of Sendbird's message, else DefaultRetryAfter;
	// at most MaxRetryAfter.
	RetryAfter time.Duration
	// Body is the start of the response body, for logs.
	Body string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("chat: rate limited: retry after %v: %s", e.RetryAfter, e.Body)
}

// WithheldText is the provider's own words in the error (its body), which
// a part's status does not show (supervisor.Text).
func (e *RateLimitedError) WithheldText() string { return e.Body }

// Is reports whether target is ErrRateLimited.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// RejectedError is a 4xx answer other than 408, 409, 425 and 429 (and any
// other status that is neither a success nor transient): the provider will
// not take this message as it is. It matches ErrRejected.
type RejectedError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the provider's error code from the body ({"code":400201}),
	// 0 when the body has none.
	Code int
	// Message is the provider's message from the body, or the start of the
	// body.
	Message string
}

func (e *RejectedError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("chat: message refused: http %d %s: code %d: %s", e.Status, http.StatusText(e.Status), e.Code, e.Message)
	}
	return fmt.Sprintf("chat: message refused: http %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// WithheldText is the provider's own words in the error (its message),
// which a part's status does not show (supervisor.Text).
func (e *RejectedError) WithheldText() string { return e.Message }

// Is reports whether target is ErrRejected.
func (e *RejectedError) Is(target error) bool { return target == ErrRejected }

// Permanent reports whether err, from Send, means sending the same message
// again will not help: anything but ErrRateLimited, ErrUnavailable and
// ErrChannelCreated (a *RejectedError, ErrInvalidMessage,
// ErrInvalidConfig). nil is not.
func Permanent(err error) bool {
	return err != nil && !errors.Is(err, ErrRateLimited) && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrChannelCreated)
}

// MayHaveStored reports whether a Send error leaves the message perhaps
// stored (ErrTimeout, ErrServerError): ask Delivered before sending it
// again.
func MayHaveStored(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrServerError)
}

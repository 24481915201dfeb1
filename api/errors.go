package api

import (
	"encoding/json"
	"strconv"

	"github.com/bankbook/bankbook/domain"
)

// Error is an error reply (API.md "Errors"): Status travels in the header
// Nats-Service-Error-Code, the rest in the body {"error":{...}}.
type Error struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *Error) Error() string { return strconv.Itoa(e.Status) + " " + e.Code + ": " + e.Message }

// Body is the error's reply body. It always carries details, {} when the
// error has none, as API.md shows it.
func (e *Error) Body() []byte {
	type wire struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	}
	w := wire{Code: e.Code, Message: e.Message, Details: e.Details}
	if w.Details == nil {
		w.Details = map[string]any{}
	}
	b, _ := json.Marshal(struct {
		Error wire `json:"error"`
	}{w})
	return b
}

// ParseErrorBody reads an error body; nil if data is not one.
func ParseErrorBody(data []byte) *Error {
	var body struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	return body.Error
}

// Error codes of the API beyond those of package domain.
const (
	CodeInvalidInput = "invalid_input"
	CodeInternal     = "internal"
	// CodeReplyTooLarge (500): the answer is more than one NATS message
	// carries; a smaller page (limit) fits.
	CodeReplyTooLarge = "reply_too_large"
	CodeUnavailable   = "unavailable"
	CodeNotCaughtUp   = "not_caught_up"
	// CodeOverloaded (503): the instance has more requests waiting than it
	// takes; this one was not executed. Retry in a moment.
	CodeOverloaded = "overloaded"
	// CodeThrottled (429): the requesting identity has its share of the
	// instance's request slots executing (--max-requests-per-identity);
	// this one was not executed. details.in_flight, details.retry_after_s.
	CodeThrottled      = "throttled"
	CodeConflict       = "conflict"
	CodeInvalidIdemKey = "invalid_idempotency_key"
	// CodeForbidden (403) is a request the NATS server refused to carry:
	// the caller's identity may not send it. The engine never saw it; the
	// Go client (client.Connect) reports it at once.
	CodeForbidden = "forbidden"
	// CodeDeadLetterBusy (409): a redrive of the dead letter, or an
	// operator's decision about its work, holds it; details.held_by,
	// details.retry_after_s.
	CodeDeadLetterBusy = "dead_letter_busy"
)

func invalid(field, format string, args ...any) error { return domain.Invalid(field, format, args...) }

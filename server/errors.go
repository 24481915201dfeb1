package server

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/projections"
)

// apiError is the error body of API.md:
// {"error":{"code":"snake_case","message":"...","details":{...}}}.
type apiError struct {
	status  int
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func (e *apiError) Error() string { return strconv.Itoa(e.status) + " " + e.Code + ": " + e.Message }

func (e *apiError) body() []byte {
	b, _ := json.Marshal(struct {
		Error *apiError `json:"error"`
	}{e})
	return b
}

func badRequest(code, message string, details map[string]any) *apiError {
	return &apiError{status: 400, Code: code, Message: message, Details: details}
}

var kindStatus = map[domain.Kind]int{
	domain.KindInvalid:  400,
	domain.KindNotFound: 404,
	domain.KindConflict: 409,
	domain.KindRule:     422,
}

// toAPIError maps an error from any layer to its API status and code.
// It never looks at error strings.
func toAPIError(err error) *apiError {
	var ae *apiError
	var de *domain.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &de):
		return &apiError{status: kindStatus[de.Kind], Code: de.Code, Message: de.Message, Details: de.Details}
	case errors.Is(err, commands.ErrContention):
		return &apiError{status: 409, Code: "conflict", Message: "the aggregate is being changed concurrently; retry"}
	case errors.Is(err, projections.ErrBadCursor):
		return badRequest("invalid_input", "cursor: not a cursor this query handed out", map[string]any{"field": "cursor"})
	case errors.Is(err, idempotency.ErrInProgress):
		return &apiError{status: 409, Code: "in_progress", Message: "a request with this Idempotency-Key is still executing; retry later"}
	case errors.Is(err, idempotency.ErrKeyReused):
		return &apiError{status: 422, Code: "idempotency_key_reused", Message: "this Idempotency-Key was used with a different request body"}
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return &apiError{status: 503, Code: "unavailable", Message: "the event store did not answer in time; retry"}
	}
	return &apiError{status: 500, Code: "internal", Message: "internal error"}
}

// definitive reports whether a failed command's outcome is final, so an
// idempotent repeat must get it again: a 4xx refusal. A 5xx may have failed
// before or after writing, and a 409 conflict only says that others were
// writing at the same moment; after those the repeat executes again (with the
// same plan).
func definitive(e *apiError) bool { return e.status < 500 && e.Code != "conflict" }

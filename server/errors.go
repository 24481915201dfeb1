package server

import (
	"errors"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/reservations"
)

// retryAfterSeconds is a wait as details.retry_after_s: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

func badRequest(code, message string, details map[string]any) *api.Error {
	return &api.Error{Status: 400, Code: code, Message: message, Details: details}
}

var kindStatus = map[domain.Kind]int{
	domain.KindInvalid:  400,
	domain.KindNotFound: 404,
	domain.KindConflict: 409,
	domain.KindRule:     422,
}

// toAPIError maps an error from any layer to its API status and code.
// It never looks at error strings.
func toAPIError(err error) *api.Error {
	var ae *api.Error
	var de *domain.Error
	var held *reservations.ClaimHeldError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &de):
		return &api.Error{Status: kindStatus[de.Kind], Code: de.Code, Message: de.Message, Details: de.Details}
	case errors.As(err, &held):
		// Another attempt (perhaps of an instance that died) holds the
		// bank transaction's claim: it records it, or its lease runs out
		// and the next request does.
		return &api.Error{Status: 409, Code: api.CodeConflict,
			Message: "another attempt is recording this bank transaction (if its engine died, its claim runs out at details.retry_after_s); send it again then",
			Details: map[string]any{"retry_after_s": retryAfterSeconds(time.Until(held.Until))}}
	case errors.Is(err, commands.ErrContention), errors.Is(err, kvcas.ErrTooManyConflicts):
		// A KV entry of a command (a buyer's unpaid orders, a scan
		// watermark) kept changing under writers racing for it.
		return &api.Error{Status: 409, Code: "conflict", Message: "the aggregate is being changed concurrently; retry"}
	case errors.Is(err, projections.ErrRebuilding), errors.Is(err, projections.ErrUnknownEvent):
		return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the read models are being rebuilt or wait for an upgrade; retry"}
	case errors.Is(err, projections.ErrBadCursor):
		return badRequest("invalid_input", "cursor: not a cursor this query handed out", map[string]any{"field": "cursor"})
	case errors.Is(err, idempotency.ErrInProgress):
		e := &api.Error{Status: 409, Code: "in_progress", Message: "a request with this Idempotency-Key is still executing; retry later"}
		var ip *idempotency.InProgressError
		if errors.As(err, &ip) {
			e.Details = map[string]any{"retry_after_s": int64(ip.RetryAfter / time.Second)}
		}
		return e
	case errors.Is(err, idempotency.ErrKeyReused):
		return &api.Error{Status: 422, Code: "idempotency_key_reused", Message: "this Idempotency-Key was used with a different request body"}
	case transient.IsOutOfStorage(err):
		// Refused by JetStream before the write was stored: the
		// deployment's storage (or this tenant's share of it) is full,
		// or (the same code) a cluster could not place a consumer.
		return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "JetStream refused a write for want of resources: the deployment's storage, or its share of a shared server, is full (or the cluster could not place a consumer); the refused write recorded nothing; retry once space is freed or the limit raised, with the same Idempotency-Key, which finishes what an earlier write of the command began"}
	case transient.Is(err):
		// NATS did not answer in time (a lost ack, a leader election), had
		// no leader or quorum, or the connection is down: eventstore's and
		// the KV stores' ErrUnavailable, and any NATS error transient.Is
		// knows, from whichever layer.
		return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: unavailableMessage}
	}
	return &api.Error{Status: 500, Code: api.CodeInternal, Message: "internal error"}
}

// unavailableMessage is the 503 answer to a transient NATS failure. The
// command may or may not have been recorded: a repeat with the same
// Idempotency-Key finds out and never acts twice.
const unavailableMessage = "the event store did not answer in time or is electing a leader, or the command ran out of its time (a command of several commits may have done part of its work); retry with the same Idempotency-Key, which finishes it without doing anything twice"

// definitive reports whether a failed command's outcome is final, so an
// idempotent repeat must get it again: a 4xx refusal. A 5xx may have failed
// before or after writing, and a 409 conflict only says that others were
// writing at the same moment; after those the repeat executes again (with the
// same plan).
// A damaged aggregate is not final either: once the commit is set aside, the
// same key executes; nor is a payout whose transfer may still be live
// (payout_in_flight): once the provider has settled it, the same key
// records it; nor a dead letter held by another (dead_letter_busy).
func definitive(e *api.Error) bool {
	return e.Status < 500 && e.Code != "conflict" && e.Code != api.CodeAggregateDamaged && e.Code != domain.ErrPayoutInFlight.Code && e.Code != api.CodeDeadLetterBusy
}

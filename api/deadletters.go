package api

import (
	"slices"
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// DeadLetterParts are the background parts that dead-letter work: the
// values deadletter.list takes for part.
var DeadLetterParts = []string{"react-orders", "react-money", "payouts", "react-payouts", "timers", "react-notify", "notify", "projections"}

// DeadLetter is work a background part gave up on (API.md "Operations"):
// the original message stays where it was, and the dead letter points at it.
// It mirrors worker.DeadLetter on purpose: api speaks to clients and imports
// nothing of the engine, so the engine converts one into the other.
type DeadLetter struct {
	ID uint64 `json:"id"`
	// Part is the background part that gave up (react-orders, timers, ...).
	Part string `json:"part"`
	// Stream, Seq and Subject locate the original message.
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	// Attempts counts the failed handlings; Delivered the deliveries.
	Attempts  int    `json:"attempts"`
	Delivered uint64 `json:"delivered"`
	// Error is the last error; Permanent says the part found it could never succeed.
	Error     string `json:"error"`
	Permanent bool   `json:"permanent,omitempty"`
	At        string `json:"at"`
}

// DeadLettersRequest is the body of bankbook.q.deadletter.list.
type DeadLettersRequest struct {
	// Part lists one part's dead letters; empty lists all.
	Part string `json:"part,omitempty"`
	PageRequest
}

// Validate checks the request.
func (q DeadLettersRequest) Validate() error {
	if q.Part != "" && !slices.Contains(DeadLetterParts, q.Part) {
		return domain.Invalid("part", "must be one of %s (or absent for every part)", strings.Join(DeadLetterParts, ", "))
	}
	return q.PageRequest.Validate()
}

// DeadLettersReply is the reply of bankbook.q.deadletter.list.
type DeadLettersReply struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
	NextCursor  string       `json:"next_cursor,omitempty"`
}

// DeadLetterRequest is the body of bankbook.cmd.deadletter.redrive, and,
// with Reason, of bankbook.cmd.deadletter.discard.
type DeadLetterRequest struct {
	ID uint64 `json:"id"`
	// Reason is why the work is set aside (discard only; required there).
	Reason string `json:"reason,omitempty"`
}

// Validate checks the request.
func (r DeadLetterRequest) Validate() error {
	if r.ID == 0 {
		return invalid("id", "is required")
	}
	return domain.ValidateReason(r.Reason)
}

// DeadLetterReply is the reply of bankbook.cmd.deadletter.redrive and
// bankbook.cmd.deadletter.discard: Status is "redriven" (the part handled the
// original again, successfully) or "discarded" (set aside with the reason).
// Neither writes the event stream: Seq is 0.
type DeadLetterReply struct {
	DeadLetter DeadLetter `json:"dead_letter"`
	Status     string     `json:"status"`
	Written
}

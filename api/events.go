package api

import (
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// Error codes of damaged commits on the event stream (API.md "Access and
// identity": a message that is not a well-formed commit never stops the
// engine).
const (
	// CodeAggregateDamaged (409): a command on an aggregate whose history
	// holds a damaged commit; details seq, aggregate_type, aggregate_id.
	// Nothing was written. It stays refused until an operator sets the
	// commit aside.
	CodeAggregateDamaged = "aggregate_damaged"
	// CodeNotDamaged (409): event.set_aside of a sequence that holds a
	// commit this engine reads; only damaged commits may be set aside.
	CodeNotDamaged = "not_damaged"
	// CodeEventNotFound (404): event.set_aside of a sequence that holds no
	// message.
	CodeEventNotFound = "event_not_found"
)

// SetAside is an operator's recorded decision that a damaged message of the
// event stream is not part of history: aggregate loads walk past it, and
// projections and reactors skip it. It mirrors eventstore.SetAside.
type SetAside struct {
	Seq     Seq    `json:"seq"`
	Stream  string `json:"stream"`
	Subject string `json:"subject"`
	// AggregateType and AggregateID name the aggregate the subject names
	// (absent when it names none).
	AggregateType string `json:"aggregate_type,omitempty"`
	AggregateID   string `json:"aggregate_id,omitempty"`
	// PrevSeq is the aggregate's message before this one (0: none).
	PrevSeq Seq `json:"prev_seq"`
	// Problem is what was wrong with the message.
	Problem string `json:"problem"`
	// Reason, Actor and At say why, by whom and when it was set aside.
	Reason string `json:"reason"`
	Actor  string `json:"actor,omitempty"`
	At     string `json:"at"`
}

// SetAsideRequest is the body of bankbook.cmd.event.set_aside.
type SetAsideRequest struct {
	// Seq is the stream sequence of the damaged message.
	Seq Seq `json:"seq"`
	// Reason is why it is set aside (required).
	Reason string `json:"reason"`
}

// Validate checks the request.
func (r SetAsideRequest) Validate() error {
	if r.Seq == 0 {
		return invalid("seq", "is required: the stream sequence of the damaged commit")
	}
	if strings.TrimSpace(r.Reason) == "" {
		return invalid("reason", "is required to set a commit aside")
	}
	return domain.ValidateReason(r.Reason)
}

// Set-aside statuses.
const (
	StatusSetAside        = "set_aside"
	StatusAlreadySetAside = "already_set_aside"
)

// SetAsideReply is the reply of bankbook.cmd.event.set_aside. Status is
// "set_aside", or "already_set_aside" when it was set aside before (the
// record is the first one). ResolvedDeadLetters are the IDs of the dead
// letters of the message this request resolved. Nothing is appended to
// the event stream: Seq is 0.
type SetAsideReply struct {
	SetAside            SetAside `json:"set_aside"`
	Status              string   `json:"status"`
	ResolvedDeadLetters []uint64 `json:"resolved_dead_letters"`
	Written
}

// SetAsidesRequest is the body of bankbook.q.event.set_asides.
type SetAsidesRequest struct {
	ReadAfter
}

// Validate accepts every request.
func (SetAsidesRequest) Validate() error { return nil }

// SetAsidesReply is the reply of bankbook.q.event.set_asides: every
// set-aside record, by sequence.
type SetAsidesReply struct {
	SetAsides []SetAside `json:"set_asides"`
}

package api

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// Audit (API.md "Audit and reconciliation"): what the event stream says
// happened, read from the stream itself rather than the read models.

// CodeAggregateNotFound (404): bankbook.q.audit.history of an aggregate
// the event stream holds nothing for; details aggregate_type, aggregate_id.
const CodeAggregateNotFound = "aggregate_not_found"

// auditTypes are the aggregate types of the domain, in the order the docs
// list them.
var auditTypes = []string{
	domain.AggregateOrder, domain.AggregateDeposit, domain.AggregateWallet,
	domain.AggregatePayout, domain.AggregateLink, domain.AggregateNotification, domain.AggregateReconciliation,
}

// AggregateTypes returns the aggregate types whose history
// bankbook.q.audit.history reads.
func AggregateTypes() []string { return slices.Clone(auditTypes) }

// AuditHistoryRequest is the body of bankbook.q.audit.history: one page of
// an aggregate's events, oldest first. A page is Limit events (at most 500;
// without a limit, the whole history: WholeLimit), fewer when they would
// not fit in one reply.
type AuditHistoryRequest struct {
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	PageRequest
}

// Validate checks the request.
func (q AuditHistoryRequest) Validate() error {
	if link, _, err := domain.ParseBillID(q.AggregateID); err == nil && q.AggregateType == "bill" {
		// A bill is no aggregate of its own: its store's link holds its
		// events (docs/domain.md).
		return invalid("aggregate_type", "a bill's events are on its store's link: aggregate_type link, aggregate_id %s", link)
	}
	if !slices.Contains(auditTypes, q.AggregateType) {
		return invalid("aggregate_type", "must be one of %s", strings.Join(auditTypes, ", "))
	}
	if err := domain.ValidateID("aggregate_id", q.AggregateID); err != nil {
		return err
	}
	return q.PageRequest.Validate()
}

// AuditHistoryReply is the reply of bankbook.q.audit.history.
type AuditHistoryReply struct {
	AggregateType string `json:"aggregate_type"`
	AggregateID   string `json:"aggregate_id"`
	// Events is one page of the aggregate's history, in stream order; never
	// nil.
	Events     []AuditEvent `json:"events"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// AuditEvent is one event of an aggregate's history with its envelope, or
// a damaged message of the aggregate's subject in its place (Damaged set).
type AuditEvent struct {
	// Seq is the stream sequence of the commit holding the event; the
	// events of one commit share it.
	Seq Seq `json:"seq"`
	// Version is the event's position in its aggregate: 1, 2, ...
	Version int `json:"version"`
	// EventID identifies the event: what a later event's CausationID names.
	EventID       string `json:"event_id"`
	EventType     string `json:"event_type"`
	SchemaVersion int    `json:"schema_version"`
	// OccurredAt is when the command decided the event; RecordedAt when
	// the engine appended its commit (domain.TimeLayout).
	OccurredAt string `json:"occurred_at"`
	RecordedAt string `json:"recorded_at"`
	// Actor is the authenticated identity that sent the command (or engine,
	// reactor, timer for the engine's own work).
	Actor         string `json:"actor"`
	CorrelationID string `json:"correlation_id"`
	// CausationID is the event that caused this one's command, when an
	// event did (a reactor's or a timer's work).
	CausationID    string `json:"causation_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Data is the event's payload upcast to the engine's current schema
	// (SchemaVersion is that schema's version).
	Data json.RawMessage `json:"data"`
	// CommitHash is the lowercase hex SHA-256 of the commit's message as
	// stored in the event stream (before any upcasting).
	CommitHash string `json:"commit_hash"`
	// Damaged is set when the message at Seq is not a commit this engine
	// reads: the entry then stands for the whole message, and Version,
	// EventID, EventType, SchemaVersion, OccurredAt, Actor and
	// CorrelationID are empty, Data is null and RecordedAt is when the
	// stream stored it.
	Damaged *AuditDamage `json:"damaged,omitempty"`
}

// AuditDamage says what is wrong with a damaged message of an aggregate's
// history, and whether an operator set it aside.
type AuditDamage struct {
	Problem string `json:"problem"`
	// SetAside is the operator's record, when the message was set aside
	// (bankbook.cmd.event.set_aside).
	SetAside *SetAside `json:"set_aside,omitempty"`
}

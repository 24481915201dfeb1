package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"
	"time"
	"unicode/utf8"
)

// AggregateNotification is the aggregate type name of notifications: one
// message to one recipient, recorded before anything is sent (an outbox
// entry) and then attempted, sent, failed or dead-lettered.
const AggregateNotification = "notification"

// NotificationID identifies a notification. It is derived from what the
// message is about (NewNotificationID), so recording an intent twice
// addresses the same aggregate; it is also the id the provider receives in
// the message's data ("notification_id"), which lets a retry find out
// whether an earlier attempt arrived.
type NotificationID string

const (
	notificationIDPrefix = "ntf_"
	notificationHexLen   = 24
)

// NewNotificationID is the ID of the notification of kind to recipient
// caused by the event sourceEventID: "ntf_" and the first 24 hex digits of
// sha256(sourceEventID NUL kind NUL recipient). Deterministic: every engine
// instance that reacts to the event names the same notification, so creating
// it with expected sequence 0 records it exactly once.
func NewNotificationID(sourceEventID, kind, recipient string) NotificationID {
	sum := sha256.Sum256([]byte(sourceEventID + "\x00" + kind + "\x00" + recipient))
	return NotificationID(notificationIDPrefix + hex.EncodeToString(sum[:])[:notificationHexLen])
}

// NotificationStatus is where a notification is.
type NotificationStatus string

// Notification statuses (API.md "Notifications": q.notify.list status).
const (
	// NotificationStatusPending: not sent yet; a dispatcher sends it when
	// it is due (Notification.Due).
	NotificationStatusPending NotificationStatus = "pending"
	// NotificationStatusSent: the provider accepted it (or a check found
	// it had).
	NotificationStatusSent NotificationStatus = "sent"
	// NotificationStatusDead: dead-lettered after too many failed attempts
	// or a permanent refusal; only notify.redrive brings it back.
	NotificationStatusDead NotificationStatus = "dead"
)

// MaxNotificationErrorLength is the longest error text a notification
// event records, in bytes; a longer provider answer is cut (at a character
// boundary) and ends with "…".
const MaxNotificationErrorLength = 1000

// NotificationCreated records a message to send: rendered once, here, so a
// later change of wording never rewrites it.
type NotificationCreated struct {
	NotificationID NotificationID    `json:"notification_id"`
	Kind           string            `json:"kind"`
	Recipient      string            `json:"recipient"`
	Message        string            `json:"message"`
	Data           map[string]string `json:"data"`
	SourceEventID  string            `json:"source_event_id"`
	SourceType     string            `json:"source_type"`
	// SourceSeq is the stream sequence of the source event's commit
	// (absent from notifications recorded before it was kept).
	SourceSeq uint64    `json:"source_seq,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// EventType implements Event.
func (NotificationCreated) EventType() string { return "notification.created" }

// NotificationAttempted records that a dispatcher is about to call the
// provider. Until its outcome is recorded the attempt is in doubt: the
// process may have died after the provider accepted the message.
type NotificationAttempted struct {
	NotificationID NotificationID `json:"notification_id"`
	// Attempt numbers the attempts of the notification from 1, redrives
	// included.
	Attempt     int       `json:"attempt"`
	AttemptedAt time.Time `json:"attempted_at"`
}

// EventType implements Event.
func (NotificationAttempted) EventType() string { return "notification.attempted" }

// NotificationSent records that the provider has the message.
type NotificationSent struct {
	NotificationID NotificationID `json:"notification_id"`
	Attempt        int            `json:"attempt"`
	ProviderRef    string         `json:"provider_ref,omitempty"`
	// ConfirmedByCheck is set when the message was found at the provider
	// (an attempt in doubt had reached it) rather than accepted by a send.
	ConfirmedByCheck bool      `json:"confirmed_by_check"`
	SentAt           time.Time `json:"sent_at"`
}

// EventType implements Event.
func (NotificationSent) EventType() string { return "notification.sent" }

// NotificationFailed records that an attempt did not deliver the message,
// or may not have.
type NotificationFailed struct {
	NotificationID NotificationID `json:"notification_id"`
	Attempt        int            `json:"attempt"`
	Error          string         `json:"error"`
	// Permanent is set when the provider refused the message for good (a
	// 4xx other than 429): it is dead-lettered in the same commit.
	Permanent bool `json:"permanent"`
	// OutcomeUnknown is set when the provider did not answer (a timeout)
	// or answered 5xx: the message may have arrived, so the attempt stays
	// in doubt and the next try asks the provider first.
	OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
	// Throttled is set when the provider refused the message for its rate
	// limit (429): the attempt does not count toward dead-lettering.
	Throttled bool `json:"throttled,omitempty"`
	// RetryAt is when to try again; absent when the failure dead-letters.
	RetryAt  time.Time `json:"retry_at,omitzero"`
	FailedAt time.Time `json:"failed_at"`
}

// EventType implements Event.
func (NotificationFailed) EventType() string { return "notification.failed" }

// NotificationDeadLettered records that the engine gave up on a
// notification: after the notification.failed that decided it, in the same
// commit, or alone when an attempt in doubt could not be checked with the
// provider for the outage allowance (DecideDoubtUnsettled).
type NotificationDeadLettered struct {
	NotificationID NotificationID `json:"notification_id"`
	// Attempts is the total number of attempts, redrives included.
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	DeadAt    time.Time `json:"dead_at"`
}

// EventType implements Event.
func (NotificationDeadLettered) EventType() string { return "notification.dead_lettered" }

// NotificationRedriven records that an operator brought a dead-lettered
// notification back (notify.redrive): it is pending again, due now, with a
// fresh budget of attempts.
type NotificationRedriven struct {
	NotificationID NotificationID `json:"notification_id"`
	Reason         string         `json:"reason,omitempty"`
	RedrivenAt     time.Time      `json:"redriven_at"`
}

// EventType implements Event.
func (NotificationRedriven) EventType() string { return "notification.redriven" }

// Notification is the state of one notification.
type Notification struct {
	ID            NotificationID     `json:"id"`
	Kind          string             `json:"kind"`
	Recipient     string             `json:"recipient"`
	Message       string             `json:"message"`
	Data          map[string]string  `json:"data"`
	SourceEventID string             `json:"source_event_id"`
	SourceType    string             `json:"source_type"`
	Status        NotificationStatus `json:"status"`
	// Attempts counts every attempt recorded, redrives included; the next
	// attempt is number Attempts+1.
	Attempts int `json:"attempts"`
	// AttemptsSinceRedrive counts the attempts since creation or the last
	// redrive that count toward dead-lettering: every attempt except one
	// the provider refused for its rate limit.
	AttemptsSinceRedrive int `json:"attempts_since_redrive"`
	// InDoubt is set while the last attempt may have reached the
	// recipient without anyone knowing: it has no recorded outcome (the
	// dispatcher died between notification.attempted and the result), or
	// its outcome is unknown (the provider did not answer in time). Ask the
	// provider (chat.Provider.Delivered) before sending again. It stays set
	// through a dead-lettering and a redrive.
	InDoubt       bool      `json:"in_doubt"`
	LastAttemptAt time.Time `json:"last_attempt_at,omitzero"`
	// LastFailedAttempt is the number of the last attempt recorded failed
	// (0: none): an attempt's failure is recorded once.
	LastFailedAttempt int       `json:"last_failed_attempt,omitempty"`
	LastError         string    `json:"last_error,omitempty"`
	ProviderRef       string    `json:"provider_ref,omitempty"`
	CreatedAt         time.Time `json:"created_at"`
	SentAt            time.Time `json:"sent_at,omitzero"`
	// RetryAt is when a failed notification is due again (zero: now).
	RetryAt  time.Time `json:"retry_at,omitzero"`
	DeadAt   time.Time `json:"dead_at,omitzero"`
	Redrives int       `json:"redrives"`
	// RedrivenAt is when the last redrive was (zero: never).
	RedrivenAt time.Time `json:"redriven_at,omitzero"`
	// AttemptsAtRedrive is Attempts when the last redrive was: a failure
	// recorded since (LastFailedAttempt above it) is the redriven
	// notification's own, one before is not.
	AttemptsAtRedrive int `json:"attempts_at_redrive,omitempty"`
	// Version counts the events applied; 0 means the notification does not
	// exist.
	Version int `json:"version"`
}

// Exists reports whether the notification has been created.
func (n Notification) Exists() bool { return n.ID != "" }

// Due reports whether a dispatcher should work on the notification at now:
// it is pending and its retry time, if any, has come. An attempt in doubt
// is due too: it needs a check with the provider.
func (n Notification) Due(now time.Time) bool {
	return n.Status == NotificationStatusPending && !now.Before(n.RetryAt)
}

// Apply returns the state after e. It never fails and never changes n.
func (n Notification) Apply(e Event) Notification {
	switch e := e.(type) {
	case NotificationCreated:
		n = Notification{
			ID: e.NotificationID, Kind: e.Kind, Recipient: e.Recipient, Message: e.Message, Data: maps.Clone(e.Data),
			SourceEventID: e.SourceEventID, SourceType: e.SourceType, Status: NotificationStatusPending, CreatedAt: e.CreatedAt,
			Version: n.Version,
		}
	case NotificationAttempted:
		n.Attempts = max(n.Attempts, e.Attempt)
		n.AttemptsSinceRedrive++
		n.InDoubt, n.LastAttemptAt = true, e.AttemptedAt
	case NotificationSent:
		n.Status, n.InDoubt = NotificationStatusSent, false
		n.SentAt, n.ProviderRef, n.RetryAt = e.SentAt, e.ProviderRef, time.Time{}
	case NotificationFailed:
		n.InDoubt, n.LastFailedAttempt, n.LastError, n.RetryAt = e.OutcomeUnknown, e.Attempt, e.Error, e.RetryAt
		if e.Throttled && n.AttemptsSinceRedrive > 0 {
			n.AttemptsSinceRedrive--
		}
	case NotificationDeadLettered:
		n.Status, n.RetryAt = NotificationStatusDead, time.Time{}
		n.LastError, n.DeadAt = e.LastError, e.DeadAt
	case NotificationRedriven:
		n.Status, n.RetryAt, n.DeadAt = NotificationStatusPending, time.Time{}, time.Time{}
		n.AttemptsSinceRedrive = 0
		n.Redrives++
		n.RedrivenAt, n.AttemptsAtRedrive = e.RedrivenAt, n.Attempts
	}
	n.Version++
	return n
}

// notificationNotFound is ErrNotificationNotFound. The state of a
// notification that does not exist has no ID: the caller, who asked for
// one, adds it to the details if it wants.
func notificationNotFound() error {
	return ErrNotificationNotFound.With("", nil)
}

// notificationNotPending is ErrNotificationNotPending for n.
func notificationNotPending(n Notification) error {
	return ErrNotificationNotPending.With("notification is "+string(n.Status)+"; it is not pending",
		map[string]any{"notification_id": string(n.ID), "status": string(n.Status)})
}

// DecideCreateNotification records intent as a new notification. A
// notification that exists already needs nothing (no events), whatever the
// intent says: the first recording stands. The intent must be complete and
// its ID must be NewNotificationID of its source event, kind and recipient.
func DecideCreateNotification(n Notification, in NotificationIntent, at time.Time) ([]Event, error) {
	switch {
	case in.SourceEventID == "":
		return nil, Invalid("source_event_id", "is required")
	case in.Kind == "":
		return nil, Invalid("kind", "is required")
	case in.Recipient == "":
		return nil, Invalid("recipient", "is required")
	case strings.TrimSpace(in.Message) == "":
		return nil, Invalid("message", "is required")
	case in.ID != NewNotificationID(in.SourceEventID, in.Kind, in.Recipient):
		return nil, Invalid("notification_id", "is not the notification of source_event_id, kind and recipient")
	}
	if n.Exists() {
		return nil, nil
	}
	data := maps.Clone(in.Data)
	if data == nil {
		data = map[string]string{}
	}
	return []Event{NotificationCreated{
		NotificationID: in.ID, Kind: in.Kind, Recipient: in.Recipient, Message: in.Message, Data: data,
		SourceEventID: in.SourceEventID, SourceType: in.SourceType, SourceSeq: in.SourceSeq, CreatedAt: at,
	}}, nil
}

// DecideAttempt records that a dispatcher is about to send a pending
// notification: attempt number n.Attempts+1. An attempt in doubt is
// superseded by the new one: the caller has found (chat.Provider.Delivered)
// that it did not arrive, or cannot tell. Anything but a pending
// notification is ErrNotificationNotPending (an unknown one
// ErrNotificationNotFound).
func DecideAttempt(n Notification, at time.Time) ([]Event, error) {
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	if n.Status != NotificationStatusPending {
		return nil, notificationNotPending(n)
	}
	return []Event{NotificationAttempted{NotificationID: n.ID, Attempt: n.Attempts + 1, AttemptedAt: at}}, nil
}

// DecideAttemptAfter records the next attempt, as DecideAttempt, only if
// the notification has had exactly seen attempts: a dispatcher that read
// it before another dispatcher's attempt gets ErrAttemptTaken instead of
// sending a second time.
func DecideAttemptAfter(n Notification, seen int, at time.Time) ([]Event, error) {
	if n.Exists() && n.Attempts != seen {
		return nil, ErrAttemptTaken.With("", map[string]any{"notification_id": string(n.ID), "attempts": n.Attempts})
	}
	return DecideAttempt(n, at)
}

// DecideNotificationSent records that the provider has the message: it
// accepted the last attempt (ref is its message id, if any), or confirmed
// is set and a check found the message there. A notification sent already
// needs nothing (no events); a dead one is ErrNotificationNotPending.
func DecideNotificationSent(n Notification, ref string, confirmed bool, at time.Time) ([]Event, error) {
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	switch n.Status {
	case NotificationStatusSent:
		return nil, nil
	case NotificationStatusDead:
		return nil, notificationNotPending(n)
	}
	return []Event{NotificationSent{NotificationID: n.ID, Attempt: n.Attempts, ProviderRef: ref, ConfirmedByCheck: confirmed, SentAt: at}}, nil
}

// SendFailure is what a dispatcher knows of a failed attempt.
type SendFailure struct {
	// Reason is the error, as recorded (cut to MaxNotificationErrorLength).
	Reason string
	// Permanent: the provider refused the message for good; it is
	// dead-lettered at once.
	Permanent bool
	// Unknown: the provider did not answer (a timeout) or answered 5xx;
	// the message may have arrived, so the notification stays in doubt.
	Unknown bool
	// RetryAt is when to try again, unless the failure dead-letters.
	RetryAt time.Time
	// MaxAttempts is how many counted attempts since creation or the last
	// redrive dead-letter the notification; at least 1.
	MaxAttempts int
	// Attempt is the attempt that failed; 0 means the latest. A failure of
	// an attempt that is no longer the latest (another dispatcher attempted
	// since) records nothing: it must not settle the newer one.
	Attempt int
	// Throttled: the provider refused the send for its rate (429). Not
	// counted; tried again at RetryAt (DecideNotificationThrottled).
	Throttled bool
}

// hasOpenAttempt reports whether n has an attempt whose failure is not
// recorded yet.
func (n Notification) hasOpenAttempt() bool {
	return n.Attempts > 0 && n.LastFailedAttempt != n.Attempts
}

// DecideSendFailure records that the last attempt failed: a
// notification.failed to be retried at f.RetryAt, or, when the failure is
// permanent or the notification has had f.MaxAttempts counted attempts since
// it was created or redriven (this one included), followed in the same
// commit by notification.dead_lettered (and then the failure records no
// retry time). An unknown outcome leaves the notification in doubt. A
// failure is recorded once per attempt: when the last attempt's is recorded
// already, or there was none, it needs nothing (no events). Only a pending
// notification fails (ErrNotificationNotPending; an unknown one
// ErrNotificationNotFound).
func DecideSendFailure(n Notification, f SendFailure, at time.Time) ([]Event, error) {
	if f.Attempt != 0 && n.Exists() && f.Attempt != n.Attempts {
		return nil, nil
	}
	if f.Throttled {
		return DecideNotificationThrottled(n, f.Reason, f.RetryAt, at)
	}
	if f.MaxAttempts < 1 {
		return nil, Invalid("max_attempts", "must be at least 1")
	}
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	if n.Status != NotificationStatusPending {
		return nil, notificationNotPending(n)
	}
	if !n.hasOpenAttempt() {
		return nil, nil
	}
	reason := clipError(f.Reason)
	failed := NotificationFailed{
		NotificationID: n.ID, Attempt: n.Attempts, Error: reason, Permanent: f.Permanent, OutcomeUnknown: f.Unknown,
		RetryAt: f.RetryAt, FailedAt: at,
	}
	if !f.Permanent && n.AttemptsSinceRedrive < f.MaxAttempts {
		return []Event{failed}, nil
	}
	failed.RetryAt = time.Time{}
	return []Event{failed, NotificationDeadLettered{NotificationID: n.ID, Attempts: n.Attempts, LastError: reason, DeadAt: at}}, nil
}

// DecideDoubtUnsettled dead-letters a notification whose in-doubt attempt
// the provider could not be asked about for too long (its check failing
// all through an outage the dispatchers would have dead-lettered sends
// for): notification.dead_lettered alone, with reason as its last error.
// The notification stays in doubt, so a redrive asks the provider again
// before sending. seen is the Version the caller judged "too long" on:
// when anything happened to the notification since (another attempt, a
// check that found the message, a dead-lettering and a redrive, which
// gives the doubt a new allowance), it needs nothing (no events). So does
// one that is not in doubt. Otherwise only a pending notification is
// dead-lettered (ErrNotificationNotPending; an unknown one
// ErrNotificationNotFound).
func DecideDoubtUnsettled(n Notification, seen int, reason string, at time.Time) ([]Event, error) {
	if n.Exists() && (n.Version != seen || !n.InDoubt) {
		return nil, nil
	}
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	if n.Status != NotificationStatusPending {
		return nil, notificationNotPending(n)
	}
	return []Event{NotificationDeadLettered{NotificationID: n.ID, Attempts: n.Attempts, LastError: clipError(reason), DeadAt: at}}, nil
}

// DecideNotificationFailed is DecideSendFailure of a failure whose outcome
// is known: the provider answered that it did not take the message.
func DecideNotificationFailed(n Notification, reason string, permanent bool, retryAt time.Time, maxAttempts int, at time.Time) ([]Event, error) {
	return DecideSendFailure(n, SendFailure{Reason: reason, Permanent: permanent, RetryAt: retryAt, MaxAttempts: maxAttempts}, at)
}

// DecideNotificationThrottled records that the provider refused the last
// attempt for its rate limit (HTTP 429): a notification.failed with
// throttled set, due again at retryAt. The attempt does not count toward
// dead-lettering, so throttling never dead-letters. Recorded once per
// attempt, like DecideSendFailure; only a pending notification is refused
// (ErrNotificationNotPending).
func DecideNotificationThrottled(n Notification, reason string, retryAt, at time.Time) ([]Event, error) {
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	if n.Status != NotificationStatusPending {
		return nil, notificationNotPending(n)
	}
	if !n.hasOpenAttempt() {
		return nil, nil
	}
	return []Event{NotificationFailed{NotificationID: n.ID, Attempt: n.Attempts, Error: clipError(reason), Throttled: true, RetryAt: retryAt, FailedAt: at}}, nil
}

// DecideRedrive brings a dead-lettered notification back: pending, due now,
// with AttemptsSinceRedrive back to 0. The reason is optional (trimmed, at
// most MaxReasonLength characters). A notification that is not dead is
// ErrNotificationNotDead; an unknown one ErrNotificationNotFound.
func DecideRedrive(n Notification, reason string, at time.Time) ([]Event, error) {
	if err := ValidateReason(reason); err != nil {
		return nil, err
	}
	if !n.Exists() {
		return nil, notificationNotFound()
	}
	if n.Status != NotificationStatusDead {
		return nil, ErrNotificationNotDead.With("notification is "+string(n.Status)+"; only a dead notification can be redriven",
			map[string]any{"notification_id": string(n.ID), "status": string(n.Status)})
	}
	return []Event{NotificationRedriven{NotificationID: n.ID, Reason: strings.TrimSpace(reason), RedrivenAt: at}}, nil
}

// clipError cuts an error text to MaxNotificationErrorLength bytes at a
// character boundary.
func clipError(s string) string {
	if len(s) <= MaxNotificationErrorLength {
		return s
	}
	const ellipsis = "…"
	cut := MaxNotificationErrorLength - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

package domain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bankbook/bankbook/domain"
)

// The notification of these tests: the bill_issued message of evt-1 to store-1.
const ntfSource = "019a0000-0000-7000-8000-000000000001"

var ntfID = domain.NewNotificationID(ntfSource, domain.NotifyBillIssued, "store:store-1")

func ntfIntent() domain.NotificationIntent {
	return domain.NotificationIntent{
		ID: ntfID, Kind: domain.NotifyBillIssued, Recipient: "store:store-1", Message: "[청구서] 행복식당 님, 50,000원 청구서가 발행되었습니다.",
		Data: map[string]string{"bill_id": "b-1", "amount": "50000"}, SourceEventID: ntfSource, SourceType: "bill.issued",
	}
}

func ntfCreated() domain.NotificationCreated {
	in := ntfIntent()
	return domain.NotificationCreated{
		NotificationID: in.ID, Kind: in.Kind, Recipient: in.Recipient, Message: in.Message, Data: map[string]string{"bill_id": "b-1", "amount": "50000"},
		SourceEventID: in.SourceEventID, SourceType: in.SourceType, CreatedAt: t0,
	}
}

func ntfAttempted(n int) domain.NotificationAttempted {
	return domain.NotificationAttempted{NotificationID: ntfID, Attempt: n, AttemptedAt: t0.Add(time.Duration(n) * time.Minute)}
}

func ntfFailed(n int, permanent bool) domain.NotificationFailed {
	f := domain.NotificationFailed{NotificationID: ntfID, Attempt: n, Error: "503 unavailable", Permanent: permanent, FailedAt: t0.Add(time.Duration(n)*time.Minute + time.Second)}
	if !permanent {
		f.RetryAt = f.FailedAt.Add(10 * time.Second)
	}
	return f
}

// ntfTimedOut is a failure of attempt n whose outcome is unknown.
func ntfTimedOut(n int) domain.NotificationFailed {
	f := ntfFailed(n, false)
	f.Error, f.OutcomeUnknown = "timeout", true
	return f
}

func ntfThrottled(n int) domain.NotificationFailed {
	at := t0.Add(time.Duration(n)*time.Minute + time.Second)
	return domain.NotificationFailed{NotificationID: ntfID, Attempt: n, Error: "429 too many requests", Throttled: true, RetryAt: at.Add(165 * time.Millisecond), FailedAt: at}
}

func ntfDead(attempts int) domain.NotificationDeadLettered {
	return domain.NotificationDeadLettered{NotificationID: ntfID, Attempts: attempts, LastError: "503 unavailable", DeadAt: t0.Add(time.Duration(attempts)*time.Minute + time.Second)}
}

func ntfSent(n int) domain.NotificationSent {
	return domain.NotificationSent{NotificationID: ntfID, Attempt: n, ProviderRef: "msg-1", SentAt: t0.Add(time.Duration(n)*time.Minute + time.Second)}
}

func ntfRedriven() domain.NotificationRedriven {
	return domain.NotificationRedriven{NotificationID: ntfID, Reason: "channel fixed", RedrivenAt: t0.Add(time.Hour)}
}

// givenNotification folds events into a Notification, the way the command
// layer rebuilds it.
func givenNotification(events ...domain.Event) domain.Notification {
	var n domain.Notification
	for _, e := range events {
		n = n.Apply(e)
	}
	return n
}

func TestNewNotificationID(t *testing.T) {
	sum := sha256.Sum256([]byte(ntfSource + "\x00bill_issued\x00store:store-1"))
	if want := "ntf_" + hex.EncodeToString(sum[:])[:24]; string(ntfID) != want {
		t.Fatalf("NewNotificationID = %q, want %q", ntfID, want)
	}
	if !regexp.MustCompile(`^ntf_[0-9a-f]{24}$`).MatchString(string(ntfID)) {
		t.Fatalf("NewNotificationID = %q, want ntf_ and 24 hex digits", ntfID)
	}
	if err := domain.ValidateID("notification_id", string(ntfID)); err != nil {
		t.Fatalf("a notification ID is not a valid ID (a subject token): %v", err)
	}
	if again := domain.NewNotificationID(ntfSource, domain.NotifyBillIssued, "store:store-1"); again != ntfID {
		t.Errorf("NewNotificationID is not deterministic: %q, %q", again, ntfID)
	}
	others := map[string]domain.NotificationID{
		"another event":     domain.NewNotificationID(ntfSource+"2", domain.NotifyBillIssued, "store:store-1"),
		"another kind":      domain.NewNotificationID(ntfSource, domain.NotifyUnpaidReminder, "store:store-1"),
		"another recipient": domain.NewNotificationID(ntfSource, domain.NotifyBillIssued, "store:store-2"),
		"parts shifted":     domain.NewNotificationID(ntfSource+"b", "ill_issued", "store:store-1"),
	}
	for name, id := range others {
		if id == ntfID {
			t.Errorf("%s: same ID %q", name, id)
		}
	}
}

func TestNotificationApply(t *testing.T) {
	created := domain.Notification{
		ID: ntfID, Kind: domain.NotifyBillIssued, Recipient: "store:store-1", Message: ntfIntent().Message,
		Data: map[string]string{"bill_id": "b-1", "amount": "50000"}, SourceEventID: ntfSource, SourceType: "bill.issued",
		Status: domain.NotificationStatusPending, CreatedAt: t0, Version: 1,
	}
	with := func(f func(*domain.Notification)) domain.Notification {
		n := created
		f(&n)
		return n
	}
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.Notification
	}{
		{"zero notification", nil, domain.Notification{}},
		{"created: pending, due now", []domain.Event{ntfCreated()}, created},
		{"attempted: in doubt", []domain.Event{ntfCreated(), ntfAttempted(1)}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.InDoubt, n.LastAttemptAt, n.Version = 1, 1, true, t0.Add(time.Minute), 2
		})},
		{"sent", []domain.Event{ntfCreated(), ntfAttempted(1), ntfSent(1)}, with(func(n *domain.Notification) {
			n.Status, n.Attempts, n.AttemptsSinceRedrive, n.LastAttemptAt, n.Version = domain.NotificationStatusSent, 1, 1, t0.Add(time.Minute), 3
			n.SentAt, n.ProviderRef = ntfSent(1).SentAt, "msg-1"
		})},
		{"failed: pending, due at retry_at", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, false)}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.LastAttemptAt, n.Version = 1, 1, t0.Add(time.Minute), 3
			n.LastFailedAttempt, n.LastError, n.RetryAt = 1, "503 unavailable", ntfFailed(1, false).RetryAt
		})},
		{"failed with an unknown outcome: still in doubt", []domain.Event{ntfCreated(), ntfAttempted(1), ntfTimedOut(1)}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.InDoubt, n.LastAttemptAt, n.Version = 1, 1, true, t0.Add(time.Minute), 3
			n.LastFailedAttempt, n.LastError, n.RetryAt = 1, "timeout", ntfTimedOut(1).RetryAt
		})},
		{"throttled: the attempt does not count", []domain.Event{ntfCreated(), ntfAttempted(1), ntfThrottled(1)}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.LastAttemptAt, n.Version = 1, 0, t0.Add(time.Minute), 3
			n.LastFailedAttempt, n.LastError, n.RetryAt = 1, "429 too many requests", ntfThrottled(1).RetryAt
		})},
		{"dead-lettered", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)}, with(func(n *domain.Notification) {
			n.Status, n.Attempts, n.AttemptsSinceRedrive, n.LastAttemptAt, n.Version = domain.NotificationStatusDead, 1, 1, t0.Add(time.Minute), 4
			n.LastFailedAttempt, n.LastError, n.DeadAt = 1, "503 unavailable", ntfDead(1).DeadAt
		})},
		{"redriven: pending, due now, a fresh budget", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven()}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.LastAttemptAt, n.Version = 1, 0, t0.Add(time.Minute), 5
			n.LastFailedAttempt, n.LastError, n.Redrives, n.RedrivenAt, n.AttemptsAtRedrive = 1, "503 unavailable", 1, ntfRedriven().RedrivenAt, 1
		})},
		{"dead and redriven after an unknown outcome: still in doubt", []domain.Event{ntfCreated(), ntfAttempted(1), ntfTimedOut(1), ntfDead(1), ntfRedriven()}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.InDoubt, n.LastAttemptAt, n.Version = 1, 0, true, t0.Add(time.Minute), 5
			n.LastFailedAttempt, n.LastError, n.Redrives, n.RedrivenAt, n.AttemptsAtRedrive = 1, "503 unavailable", 1, ntfRedriven().RedrivenAt, 1
		})},
		{"attempted after a redrive numbers on", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven(), ntfAttempted(2)}, with(func(n *domain.Notification) {
			n.Attempts, n.AttemptsSinceRedrive, n.InDoubt, n.LastAttemptAt, n.Version = 2, 1, true, t0.Add(2*time.Minute), 6
			n.LastFailedAttempt, n.LastError, n.Redrives, n.RedrivenAt, n.AttemptsAtRedrive = 1, "503 unavailable", 1, ntfRedriven().RedrivenAt, 1
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := givenNotification(tt.given...); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("state\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestNotificationDue(t *testing.T) {
	failed := givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, false))
	retryAt := ntfFailed(1, false).RetryAt
	tests := []struct {
		name string
		n    domain.Notification
		now  time.Time
		want bool
	}{
		{"created is due at once", givenNotification(ntfCreated()), t0, true},
		{"in doubt is due (it needs a check)", givenNotification(ntfCreated(), ntfAttempted(1)), t0, true},
		{"failed, before retry_at", failed, retryAt.Add(-time.Nanosecond), false},
		{"failed, at retry_at", failed, retryAt, true},
		{"sent is never due", givenNotification(ntfCreated(), ntfAttempted(1), ntfSent(1)), t0.Add(time.Hour), false},
		{"dead is never due", givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)), t0.Add(time.Hour), false},
		{"redriven is due at once", givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven()), t0, true},
		{"unknown is not due", domain.Notification{}, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.n.Due(tt.now); got != tt.want {
				t.Fatalf("Due = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNotificationApplyDoesNotChangeItsInput(t *testing.T) {
	ev := ntfCreated()
	n := givenNotification(ev)
	ev.Data["amount"] = "1" // the event's map is not the state's
	if n.Data["amount"] != "50000" {
		t.Fatalf("state shares the event's data: %v", n.Data)
	}
	state := givenNotification(ntfCreated(), ntfAttempted(1))
	snapshot := givenNotification(ntfCreated(), ntfAttempted(1))
	for _, e := range []domain.Event{ntfCreated(), ntfAttempted(2), ntfSent(1), ntfFailed(1, false), ntfThrottled(1), ntfDead(1), ntfRedriven()} {
		next := state.Apply(e)
		if !reflect.DeepEqual(state, snapshot) {
			t.Fatalf("Apply(%s) changed its input", e.EventType())
		}
		if reflect.DeepEqual(next, state) {
			t.Errorf("Apply(%s) returned the same state", e.EventType())
		}
	}
}

func TestDecideCreateNotification(t *testing.T) {
	t.Run("a new intent is created", func(t *testing.T) {
		events, err := domain.DecideCreateNotification(domain.Notification{}, ntfIntent(), t0)
		if err != nil {
			t.Fatal(err)
		}
		if want := []domain.Event{ntfCreated()}; !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
	})
	t.Run("the event does not share the intent's data", func(t *testing.T) {
		in := ntfIntent()
		events, _ := domain.DecideCreateNotification(domain.Notification{}, in, t0)
		in.Data["amount"] = "1"
		if got := events[0].(domain.NotificationCreated).Data["amount"]; got != "50000" {
			t.Fatalf("data amount = %q after the intent changed", got)
		}
	})
	t.Run("an intent without data records an empty object", func(t *testing.T) {
		in := ntfIntent()
		in.Data = nil
		events, _ := domain.DecideCreateNotification(domain.Notification{}, in, t0)
		_, _, data, err := domain.Events().Encode(events[0])
		if err != nil || !strings.Contains(string(data), `"data":{}`) {
			t.Fatalf("payload %s, %v; want data {}", data, err)
		}
	})
	for _, given := range [][]domain.Event{
		{ntfCreated()},
		{ntfCreated(), ntfAttempted(1), ntfSent(1)},
		{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)},
	} {
		t.Run("exists already, "+string(givenNotification(given...).Status)+": nothing", func(t *testing.T) {
			other := ntfIntent()
			other.Message = "another text" // the first recording stands
			events, err := domain.DecideCreateNotification(givenNotification(given...), other, t0.Add(time.Hour))
			if err != nil || events != nil {
				t.Fatalf("= %#v, %v; want nothing", events, err)
			}
		})
	}
	invalid := []struct {
		name  string
		field string
		edit  func(*domain.NotificationIntent)
	}{
		{"no source event", "source_event_id", func(in *domain.NotificationIntent) { in.SourceEventID = "" }},
		{"no kind", "kind", func(in *domain.NotificationIntent) { in.Kind = "" }},
		{"no recipient", "recipient", func(in *domain.NotificationIntent) { in.Recipient = "" }},
		{"blank message", "message", func(in *domain.NotificationIntent) { in.Message = " \n" }},
		{"an ID of other parts", "notification_id", func(in *domain.NotificationIntent) { in.Recipient = "store:store-2" }},
		{"no ID", "notification_id", func(in *domain.NotificationIntent) { in.ID = "" }},
	}
	for _, tt := range invalid {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			in := ntfIntent()
			tt.edit(&in)
			events, err := domain.DecideCreateNotification(domain.Notification{}, in, t0)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if de.Details["field"] != tt.field {
				t.Errorf("field = %v, want %s", de.Details["field"], tt.field)
			}
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
		})
	}
}

func TestDecideAttempt(t *testing.T) {
	at := t0.Add(time.Hour)
	tests := []struct {
		name  string
		given []domain.Event
		then  []domain.Event
	}{
		{"first attempt", []domain.Event{ntfCreated()}, []domain.Event{domain.NotificationAttempted{NotificationID: ntfID, Attempt: 1, AttemptedAt: at}}},
		{"after a failure", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, false)}, []domain.Event{domain.NotificationAttempted{NotificationID: ntfID, Attempt: 2, AttemptedAt: at}}},
		{"an attempt in doubt is superseded", []domain.Event{ntfCreated(), ntfAttempted(1)}, []domain.Event{domain.NotificationAttempted{NotificationID: ntfID, Attempt: 2, AttemptedAt: at}}},
		{"after a rate-limited refusal", []domain.Event{ntfCreated(), ntfAttempted(1), ntfThrottled(1)}, []domain.Event{domain.NotificationAttempted{NotificationID: ntfID, Attempt: 2, AttemptedAt: at}}},
		{"after a redrive", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven()}, []domain.Event{domain.NotificationAttempted{NotificationID: ntfID, Attempt: 2, AttemptedAt: at}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideAttempt(givenNotification(tt.given...), at)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
		})
	}
	refused := []struct {
		name   string
		given  []domain.Event
		want   *domain.Error
		kind   domain.Kind
		status string
	}{
		{"sent", []domain.Event{ntfCreated(), ntfAttempted(1), ntfSent(1)}, domain.ErrNotificationNotPending, domain.KindConflict, "sent"},
		{"dead", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)}, domain.ErrNotificationNotPending, domain.KindConflict, "dead"},
		{"unknown", nil, domain.ErrNotificationNotFound, domain.KindNotFound, ""},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			events, err := domain.DecideAttempt(givenNotification(tt.given...), at)
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if tt.status != "" && (de.Details["status"] != tt.status || de.Details["notification_id"] != string(ntfID)) {
				t.Errorf("details = %v, want status %s and the ID", de.Details, tt.status)
			}
		})
	}
}

func TestDecideNotificationSent(t *testing.T) {
	at := t0.Add(time.Hour)
	sent := func(attempt int, ref string, confirmed bool) []domain.Event {
		return []domain.Event{domain.NotificationSent{NotificationID: ntfID, Attempt: attempt, ProviderRef: ref, ConfirmedByCheck: confirmed, SentAt: at}}
	}
	tests := []struct {
		name      string
		given     []domain.Event
		ref       string
		confirmed bool
		then      []domain.Event
	}{
		{"the provider accepted the attempt", []domain.Event{ntfCreated(), ntfAttempted(1)}, "msg-9", false, sent(1, "msg-9", false)},
		{"a check found the attempt in doubt", []domain.Event{ntfCreated(), ntfAttempted(1)}, "msg-9", true, sent(1, "msg-9", true)},
		{"a check found a failed (timed-out) attempt", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, false)}, "", true, sent(1, "", true)},
		{"sent already: nothing", []domain.Event{ntfCreated(), ntfAttempted(1), ntfSent(1)}, "msg-9", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := givenNotification(tt.given...)
			events, err := domain.DecideNotificationSent(n, tt.ref, tt.confirmed, at)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				n = n.Apply(e)
			}
			if n.Status != domain.NotificationStatusSent || n.InDoubt || n.Due(at.Add(time.Hour)) {
				t.Errorf("after: status %s in doubt %v due %v; want sent, settled, not due", n.Status, n.InDoubt, n.Due(at.Add(time.Hour)))
			}
		})
	}
	t.Run("refused: dead", func(t *testing.T) {
		_, err := domain.DecideNotificationSent(givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)), "", false, at)
		requireDomainError(t, err, domain.ErrNotificationNotPending, domain.KindConflict)
	})
	t.Run("refused: unknown", func(t *testing.T) {
		_, err := domain.DecideNotificationSent(domain.Notification{}, "", false, at)
		requireDomainError(t, err, domain.ErrNotificationNotFound, domain.KindNotFound)
	})
}

func TestDecideNotificationFailed(t *testing.T) {
	at := t0.Add(time.Hour)
	retry := at.Add(4 * time.Second)
	failed := func(attempt int, permanent bool, retryAt time.Time) domain.NotificationFailed {
		return domain.NotificationFailed{NotificationID: ntfID, Attempt: attempt, Error: "boom", Permanent: permanent, RetryAt: retryAt, FailedAt: at}
	}
	dead := func(attempts int) domain.NotificationDeadLettered {
		return domain.NotificationDeadLettered{NotificationID: ntfID, Attempts: attempts, LastError: "boom", DeadAt: at}
	}
	tests := []struct {
		name      string
		given     []domain.Event
		permanent bool
		max       int
		then      []domain.Event
		status    domain.NotificationStatus
	}{
		{"transient, attempts left: retry later", []domain.Event{ntfCreated(), ntfAttempted(1)}, false, 3,
			[]domain.Event{failed(1, false, retry)}, domain.NotificationStatusPending},
		{"transient, the last attempt: dead-lettered, no retry time", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, false), ntfAttempted(2), ntfFailed(2, false), ntfAttempted(3)}, false, 3,
			[]domain.Event{failed(3, false, time.Time{}), dead(3)}, domain.NotificationStatusDead},
		{"one attempt allowed", []domain.Event{ntfCreated(), ntfAttempted(1)}, false, 1,
			[]domain.Event{failed(1, false, time.Time{}), dead(1)}, domain.NotificationStatusDead},
		{"permanent: dead-lettered at once", []domain.Event{ntfCreated(), ntfAttempted(1)}, true, 5,
			[]domain.Event{failed(1, true, time.Time{}), dead(1)}, domain.NotificationStatusDead},
		{"rate-limited refusals do not count", []domain.Event{ntfCreated(), ntfAttempted(1), ntfThrottled(1), ntfAttempted(2), ntfThrottled(2), ntfAttempted(3)}, false, 2,
			[]domain.Event{failed(3, false, retry)}, domain.NotificationStatusPending},
		{"after a redrive the budget is fresh", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven(), ntfAttempted(2)}, false, 2,
			[]domain.Event{failed(2, false, retry)}, domain.NotificationStatusPending},
		{"after a redrive, the budget used up again", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven(), ntfAttempted(2), ntfFailed(2, false), ntfAttempted(3)}, false, 2,
			[]domain.Event{failed(3, false, time.Time{}), dead(3)}, domain.NotificationStatusDead},
		{"a crash mid-send counts as an attempt", []domain.Event{ntfCreated(), ntfAttempted(1), ntfAttempted(2)}, false, 2,
			[]domain.Event{failed(2, false, time.Time{}), dead(2)}, domain.NotificationStatusDead},
		{"its failure recorded already: nothing", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, false)}, false, 3,
			nil, domain.NotificationStatusPending},
		{"its throttling recorded already: nothing", []domain.Event{ntfCreated(), ntfAttempted(1), ntfThrottled(1)}, true, 3,
			nil, domain.NotificationStatusPending},
		{"never attempted: nothing", []domain.Event{ntfCreated()}, true, 3, nil, domain.NotificationStatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := givenNotification(tt.given...)
			events, err := domain.DecideNotificationFailed(n, "boom", tt.permanent, retry, tt.max, at)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				n = n.Apply(e)
			}
			if n.Status != tt.status || n.InDoubt {
				t.Errorf("after: status %s in doubt %v; want %s, settled", n.Status, n.InDoubt, tt.status)
			}
		})
	}
	refused := []struct {
		name  string
		given []domain.Event
		max   int
		want  *domain.Error
		kind  domain.Kind
	}{
		{"sent", []domain.Event{ntfCreated(), ntfAttempted(1), ntfSent(1)}, 3, domain.ErrNotificationNotPending, domain.KindConflict},
		{"dead", []domain.Event{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1)}, 3, domain.ErrNotificationNotPending, domain.KindConflict},
		{"unknown", nil, 3, domain.ErrNotificationNotFound, domain.KindNotFound},
		{"max attempts 0", []domain.Event{ntfCreated(), ntfAttempted(1)}, 0, domain.ErrInvalidInput, domain.KindInvalid},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			events, err := domain.DecideNotificationFailed(givenNotification(tt.given...), "boom", false, retry, tt.max, at)
			requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
		})
	}
}

// TestDecideSendFailure: a failure whose outcome is unknown (a timeout)
// leaves the notification in doubt, so the next try asks the provider
// before it sends again, even after a dead-lettering and a redrive.
func TestDecideSendFailure(t *testing.T) {
	at := t0.Add(time.Hour)
	retry := at.Add(4 * time.Second)
	timeout := domain.SendFailure{Reason: "timeout", Unknown: true, RetryAt: retry, MaxAttempts: 2}
	t.Run("a timeout with attempts left: retried, in doubt", func(t *testing.T) {
		n := givenNotification(ntfCreated(), ntfAttempted(1))
		events, err := domain.DecideSendFailure(n, timeout, at)
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{domain.NotificationFailed{NotificationID: ntfID, Attempt: 1, Error: "timeout", OutcomeUnknown: true, RetryAt: retry, FailedAt: at}}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		n = n.Apply(events[0])
		if !n.InDoubt || n.Status != domain.NotificationStatusPending || n.Due(retry.Add(-time.Nanosecond)) || !n.Due(retry) {
			t.Errorf("after: %+v", n)
		}
		if again, err := domain.DecideSendFailure(n, timeout, at); err != nil || again != nil {
			t.Errorf("the same failure again = %#v, %v; want nothing", again, err)
		}
	})
	t.Run("a timeout on the last attempt: dead, still in doubt after a redrive", func(t *testing.T) {
		n := givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, false), ntfAttempted(2))
		events, err := domain.DecideSendFailure(n, timeout, at)
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{
			domain.NotificationFailed{NotificationID: ntfID, Attempt: 2, Error: "timeout", OutcomeUnknown: true, FailedAt: at},
			domain.NotificationDeadLettered{NotificationID: ntfID, Attempts: 2, LastError: "timeout", DeadAt: at},
		}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		for _, e := range events {
			n = n.Apply(e)
		}
		n = applyAll(t, n)(domain.DecideRedrive(n, "", at))
		if !n.InDoubt || !n.Due(at) || n.AttemptsSinceRedrive != 0 {
			t.Errorf("after the redrive: %+v", n)
		}
	})
	t.Run("DecideNotificationFailed is a known outcome", func(t *testing.T) {
		n := givenNotification(ntfCreated(), ntfAttempted(1))
		a, errA := domain.DecideNotificationFailed(n, "503", false, retry, 2, at)
		b, errB := domain.DecideSendFailure(n, domain.SendFailure{Reason: "503", RetryAt: retry, MaxAttempts: 2}, at)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%#v %v\n%#v %v", a, errA, b, errB)
		}
	})
}

func TestDecideNotificationFailedClipsTheError(t *testing.T) {
	long := strings.Repeat("가", domain.MaxNotificationErrorLength) // 3 bytes each
	events, err := domain.DecideNotificationFailed(givenNotification(ntfCreated(), ntfAttempted(1)), long, true, time.Time{}, 3, t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []string{events[0].(domain.NotificationFailed).Error, events[1].(domain.NotificationDeadLettered).LastError} {
		if len(got) > domain.MaxNotificationErrorLength || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
			t.Errorf("clipped error: %d bytes, valid %v, %q…", len(got), utf8.ValidString(got), got[:12])
		}
	}
	short := strings.Repeat("x", domain.MaxNotificationErrorLength)
	events, _ = domain.DecideNotificationFailed(givenNotification(ntfCreated(), ntfAttempted(1)), short, false, t0, 3, t0)
	if got := events[0].(domain.NotificationFailed).Error; got != short {
		t.Errorf("an error of exactly the limit was changed: %d bytes", len(got))
	}
}

func TestDecideNotificationThrottled(t *testing.T) {
	at := t0.Add(time.Hour)
	retry := at.Add(165 * time.Millisecond)
	t.Run("the attempt in doubt is refused, retried after the pause", func(t *testing.T) {
		n := givenNotification(ntfCreated(), ntfAttempted(1))
		events, err := domain.DecideNotificationThrottled(n, "429", retry, at)
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{domain.NotificationFailed{NotificationID: ntfID, Attempt: 1, Error: "429", Throttled: true, RetryAt: retry, FailedAt: at}}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		n = n.Apply(events[0])
		if n.Status != domain.NotificationStatusPending || n.AttemptsSinceRedrive != 0 || n.Attempts != 1 || n.Due(retry.Add(-time.Millisecond)) || !n.Due(retry) {
			t.Errorf("after: %+v", n)
		}
	})
	t.Run("any number of refusals never dead-letters", func(t *testing.T) {
		n := givenNotification(ntfCreated())
		for i := range 50 {
			n = applyAll(t, n)(domain.DecideAttempt(n, at))
			n = applyAll(t, n)(domain.DecideNotificationThrottled(n, "429", retry, at))
			if n.Status != domain.NotificationStatusPending || n.Attempts != i+1 || n.AttemptsSinceRedrive != 0 {
				t.Fatalf("after %d refusals: %+v", i+1, n)
			}
		}
	})
	t.Run("its failure recorded already: nothing", func(t *testing.T) {
		events, err := domain.DecideNotificationThrottled(givenNotification(ntfCreated(), ntfAttempted(1), ntfThrottled(1)), "429", retry, at)
		if err != nil || events != nil {
			t.Fatalf("= %#v, %v; want nothing", events, err)
		}
	})
	t.Run("refused: sent", func(t *testing.T) {
		_, err := domain.DecideNotificationThrottled(givenNotification(ntfCreated(), ntfAttempted(1), ntfSent(1)), "429", retry, at)
		requireDomainError(t, err, domain.ErrNotificationNotPending, domain.KindConflict)
	})
	t.Run("refused: unknown", func(t *testing.T) {
		_, err := domain.DecideNotificationThrottled(domain.Notification{}, "429", retry, at)
		requireDomainError(t, err, domain.ErrNotificationNotFound, domain.KindNotFound)
	})
}

// applyAll checks that a decision succeeded and applies its events to n.
func applyAll(t *testing.T, n domain.Notification) func([]domain.Event, error) domain.Notification {
	t.Helper()
	return func(events []domain.Event, err error) domain.Notification {
		t.Helper()
		if err != nil {
			t.Fatalf("decision refused: %v", err)
		}
		for _, e := range events {
			n = n.Apply(e)
		}
		return n
	}
}

func TestDecideRedrive(t *testing.T) {
	at := t0.Add(time.Hour)
	deadN := givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1))
	t.Run("dead: redriven with the trimmed reason", func(t *testing.T) {
		events, err := domain.DecideRedrive(deadN, "  channel fixed ", at)
		if err != nil {
			t.Fatal(err)
		}
		if want := []domain.Event{ntfRedriven()}; !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		n := deadN.Apply(events[0])
		if n.Status != domain.NotificationStatusPending || n.AttemptsSinceRedrive != 0 || n.Attempts != 1 || n.Redrives != 1 || !n.Due(at) {
			t.Errorf("after: %+v", n)
		}
	})
	t.Run("without a reason", func(t *testing.T) {
		events, err := domain.DecideRedrive(deadN, "", at)
		if err != nil || len(events) != 1 || events[0].(domain.NotificationRedriven).Reason != "" {
			t.Fatalf("= %#v, %v", events, err)
		}
	})
	refused := []struct {
		name   string
		n      domain.Notification
		reason string
		want   *domain.Error
		kind   domain.Kind
	}{
		{"pending", givenNotification(ntfCreated()), "", domain.ErrNotificationNotDead, domain.KindConflict},
		{"in doubt", givenNotification(ntfCreated(), ntfAttempted(1)), "", domain.ErrNotificationNotDead, domain.KindConflict},
		{"sent", givenNotification(ntfCreated(), ntfAttempted(1), ntfSent(1)), "", domain.ErrNotificationNotDead, domain.KindConflict},
		{"redriven already", deadN.Apply(ntfRedriven()), "", domain.ErrNotificationNotDead, domain.KindConflict},
		{"unknown", domain.Notification{}, "", domain.ErrNotificationNotFound, domain.KindNotFound},
		{"a reason too long", deadN, strings.Repeat("x", domain.MaxReasonLength+1), domain.ErrInvalidInput, domain.KindInvalid},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			events, err := domain.DecideRedrive(tt.n, tt.reason, at)
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if tt.want == domain.ErrNotificationNotDead && de.Details["status"] != string(tt.n.Status) {
				t.Errorf("details = %v, want status %s", de.Details, tt.n.Status)
			}
		})
	}
}

// TestDecideDoubtUnsettled: an in-doubt attempt the provider could not be
// asked about is dead-lettered alone, still in doubt (a redrive asks
// first), with the redrive's time kept. A notification that changed since
// the version the dispatcher judged on (another attempt, sent, or dead and
// redriven meanwhile: a redrive's new allowance must not be taken by a
// dispatcher that read before it) needs nothing, nor does one not in doubt.
func TestDecideDoubtUnsettled(t *testing.T) {
	at := t0.Add(time.Hour)
	const reason = "in doubt for 9m: cannot ask the provider whether the message arrived: http 502"
	inDoubt := givenNotification(ntfCreated(), ntfAttempted(1), ntfTimedOut(1))
	events, err := domain.DecideDoubtUnsettled(inDoubt, inDoubt.Version, reason, at)
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Event{domain.NotificationDeadLettered{NotificationID: ntfID, Attempts: 1, LastError: reason, DeadAt: at}}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events\n got %#v\nwant %#v", events, want)
	}
	dead := inDoubt.Apply(events[0])
	if dead.Status != domain.NotificationStatusDead || !dead.InDoubt || dead.LastError != reason {
		t.Fatalf("after: %+v", dead)
	}
	redriven := applyAll(t, dead)(domain.DecideRedrive(dead, "", at.Add(time.Minute)))
	if !redriven.InDoubt || !redriven.RedrivenAt.Equal(at.Add(time.Minute)) {
		t.Errorf("after the redrive: %+v, want in doubt, redriven at %v", redriven, at.Add(time.Minute))
	}
	for _, tt := range []struct {
		name string
		n    domain.Notification
		seen int
	}{
		{"another attempt since", inDoubt.Apply(ntfAttempted(2)), inDoubt.Version},
		{"sent since (a check found it)", inDoubt.Apply(ntfSent(1)), inDoubt.Version},
		{"dead and redriven since", redriven, inDoubt.Version},
		{"dead since", dead, inDoubt.Version},
		{"not in doubt", givenNotification(ntfCreated(), ntfAttempted(1), ntfFailed(1, false)), 3},
	} {
		if events, err := domain.DecideDoubtUnsettled(tt.n, tt.seen, reason, at); err != nil || events != nil {
			t.Errorf("%s: = %#v, %v; want nothing", tt.name, events, err)
		}
	}
	if _, err := domain.DecideDoubtUnsettled(dead, dead.Version, reason, at); !errors.Is(err, domain.ErrNotificationNotPending) {
		t.Errorf("dead, as seen: %v, want %v", err, domain.ErrNotificationNotPending)
	}
	if _, err := domain.DecideDoubtUnsettled(domain.Notification{}, 0, reason, at); !errors.Is(err, domain.ErrNotificationNotFound) {
		t.Errorf("unknown: %v, want %v", err, domain.ErrNotificationNotFound)
	}
}

// TestNotificationLifecycle drives one notification as a dispatcher would:
// a 429, a 503, a crash mid-send resolved by a check, then a permanently
// failing one dead-lettered and redriven.
func TestNotificationLifecycle(t *testing.T) {
	const maxAttempts = 3
	at := t0
	step := func() time.Time { at = at.Add(time.Second); return at }
	n := applyAll(t, domain.Notification{})(domain.DecideCreateNotification(domain.Notification{}, ntfIntent(), step()))
	n = applyAll(t, n)(domain.DecideAttempt(n, step()))
	n = applyAll(t, n)(domain.DecideNotificationThrottled(n, "429", at.Add(time.Second), step()))
	n = applyAll(t, n)(domain.DecideAttempt(n, step()))
	n = applyAll(t, n)(domain.DecideNotificationFailed(n, "503", false, at.Add(2*time.Second), maxAttempts, step()))
	if n.Due(at) || !n.Due(at.Add(2*time.Second)) {
		t.Fatalf("a failed notification is due at its retry time: %+v", n)
	}
	n = applyAll(t, n)(domain.DecideAttempt(n, step()))
	attemptedAt := n.LastAttemptAt
	// The dispatcher dies here; the next one finds the attempt in doubt,
	// asks the provider since LastAttemptAt, and finds the message there.
	if !n.InDoubt || !attemptedAt.Equal(at) || n.Attempts != 3 || n.AttemptsSinceRedrive != 2 {
		t.Fatalf("in doubt: %+v", n)
	}
	n = applyAll(t, n)(domain.DecideNotificationSent(n, "msg-3", true, step()))
	if n.Status != domain.NotificationStatusSent || n.ProviderRef != "msg-3" || n.InDoubt {
		t.Fatalf("sent: %+v", n)
	}
	if events, err := domain.DecideNotificationSent(n, "msg-3", false, step()); err != nil || events != nil {
		t.Fatalf("a repeated sent: %v %v", events, err)
	}

	// A recipient the provider always refuses.
	p := applyAll(t, domain.Notification{})(domain.DecideCreateNotification(domain.Notification{}, ntfIntent(), step()))
	for range maxAttempts {
		p = applyAll(t, p)(domain.DecideAttempt(p, step()))
		p = applyAll(t, p)(domain.DecideNotificationFailed(p, "500", false, at.Add(time.Second), maxAttempts, step()))
	}
	if p.Status != domain.NotificationStatusDead || p.Attempts != maxAttempts {
		t.Fatalf("after %d failures: %+v", maxAttempts, p)
	}
	p = applyAll(t, p)(domain.DecideRedrive(p, "fixed", step()))
	p = applyAll(t, p)(domain.DecideAttempt(p, step()))
	p = applyAll(t, p)(domain.DecideNotificationSent(p, "msg-4", false, step()))
	if p.Status != domain.NotificationStatusSent || p.Attempts != maxAttempts+1 || p.Redrives != 1 {
		t.Fatalf("after the redrive: %+v", p)
	}
}

// TestNotificationJSONRoundTrip: a state survives the JSON of an aggregate
// snapshot.
func TestNotificationJSONRoundTrip(t *testing.T) {
	for _, given := range [][]domain.Event{
		nil,
		{ntfCreated()},
		{ntfCreated(), ntfAttempted(1)},
		{ntfCreated(), ntfAttempted(1), ntfFailed(1, false)},
		{ntfCreated(), ntfAttempted(1), ntfSent(1)},
		{ntfCreated(), ntfAttempted(1), ntfFailed(1, true), ntfDead(1), ntfRedriven()},
	} {
		n := givenNotification(given...)
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		var back domain.Notification
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, n) {
			t.Errorf("round trip of %s\n got %#v\nwant %#v", b, back, n)
		}
	}
}

// TestNotificationAggregate: the notification's aggregate value names its
// type and applies with Notification.Apply.
func TestNotificationAggregate(t *testing.T) {
	if domain.NotificationAggregate.Type != "notification" || domain.AggregateNotification != "notification" {
		t.Errorf("notification aggregate type = %q", domain.NotificationAggregate.Type)
	}
	if n := domain.NotificationAggregate.Apply(domain.Notification{}, ntfCreated()); n.ID != ntfID || n.Version != 1 {
		t.Errorf("NotificationAggregate.Apply = %+v", n)
	}
}

// TestTwoDispatchersNeverBothAttempt: a dispatcher that read the
// notification before another recorded its attempt is refused its own, and
// a failure reported for an attempt that is no longer the latest records
// nothing (it must not settle the newer attempt's doubt).
func TestTwoDispatchersNeverBothAttempt(t *testing.T) {
	at := t0.Add(time.Hour)
	read := givenNotification(ntfCreated()) // both dispatchers read this
	first, err := domain.DecideAttemptAfter(read, read.Attempts, at)
	if err != nil || len(first) != 1 {
		t.Fatalf("first attempt: %v %v", first, err)
	}
	now := givenNotification(ntfCreated(), ntfAttempted(1))
	if _, err := domain.DecideAttemptAfter(now, read.Attempts, at); !errors.Is(err, domain.ErrAttemptTaken) {
		t.Fatalf("second dispatcher's attempt on a stale read: %v, want ErrAttemptTaken", err)
	}
	newer := givenNotification(ntfCreated(), ntfAttempted(1), ntfAttempted(2))
	events, err := domain.DecideSendFailure(newer, domain.SendFailure{Reason: "500", Attempt: 1, MaxAttempts: 5, RetryAt: at}, at)
	if err != nil || len(events) != 0 {
		t.Fatalf("failure of attempt 1 after attempt 2: %v %v, want nothing", events, err)
	}
	events, err = domain.DecideSendFailure(newer, domain.SendFailure{Reason: "429", Attempt: 1, Throttled: true, RetryAt: at}, at)
	if err != nil || len(events) != 0 {
		t.Fatalf("throttle of attempt 1 after attempt 2: %v %v, want nothing", events, err)
	}
	events, err = domain.DecideSendFailure(newer, domain.SendFailure{Reason: "429", Attempt: 2, Throttled: true, RetryAt: at}, at)
	if err != nil || len(events) != 1 || !events[0].(domain.NotificationFailed).Throttled {
		t.Fatalf("throttle of the latest attempt: %v %v, want one throttled failure", events, err)
	}
}

package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// t0 is the fixed "now" of the order tests.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

var collect = domain.BankAccount{Bank: "KB", Number: "123-456-789", Holder: "bankbook"}

// submitCmd returns a valid submit command for order o-1.
func submitCmd() domain.SubmitOrder {
	return domain.SubmitOrder{
		OrderID:        "o-1",
		BuyerID:        "u-1",
		BuyerName:      "김민수",
		Amount:         domain.Money{Amount: 15000, Currency: domain.KRW},
		DepositorName:  "김민수042",
		CollectAccount: collect,
		CancelWindow:   5 * time.Minute,
		Now:            t0,
	}
}

// given folds events into an Order, the way the command layer rebuilds state.
func given(events ...domain.Event) domain.Order {
	var o domain.Order
	for _, e := range events {
		o = o.Apply(e)
	}
	return o
}

// submitted is the event a valid submitCmd produces.
func submitted() domain.OrderSubmitted {
	return domain.OrderSubmitted{
		OrderID:        "o-1",
		BuyerID:        "u-1",
		BuyerName:      "김민수",
		Amount:         domain.Money{Amount: 15000, Currency: domain.KRW},
		DepositorName:  "김민수042",
		CollectAccount: collect,
		CancelWindowS:  300,
		SubmittedAt:    t0,
	}
}

// requireDomainError checks that err matches want under errors.Is and is a
// *domain.Error of the given kind, and returns it.
func requireDomainError(t *testing.T, err error, want *domain.Error, kind domain.Kind) *domain.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", want.Code)
	}
	if !errors.Is(err, want) {
		t.Fatalf("errors.Is(%v, %s) = false", err, want.Code)
	}
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *domain.Error", err, err)
	}
	if de.Kind != kind {
		t.Fatalf("kind of %v = %d, want %d", err, de.Kind, kind)
	}
	return de
}

func TestDecideSubmitNewOrder(t *testing.T) {
	// Given no order with this ID,
	var o domain.Order
	// when the buyer submits,
	events, err := domain.DecideSubmit(o, submitCmd())
	if err != nil {
		t.Fatalf("DecideSubmit: %v", err)
	}
	// then exactly one OrderSubmitted carries every field of the command.
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1: %#v", len(events), events)
	}
	got, ok := events[0].(domain.OrderSubmitted)
	if !ok {
		t.Fatalf("event is %T, want domain.OrderSubmitted", events[0])
	}
	if want := submitted(); !reflect.DeepEqual(got, want) {
		t.Fatalf("event\n got %#v\nwant %#v", got, want)
	}
	if got.EventType() != "order.submitted" {
		t.Errorf("EventType = %q, want order.submitted", got.EventType())
	}

	// And the order it produces awaits a deposit at version 1.
	after := o.Apply(got)
	want := domain.Order{
		ID:             "o-1",
		BuyerID:        "u-1",
		BuyerName:      "김민수",
		Amount:         domain.Money{Amount: 15000, Currency: domain.KRW},
		DepositorName:  "김민수042",
		CollectAccount: collect,
		CancelWindow:   5 * time.Minute,
		Status:         domain.StatusAwaitingDeposit,
		SubmittedAt:    t0,
		UpdatedAt:      t0,
		Version:        1,
	}
	if !reflect.DeepEqual(after, want) {
		t.Fatalf("state after submit\n got %#v\nwant %#v", after, want)
	}
	if !after.Exists() {
		t.Error("Exists() = false after submit")
	}
	if (domain.Order{}).Exists() {
		t.Error("zero Order Exists() = true")
	}
}

func TestDecideSubmitCancelWindow(t *testing.T) {
	tests := []struct {
		name   string
		window time.Duration
		wantS  int64
		wantD  time.Duration
	}{
		{"zero", 0, 0, 0},
		{"five minutes", 5 * time.Minute, 300, 5 * time.Minute},
		{"fraction truncated to whole seconds", 90*time.Second + 999*time.Millisecond, 90, 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := submitCmd()
			c.CancelWindow = tt.window
			events, err := domain.DecideSubmit(domain.Order{}, c)
			if err != nil {
				t.Fatalf("DecideSubmit: %v", err)
			}
			e := events[0].(domain.OrderSubmitted)
			if e.CancelWindowS != tt.wantS {
				t.Errorf("CancelWindowS = %d, want %d", e.CancelWindowS, tt.wantS)
			}
			if got := given(e).CancelWindow; got != tt.wantD {
				t.Errorf("CancelWindow after Apply = %v, want %v", got, tt.wantD)
			}
		})
	}
}

func TestDecideSubmitExistingOrder(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
	}{
		{"awaiting deposit", []domain.Event{submitted()}},
		{"cancelled", []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := given(tt.given...)
			events, err := domain.DecideSubmit(o, submitCmd())
			de := requireDomainError(t, err, domain.ErrOrderExists, domain.KindConflict)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if de.Details["order_id"] != "o-1" {
				t.Errorf("details = %v, want order_id o-1", de.Details)
			}
			// The sentinel itself must not have been modified.
			if domain.ErrOrderExists.Details != nil {
				t.Errorf("sentinel ErrOrderExists was mutated: %v", domain.ErrOrderExists.Details)
			}
		})
	}
}

func TestDecideSubmitInvalid(t *testing.T) {
	tests := []struct {
		name      string
		buyerName string
		depositor string
		field     string
	}{
		{"empty buyer name", "", "김민수042", "buyer_name"},
		{"white space only buyer name", " \t\u3000\u00a0 ", "김민수042", "buyer_name"},
		{"buyer name of 65 runes", strings.Repeat("김", 65), "김민수042", "buyer_name"},
		{"buyer name with newline", "김민\n수", "김민수042", "buyer_name"},
		{"buyer name with NUL", "kim\x00", "김민수042", "buyer_name"},
		{"buyer name with DEL", "kim\x7f", "김민수042", "buyer_name"},
		{"buyer name with C1 control", "kim\u0085", "김민수042", "buyer_name"},
		{"buyer name with invalid UTF-8", "kim\xff", "김민수042", "buyer_name"},
		{"buyer name with truncated UTF-8", "김민수"[:8], "김민수042", "buyer_name"},
		{"missing depositor name", "김민수", "", "depositor_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := submitCmd()
			c.BuyerName, c.DepositorName = tt.buyerName, tt.depositor
			events, err := domain.DecideSubmit(domain.Order{}, c)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if de.Details["field"] != tt.field {
				t.Errorf("details = %v, want field %s", de.Details, tt.field)
			}
		})
	}
}

func TestValidateBuyerName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"korean", "김민수", true},
		{"latin with space", "Kim Minsu", true},
		{"exactly 64 runes", strings.Repeat("김", 64), true},
		{"65 runes", strings.Repeat("김", 65), false},
		{"64 multi-byte runes are more than 64 bytes", strings.Repeat("é", 64), true},
		{"empty", "", false},
		{"spaces", "   ", false},
		{"ideographic space", "\u3000", false},
		{"tab inside", "kim\tminsu", false},
		{"escape", "\x1b[31m", false},
		{"invalid UTF-8", "\xc3\x28", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateBuyerName(tt.input)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateBuyerName(%q) = %v, want nil", tt.input, err)
				}
				return
			}
			requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
		})
	}
}

func TestDecideCancel(t *testing.T) {
	later := t0.Add(2 * time.Minute)
	tests := []struct {
		name       string
		reason     string
		wantReason string
	}{
		{"no reason", "", ""},
		{"reason trimmed", "  forgot an option \n", "forgot an option"},
		{"line breaks, Unix and Windows", "wrong size\nwrong colour\r\nreturned", "wrong size\nwrong colour\r\nreturned"},
		{"reason of exactly 500 runes", strings.Repeat("가", domain.MaxReasonLength), strings.Repeat("가", domain.MaxReasonLength)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given an order awaiting a deposit,
			o := given(submitted())
			// when the buyer cancels,
			events, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Reason: tt.reason, Now: later})
			if err != nil {
				t.Fatalf("DecideCancel: %v", err)
			}
			// then the order is cancelled with the trimmed reason.
			want := domain.OrderCancelled{OrderID: "o-1", Reason: tt.wantReason, CancelledAt: later, BuyerID: "u-1", Amount: 15000}
			if len(events) != 1 || !reflect.DeepEqual(events[0], want) {
				t.Fatalf("events\n got %#v\nwant [%#v]", events, want)
			}
			if events[0].EventType() != "order.cancelled" {
				t.Errorf("EventType = %q, want order.cancelled", events[0].EventType())
			}
			after := o.Apply(events[0])
			if after.Status != domain.StatusCancelled {
				t.Errorf("Status = %q, want cancelled", after.Status)
			}
			if after.CancelReason != tt.wantReason {
				t.Errorf("CancelReason = %q, want %q", after.CancelReason, tt.wantReason)
			}
			if !after.UpdatedAt.Equal(later) {
				t.Errorf("UpdatedAt = %v, want CancelledAt %v", after.UpdatedAt, later)
			}
			if !after.SubmittedAt.Equal(t0) {
				t.Errorf("SubmittedAt = %v, want %v (unchanged)", after.SubmittedAt, t0)
			}
			if after.Version != 2 {
				t.Errorf("Version = %d, want 2", after.Version)
			}
			if after.DepositorName != "김민수042" || after.Amount.Amount != 15000 {
				t.Errorf("cancel lost submit fields: %#v", after)
			}
		})
	}
}

func TestDecideCancelRefused(t *testing.T) {
	cancelled := domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0.Add(time.Minute)}
	tests := []struct {
		name    string
		given   []domain.Event
		reason  string
		want    *domain.Error
		kind    domain.Kind
		details map[string]any
	}{
		{
			name: "order does not exist", want: domain.ErrOrderNotFound, kind: domain.KindNotFound,
			details: map[string]any{"order_id": "o-1"},
		},
		{
			name: "already cancelled", given: []domain.Event{submitted(), cancelled},
			want: domain.ErrWrongState, kind: domain.KindConflict,
			details: map[string]any{"order_id": "o-1", "status": "cancelled"},
		},
		{
			name: "reason with a right-to-left override", given: []domain.Event{submitted()},
			reason: "환불 \u202e요청",
			want:   domain.ErrInvalidInput, kind: domain.KindInvalid,
			details: map[string]any{"field": "reason"},
		},
		{
			name: "reason with a carriage return alone", given: []domain.Event{submitted()},
			reason: "refund\rrequested",
			want:   domain.ErrInvalidInput, kind: domain.KindInvalid,
			details: map[string]any{"field": "reason"},
		},
		{
			name: "reason of 501 runes", given: []domain.Event{submitted()},
			reason: strings.Repeat("가", domain.MaxReasonLength+1),
			want:   domain.ErrInvalidInput, kind: domain.KindInvalid,
			details: map[string]any{"field": "reason"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := given(tt.given...)
			events, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Reason: tt.reason, Now: t0.Add(2 * time.Minute)})
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if !reflect.DeepEqual(de.Details, tt.details) {
				t.Errorf("details = %v, want %v", de.Details, tt.details)
			}
		})
	}
}

func TestDecideCancelTwiceViaDecide(t *testing.T) {
	// Given an order cancelled by a first DecideCancel,
	o := given(submitted())
	first, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Now: t0.Add(time.Minute)})
	if err != nil {
		t.Fatalf("first cancel: %v", err)
	}
	o = o.Apply(first[0])
	// when it is cancelled again,
	_, err = domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Now: t0.Add(2 * time.Minute)})
	// then the second cancel is refused as wrong state, reporting the status.
	de := requireDomainError(t, err, domain.ErrWrongState, domain.KindConflict)
	if de.Details["status"] != "cancelled" {
		t.Errorf("details = %v, want status cancelled", de.Details)
	}
}

func TestOrderStatusOpen(t *testing.T) {
	tests := []struct {
		status domain.OrderStatus
		open   bool
	}{
		{domain.StatusAwaitingDeposit, true},
		{domain.StatusCancelReserved, true},
		{domain.StatusPaid, false},
		{domain.StatusCancelled, false},
		{domain.StatusExpired, false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.status), func(t *testing.T) {
			if got := tt.status.Open(); got != tt.open {
				t.Errorf("%q.Open() = %v, want %v", tt.status, got, tt.open)
			}
		})
	}
}

func TestErrorMatching(t *testing.T) {
	withDetails := domain.ErrWrongState.With("custom message", map[string]any{"status": "paid"})
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"copy with details matches its sentinel", withDetails, domain.ErrWrongState, true},
		{"different codes do not match", withDetails, domain.ErrOrderExists, false},
		{"Invalid matches ErrInvalidInput", domain.Invalid("amount", "bad"), domain.ErrInvalidInput, true},
		{"unsupported currency is not invalid_input", domain.ErrUnsupportedCurrency, domain.ErrInvalidInput, false},
		{"plain error does not match", errors.New("invalid_input"), domain.ErrInvalidInput, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
	if withDetails.Message != "custom message" || domain.ErrWrongState.Message == "custom message" {
		t.Errorf("With must copy: got %q, sentinel %q", withDetails.Message, domain.ErrWrongState.Message)
	}
	if kept := domain.ErrWrongState.With("", nil); kept.Message != domain.ErrWrongState.Message {
		t.Errorf("With(\"\") message = %q, want the sentinel's", kept.Message)
	}
	if got := domain.Invalid("amount", "must be > %d", 0).Error(); got != "invalid_input: amount: must be > 0" {
		t.Errorf("Error() = %q", got)
	}
}

// TestDecideDepositRepeatAfterCancelIsStillThePayment: a deposit that paid
// the order, recorded again after the order was cancelled (and its paid
// amount refunded), is still the payment — not a second refund.
func TestDecideDepositRepeatAfterCancelIsStillThePayment(t *testing.T) {
	now := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	o := domain.Order{}
	for _, e := range []domain.Event{
		domain.OrderSubmitted{OrderID: "o", BuyerID: "u", BuyerName: "김", Amount: domain.Money{Amount: 100, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: now},
		domain.OrderPaid{OrderID: "o", DepositID: "dep_1", Amount: 100, FromAccount: "assets:bank:1", PaidAt: now},
		domain.OrderCancelled{OrderID: "o", CancelledAt: now},
		domain.OrderRefunded{OrderID: "o", BuyerID: "u", Amount: 100, FromAccount: domain.AccountPayableOrders, RefundedAt: now},
	} {
		o = o.Apply(e)
	}
	events, outcome, err := domain.DecideDeposit(o, domain.ApplyDeposit{DepositID: "dep_1", Amount: 100, DepositedAt: now, Now: now, NameGrace: time.Hour})
	if err != nil || len(events) != 0 || outcome != domain.OutcomeMatched {
		t.Fatalf("repeat of the paying deposit: %v %v %v, want matched with no events", events, outcome, err)
	}
}

// cancelReserved is the reservation of o-1's cancellation: the buyer said
// they may have transferred, so it becomes final at submitted_at + 5 min.
func cancelReserved() domain.OrderCancelReserved {
	return domain.OrderCancelReserved{OrderID: "o-1", Reason: "changed my mind", CancelAt: t0.Add(5 * time.Minute), ReservedAt: t0.Add(time.Minute)}
}

func TestFinaliseCancel(t *testing.T) {
	cancelAt := t0.Add(5 * time.Minute)
	now := cancelAt.Add(30 * time.Second)
	final := domain.OrderCancelled{OrderID: "o-1", Reason: "changed my mind", CancelledAt: now, AfterReservation: true, BuyerID: "u-1", Amount: 15000}
	tests := []struct {
		name      string
		given     []domain.Event
		watermark time.Time
		then      []domain.Event
	}{
		{"watermark at cancel_at", []domain.Event{submitted(), cancelReserved()}, cancelAt, []domain.Event{final}},
		{"watermark past cancel_at", []domain.Event{submitted(), cancelReserved()}, cancelAt.Add(time.Hour), []domain.Event{final}},
		{"watermark past now", []domain.Event{submitted(), cancelReserved()}, now.Add(time.Hour), []domain.Event{final}},

		{"cancelled already needs nothing", []domain.Event{submitted(), cancelReserved(), final}, cancelAt, nil},
		{"cancelled at once needs nothing", []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0.Add(time.Minute)}}, cancelAt, nil},
		{"paid needs nothing", []domain.Event{submitted(), domain.OrderPaid{OrderID: "o-1", DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), PaidAt: t0.Add(time.Minute)}}, cancelAt, nil},
		{"awaiting deposit needs nothing", []domain.Event{submitted()}, cancelAt, nil},
		// A timer whose reservation was never appended finds nothing to do.
		{"unknown order needs nothing", nil, cancelAt, nil},
		{"not reserved needs nothing even before the watermark", []domain.Event{submitted()}, time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := given(tt.given...)
			events, err := domain.FinaliseCancel(o, tt.watermark, now)
			if err != nil {
				t.Fatalf("FinaliseCancel: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				o = o.Apply(e)
			}
			if len(events) > 0 {
				// Then the order is cancelled, closed now, with the
				// reservation's reason.
				if o.Status != domain.StatusCancelled || !o.ClosedAt.Equal(now) || o.CancelReason != "changed my mind" {
					t.Errorf("after: status %q closed %v reason %q; want cancelled, %v, %q", o.Status, o.ClosedAt, o.CancelReason, now, "changed my mind")
				}
				if o.Status.Open() {
					t.Error("a finalised order still holds its depositor name")
				}
			}
		})
	}
}

func TestFinaliseCancelNotDue(t *testing.T) {
	cancelAt := t0.Add(5 * time.Minute)
	tests := []struct {
		name      string
		watermark time.Time
	}{
		{"no scan yet", time.Time{}},
		{"scan before the reservation", t0},
		{"one nanosecond short", cancelAt.Add(-time.Nanosecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Given a reserved cancellation, when the timer fires before the
			// bank scan has covered cancel_at,
			o := given(submitted(), cancelReserved())
			events, err := domain.FinaliseCancel(o, tt.watermark, cancelAt.Add(time.Hour))
			// then it is not due, and the order stays reserved.
			de := requireDomainError(t, err, domain.ErrNotDue, domain.KindConflict)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			want := map[string]any{"order_id": "o-1", "cancel_at": domain.FormatTime(cancelAt)}
			if !reflect.DeepEqual(de.Details, want) {
				t.Errorf("details = %v, want %v", de.Details, want)
			}
		})
	}
	if domain.ErrNotDue.Details != nil {
		t.Errorf("sentinel ErrNotDue was mutated: %v", domain.ErrNotDue.Details)
	}
}

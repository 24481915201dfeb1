package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// deadline is the payment deadline of the expiry tests.
const deadline = 24 * time.Hour

// submittedWithDeadline is submitted() recorded under a payment deadline.
func submittedWithDeadline() domain.OrderSubmitted {
	e := submitted()
	e.PaymentDeadlineS = int64(deadline / time.Second)
	return e
}

func TestDecideSubmitRecordsThePaymentDeadline(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration
		wantS    int64
		wantAt   time.Time
	}{
		{"none: an order from before expiry", 0, 0, time.Time{}},
		{"24 hours", 24 * time.Hour, 86400, t0.Add(24 * time.Hour)},
		{"fraction truncated to whole seconds", 90*time.Second + 999*time.Millisecond, 90, t0.Add(90 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := submitCmd()
			c.PaymentDeadline = tt.deadline
			events, err := domain.DecideSubmit(domain.Order{}, c)
			if err != nil {
				t.Fatalf("DecideSubmit: %v", err)
			}
			e := events[0].(domain.OrderSubmitted)
			if e.PaymentDeadlineS != tt.wantS {
				t.Errorf("PaymentDeadlineS = %d, want %d", e.PaymentDeadlineS, tt.wantS)
			}
			if got := given(e).ExpiresAt; !got.Equal(tt.wantAt) {
				t.Errorf("ExpiresAt after Apply = %v, want %v", got, tt.wantAt)
			}
		})
	}
}

func TestDecideExpire(t *testing.T) {
	due := t0.Add(deadline)
	late := due.Add(3 * time.Minute)
	expired := domain.OrderExpired{OrderID: "o-1", ExpiresAt: due, ExpiredAt: late, BuyerID: "u-1", Amount: 15000}
	legacy := submitted() // recorded no deadline: the configured one applies
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.ExpiryCheck
		then  []domain.Event
	}{
		{"awaiting deposit, due, scan covers the deadline: expires", []domain.Event{submittedWithDeadline()},
			domain.ExpiryCheck{Watermark: due, Now: late, Deadline: time.Hour}, []domain.Event{expired}},
		{"an order from before expiry expires under the configured deadline", []domain.Event{legacy},
			domain.ExpiryCheck{Watermark: late, Now: late, Deadline: deadline}, []domain.Event{expired}},
		{"never submitted (its append failed after the timer was armed): nothing", nil,
			domain.ExpiryCheck{Watermark: late, Now: late, Deadline: deadline}, nil},
		{"paid: nothing", []domain.Event{submittedWithDeadline(), paidBy("dep_1", t0.Add(time.Hour))},
			domain.ExpiryCheck{Watermark: late, Now: late, Deadline: deadline}, nil},
		{"cancel-reserved: nothing (its own timer cancels it)", []domain.Event{submittedWithDeadline(), cancelReserved()},
			domain.ExpiryCheck{Watermark: late, Now: late, Deadline: deadline}, nil},
		{"cancelled: nothing", []domain.Event{submittedWithDeadline(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0.Add(time.Minute)}},
			domain.ExpiryCheck{Watermark: late, Now: late, Deadline: deadline}, nil},
		{"already expired (the timer fired twice): nothing", []domain.Event{submittedWithDeadline(), expired},
			domain.ExpiryCheck{Watermark: late, Now: late.Add(time.Minute), Deadline: deadline}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideExpire(given(tt.given...), tt.when)
			if err != nil {
				t.Fatalf("DecideExpire: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
		})
	}
}

func TestDecideExpireNotDue(t *testing.T) {
	due := t0.Add(deadline)
	tests := []struct {
		name string
		when domain.ExpiryCheck
	}{
		{"before the deadline", domain.ExpiryCheck{Watermark: due, Now: due.Add(-time.Nanosecond)}},
		// A transfer made before the deadline may not have been scanned yet:
		// it must still pay the order.
		{"the scan lags behind the deadline", domain.ExpiryCheck{Watermark: due.Add(-time.Nanosecond), Now: due.Add(time.Hour)}},
		{"no scan yet", domain.ExpiryCheck{Now: due.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideExpire(given(submittedWithDeadline()), tt.when)
			de := requireDomainError(t, err, domain.ErrNotDue, domain.KindConflict)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if de.Details["expires_at"] != domain.FormatTime(due) {
				t.Errorf("details = %v, want expires_at %s", de.Details, domain.FormatTime(due))
			}
		})
	}
}

// TestExpiredOrderIsClosedLikeACancelledOne: given an expired order, then
// it is closed from its expiry on; a deposit under its name within the name
// grace is refunded to the buyer's wallet and one after it is an orphan; it
// cannot be cancelled.
func TestExpiredOrderIsClosedLikeACancelledOne(t *testing.T) {
	grace := 24 * time.Hour
	expiredAt := t0.Add(deadline + time.Minute)
	o := given(submittedWithDeadline(), domain.OrderExpired{OrderID: "o-1", ExpiresAt: t0.Add(deadline), ExpiredAt: expiredAt})
	if o.Status != domain.StatusExpired || o.Status.Open() || !o.ClosedAt.Equal(expiredAt) || !o.UpdatedAt.Equal(expiredAt) || o.Version != 2 {
		t.Fatalf("expired order: %+v", o)
	}

	late := domain.ApplyDeposit{DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), DepositedAt: expiredAt.Add(grace), Now: expiredAt.Add(grace + time.Minute), NameGrace: grace}
	events, outcome, err := domain.DecideDeposit(o, late)
	want := []domain.Event{domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), RefundedAt: late.Now}}
	if err != nil || outcome != domain.OutcomeRefundedToWallet || !reflect.DeepEqual(events, want) {
		t.Fatalf("deposit within the grace: %#v %q %v", events, outcome, err)
	}
	// A transfer made after the deadline but before the expiry was decided
	// is refunded too: the order no longer took it.
	early := late
	early.DepositedAt = t0.Add(deadline)
	if _, outcome, err := domain.DecideDeposit(o, early); err != nil || outcome != domain.OutcomeRefundedToWallet {
		t.Fatalf("deposit between the deadline and the expiry: %q %v", outcome, err)
	}
	after := late
	after.DepositedAt = expiredAt.Add(grace + time.Nanosecond)
	if _, _, err := domain.DecideDeposit(o, after); err == nil {
		t.Fatal("deposit after the grace was taken")
	} else {
		requireDomainError(t, err, domain.ErrOrderGone, domain.KindRule)
	}

	for _, deposited := range []bool{false, true} {
		_, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Deposited: deposited, Now: expiredAt.Add(time.Minute)})
		de := requireDomainError(t, err, domain.ErrWrongState, domain.KindConflict)
		if de.Details["status"] != "expired" {
			t.Errorf("cancel of an expired order: details %v", de.Details)
		}
	}
}

func TestHoldsUnpaidName(t *testing.T) {
	grace := time.Hour
	closed := t0.Add(time.Minute)
	tests := []struct {
		name  string
		given []domain.Event
		now   time.Time
		want  bool
	}{
		{"never submitted", nil, closed, false},
		{"awaiting deposit", []domain.Event{submitted()}, closed.Add(100 * grace), true},
		{"cancel-reserved", []domain.Event{submitted(), cancelReserved()}, closed, true},
		{"paid", []domain.Event{submitted(), paidBy("dep_1", closed)}, closed, false},
		{"cancelled unpaid, within the grace", []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}}, closed.Add(grace), true},
		{"cancelled unpaid, after the grace", []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}}, closed.Add(grace + time.Nanosecond), false},
		{"expired, within the grace", []domain.Event{submittedWithDeadline(), domain.OrderExpired{OrderID: "o-1", ExpiredAt: closed}}, closed, true},
		{"expired, after the grace", []domain.Event{submittedWithDeadline(), domain.OrderExpired{OrderID: "o-1", ExpiredAt: closed}}, closed.Add(2 * grace), false},
		{"cancelled after payment", []domain.Event{submitted(), paidBy("dep_1", closed), domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}}, closed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := given(tt.given...).HoldsUnpaidName(tt.now, grace); got != tt.want {
				t.Fatalf("HoldsUnpaidName = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeepsName(t *testing.T) {
	grace := time.Hour
	closed := t0.Add(time.Minute)
	due := closed.Add(grace)
	cancelled := []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}}
	tests := []struct {
		name           string
		given          []domain.Event
		now, watermark time.Time
		want           bool
	}{
		{"never submitted", nil, closed, due, false},
		{"awaiting deposit, long scanned", []domain.Event{submitted()}, closed.Add(100 * grace), closed.Add(100 * grace), true},
		{"cancel-reserved", []domain.Event{submitted(), cancelReserved()}, due.Add(time.Hour), due.Add(time.Hour), true},
		{"cancelled, within the grace, scanned past it", cancelled, due, due.Add(time.Hour), true},
		{"cancelled, after the grace, scanned past its end", cancelled, due.Add(time.Nanosecond), due.Add(time.Nanosecond), false},
		// A transfer dated at the grace's last instant is within it, and
		// the scan has recorded only those before its watermark.
		{"cancelled, after the grace, scanned to its last instant", cancelled, due.Add(time.Hour), due, true},
		{"cancelled, after the grace, not scanned to its end", cancelled, due.Add(time.Hour), due.Add(-time.Nanosecond), true},
		{"paid, after the grace, scanned", []domain.Event{submitted(), paidBy("dep_1", closed)}, due.Add(time.Minute), due.Add(time.Minute), false},
		{"paid, within the grace", []domain.Event{submitted(), paidBy("dep_1", closed)}, closed, due.Add(time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := given(tt.given...).KeepsName(tt.now, tt.watermark, grace); got != tt.want {
				t.Fatalf("KeepsName = %v, want %v", got, tt.want)
			}
		})
	}
}

package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// paidBy is o-1 paid by deposit id from the collection account.
func paidBy(id domain.DepositID, at time.Time) domain.OrderPaid {
	return domain.OrderPaid{OrderID: "o-1", DepositID: id, Amount: 15000, FromAccount: domain.AccountBank(collect.Number), PaidAt: at}
}

// TestDecideCancelBranches covers the branches of DecideCancel that
// TestDecideCancel does not: a buyer who may have transferred, and a paid order.
func TestDecideCancelBranches(t *testing.T) {
	now := t0.Add(2 * time.Minute)
	tests := []struct {
		name      string
		given     []domain.Event
		deposited bool
		then      []domain.Event
		status    domain.OrderStatus
	}{
		{
			"awaiting deposit, maybe deposited: reserved until submitted_at + window",
			[]domain.Event{submitted()}, true,
			[]domain.Event{domain.OrderCancelReserved{OrderID: "o-1", Reason: "r", CancelAt: t0.Add(5 * time.Minute), ReservedAt: now}},
			domain.StatusCancelReserved,
		},
		{
			"paid, not deposited: cancelled and the paid amount refunded",
			[]domain.Event{submitted(), paidBy("dep_1", t0.Add(time.Minute))}, false,
			[]domain.Event{
				domain.OrderCancelled{OrderID: "o-1", Reason: "r", CancelledAt: now, BuyerID: "u-1", Amount: 15000},
				domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", Amount: 15000, FromAccount: domain.AccountPayableOrders, RefundedAt: now},
			},
			domain.StatusCancelled,
		},
		{
			"paid, deposited is not looked at",
			[]domain.Event{submitted(), paidBy("dep_1", t0.Add(time.Minute))}, true,
			[]domain.Event{
				domain.OrderCancelled{OrderID: "o-1", Reason: "r", CancelledAt: now, BuyerID: "u-1", Amount: 15000},
				domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", Amount: 15000, FromAccount: domain.AccountPayableOrders, RefundedAt: now},
			},
			domain.StatusCancelled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := given(tt.given...)
			events, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Deposited: tt.deposited, Reason: " r ", Now: now})
			if err != nil {
				t.Fatalf("DecideCancel: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				o = o.Apply(e)
			}
			if o.Status != tt.status {
				t.Errorf("status = %q, want %q", o.Status, tt.status)
			}
		})
	}
}

func TestDecideCancelReservedRefused(t *testing.T) {
	for _, deposited := range []bool{false, true} {
		t.Run(map[bool]string{false: "not deposited", true: "deposited"}[deposited], func(t *testing.T) {
			// Given a reserved cancellation, when the buyer cancels again,
			o := given(submitted(), cancelReserved())
			events, err := domain.DecideCancel(o, domain.CancelOrder{OrderID: "o-1", Deposited: deposited, Now: t0.Add(2 * time.Minute)})
			// then it is the wrong state.
			de := requireDomainError(t, err, domain.ErrWrongState, domain.KindConflict)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if de.Details["status"] != "cancel_reserved" {
				t.Errorf("details = %v, want status cancel_reserved", de.Details)
			}
		})
	}
}

func TestDecideDeposit(t *testing.T) {
	grace := 24 * time.Hour
	closed := t0.Add(time.Minute)
	cancelled := domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}
	apply := func(id domain.DepositID, amount int64, depositedAt time.Time) domain.ApplyDeposit {
		return domain.ApplyDeposit{DepositID: id, Amount: amount, FromAccount: domain.AccountBank(collect.Number), DepositedAt: depositedAt, Now: depositedAt.Add(time.Second), NameGrace: grace}
	}
	refund := func(id domain.DepositID, amount int64, depositedAt time.Time) []domain.Event {
		return []domain.Event{domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", DepositID: id, Amount: amount, FromAccount: domain.AccountBank(collect.Number), RefundedAt: depositedAt.Add(time.Second)}}
	}
	at := t0.Add(2 * time.Minute)
	tests := []struct {
		name    string
		given   []domain.Event
		when    domain.ApplyDeposit
		then    []domain.Event
		outcome domain.DepositOutcome
	}{
		{"awaiting, exact amount pays", []domain.Event{submitted()}, apply("dep_1", 15000, at),
			[]domain.Event{domain.OrderPaid{OrderID: "o-1", DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), PaidAt: at.Add(time.Second)}}, domain.OutcomeMatched},
		{"cancel reserved refunds", []domain.Event{submitted(), cancelReserved()}, apply("dep_1", 15000, at), refund("dep_1", 15000, at), domain.OutcomeRefundedToWallet},
		{"cancel reserved refunds any amount", []domain.Event{submitted(), cancelReserved()}, apply("dep_1", 7, at), refund("dep_1", 7, at), domain.OutcomeRefundedToWallet},
		{"a second payment refunds", []domain.Event{submitted(), paidBy("dep_1", closed)}, apply("dep_2", 15000, at), refund("dep_2", 15000, at), domain.OutcomeRefundedToWallet},
		{"a second payment refunds long after", []domain.Event{submitted(), paidBy("dep_1", closed)}, apply("dep_2", 15000, closed.Add(10*grace)), refund("dep_2", 15000, closed.Add(10*grace)), domain.OutcomeRefundedToWallet},
		{"cancelled, within the grace, refunds", []domain.Event{submitted(), cancelled}, apply("dep_1", 15000, at), refund("dep_1", 15000, at), domain.OutcomeRefundedToWallet},
		{"cancelled, at the end of the grace, refunds", []domain.Event{submitted(), cancelled}, apply("dep_1", 15000, closed.Add(grace)), refund("dep_1", 15000, closed.Add(grace)), domain.OutcomeRefundedToWallet},
		{"the paying deposit again reports matched", []domain.Event{submitted(), paidBy("dep_1", closed)}, apply("dep_1", 15000, at), nil, domain.OutcomeMatched},
		{"a refunded deposit again reports refunded", []domain.Event{submitted(), cancelReserved(), refund("dep_1", 15000, at)[0]}, apply("dep_1", 15000, at), nil, domain.OutcomeRefundedToWallet},
		{"made within the clocks' skew before the submit pays", []domain.Event{submitted()}, apply("dep_1", 15000, submitted().SubmittedAt.Add(-domain.MaxClockSkew)),
			[]domain.Event{domain.OrderPaid{OrderID: "o-1", DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), PaidAt: submitted().SubmittedAt.Add(-domain.MaxClockSkew + time.Second)}}, domain.OutcomeMatched},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, outcome, err := domain.DecideDeposit(given(tt.given...), tt.when)
			if err != nil {
				t.Fatalf("DecideDeposit: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			if outcome != tt.outcome {
				t.Errorf("outcome = %q, want %q", outcome, tt.outcome)
			}
		})
	}
}

func TestDecideDepositRefused(t *testing.T) {
	grace := 24 * time.Hour
	closed := t0.Add(time.Minute)
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.ApplyDeposit
		want  *domain.Error
	}{
		{"unknown order", nil, domain.ApplyDeposit{DepositID: "dep_1", Amount: 15000, NameGrace: grace}, domain.ErrOrderGone},
		{"awaiting, another amount", []domain.Event{submitted()}, domain.ApplyDeposit{DepositID: "dep_1", Amount: 15001, DepositedAt: closed, NameGrace: grace}, domain.ErrAmountMismatch},
		{"cancelled, transferred one nanosecond after the grace", []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", CancelledAt: closed}},
			domain.ApplyDeposit{DepositID: "dep_1", Amount: 15000, DepositedAt: closed.Add(grace + time.Nanosecond), Now: closed.Add(grace), NameGrace: grace}, domain.ErrOrderGone},
		{"made before the order existed", []domain.Event{submitted()},
			domain.ApplyDeposit{DepositID: "dep_1", Amount: 15000, DepositedAt: submitted().SubmittedAt.Add(-domain.MaxClockSkew - time.Nanosecond), NameGrace: grace}, domain.ErrDepositBeforeOrder},
		{"made before a paid order existed", []domain.Event{submitted(), paidBy("dep_0", closed)},
			domain.ApplyDeposit{DepositID: "dep_1", Amount: 15000, DepositedAt: submitted().SubmittedAt.Add(-time.Hour), NameGrace: grace}, domain.ErrDepositBeforeOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, outcome, err := domain.DecideDeposit(given(tt.given...), tt.when)
			requireDomainError(t, err, tt.want, domain.KindRule)
			if events != nil || outcome != "" {
				t.Errorf("events = %#v, outcome %q; want none", events, outcome)
			}
		})
	}
}

func TestOrderRefundedWalletCredit(t *testing.T) {
	now := t0.Add(time.Hour)
	tests := []struct {
		name  string
		event domain.OrderRefunded
		want  domain.CreditWallet
	}{
		{
			"a refunded deposit is credited once per deposit",
			domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", DepositID: "dep_2", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), RefundedAt: t0},
			domain.CreditWallet{UserID: "u-1", Amount: 15000, Kind: domain.CreditDepositRefund, Ref: "dep_2", OrderID: "o-1", FromAccount: domain.AccountBank(collect.Number), Now: now},
		},
		{
			"a paid amount is credited once per order",
			domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", Amount: 15000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0},
			domain.CreditWallet{UserID: "u-1", Amount: 15000, Kind: domain.CreditOrderRefund, Ref: "order:o-1", OrderID: "o-1", FromAccount: domain.AccountPayableOrders, Now: now},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.event.WalletCredit(now); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("WalletCredit\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

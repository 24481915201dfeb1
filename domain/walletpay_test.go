package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// A wallet spends on an order once, never below zero, and not again once
// the payment came back; an order takes a payment only from its buyer's
// wallet, while it awaits its payment, for its amount.
func TestWalletPaymentDecisions(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	w := domain.Wallet{}.Apply(domain.WalletCredited{UserID: "u1", Amount: 10000, Kind: domain.CreditOrphanRefund, Ref: "dep-1", FromAccount: domain.AccountSuspense, CreditedAt: now})
	spend := domain.Spend{UserID: "u1", OrderID: "o1", Amount: 6000, Now: now}
	events, err := domain.DecideSpend(w, spend)
	if err != nil || len(events) != 1 {
		t.Fatalf("spend: %v %v", events, err)
	}
	w = w.Apply(events[0])
	if w.Balance != 4000 {
		t.Fatalf("balance after spending: %d", w.Balance)
	}
	if events, err := domain.DecideSpend(w, spend); err != nil || len(events) != 0 {
		t.Fatalf("the same order again: %v %v", events, err)
	}
	if _, err := domain.DecideSpend(w, domain.Spend{UserID: "u1", OrderID: "o2", Amount: 4001, Now: now}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("above the balance: %v", err)
	}
	back := w.Apply(domain.WalletCredited{UserID: "u1", Amount: 6000, Kind: domain.CreditPaymentReversal, Ref: domain.PaymentReversalRef("o1"), OrderID: "o1", FromAccount: domain.AccountWalletPayments, CreditedAt: now})
	if _, err := domain.DecideSpend(back, spend); !errors.Is(err, domain.ErrWrongState) {
		t.Fatalf("a payment that came back, again: %v", err)
	}

	o := domain.Order{}.Apply(domain.OrderSubmitted{OrderID: "o1", BuyerID: "u1", BuyerName: "김", Amount: domain.Money{Amount: 6000, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: now})
	for _, c := range []struct {
		name   string
		user   domain.UserID
		amount int64
		want   error
	}{
		{"another buyer's wallet", "u2", 6000, domain.ErrWrongState},
		{"another amount", "u1", 5000, domain.ErrAmountMismatch},
	} {
		if _, err := domain.DecidePayFromWallet(o, c.user, c.amount, now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	events, err = domain.DecidePayFromWallet(o, "u1", 6000, now)
	if err != nil || len(events) != 1 {
		t.Fatalf("pay: %v %v", events, err)
	}
	paid := o.Apply(events[0])
	if !paid.PaidFromWallet() || paid.Status != domain.StatusPaid || len(paid.DepositIDs) != 0 || paid.PaidBy != "" {
		t.Fatalf("paid order: %+v", paid)
	}
	if events, err := domain.DecidePayFromWallet(paid, "u1", 6000, now); err != nil || len(events) != 0 {
		t.Fatalf("paid from the wallet already: %v %v", events, err)
	}
	cancelled := o.Apply(domain.OrderCancelled{OrderID: "o1", CancelledAt: now})
	if _, err := domain.DecidePayFromWallet(cancelled, "u1", 6000, now); !errors.Is(err, domain.ErrWrongState) {
		t.Fatalf("a cancelled order: %v", err)
	}
	if _, err := domain.DecidePayFromWallet(domain.Order{}, "u1", 6000, now); !errors.Is(err, domain.ErrOrderNotFound) {
		t.Fatalf("no order: %v", err)
	}

	// The money waits in wallet payments between the two steps.
	spent := domain.WalletSpent{UserID: "u1", Amount: 6000, OrderID: "o1", SpentAt: now}
	if mv := domain.Clearing(spent); mv.Open.Account != domain.AccountWalletPayments || mv.Open.Key != "o1" || mv.Open.Amount != 6000 {
		t.Errorf("wallet.spent opens %+v", mv)
	}
	if mv := domain.Clearing(events[0]); mv.Close.Account != domain.AccountWalletPayments || mv.Close.Key != "o1" {
		t.Errorf("order.paid from the wallet closes %+v", mv)
	}
	ps := append(domain.Postings(spent), domain.Postings(events[0])...)
	if len(ps) != 2 || ps[0].Debit != domain.AccountWallet("u1") || ps[0].Credit != domain.AccountWalletPayments || ps[1].Debit != domain.AccountWalletPayments || ps[1].Credit != domain.AccountPayableOrders {
		t.Errorf("postings: %+v", ps)
	}
}

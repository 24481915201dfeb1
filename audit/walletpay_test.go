package audit_test

import (
	"testing"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// spendOn writes user's wallet.spent of amount on order.
func spendOn(s *stream, user domain.UserID, order domain.OrderID, amount int64) eventstore.Seq {
	return s.append(domain.AggregateWallet, string(user), domain.WalletSpent{UserID: user, Amount: amount, OrderID: order, SpentAt: t0})
}

// A wallet's payments of its user's orders verify clean: one taken by its
// order, one returned by an order cancelled first, and one still on its
// way, listed as an open item of wallet payments pending.
func TestVerifyFollowsWalletPayments(t *testing.T) {
	s := newStream(t)
	money(s) // u1 holds 300
	submittedFor(s, "oA", "u1", 100)
	submittedFor(s, "oB", "u1", 100)
	submittedFor(s, "oC", "u1", 50)
	spendOn(s, "u1", "oA", 100)
	s.append(domain.AggregateOrder, "oA", domain.OrderPaid{OrderID: "oA", Amount: 100, FromAccount: domain.AccountWalletPayments, PaidAt: t0})
	s.append(domain.AggregateOrder, "oB", domain.OrderCancelled{OrderID: "oB", CancelledAt: t0})
	spendOn(s, "u1", "oB", 100)
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 100, Kind: domain.CreditPaymentReversal, Ref: domain.PaymentReversalRef("oB"), OrderID: "oB", FromAccount: domain.AccountWalletPayments, CreditedAt: t0})
	pending := spendOn(s, "u1", "oC", 50)
	rep := s.verify()
	if !rep.OK {
		t.Fatalf("findings: %+v", rep.Findings)
	}
	var items []audit.OpenItem
	for _, it := range rep.OpenItems {
		if it.Account == domain.AccountWalletPayments {
			items = append(items, it)
		}
	}
	if len(items) != 1 || items[0].ID != "oC" || items[0].Amount != 50 || items[0].Kind != audit.KindWalletPayment || items[0].Seq != pending {
		t.Fatalf("open wallet payments: %+v", items)
	}
}

// A wallet pays its own user's orders: its money taken by another buyer's
// order pays that buyer's order with it.
func TestVerifyNamesAWalletPaymentTakenByAnotherBuyersOrder(t *testing.T) {
	s := newStream(t)
	money(s)
	submittedFor(s, "oA", "u2", 100)
	spendOn(s, "u1", "oA", 100)
	seq := s.append(domain.AggregateOrder, "oA", domain.OrderPaid{OrderID: "oA", Amount: 100, FromAccount: domain.AccountWalletPayments, PaidAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// A payment the order did not take goes back to the wallet that spent it,
// to no one else.
func TestVerifyNamesAWalletPaymentReturnedToAnotherWallet(t *testing.T) {
	s := newStream(t)
	money(s)
	submittedFor(s, "oA", "u1", 100)
	s.append(domain.AggregateOrder, "oA", domain.OrderCancelled{OrderID: "oA", CancelledAt: t0})
	spendOn(s, "u1", "oA", 100)
	seq := s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 100, Kind: domain.CreditPaymentReversal, Ref: domain.PaymentReversalRef("oA"), OrderID: "oA", FromAccount: domain.AccountWalletPayments, CreditedAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// A payment taken by its order does not come back too: the reversal moves
// money out of wallet payments for an item that is no longer open.
func TestVerifyNamesAWalletPaymentBothTakenAndReturned(t *testing.T) {
	s := newStream(t)
	money(s)
	submittedFor(s, "oA", "u1", 100)
	spendOn(s, "u1", "oA", 100)
	s.append(domain.AggregateOrder, "oA", domain.OrderPaid{OrderID: "oA", Amount: 100, FromAccount: domain.AccountWalletPayments, PaidAt: t0})
	seq := s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 100, Kind: domain.CreditPaymentReversal, Ref: domain.PaymentReversalRef("oA"), OrderID: "oA", FromAccount: domain.AccountWalletPayments, CreditedAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

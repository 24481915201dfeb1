package audit_test

import (
	"testing"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
)

// An orphan an operator assigned to an order is carried out to that order,
// or (the order no longer taking it) to its buyer's wallet: a credit of its
// money from suspense to anyone else's wallet moves it wrongly.
func TestVerifyNamesAnAssignedOrphanCreditedToAnotherWallet(t *testing.T) {
	s := newStream(t)
	money(s)
	submitted(s, "oX", "u1")
	s.append(domain.AggregateDeposit, "d1", domain.DepositResolved{DepositID: "d1", Action: domain.ResolveAssignOrder, Amount: 1000, OrderID: "oX", ResolvedAt: t0})
	seq := s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: "d1", FromAccount: domain.AccountSuspense, CreditedAt: t0})
	rep := s.verify()
	if f := findings(rep, audit.CheckClearing); rep.OK || len(f) == 0 || f[0].Seq != seq {
		t.Fatalf("want a clearing finding at seq %d: %+v", seq, rep.Findings)
	}
}

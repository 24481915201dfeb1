package projections_test

import (
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// TestDepositNamesTheWalletAnAssignedOrphanWentTo: an orphan assigned to an
// order that did not take it as its payment went to the buyer's wallet,
// through the order (deposit_refund) or straight from suspense when the
// order changed meanwhile (orphan_refund), and the deposit names that
// wallet. One that paid its order names none; a refund to a wallet keeps
// the user it named; a credit of another kind, for no deposit, or for an
// orphan that was not assigned changes no deposit.
func TestDepositNamesTheWalletAnAssignedOrphanWentTo(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	d.submit("o-open", "김민수042", 15000, at(0))
	for _, id := range []string{"dep-refunded", "dep-changed", "dep-paid", "dep-wallet", "dep-waiting"} {
		d.orphan(id, "모르는사람", 15000, at(0))
	}
	resolve := func(id string, r domain.DepositResolved) {
		r.DepositID, r.Amount, r.ResolvedAt = domain.DepositID(id), 15000, at(1)
		d.apply(depositRef(id), at(1), r)
	}
	credit := func(user, kind, ref string) {
		d.apply(walletRef(user), at(2), domain.WalletCredited{UserID: domain.UserID(user), Amount: 15000, Kind: kind, Ref: ref, FromAccount: domain.AccountSuspense, CreditedAt: at(2)})
	}
	resolve("dep-refunded", domain.DepositResolved{Action: domain.ResolveAssignOrder, OrderID: "o-paid-before"})
	credit("u-1", domain.CreditDepositRefund, "dep-refunded")
	resolve("dep-changed", domain.DepositResolved{Action: domain.ResolveAssignOrder, OrderID: "o-closed"})
	credit("u-2", domain.CreditOrphanRefund, "dep-changed")
	resolve("dep-paid", domain.DepositResolved{Action: domain.ResolveAssignOrder, OrderID: "o-open"})
	d.pay("o-open", "dep-paid", 15000, at(2))
	resolve("dep-wallet", domain.DepositResolved{Action: domain.ResolveRefundToWallet, UserID: "u-3"})
	credit("u-3", domain.CreditOrphanRefund, "dep-wallet")
	// Neither a credit of another kind naming a deposit, nor one naming
	// something else, is a deposit's.
	credit("u-9", domain.CreditOrderRefund, "dep-paid")
	credit("u-9", domain.CreditDepositRefund, "dep-unknown")
	// Nor is a credit naming an orphan that was not assigned.
	credit("u-9", domain.CreditDepositRefund, "dep-waiting")

	for id, user := range map[string]string{"dep-refunded": "u-1", "dep-changed": "u-2", "dep-paid": "", "dep-wallet": "u-3", "dep-waiting": ""} {
		v, ok, err := d.st.Deposit(id)
		if err != nil || !ok {
			t.Fatalf("deposit %s: %v %v", id, ok, err)
		}
		if v.UserID != user {
			t.Errorf("deposit %s: user_id %q, want %q (%+v)", id, v.UserID, user, v)
		}
	}
}

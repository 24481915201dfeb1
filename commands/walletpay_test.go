package commands_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
)

// fundWallet credits user's wallet with amount (an orphan given to the
// user by an operator).
func fundWallet(t *testing.T, u *unit, user domain.UserID, amount int64) {
	t.Helper()
	if _, err := u.Wallets.Credit(context.Background(), commands.Meta{}, domain.CreditWallet{UserID: user, Amount: amount, Kind: domain.CreditOrphanRefund,
		Ref: "dep-fund-" + string(user), FromAccount: domain.AccountSuspense, Now: u.clock.Now()}); err != nil {
		t.Fatalf("fund %s: %v", user, err)
	}
}

// An order whose history holds a damaged commit has not refused the
// wallet's payment: it cannot be read. Completing the payment then fails
// with aggregate_damaged (the money reactor retries it, and an operator
// sets the commit aside) instead of returning money the order may have
// taken already: an order paid from the wallet, damaged afterwards, is
// not refunded to the wallet on top of being paid.
func TestWalletPaymentOfADamagedOrderIsNotReturned(t *testing.T) {
	f := newDamagedFixture(t)
	ctx := context.Background()
	u := newUnit(t, f.es)
	fundWallet(t, u, "buyer-o-w", 20000)
	u.submit(t, "o-w", 5000)
	rep, err := u.Orders.PayFromWallet(ctx, commands.Meta{}, api.PayFromWalletRequest{OrderID: "o-w"})
	if err != nil || rep.Status != domain.StatusPaid || rep.WalletBalance != 15000 {
		t.Fatalf("pay from the wallet: %+v, %v", rep, err)
	}
	garbage := f.publish(t, "bankbook.evt.order.o-w", []byte("junk!"))

	// The money reactor's delivery of the wallet.spent, again.
	reactor := commands.Meta{Command: "reactor.money", Actor: "reactor"}
	spent := domain.WalletSpent{UserID: "buyer-o-w", Amount: 5000, OrderID: "o-w", SpentAt: u.clock.Now()}
	for _, h := range []*unit{u, newUnit(t, f.es)} { // warm and cold
		_, err := h.Orders.CompleteWalletPayment(ctx, reactor, spent)
		if w := fold[domain.Wallet](t, u, domain.AggregateWallet, "buyer-o-w"); w.Balance != 15000 || w.Credited(domain.PaymentReversalRef("o-w")) {
			t.Fatalf("wallet after completing the payment of a damaged order: balance %d (want 15000), reversed %v (%v)", w.Balance, w.Credited(domain.PaymentReversalRef("o-w")), err)
		}
		var returned *commands.PaymentReturnedError
		if errors.As(err, &returned) {
			t.Fatalf("the payment was returned to the wallet: %v", err)
		}
		refusedAt(t, err, "o-w", garbage)
	}

	// Once the commit is set aside, the payment completes as taken.
	if _, _, err := f.es.SetAside(ctx, garbage, "junk", "operator"); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Orders.CompleteWalletPayment(ctx, reactor, spent); err != nil {
		t.Fatalf("complete after the set-aside: %v", err)
	}
	if w := fold[domain.Wallet](t, u, domain.AggregateWallet, "buyer-o-w"); w.Balance != 15000 {
		t.Fatalf("wallet after the set-aside: %d, want 15000", w.Balance)
	}
}

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

// An order paid from the wallet and cancelled since (its amount refunded
// to the wallet) is not "already paid": paying it again is refused
// wrong_state, as for any cancelled order, not answered "paid".
func TestPayingACancelledOrderPaidFromTheWalletIsRefused(t *testing.T) {
	u := newUnit(t, storeOpeners[1].open(t)) // jetstream
	ctx := context.Background()
	fundWallet(t, u, "buyer-o-c", 20000)
	u.submit(t, "o-c", 5000)
	if _, err := u.Orders.PayFromWallet(ctx, commands.Meta{}, api.PayFromWalletRequest{OrderID: "o-c"}); err != nil {
		t.Fatalf("pay from the wallet: %v", err)
	}
	yes := true
	if rep, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-c", Deposited: &yes}); err != nil || rep.Status != domain.StatusCancelled {
		t.Fatalf("cancel the paid order: %+v, %v", rep, err)
	}
	rep, err := u.Orders.PayFromWallet(ctx, commands.Meta{}, api.PayFromWalletRequest{OrderID: "o-c"})
	if !errors.Is(err, domain.ErrWrongState) {
		t.Fatalf("pay the cancelled order again: %+v, %v; want wrong_state", rep, err)
	}
	if w := fold[domain.Wallet](t, u, domain.AggregateWallet, "buyer-o-c"); w.Balance != 20000 {
		t.Fatalf("wallet: %d, want 20000", w.Balance)
	}
}

// A keyed repeat of a payment whose first attempt paid the order and died
// before its reply was stored finds that attempt's events and answers what
// it did, even though the order was cancelled since.
func TestResumedWalletPaymentOfAnOrderCancelledSinceAnswersItsFirstAttempt(t *testing.T) {
	u := newUnit(t, storeOpeners[1].open(t)) // jetstream
	ctx := context.Background()
	fundWallet(t, u, "buyer-o-r", 20000)
	u.submit(t, "o-r", 5000)
	first := commands.Meta{Command: "bankbook.cmd.order.pay_from_wallet", Actor: "app", IdempotencyKey: "k-1"}
	rep, err := u.Orders.PayFromWallet(ctx, first, api.PayFromWalletRequest{OrderID: "o-r"})
	if err != nil || rep.WalletBalance != 15000 {
		t.Fatalf("pay from the wallet: %+v, %v", rep, err)
	}
	yes := true
	if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-r", Deposited: &yes}); err != nil {
		t.Fatalf("cancel the paid order: %v", err)
	}
	resumed := first
	resumed.Resumed, resumed.ClaimedAt = true, u.clock.Now()
	again, err := newUnit(t, u.es).Orders.PayFromWallet(ctx, resumed, api.PayFromWalletRequest{OrderID: "o-r"})
	if err != nil || again.Status != domain.StatusPaid || again.WalletBalance != 15000 {
		t.Fatalf("resumed repeat: %+v, %v; want the first attempt's reply %+v", again, err, rep)
	}
	if w := fold[domain.Wallet](t, u, domain.AggregateWallet, "buyer-o-r"); w.Balance != 20000 {
		t.Fatalf("wallet: %d, want 20000", w.Balance)
	}
}

package commands_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
)

func (u *unit) submit(t *testing.T, id string, amount int64) api.SubmitOrderReply {
	t.Helper()
	rep, err := u.Orders.SubmitOrder(context.Background(), commands.Meta{}, api.SubmitOrderRequest{OrderID: id, BuyerID: "buyer-" + id, BuyerName: "김민수", Amount: amount})
	if err != nil {
		t.Fatalf("submit %s: %v", id, err)
	}
	return rep
}

// TestReservedCancellationWaitsForTheScanThenIsFinalOnce: given an order
// cancelled with "deposited", when the timer fires before the bank scan
// covers the cancel time, then it waits FinaliseRetry; once the scan covers
// it, the order is cancelled, once.
func TestReservedCancellationWaitsForTheScanThenIsFinalOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		cfg := u.Orders.Config()
		u.submit(t, "o-1", 5000)
		yes := true
		rep, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-1", Deposited: &yes})
		if err != nil || rep.Status != domain.StatusCancelReserved {
			t.Fatalf("cancel: %+v %v", rep, err)
		}
		cancelAt := u.clock.Now().Add(cfg.CancelWindow)
		if got := armedOf(u.timers, commands.TimerFinaliseCancel); len(got) != 1 || got[0] != (commandstest.Armed{Kind: commands.TimerFinaliseCancel, ID: "o-1", At: cancelAt}) {
			t.Fatalf("timers armed %+v, want one %s timer at %v", got, commands.TimerFinaliseCancel, cancelAt)
		}

		u.clock.Set(cancelAt.Add(time.Minute))
		wait, err := u.Orders.FinaliseCancel(ctx, "o-1")
		if err != nil || wait != cfg.FinaliseRetry {
			t.Fatalf("finalise before the scan: wait %v, %v; want %v", wait, err, cfg.FinaliseRetry)
		}
		if n := len(u.commits(t, domain.AggregateOrder, "o-1")); n != 2 {
			t.Fatalf("%d order commits after an early timer, want 2", n)
		}

		if _, err := u.Deposits.ScanComplete(ctx, commands.Meta{}, api.ScanCompleteRequest{AccountNumber: collect.Number, CompleteUpTo: cancelAt}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // timers fire at least once
			if wait, err := u.Orders.FinaliseCancel(ctx, "o-1"); err != nil || wait != 0 {
				t.Fatalf("finalise after the scan: wait %v, %v", wait, err)
			}
		}
		commits := u.commits(t, domain.AggregateOrder, "o-1")
		if len(commits) != 3 || commits[2].Events[0].EventType != "order.cancelled" || commits[2].Events[0].Actor != "timer" {
			t.Fatalf("order commits %+v, want submit, reserve, one cancel by the timer", commits)
		}
		// A timer of an order that is not cancel-reserved does nothing.
		u.submit(t, "o-2", 100)
		if wait, err := u.Orders.FinaliseCancel(ctx, "o-2"); err != nil || wait != 0 || len(u.commits(t, domain.AggregateOrder, "o-2")) != 1 {
			t.Fatalf("finalise of an open order: %v %v", wait, err)
		}
	})
}

// TestCancelOfAPaidOrderRefundsTheBuyersWallet: given a paid order, when it
// is cancelled, then its buyer's wallet holds the paid amount, and a repeat
// of the cancel is refused without a second refund.
func TestCancelOfAPaidOrderRefundsTheBuyersWallet(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		sub := u.submit(t, "o-paid", 7000)
		if rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: sub.DepositorName, Amount: 7000, DepositedAt: u.clock.Now()}); err != nil || rep.Outcome != domain.OutcomeMatched {
			t.Fatalf("deposit: %+v %v", rep, err)
		}
		no := false
		rep, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-paid", Deposited: &no})
		if err != nil || rep.Status != domain.StatusCancelled || rep.Refund == nil || rep.Refund.Amount != 7000 {
			t.Fatalf("cancel of a paid order: %+v %v", rep, err)
		}
		wallet := u.commits(t, domain.AggregateWallet, "buyer-o-paid")
		if len(wallet) != 1 || rep.Seq != api.Seq(wallet[0].Seq) {
			t.Fatalf("wallet commits %d, reply seq %d: want one credit, and the reply at its sequence", len(wallet), rep.Seq)
		}
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-paid", Deposited: &no}); !errors.Is(err, domain.ErrWrongState) {
			t.Fatalf("second cancel: %v", err)
		}
		assertBalance(t, u, "buyer-o-paid", 7000)
	})
}

// TestSubmitHandsOutDistinctDepositorNames: orders of buyers with the same
// name get different depositor names, each reserved for its order.
func TestSubmitHandsOutDistinctDepositorNames(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	seen := map[string]string{}
	for _, id := range []string{"a", "b", "c", "d"} {
		rep := u.submit(t, id, 100)
		if other, ok := seen[domain.NormalizeName(rep.DepositorName)]; ok {
			t.Fatalf("orders %s and %s both got %q", other, id, rep.DepositorName)
		}
		seen[domain.NormalizeName(rep.DepositorName)] = id
		if h, _, err := u.names.Holder(context.Background(), rep.DepositorName); err != nil || h.OrderID != domain.OrderID(id) {
			t.Fatalf("reservation of %q: %+v %v", rep.DepositorName, h, err)
		}
	}
}

// assertBalance checks a wallet's balance through what it lets withdraw:
// balance+1 is refused, balance is accepted (and then withdrawn).
func assertBalance(t *testing.T, u *unit, user string, balance int64) {
	t.Helper()
	ctx := context.Background()
	to := domain.BankAccount{Bank: "KB", Number: "999", Holder: "김민수"}
	if _, err := u.Wallets.Withdraw(ctx, commands.Meta{}, api.WithdrawRequest{UserID: user, Amount: balance + 1, BankAccount: to, PayoutID: "po-over-" + user}); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdrawing %d from %s: %v, want insufficient funds", balance+1, user, err)
	}
	if balance == 0 {
		return
	}
	if _, err := u.Wallets.Withdraw(ctx, commands.Meta{}, api.WithdrawRequest{UserID: user, Amount: balance, BankAccount: to, PayoutID: "po-all-" + user}); err != nil {
		t.Fatalf("withdrawing the balance %d from %s: %v", balance, user, err)
	}
}

package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
)

// TestConcurrentWithdrawalsNeverOverdraw: eight withdrawals of 300 from a
// wallet of 1000 at once: exactly three succeed.
func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		if _, err := u.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: "u", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: "gift", FromAccount: domain.AccountSuspense, Now: u.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := u.Wallets.Withdraw(ctx, commands.Meta{}, api.WithdrawRequest{UserID: "u", Amount: 300, PayoutID: fmt.Sprint("po-", i),
					BankAccount: domain.BankAccount{Bank: "KB", Number: "1", Holder: "u"}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, domain.ErrInsufficientFunds):
					refused++
				default:
					t.Errorf("withdraw: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 3 || refused != 5 {
			t.Fatalf("%d withdrawals succeeded, %d refused; want 3 and 5", ok, refused)
		}
		assertBalance(t, u, "u", 100)
	})
}

// TestConcurrentWithdrawalsOnTwoInstancesNeverOverdraw: as
// TestConcurrentWithdrawalsNeverOverdraw, with the withdrawals shared by two
// instances over one JetStream event store, each with its own cache of the
// wallet: only the compare-and-swap on the wallet's subject serialises
// them. Sixteen withdrawals of 300 from 1000: exactly three are debited.
func TestConcurrentWithdrawalsOnTwoInstancesNeverOverdraw(t *testing.T) {
	es := storeOpeners[1].open(t)
	accts := &commandstest.Accounts{From: 5001000000}
	a, b := newUnitOn(t, es, accts, nil), newUnitOn(t, es, accts, nil)
	ctx := context.Background()
	if _, err := a.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: "u", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: "gift", FromAccount: domain.AccountSuspense, Now: a.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*unit{a, b} { // both instances know the wallet as credited
		if _, err := u.Wallets.Get(ctx, "u"); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range 16 {
		u := []*unit{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := u.Wallets.Withdraw(ctx, commands.Meta{}, api.WithdrawRequest{UserID: "u", Amount: 300, PayoutID: fmt.Sprint("po-", i),
				BankAccount: domain.BankAccount{Bank: "KB", Number: "1", Holder: "u"}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, domain.ErrInsufficientFunds):
			default:
				t.Errorf("withdraw: %v", err)
			}
		}()
	}
	wg.Wait()
	w := fold[domain.Wallet](t, a, domain.AggregateWallet, "u")
	if ok != 3 || w.Balance != 100 {
		t.Fatalf("%d withdrawals debited, balance %d; want 3 and 100", ok, w.Balance)
	}
}

// TestCreditIsOncePerRef: crediting the same ref again appends nothing and
// answers the wallet's last commit.
func TestCreditIsOncePerRef(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	credit := domain.CreditWallet{UserID: "u", Amount: 500, Kind: domain.CreditOrderRefund, Ref: "order-1", FromAccount: domain.AccountPayableOrders, Now: u.clock.Now()}
	first, err := u.Wallets.Credit(ctx, commands.Meta{}, credit)
	if err != nil || first == 0 {
		t.Fatalf("credit: %d %v", first, err)
	}
	again, err := u.Wallets.Credit(ctx, commands.Meta{}, credit)
	if err != nil || again != first {
		t.Fatalf("credit again: seq %d %v, want %d", again, err, first)
	}
	assertBalance(t, u, "u", 500)
}

// TestPayoutRequestAndResultAreRecordedOnce: a payout is requested once,
// and its first final result stands.
func TestPayoutRequestAndResultAreRecordedOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		if _, err := u.Payouts.RecordResult(ctx, commands.Meta{}, "po-none", domain.PayoutFailed{PayoutID: "po-none", Reason: "x", FailedAt: u.clock.Now()}); !errors.Is(err, domain.ErrPayoutNotFound) {
			t.Fatalf("result of an unknown payout: %v", err)
		}
		req := domain.PayoutRequested{PayoutID: "po-1", Amount: 800, To: domain.BankAccount{Bank: "KB", Number: "2", Holder: "h"}, PayFrom: collect.Number,
			Source: domain.PayoutFromWallet, SourceID: "u", FromAccount: domain.AccountWallet("u"), RequestedAt: u.clock.Now()}
		for range 2 {
			p, err := u.Payouts.Request(ctx, commands.Meta{}, req)
			if err != nil || p.Status != domain.PayoutRequestedStatus || p.Amount != 800 {
				t.Fatalf("request: %+v %v", p, err)
			}
		}
		p, err := u.Payouts.RecordResult(ctx, commands.Meta{}, "po-1", domain.PayoutSettled{PayoutID: "po-1", Amount: 800, Fee: 50, BankAccount: collect.Number, SettledAt: u.clock.Now()})
		if err != nil || p.Status != domain.PayoutSettledStatus || p.Fee != 50 {
			t.Fatalf("settle: %+v %v", p, err)
		}
		p, err = u.Payouts.RecordResult(ctx, commands.Meta{}, "po-1", domain.PayoutFailed{PayoutID: "po-1", Reason: "late", FailedAt: u.clock.Now()})
		if err != nil || p.Status != domain.PayoutSettledStatus {
			t.Fatalf("a second result: %+v %v, want it settled still", p, err)
		}
		if n := len(u.commits(t, domain.AggregatePayout, "po-1")); n != 2 {
			t.Fatalf("%d payout commits, want 2", n)
		}
	})
}

// TestResumedCancelAnswersTheCreditOfItsRefund: given a paid order whose
// keyed cancellation died after recording the refund and before crediting
// the wallet, the money process manager's credit of that refund, and a
// later credit to the same wallet, when the client repeats the
// cancellation with the same key, then its token is the commit that
// credited the refund (what the first attempt would have answered had the
// process manager been first), not the wallet's latest commit.
func TestResumedCancelAnswersTheCreditOfItsRefund(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		fs := &failOnce{EventStore: es, typ: "none"}
		u := newUnit(t, fs)
		ctx := context.Background()
		o := u.submit(t, "o-c", 4000)
		if paid := u.deposit(t, "t-c", o.DepositorName, 4000); paid.Outcome != domain.OutcomeMatched {
			t.Fatalf("paying deposit: %+v", paid)
		}
		yes := true
		req := api.CancelOrderRequest{OrderID: o.OrderID, Deposited: &yes}
		meta := commands.Meta{Command: api.OrderCancel.Subject, IdempotencyKey: "k-cancel"}
		fs.failNext(domain.AggregateWallet)
		if _, err := u.Orders.CancelOrder(ctx, meta, req); err == nil {
			t.Fatal("the first attempt did not die")
		}
		var refund domain.OrderRefunded
		for _, c := range u.commits(t, domain.AggregateOrder, o.OrderID) {
			for _, e := range c.Events {
				if e.EventType == "order.refunded" {
					if err := json.Unmarshal(e.Data, &refund); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if refund.OrderID == "" {
			t.Fatal("no refund recorded")
		}
		// The money process manager settles the refund (no key of the command's).
		credit, err := u.Wallets.SettleRefund(ctx, commands.Meta{Command: "process.money"}, refund)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: refund.BuyerID, Amount: 1, Kind: domain.CreditOrphanRefund, Ref: "later", FromAccount: domain.AccountSuspense, Now: u.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		meta.Resumed = true
		rep, err := u.Orders.CancelOrder(ctx, meta, req)
		if err != nil || rep.Status != domain.StatusCancelled || rep.Refund == nil || rep.Seq != api.Seq(credit) {
			t.Fatalf("resumed repeat: %+v %v, want cancelled with the refund credited at seq %d", rep, err, credit)
		}
		assertBalance(t, u, string(refund.BuyerID), 4001)
	})
}

// TestWithdrawRefusals: a withdrawal the request or the balance does not
// allow debits nothing; the balance stays whole.
func TestWithdrawRefusals(t *testing.T) {
	to := domain.BankAccount{Bank: "KB", Number: "110-123", Holder: "김민수"}
	tests := []struct {
		name string
		req  api.WithdrawRequest
		want error
	}{
		{"one more than the balance", api.WithdrawRequest{UserID: "u", Amount: 1001, BankAccount: to, PayoutID: "po-1"}, domain.ErrInsufficientFunds},
		{"zero", api.WithdrawRequest{UserID: "u", Amount: 0, BankAccount: to, PayoutID: "po-1"}, domain.ErrInvalidInput},
		{"negative", api.WithdrawRequest{UserID: "u", Amount: -500, BankAccount: to, PayoutID: "po-1"}, domain.ErrInvalidInput},
		{"another currency", api.WithdrawRequest{UserID: "u", Amount: 500, Currency: "USD", BankAccount: to, PayoutID: "po-1"}, domain.ErrUnsupportedCurrency},
		{"an account firm banking refuses", api.WithdrawRequest{UserID: "u", Amount: 500, BankAccount: domain.BankAccount{Bank: "KB", Number: "110 123", Holder: "김민수"}, PayoutID: "po-1"}, domain.ErrInvalidInput},
		{"no payout planned", api.WithdrawRequest{UserID: "u", Amount: 500, BankAccount: to}, domain.ErrInvalidInput},
		{"no user", api.WithdrawRequest{Amount: 500, BankAccount: to, PayoutID: "po-1"}, domain.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUnit(t, storeOpeners[0].open(t))
			ctx := context.Background()
			if _, err := u.Wallets.Credit(ctx, commands.Meta{}, domain.CreditWallet{UserID: "u", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: "gift", FromAccount: domain.AccountSuspense, Now: u.clock.Now()}); err != nil {
				t.Fatal(err)
			}
			rep, err := u.Wallets.Withdraw(ctx, commands.Meta{}, tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("withdraw: %+v %v, want %v", rep, err, tt.want)
			}
			if n := len(u.commits(t, domain.AggregateWallet, "u")); n != 1 {
				t.Fatalf("%d wallet commits, want the credit only", n)
			}
			w, err := u.Wallets.Get(ctx, "u")
			if err != nil || w.Balance != 1000 {
				t.Fatalf("wallet after: %+v %v, want 1000", w, err)
			}
		})
	}
}

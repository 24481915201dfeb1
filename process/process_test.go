package process_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/inmem"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/process"
)

var collect = domain.BankAccount{Bank: "KB", Number: "100-200", Holder: "bankbook"}

// closed is an account number the provider fails transfers to.
const closed = "000000"

// provider is an in-memory firm-banking provider: idempotent on the
// transfer ID, settling at once with a fee of 500, failing transfers to
// the closed account.
type provider struct {
	mu      sync.Mutex
	results map[string]firmbanking.Result
	sent    []firmbanking.Transfer // distinct transfers, in order
}

func (p *provider) Send(_ context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.results[t.ID]; ok {
		return r, nil
	}
	r := firmbanking.Result{ID: t.ID, Status: firmbanking.StatusSettled, Fee: 500, ProviderRef: "ref-" + t.ID}
	if t.To.Number == closed {
		r = firmbanking.Result{ID: t.ID, Status: firmbanking.StatusFailed, Reason: "account closed"}
	}
	if p.results == nil {
		p.results = map[string]firmbanking.Result{}
	}
	p.results[t.ID] = r
	p.sent = append(p.sent, t)
	return r, nil
}

func (p *provider) Status(_ context.Context, id string) (firmbanking.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.results[id]; ok {
		return r, nil
	}
	return firmbanking.Result{}, firmbanking.ErrUnknownTransfer
}

func (p *provider) transfers() []firmbanking.Transfer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]firmbanking.Transfer(nil), p.sent...)
}

type fixture struct {
	commands.Handlers
	es    *inmem.Store
	codec *domain.Codec
	m     *process.Managers
	bank  *provider
}

func newFixture(t *testing.T, withProvider bool) *fixture {
	t.Helper()
	f := &fixture{es: inmem.New(inmem.Config{Upcaster: domain.Events()}), codec: domain.Events(), bank: &provider{}}
	var err error
	f.Handlers, err = commands.New(commands.Deps{Events: f.es, Codec: f.codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
		commands.Config{CollectAccount: collect}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := process.Config{Codec: f.codec, Deposits: f.Deposits, Wallets: f.Wallets, Payouts: f.Payouts, Log: zerolog.Nop()}
	if withProvider {
		cfg.Provider = f.bank
	}
	if f.m, err = process.New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) commits(t *testing.T, typ, id string) []eventstore.Commit {
	t.Helper()
	c, err := f.es.Load(context.Background(), eventstore.Ref{Type: typ, ID: id}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// react delivers every commit of one aggregate to fn, as a reactor would,
// twice over: delivery is at least once.
func (f *fixture) react(t *testing.T, fn func(context.Context, eventstore.Commit) error, typ, id string) {
	t.Helper()
	for range 2 {
		for _, c := range f.commits(t, typ, id) {
			if err := fn(context.Background(), c); err != nil {
				t.Fatalf("react to %s at %d: %v", c.Ref(), c.Seq, err)
			}
		}
	}
}

// payout returns the payout as its commits record it.
func (f *fixture) payout(t *testing.T, id string) domain.Payout {
	t.Helper()
	var p domain.Payout
	for _, c := range f.commits(t, domain.AggregatePayout, id) {
		for _, env := range c.Events {
			ev, err := f.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				t.Fatal(err)
			}
			p = p.Apply(ev)
		}
	}
	return p
}

func (f *fixture) credit(t *testing.T, user string, amount int64) {
	t.Helper()
	if _, err := f.Wallets.Credit(context.Background(), commands.Meta{}, domain.CreditWallet{UserID: domain.UserID(user), Amount: amount, Kind: domain.CreditOrphanRefund, Ref: "gift", FromAccount: domain.AccountSuspense, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) withdraw(user string, amount int64, payout, to string) error {
	_, err := f.Wallets.Withdraw(context.Background(), commands.Meta{}, api.WithdrawRequest{UserID: user, Amount: amount, PayoutID: payout, BankAccount: domain.BankAccount{Bank: "KB", Number: to, Holder: user}})
	return err
}

// assertBalance checks a wallet's balance through what it lets withdraw.
func (f *fixture) assertBalance(t *testing.T, user string, balance int64) {
	t.Helper()
	if err := f.withdraw(user, balance+1, "po-check-over", "1"); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("withdrawing %d: %v, want insufficient funds", balance+1, err)
	}
	if err := f.withdraw(user, balance, "po-check", "1"); err != nil {
		t.Fatalf("withdrawing the balance %d: %v", balance, err)
	}
}

// TestWithdrawalIsSentOnceAndSettled: given a withdrawal, when the money
// reactor sees the wallet's commits (twice), then the provider got one
// transfer and the payout is settled with its fee.
func TestWithdrawalIsSentOnceAndSettled(t *testing.T) {
	f := newFixture(t, true)
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 600, "po-1", "111"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	sent := f.bank.transfers()
	if len(sent) != 1 || sent[0].ID != "po-1" || sent[0].Amount != 600 || sent[0].To.Number != "111" {
		t.Fatalf("transfers sent %+v, want po-1 once", sent)
	}
	p := f.payout(t, "po-1")
	if p.Status != domain.PayoutSettledStatus || p.Fee != 500 || p.PayFrom != collect.Number || p.Source != domain.PayoutFromWallet {
		t.Fatalf("payout %+v", p)
	}
	if n := len(f.commits(t, domain.AggregatePayout, "po-1")); n != 2 {
		t.Fatalf("%d payout commits, want requested and settled", n)
	}
	f.assertBalance(t, "u", 400)
}

// TestFailedWithdrawalReturnsTheMoneyOnce: a transfer the provider fails
// returns the money to the wallet, once however often the commit is seen.
func TestFailedWithdrawalReturnsTheMoneyOnce(t *testing.T) {
	f := newFixture(t, true)
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-2", closed); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	if p := f.payout(t, "po-2"); p.Status != domain.PayoutFailedStatus || p.Reason != "account closed" {
		t.Fatalf("payout %+v, want failed", p)
	}
	f.assertBalance(t, "u", 1000)
}

// TestRefundToBankLeavesTheAccountTheMoneyArrivedOn, and a failed one puts
// the deposit back in the orphan queue.
func TestRefundToBankLeavesTheAccountTheMoneyArrivedOn(t *testing.T) {
	for _, c := range []struct {
		name   string
		to     string
		status domain.PayoutStatus
		orphan bool // unresolved again afterwards
	}{
		{"settled", "222", domain.PayoutSettledStatus, false},
		{"failed", closed, domain.PayoutFailedStatus, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, true)
			ctx := context.Background()
			rec, err := f.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: "100 200", DepositorName: "모름", Amount: 3000, DepositedAt: time.Now()})
			if err != nil || rec.Outcome != domain.OutcomeOrphaned {
				t.Fatalf("record: %+v %v", rec, err)
			}
			if _, err := f.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToBank, PayoutID: "po-d",
				BankAccount: &domain.BankAccount{Bank: "KB", Number: c.to, Holder: "보낸이"}}); err != nil {
				t.Fatal(err)
			}
			if len(f.bank.transfers()) != 0 {
				t.Fatal("the command sent the refund itself; the reactor sends it")
			}
			f.react(t, f.m.ReactToMoney, domain.AggregateDeposit, rec.DepositID)
			p := f.payout(t, "po-d")
			if p.Status != c.status || p.PayFrom != "100 200" || p.Source != domain.PayoutFromDeposit || p.SourceID != rec.DepositID || p.Amount != 3000 {
				t.Fatalf("payout %+v", p)
			}
			if n := len(f.bank.transfers()); n != 1 {
				t.Fatalf("%d transfers, want 1", n)
			}
			d, err := f.Deposits.Get(ctx, domain.DepositID(rec.DepositID))
			if err != nil || d.Unresolved() != c.orphan {
				t.Fatalf("deposit %+v %v; unresolved should be %v", d, err, c.orphan)
			}
		})
	}
}

// TestWithoutAProviderPayoutsStayRequested: the reactor records the
// payout and fails, so the commit is tried again later.
func TestWithoutAProviderPayoutsStayRequested(t *testing.T) {
	f := newFixture(t, false)
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 100, "po-3", "333"); err != nil {
		t.Fatal(err)
	}
	commits := f.commits(t, domain.AggregateWallet, "u")
	if err := f.m.ReactToMoney(context.Background(), commits[len(commits)-1]); !errors.Is(err, process.ErrNoProvider) {
		t.Fatalf("react without a provider: %v, want ErrNoProvider", err)
	}
	if p := f.payout(t, "po-3"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want requested", p)
	}
}

// TestReactToOrderSettlesARefundTheCommandDidNot: an order commit with a
// refund whose command died before crediting the wallet: the reactor
// credits it, once.
func TestReactToOrderSettlesARefundTheCommandDidNot(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	refund := domain.OrderRefunded{OrderID: "o-1", BuyerID: "b", Amount: 1200, FromAccount: domain.AccountPayableOrders, RefundedAt: time.Now().UTC()}
	typ, version, data, err := f.codec.Encode(refund)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.es.Append(ctx, eventstore.Ref{Type: domain.AggregateOrder, ID: "o-1"}, 0, 0, "c-1",
		[]eventstore.Envelope{{EventID: "e-1", EventType: typ, SchemaVersion: version, OccurredAt: time.Now(), Data: data}}); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToOrder, domain.AggregateOrder, "o-1")
	wallet := f.commits(t, domain.AggregateWallet, "b")
	if len(wallet) != 1 || wallet[0].Events[0].CausationID != "e-1" || wallet[0].Events[0].Actor != "reactor" {
		t.Fatalf("wallet commits %+v, want one credit caused by e-1", wallet)
	}
	f.assertBalance(t, "b", 1200)
}

// TestResolvedOrphanIsCarriedOutOnce: the command carries out a resolution
// to a wallet; the reactor seeing it again credits nothing more.
func TestResolvedOrphanIsCarriedOutOnce(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	rec, err := f.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: "모름", Amount: 900, DepositedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToWallet, UserID: "w"}); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateDeposit, rec.DepositID)
	if n := len(f.commits(t, domain.AggregateWallet, "w")); n != 1 {
		t.Fatalf("%d wallet commits, want 1", n)
	}
	f.assertBalance(t, "w", 900)
}

// TestNewRefusesAnIncompleteConfig.
func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	if _, err := process.New(process.Config{}); err == nil {
		t.Fatal("New accepted an empty config")
	}
}

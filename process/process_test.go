package process_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
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
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/process"
	"github.com/bankbook/bankbook/worker"
)

var collect = domain.BankAccount{Bank: "KB", Number: "100-200", Holder: "bankbook"}

// closed is an account number the provider fails transfers to.
const closed = "000000"

// options shape a fixture.
type options struct {
	// noProvider leaves the process managers without a firm-banking provider.
	noProvider bool
	// bank configures the fake provider; the zero value settles at once with
	// a fee of 500 and fails transfers to the closed account.
	bank firmbanking.FakeOptions
	// jetstream runs the commands on the real event store of an embedded
	// server, so that reactor loops can run over it (the in-memory store
	// serves no consumers).
	jetstream bool
	// cfg sets the process config's timings.
	cfg process.Config
	// log receives the process managers' lines (and the reactor's).
	log zerolog.Logger
	// provider, when set, stands between the process managers and the fake
	// provider's client.
	provider func(firmbanking.Provider) firmbanking.Provider
}

type fixture struct {
	commands.Handlers
	es    commands.EventStore
	real  *eventstore.Store // with options.jetstream
	dead  *worker.DeadLetters
	codec *domain.Codec
	m     *process.Managers
	bank  *firmbanking.FakeService // nil without a provider
	// provider is the client of bank the process managers use.
	provider firmbanking.Provider
	log      zerolog.Logger
	// cfg is the process managers' config: another instance's managers
	// (process.New(f.cfg)) share the stores, the provider and the sends.
	cfg process.Config
}

// fakeBank serves the firm-banking fake over loopback HTTP, as the engine
// does with --bank-sim, and returns it with a client of it.
func fakeBank(t testing.TB, opts firmbanking.FakeOptions) (*firmbanking.FakeService, firmbanking.Provider) {
	t.Helper()
	if opts.Fee == 0 {
		opts.Fee = 500
	}
	if opts.FailAccounts == nil {
		opts.FailAccounts = []string{closed}
	}
	opts.Token = "test"
	fake := firmbanking.NewFakeService(opts)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return fake, &firmbanking.Client{BaseURL: srv.URL, Token: "test"}
}

func newFixture(t testing.TB, o options) *fixture {
	t.Helper()
	f := &fixture{codec: domain.Events(), log: o.log}
	// The sends are noted in a real lease stream, whichever event store.
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	var err error
	if f.dead, err = worker.OpenDeadLetters(context.Background(), js, worker.DeadConfig{}); err != nil {
		t.Fatal(err)
	}
	if o.jetstream {
		if f.real, err = eventstore.Open(context.Background(), js, eventstore.Config{Upcaster: f.codec}); err != nil {
			t.Fatal(err)
		}
		f.es = f.real
	} else {
		f.es = inmem.New(inmem.Config{Upcaster: f.codec})
	}
	f.Handlers, err = commands.New(commands.Deps{Events: f.es, Codec: f.codec, Names: commandstest.NewNames(nil), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{},
		Accounts: &commandstest.Accounts{From: 5001000000}},
		commands.Config{CollectAccount: collect}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	cfg := o.cfg
	if cfg.RefusalLag == 0 {
		cfg.RefusalLag = 20 * time.Millisecond // the fake shows what it accepted at once
	}
	if cfg.SettleTimeout == 0 {
		// A send open at a refusal (its answer lost, its instance dead)
		// holds the refusal for this much longer than RefusalLag.
		cfg.SettleTimeout, cfg.SendArrival = time.Second, 100*time.Millisecond
	}
	cfg.Codec, cfg.Orders, cfg.Deposits, cfg.Wallets, cfg.Payouts, cfg.Log = f.codec, f.Orders, f.Deposits, f.Wallets, f.Payouts, o.log
	cfg.Sends = process.SendsIn(f.dead, "payouts") // as the engine does
	if !o.noProvider {
		f.bank, f.provider = fakeBank(t, o.bank)
		cfg.Provider = f.provider
		if o.provider != nil {
			cfg.Provider = o.provider(f.provider)
		}
	}
	if f.m, err = process.New(cfg); err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	return f
}

// instance is another engine instance's process managers: the fixture's
// configuration (its stores, provider and sends) as change leaves it.
func (f *fixture) instance(t testing.TB, change func(*process.Config)) *process.Managers {
	t.Helper()
	cfg := f.cfg
	change(&cfg)
	m, err := process.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// moneyReactor runs ReactToMoney in a reactor loop over the JetStream store
// until the test ends, dead-lettering after maxAttempts failures.
func (f *fixture) moneyReactor(t testing.TB, maxAttempts int) *worker.Loop {
	t.Helper()
	return f.run(t, eventstore.ReactOptions{Durable: "react-money", Types: []string{domain.AggregateWallet, domain.AggregateDeposit}, MaxAttempts: maxAttempts}, f.m.ReactToMoney)
}

// payoutsReactor runs ReactToPayout in a reactor loop over the JetStream
// store until the test ends, concurrency payouts at once, dead-lettering
// after maxAttempts failures.
func (f *fixture) payoutsReactor(t testing.TB, maxAttempts, concurrency int) *worker.Loop {
	t.Helper()
	return f.run(t, eventstore.ReactOptions{Durable: "payouts", Types: []string{domain.AggregatePayout}, MaxAttempts: maxAttempts, Concurrency: concurrency}, f.m.ReactToPayout)
}

// run runs a reactor loop with short backoffs until the test ends.
func (f *fixture) run(t testing.TB, opts eventstore.ReactOptions, fn func(context.Context, eventstore.Commit) error) *worker.Loop {
	t.Helper()
	opts.Dead, opts.Logger = f.dead, f.log
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 10*time.Millisecond
	l, err := f.real.Reactor(context.Background(), opts, fn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reactor run: %v", err)
		}
	})
	return l
}

// wait asserts that err is a wait of d: worker.RetryAfter with a nil error,
// which the worker loop never counts as a failure.
func wait(t *testing.T, err error, d time.Duration) {
	t.Helper()
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	if !ok || ra.Err != nil || ra.Delay != d {
		t.Fatalf("error %v, want a wait of %v (worker.RetryAfter(%v, nil))", err, d, d)
	}
}

func (f *fixture) commits(t testing.TB, typ, id string) []eventstore.Commit {
	t.Helper()
	c, err := f.es.Load(context.Background(), eventstore.Ref{Type: typ, ID: id}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// react delivers every commit of one aggregate to fn, as a reactor would,
// twice over: delivery is at least once. A wait of a few seconds at most
// (worker.RetryAfter with a nil error) is waited out and the commit
// delivered again, as the reactor does, for a minute at most.
func (f *fixture) react(t *testing.T, fn func(context.Context, eventstore.Commit) error, typ, id string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for range 2 {
		for _, c := range f.commits(t, typ, id) {
			for {
				err := fn(context.Background(), c)
				if ra, ok := errors.AsType[*worker.RetryAfterError](err); ok && ra.Err == nil && ra.Delay <= 5*time.Second {
					if time.Now().After(deadline) {
						t.Fatalf("react to %s at %d: still waiting (%v) after a minute", c.Ref(), c.Seq, ra.Delay)
					}
					time.Sleep(ra.Delay)
					continue
				}
				if err != nil {
					t.Fatalf("react to %s at %d: %v", c.Ref(), c.Seq, err)
				}
				break
			}
		}
	}
}

// payout returns the payout as its commits record it.
func (f *fixture) payout(t testing.TB, id string) domain.Payout {
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

func (f *fixture) credit(t testing.TB, user string, amount int64) {
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
// reactor sees the wallet's commits (twice), then the payout is requested
// and nothing sent yet; when the payouts reactor sees the payout's commits
// (twice), then the provider got one transfer and the payout is settled
// with its fee.
func TestWithdrawalIsSentOnceAndSettled(t *testing.T) {
	f := newFixture(t, options{})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 600, "po-1", "111"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	if n := f.bank.Requests(); n != 0 {
		t.Fatalf("the money reactor made %d provider requests; only the payouts reactor may", n)
	}
	if p := f.payout(t, "po-1"); p.Status != domain.PayoutRequestedStatus || p.Amount != 600 {
		t.Fatalf("payout after the money reactor %+v, want requested", p)
	}
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-1")
	sent := f.bank.Sent()
	if len(sent) != 1 || sent[0].ID != "po-1" || sent[0].Amount != 600 || sent[0].To.Number != "111" {
		t.Fatalf("transfers sent %+v, want po-1", sent)
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
	f := newFixture(t, options{})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-2", closed); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-2")
	if p := f.payout(t, "po-2"); p.Status != domain.PayoutFailedStatus || p.Reason != "account_closed" {
		t.Fatalf("payout %+v, want failed", p)
	}
	f.assertBalance(t, "u", 1000)
}

// TestRefundToBankLeavesTheAccountTheMoneyArrivedOn, and a failed one puts
// the deposit back in the orphan queue. Money sent to a dedicated account
// no store holds is in the collection account (a dedicated account is a
// virtual one of it), and leaves from there.
func TestRefundToBankLeavesTheAccountTheMoneyArrivedOn(t *testing.T) {
	for _, c := range []struct {
		name             string
		to               string
		status           domain.PayoutStatus
		orphan           bool // unresolved again afterwards
		arrived, payFrom string
	}{
		{"settled", "222", domain.PayoutSettledStatus, false, "100 200", "100 200"},
		{"failed", closed, domain.PayoutFailedStatus, true, "100 200", "100 200"},
		{"from a dedicated account no store holds", "222", domain.PayoutSettledStatus, false, "5001000007", collect.Number},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, options{})
			ctx := context.Background()
			rec, err := f.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: c.arrived, DepositorName: "모름", Amount: 3000, DepositedAt: time.Now()})
			if err != nil || rec.Outcome != domain.OutcomeOrphaned {
				t.Fatalf("record: %+v %v", rec, err)
			}
			if _, err := f.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToBank, PayoutID: "po-d",
				BankAccount: &domain.BankAccount{Bank: "KB", Number: c.to, Holder: "보낸이"}}); err != nil {
				t.Fatal(err)
			}
			if _, sent := f.bank.Result("po-d"); sent || f.bank.Requests() != 0 {
				t.Fatal("the command sent the refund itself; the reactor sends it")
			}
			f.react(t, f.m.ReactToMoney, domain.AggregateDeposit, rec.DepositID)
			f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-d")
			p := f.payout(t, "po-d")
			if p.Status != c.status || p.PayFrom != c.payFrom || p.Source != domain.PayoutFromDeposit || p.SourceID != rec.DepositID || p.Amount != 3000 {
				t.Fatalf("payout %+v", p)
			}
			if r, ok := f.bank.Result("po-d"); !ok || r.Status != firmbanking.Status(c.status) {
				t.Fatalf("provider's result %+v (%v), want %s", r, ok, c.status)
			}
			d, err := f.Deposits.Get(ctx, domain.DepositID(rec.DepositID))
			if err != nil || d.Unresolved() != c.orphan {
				t.Fatalf("deposit %+v %v; unresolved should be %v", d, err, c.orphan)
			}
		})
	}
}

// TestWithoutAProviderPayoutsAreNotSentButTheirMoneyGoesBack: managers
// without a provider send nothing (SendPayouts is an error: the engine runs
// no payouts part there), and still return the money of a payout failed by
// other means (an operator's resolve).
func TestWithoutAProviderPayoutsAreNotSentButTheirMoneyGoesBack(t *testing.T) {
	f := newFixture(t, options{noProvider: true})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 100, "po-3", "333"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	commits := f.commits(t, domain.AggregatePayout, "po-3")
	if err := f.m.SendPayouts(context.Background(), commits[0]); err == nil {
		t.Fatal("SendPayouts without a provider: no error")
	}
	if p := f.payout(t, "po-3"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want requested", p)
	}
	f.assertBalance(t, "u", 900)
	if _, err := f.Payouts.RecordResult(context.Background(), commands.Meta{}, "po-3", domain.PayoutFailed{PayoutID: "po-3", Reason: "by hand", FailedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	commits = f.commits(t, domain.AggregatePayout, "po-3")
	if err := f.m.ReturnFailedPayouts(context.Background(), commits[len(commits)-1]); err != nil {
		t.Fatal(err)
	}
	f.assertBalance(t, "u", 1000)
}

// TestPendingPayoutWaitsAndIsNeverDeadLettered: a payout the provider keeps
// pending longer than SettleTimeout is a wait, not a failure: on a real
// reactor loop that dead-letters at the first failure, the commit comes back
// again and again, nothing is dead-lettered or logged as a failure, and the
// payout settles once the provider has settled it.
func TestPendingPayoutWaitsAndIsNeverDeadLettered(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	f := newFixture(t, options{
		jetstream: true,
		bank:      firmbanking.FakeOptions{SettleAfter: time.Hour}, // on the fake's clock
		cfg:       process.Config{SettleTimeout: time.Second, PendingRetry: 50 * time.Millisecond},
		log:       zerolog.New(logs),
	})
	money := f.moneyReactor(t, 1)
	loop := f.payoutsReactor(t, 1, 1)
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 600, "po-p", "111"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the pending payout waited twice (or failed)", func() bool {
		st := loop.Stats()
		return st.Deferred >= 2 || st.Retried > 0 || st.DeadLettered > 0
	})
	if st := loop.Stats(); st.DeadLettered != 0 || st.Retried != 0 {
		t.Fatalf("reactor stats %+v: a wait was counted as a failure", st)
	}
	if p := f.payout(t, "po-p"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want requested", p)
	}
	if r, ok := f.bank.Result("po-p"); !ok || r.Status != firmbanking.StatusPending {
		t.Fatalf("provider's result %+v (%v), want pending", r, ok)
	}

	f.bank.Advance(time.Hour) // the bank settles it
	testenv.Eventually(t, 30*time.Second, "payout settled", func() bool {
		return f.payout(t, "po-p").Status == domain.PayoutSettledStatus
	})
	if p := f.payout(t, "po-p"); p.Fee != 500 {
		t.Fatalf("payout %+v", p)
	}
	if st := loop.Stats(); st.DeadLettered != 0 || st.Retried != 0 {
		t.Fatalf("reactor stats %+v", st)
	}
	if st := money.Stats(); st.DeadLettered != 0 || st.Retried != 0 || st.Deferred != 0 {
		t.Fatalf("money reactor stats %+v: it waited on a payout", st)
	}
	if n, err := f.dead.Count(context.Background()); err != nil || len(n) != 0 {
		t.Fatalf("dead letters %v, %v", n, err)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"info","payout_id":"po-p"`) || !strings.Contains(out, "still pending") {
		t.Fatalf("the wait is not logged at info:\n%s", out)
	}
	if strings.Contains(out, `"level":"warn"`) || strings.Contains(out, `"level":"error"`) {
		t.Fatalf("a wait was logged as a failure:\n%s", out)
	}
}

// TestRefundToBankWithoutAnAccountIsDeadLetteredAtOnce: a resolution to a
// refund to the bank that names no account can never be paid: on a real
// reactor loop it is dead-lettered at the first attempt, as permanent.
func TestRefundToBankWithoutAnAccountIsDeadLetteredAtOnce(t *testing.T) {
	f := newFixture(t, options{jetstream: true})
	loop := f.moneyReactor(t, 20)
	ctx := context.Background()
	resolved := domain.DepositResolved{DepositID: "d-1", Action: domain.ResolveRefundToBank, Amount: 3000, PayoutID: "po-x", ResolvedAt: time.Now().UTC()}
	typ, version, data, err := f.codec.Encode(resolved)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.es.Append(ctx, eventstore.Ref{Type: domain.AggregateDeposit, ID: "d-1"}, 0, 0, "c-1",
		[]eventstore.Envelope{{EventID: "e-1", EventType: typ, SchemaVersion: version, OccurredAt: time.Now(), Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return loop.Stats().DeadLettered == 1 })
	letters, _, err := f.dead.List(ctx, worker.ListOptions{Part: "react-money"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
	if dl := letters[0]; !dl.Permanent || dl.Attempts != 1 || dl.Seq != uint64(c.Seq) || !strings.Contains(dl.Error, "without a bank account") {
		t.Fatalf("dead letter %+v", dl)
	}
	if st := loop.Stats(); st.Retried != 0 {
		t.Fatalf("reactor stats %+v: retried before dead-lettering", st)
	}
	if _, sent := f.bank.Result("po-x"); sent {
		t.Fatal("a refund without an account reached the provider")
	}
}

// TestEventTypeFromANewerVersionWaits: an old instance during a rolling
// upgrade meets an event type it does not know; it waits for an instance
// that knows it instead of failing (and dead-lettering) the commit.
func TestEventTypeFromANewerVersionWaits(t *testing.T) {
	f := newFixture(t, options{cfg: process.Config{UnknownEventRetry: 9 * time.Second}})
	c := eventstore.Commit{AggregateType: domain.AggregateWallet, AggregateID: "u", Seq: 7, Events: []eventstore.Envelope{
		{EventID: "e-1", EventType: "wallet.frozen", SchemaVersion: 1, Data: []byte(`{"user_id":"u"}`)},
	}}
	wait(t, f.m.ReactToMoney(context.Background(), c), 9*time.Second)
	c.AggregateType = domain.AggregateOrder
	wait(t, f.m.ReactToOrder(context.Background(), c), 9*time.Second)
	c.AggregateType = domain.AggregatePayout
	wait(t, f.m.ReactToPayout(context.Background(), c), 9*time.Second)
	// A known type with a payload that does not decode is a failure.
	c.Events[0].EventType, c.Events[0].Data = "wallet.debited", []byte(`{"amount":"many"}`)
	err := f.m.ReactToMoney(context.Background(), c)
	if _, ok := errors.AsType[*worker.RetryAfterError](err); err == nil || ok {
		t.Fatalf("undecodable payload of a known type: %v, want a failure", err)
	}
}

// TestReactToOrderSettlesARefundTheCommandDidNot: an order commit with a
// refund whose command died before crediting the wallet: the reactor
// credits it, once.
func TestReactToOrderSettlesARefundTheCommandDidNot(t *testing.T) {
	f := newFixture(t, options{})
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
	f := newFixture(t, options{})
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
	_, err := process.New(process.Config{PendingRetry: -time.Second})
	for _, want := range []string{"codec", "handlers", "retry delays"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v, does not mention %q", err, want)
		}
	}
}

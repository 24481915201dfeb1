package process_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/process"
	"github.com/bankbook/bankbook/worker"
)

// refused is an account number the provider refuses outright (400).
const refused = "777-777"

// appendEvent writes ev as the first commit of ref, as a command (or an
// older version of one) would have.
func (f *fixture) appendEvent(t testing.TB, ref eventstore.Ref, ev domain.Event) eventstore.Commit {
	t.Helper()
	typ, version, data, err := f.codec.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.es.Append(context.Background(), ref, 0, 0, "c-"+ref.ID,
		[]eventstore.Envelope{{EventID: "e-" + ref.ID, EventType: typ, SchemaVersion: version, OccurredAt: time.Now(), Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefusedPayoutFailsAndReturnsTheMoneyOnce: given a payout the provider
// refuses for good — a 400 for its account, or a transfer the client finds
// invalid before sending — when the payouts reactor sees its commits
// (twice), then it is recorded as failed once, with a "refused" reason, the
// money is back at its source once, and nothing was sent.
func TestRefusedPayoutFailsAndReturnsTheMoneyOnce(t *testing.T) {
	t.Run("withdrawal to an account the provider refuses", func(t *testing.T) {
		f := newFixture(t, options{bank: firmbanking.FakeOptions{RefuseAccounts: []string{refused}}})
		f.credit(t, "u", 1000)
		if err := f.withdraw("u", 700, "po-r", refused); err != nil {
			t.Fatal(err)
		}
		f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
		f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-r")
		p := f.payout(t, "po-r")
		if p.Status != domain.PayoutFailedStatus || !strings.HasPrefix(p.Reason, "refused: ") || !strings.Contains(p.Reason, "invalid_account") {
			t.Fatalf("payout %+v, want failed as refused", p)
		}
		if n := len(f.commits(t, domain.AggregatePayout, "po-r")); n != 2 {
			t.Fatalf("%d payout commits, want requested and failed", n)
		}
		// The refused send and the status that shows nothing accepted,
		// then RefusalLag (20 ms) later both again; or only the first two
		// when the machine took longer than RefusalLag between the send
		// and its status (a loaded one). A refusal is not asked again
		// after that.
		if n := f.bank.Requests(); n != 4 && n != 2 {
			t.Fatalf("%d provider requests, want 4 (or 2 on a slow machine)", n)
		}
		if sent := f.bank.Sent(); len(sent) != 0 {
			t.Fatalf("sent %+v", sent)
		}
		f.assertBalance(t, "u", 1000)
	})
	t.Run("transfer invalid before sending", func(t *testing.T) {
		// A payout an older version accepted: a control character in the
		// holder, which no provider takes.
		f := newFixture(t, options{})
		f.credit(t, "u", 1000)
		f.appendEvent(t, eventstore.Ref{Type: domain.AggregatePayout, ID: "po-i"}, domain.PayoutRequested{
			PayoutID: "po-i", Amount: 700, To: domain.BankAccount{Bank: "KB", Number: "1-2", Holder: "김\a민수"}, PayFrom: collect.Number,
			Source: domain.PayoutFromWallet, SourceID: "u", FromAccount: domain.AccountWallet("u"), RequestedAt: time.Now().UTC(),
		})
		f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-i")
		p := f.payout(t, "po-i")
		if p.Status != domain.PayoutFailedStatus || !strings.HasPrefix(p.Reason, "refused: invalid transfer") {
			t.Fatalf("payout %+v, want failed as refused", p)
		}
		// The statuses that show nothing was ever accepted: two, RefusalLag
		// apart, or one when the machine took longer than RefusalLag
		// before asking.
		if n := f.bank.Requests(); n != 2 && n != 1 {
			t.Fatalf("%d provider requests, want 2 (or 1 on a slow machine)", n)
		}
		f.assertBalance(t, "u", 1700) // the reversal, once
	})
	t.Run("refund to the bank the provider refuses", func(t *testing.T) {
		f := newFixture(t, options{bank: firmbanking.FakeOptions{RefuseAccounts: []string{refused}}})
		ctx := context.Background()
		rec, err := f.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: "모름", Amount: 3000, DepositedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToBank, PayoutID: "po-d",
			BankAccount: &domain.BankAccount{Bank: "KB", Number: refused, Holder: "보낸이"}}); err != nil {
			t.Fatal(err)
		}
		f.react(t, f.m.ReactToMoney, domain.AggregateDeposit, rec.DepositID)
		f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-d")
		if p := f.payout(t, "po-d"); p.Status != domain.PayoutFailedStatus || !strings.HasPrefix(p.Reason, "refused: ") {
			t.Fatalf("payout %+v, want failed as refused", p)
		}
		d, err := f.Deposits.Get(ctx, domain.DepositID(rec.DepositID))
		if err != nil || !d.Unresolved() {
			t.Fatalf("deposit %+v %v, want back in the orphan queue", d, err)
		}
		if n := len(f.commits(t, domain.AggregateDeposit, rec.DepositID)); n != 3 {
			t.Fatalf("%d deposit commits, want recorded, resolved and reopened once", n)
		}
	})
}

// TestRefusedRepeatOfAnAcceptedPayoutSettles: given a payout whose first
// send the provider accepted (its answer lost), when its repeat is refused
// (the account is refused since) and the provider's status does not show
// the transfer yet, then the payout waits for the status rather than
// failing: it settles, and its money is not returned.
func TestRefusedRepeatOfAnAcceptedPayoutSettles(t *testing.T) {
	const lag = 2 * time.Second // status 404 this long after acceptance
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + time.Second}})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-a", "123-456"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	p := f.payout(t, "po-a")
	// The earlier attempt: accepted, its answer never read.
	if _, err := f.provider.Send(context.Background(), firmbanking.Transfer{ID: string(p.ID), Amount: p.Amount, To: p.To, Memo: "bankbook"}); err != nil {
		t.Fatal(err)
	}
	f.bank.RefuseAccount("123-456")
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-a")
	if p := f.payout(t, "po-a"); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want settled: the provider accepted it", p)
	}
	if sent := f.bank.Sent(); len(sent) != 1 {
		t.Fatalf("sent %+v, want the one transfer", sent)
	}
	f.assertBalance(t, "u", 300) // not returned
}

// scriptedProvider refuses the first send, accepts the second at the
// provider but loses its answer, refuses the third, and passes the rest
// through: what a provider does when a refusal comes and goes around a lost
// answer.
type scriptedProvider struct {
	firmbanking.Provider
	sends atomic.Int32
}

func (p *scriptedProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	switch p.sends.Add(1) {
	case 1, 3:
		return firmbanking.Result{}, fmt.Errorf("%w: http 400: invalid_account", firmbanking.ErrRefused)
	case 2:
		if _, err := p.Provider.Send(ctx, t); err != nil {
			return firmbanking.Result{}, err
		}
		return firmbanking.Result{}, fmt.Errorf("%w: http 500, though the transfer was accepted", firmbanking.ErrUnavailable)
	}
	return p.Provider.Send(ctx, t)
}

// TestRefusalAfterALostAnswerWaitsAgain: given a payout refused once
// (its wait begun), whose next send the provider accepted but answered
// with an error, when the send after that is refused and the provider's
// status does not show the transfer yet (its status lags), then the
// payout waits RefusalLag again from the send whose outcome was unknown,
// rather than fail at the end of the first wait: it settles, and its money
// is not returned.
func TestRefusalAfterALostAnswerWaitsAgain(t *testing.T) {
	const lag = time.Second // status 404 this long after acceptance
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider { return &scriptedProvider{Provider: p} }})
	c := f.requestPayout(t, "po-l", "123-456")
	// Refused, unknown: the wait begins.
	time.Sleep(waitsAtLeast(t, f.m, c, lag, "the first refusal"))
	// Accepted, its answer lost.
	if err := f.m.ReactToPayout(context.Background(), c); err == nil || errors.Is(err, firmbanking.ErrRefused) {
		t.Fatalf("the send whose answer was lost: %v, want an error of unknown outcome", err)
	}
	// Refused again while the status does not show it yet: a wait, not a failure.
	waitsAtLeast(t, f.m, c, lag, "the refusal after the lost answer")
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-l")
	if p := f.payout(t, "po-l"); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want settled: the provider accepted it", p)
	}
	if sent := f.bank.Sent(); len(sent) != 1 {
		t.Fatalf("sent %+v, want the one transfer", sent)
	}
	f.assertBalance(t, "u", 300) // not returned
}

// requestPayout credits user u 1,000 and has it withdraw 700 to account
// to as payout id, and returns the payout's requesting commit.
func (f *fixture) requestPayout(t *testing.T, id, to string) eventstore.Commit {
	t.Helper()
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, id, to); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	return f.commits(t, domain.AggregatePayout, id)[0]
}

// waitsAtLeast has m handle commit c and requires a wait (worker.RetryAfter)
// of at least least, which it returns.
func waitsAtLeast(t *testing.T, m *process.Managers, c eventstore.Commit, least time.Duration, what string) time.Duration {
	t.Helper()
	err := m.ReactToPayout(context.Background(), c)
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	if !ok || ra.Err != nil || ra.Delay < least {
		t.Fatalf("%s: %v, want a wait of at least %v", what, err, least)
	}
	return ra.Delay
}

// TestRefusalWaitsForAnotherInstancesLostAnswer: as
// TestRefusalAfterALostAnswerWaitsAgain, but the send whose answer was lost
// is another instance's: instance A saw the first refusal; B's send is
// accepted and answered with an error; A's next send is refused while the
// provider's status does not show the transfer yet, after A's own wait has
// run out. A waits again (B noted its send for every instance), rather
// than fail the payout: it settles, and its money is not returned.
func TestRefusalWaitsForAnotherInstancesLostAnswer(t *testing.T) {
	const lag = time.Second
	f := newFixture(t, options{jetstream: true, bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider { return &scriptedProvider{Provider: p} }})
	b := f.instance(t, func(*process.Config) {}) // instance B: its own memory, the same stores and provider
	c := f.requestPayout(t, "po-b", "123-456")
	time.Sleep(waitsAtLeast(t, f.m, c, lag, "A: the first refusal"))
	if err := b.ReactToPayout(context.Background(), c); err == nil || errors.Is(err, firmbanking.ErrRefused) {
		t.Fatalf("B: the send whose answer was lost: %v, want an error of unknown outcome", err)
	}
	waitsAtLeast(t, f.m, c, lag, "A: the refusal after B's lost answer")
	f.settlesKeepingTheMoneyOut(t, "po-b", "the provider accepted it")
}

// settlesKeepingTheMoneyOut delivers payout id's commits to the managers
// until they settle it, and checks that it settled (why: what made the
// provider pay it) with the money not returned to the buyer's wallet.
func (f *fixture) settlesKeepingTheMoneyOut(t *testing.T, id, why string) {
	t.Helper()
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, id)
	if p := f.payout(t, id); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want settled: %s", p, why)
	}
	f.assertBalance(t, "u", 300) // not returned
}

// throttledProvider answers every Send with the provider's request to come
// back in wait.
type throttledProvider struct {
	firmbanking.Provider
	wait time.Duration
}

func (p throttledProvider) Send(context.Context, firmbanking.Transfer) (firmbanking.Result, error) {
	// As the client reports a Send throttled on every attempt.
	return firmbanking.Result{}, fmt.Errorf("%w: %w", firmbanking.ErrNotTaken, &firmbanking.ThrottledError{Wait: p.wait, Err: firmbanking.ErrUnavailable})
}

// refusingProvider refuses every send while refuse is set, and counts
// the sends.
type refusingProvider struct {
	firmbanking.Provider
	refuse atomic.Bool
	sends  atomic.Int32
}

func (p *refusingProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	p.sends.Add(1)
	if p.refuse.Load() {
		return firmbanking.Result{}, fmt.Errorf("%w: http 400: invalid_account", firmbanking.ErrRefused)
	}
	return p.Provider.Send(ctx, t)
}

// killedProvider has the provider take every send, and the instance die
// (a panic) before it reads the answer.
type killedProvider struct{ firmbanking.Provider }

func (p killedProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	if _, err := p.Provider.Send(ctx, t); err != nil {
		panic(err)
	}
	panic("killed after the provider took the send")
}

// TestRefusalWaitsForASendWhoseInstanceDied: as
// TestRefusalWaitsForAnotherInstancesLostAnswer, but instance B dies right
// after the provider took its send, noting nothing after it. A's next
// refusal, while the provider's status does not show the transfer yet,
// waits (B noted the send before making it) rather than fail the payout:
// it settles, and its money is not returned.
func TestRefusalWaitsForASendWhoseInstanceDied(t *testing.T) {
	const lag = time.Second
	var a *refusingProvider
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider {
			a = &refusingProvider{Provider: p}
			a.refuse.Store(true)
			return a
		}})
	b := f.instance(t, func(c *process.Config) { c.Provider = killedProvider{f.provider} })
	c := f.requestPayout(t, "po-k", "123-456")
	time.Sleep(waitsAtLeast(t, f.m, c, lag, "A: the first refusal"))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("B was not killed")
			}
		}()
		_ = b.ReactToPayout(context.Background(), c)
	}()
	waitsAtLeast(t, f.m, c, lag, "A: the refusal after B died")
	f.settlesKeepingTheMoneyOut(t, "po-k", "the provider took B's send")
}

// lateProvider takes a send after, into the call (a retry after a 503, a
// slow way to the provider), and its answer is lost.
type lateProvider struct {
	firmbanking.Provider
	after time.Duration
}

func (p lateProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	time.Sleep(p.after)
	if _, err := p.Provider.Send(ctx, t); err != nil {
		return firmbanking.Result{}, err
	}
	return firmbanking.Result{}, fmt.Errorf("%w: the answer was lost", firmbanking.ErrUnavailable)
}

// TestRefusalWaitsForASendTakenLateInItsAttempt: instance B's send is
// taken by the provider 800ms after B noted it (within its SettleTimeout
// of 3s), its answer lost. A's refusal a RefusalLag after B's note, but
// before the provider shows B's transfer, waits: a send counts until its
// SettleTimeout and SendArrival after its note, not from the note. The
// payout settles; its money is not returned.
func TestRefusalWaitsForASendTakenLateInItsAttempt(t *testing.T) {
	const lag = time.Second
	var a *refusingProvider
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag + 500*time.Millisecond},
		cfg: process.Config{RefusalLag: lag + 500*time.Millisecond, SettleTimeout: 3 * time.Second, SendArrival: 100 * time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider {
			a = &refusingProvider{Provider: p}
			a.refuse.Store(true)
			return a
		}})
	b := f.instance(t, func(c *process.Config) { c.Provider = lateProvider{f.provider, 800 * time.Millisecond} })
	c := f.requestPayout(t, "po-late", "123-456")
	time.Sleep(waitsAtLeast(t, f.m, c, lag, "A: the first refusal"))
	noted := time.Now()
	if err := b.ReactToPayout(context.Background(), c); err == nil || firmbanking.NotTaken(err) {
		t.Fatalf("B: %v, want the lost answer", err)
	}
	// The provider took B's send about 800ms after its note, and shows it
	// 1.5s later: A refuses before that, just over a RefusalLag after the
	// note.
	time.Sleep(time.Until(noted.Add(lag + 600*time.Millisecond)))
	if p := f.payout(t, "po-late"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v before A's refusal, want requested", p)
	}
	waitsAtLeast(t, f.m, c, 100*time.Millisecond, "A: the refusal after B's late send")
	f.settlesKeepingTheMoneyOut(t, "po-late", "the provider took B's send")
}

// slowNotes writes each send's note after a delay.
type slowNotes struct {
	process.SendLog
	delay time.Duration
}

func (s slowNotes) Begin(ctx context.Context, id domain.PayoutID, within time.Duration) (uint64, error) {
	time.Sleep(s.delay)
	return s.SendLog.Begin(ctx, id, within)
}

// TestASendIsBoundFromBeforeItsNote: a send's deadline is set before its
// note is written, so the bound the note states covers every attempt. A
// note that takes longer to write than the send's SettleTimeout leaves no
// time to send: the provider gets nothing, and the payout waits.
func TestASendIsBoundFromBeforeItsNote(t *testing.T) {
	f := newFixture(t, options{cfg: process.Config{SettleTimeout: 300 * time.Millisecond}})
	m := f.instance(t, func(c *process.Config) { c.Sends = slowNotes{c.Sends, 500 * time.Millisecond} })
	c := f.requestPayout(t, "po-slow", "123-456")
	if err := m.ReactToPayout(context.Background(), c); err == nil {
		t.Fatal("a send with no time left after its note: no error")
	}
	if sent := f.bank.Sent(); len(sent) != 0 {
		t.Fatalf("the provider got %v after the send's deadline", sent)
	}
	if p := f.payout(t, "po-slow"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want requested", p)
	}
}

// TestSendsTheProviderDidNotTakeDoNotDelayARefusal: a send throttled in
// between a payout's refusals does not start its wait again: the provider
// did not take it. Refused a wait after the first refusal, it fails.
func TestSendsTheProviderDidNotTakeDoNotDelayARefusal(t *testing.T) {
	const lag = 500 * time.Millisecond
	var throttle atomic.Bool
	f := newFixture(t, options{bank: firmbanking.FakeOptions{RefuseAccounts: []string{refused}}, cfg: process.Config{RefusalLag: lag},
		provider: func(p firmbanking.Provider) firmbanking.Provider {
			return switchProvider{p, throttledProvider{p, time.Second}, &throttle}
		}})
	c := f.requestPayout(t, "po-n", refused)
	time.Sleep(waitsAtLeast(t, f.m, c, lag/2, "the first refusal"))
	throttle.Store(true)
	wait(t, f.m.ReactToPayout(context.Background(), c), time.Second)
	throttle.Store(false)
	if err := f.m.ReactToPayout(context.Background(), c); err != nil {
		t.Fatalf("the refusal a wait after the first: %v, want the payout failed", err)
	}
	if p := f.payout(t, "po-n"); p.Status != domain.PayoutFailedStatus {
		t.Fatalf("payout %+v, want failed", p)
	}
}

// switchProvider is on while on is set, else off.
type switchProvider struct {
	off, on firmbanking.Provider
	set     *atomic.Bool
}

func (p switchProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	if p.set.Load() {
		return p.on.Send(ctx, t)
	}
	return p.off.Send(ctx, t)
}

func (p switchProvider) Status(ctx context.Context, id string) (firmbanking.Result, error) {
	return p.off.Status(ctx, id)
}

// skewedSends reads the notes of the sends as an instance whose clock is
// ahead of the NATS server's by ahead would see them if it timed them
// itself.
type skewedSends struct {
	process.SendLog
	ahead time.Duration
}

func (s skewedSends) Uncertainty(ctx context.Context, id domain.PayoutID) (worker.Uncertainty, error) {
	u, err := s.SendLog.Uncertainty(ctx, id)
	for _, at := range []*time.Time{&u.First, &u.LastOpen, &u.Now} {
		if !at.IsZero() {
			*at = at.Add(-s.ahead)
		}
	}
	return u, err
}

// TestRefusalWaitIsTimedByOneClock: as
// TestRefusalWaitsForAnotherInstancesLostAnswer, with A's clock 2s ahead
// of the server's (more than the lag): the wait is timed by the server's
// clock alone, so A still waits for B's send.
func TestRefusalWaitIsTimedByOneClock(t *testing.T) {
	const lag = time.Second
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider { return &scriptedProvider{Provider: p} }})
	a := f.instance(t, func(c *process.Config) { c.Sends = skewedSends{c.Sends, 2 * time.Second} })
	c := f.requestPayout(t, "po-s", "123-456")
	time.Sleep(waitsAtLeast(t, a, c, lag, "A: the first refusal"))
	if err := f.m.ReactToPayout(context.Background(), c); err == nil || firmbanking.NotTaken(err) {
		t.Fatalf("B: the send whose answer was lost: %v, want an error of unknown outcome", err)
	}
	waitsAtLeast(t, a, c, lag, "A: the refusal after B's lost answer")
	f.settlesKeepingTheMoneyOut(t, "po-s", "the provider accepted it")
}

// TestThrottledPayoutWaitsWhatTheProviderAsked: a provider's Retry-After
// longer than the payout's settle timeout is a wait of that length, not a
// failure that counts towards a dead letter.
func TestThrottledPayoutWaitsWhatTheProviderAsked(t *testing.T) {
	f := newFixture(t, options{provider: func(p firmbanking.Provider) firmbanking.Provider { return throttledProvider{p, 5 * time.Minute} }})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-t", "123-456"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	c := f.commits(t, domain.AggregatePayout, "po-t")
	wait(t, f.m.ReactToPayout(context.Background(), c[0]), 5*time.Minute)
	if p := f.payout(t, "po-t"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want still requested", p)
	}
}

// TestRefusedPayoutsAreNeverRetriedNorBlockOthers: on real reactor loops
// that dead-letter at the first failure, payouts the provider refuses are
// done after one wait of RefusalLag (which holds no handler: a payout
// requested after them settles meanwhile) — failed, money returned, neither
// retried as a failure nor dead-lettered.
func TestRefusedPayoutsAreNeverRetriedNorBlockOthers(t *testing.T) {
	f := newFixture(t, options{jetstream: true, bank: firmbanking.FakeOptions{RefuseAccounts: []string{refused}}, cfg: process.Config{RefusalLag: 5 * time.Second}})
	money := f.moneyReactor(t, 1)
	payouts := f.payoutsReactor(t, 1, 1)
	f.credit(t, "u", 10000)
	ids := []string{"po-1", "po-2", "po-3", "po-4", "po-5"}
	for _, id := range ids {
		if err := f.withdraw("u", 1000, id, refused); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.withdraw("u", 2000, "po-ok", "111"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the good payout settled", func() bool {
		return f.payout(t, "po-ok").Status == domain.PayoutSettledStatus
	})
	// On one handler at a time, the good payout was sent while the refused
	// ones waited their RefusalLag: none of them was failed yet.
	for _, id := range ids {
		if p := f.payout(t, id); p.Status != domain.PayoutRequestedStatus {
			t.Fatalf("payout %s %s before the good one settled: a refusal's wait held the handler", id, p.Status)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the refused payouts failed", func() bool {
		for _, id := range ids {
			if f.payout(t, id).Status != domain.PayoutFailedStatus {
				return false
			}
		}
		return true
	})
	testenv.Eventually(t, 10*time.Second, "every payout commit handled", func() bool {
		return payouts.Stats().Processed == uint64(2*(len(ids)+1)) // requested, then the result
	})
	for name, l := range map[string]*worker.Loop{"react-money": money, "payouts": payouts} {
		st := l.Stats()
		if st.Retried != 0 || st.DeadLettered != 0 {
			t.Fatalf("%s stats %+v: a refusal was retried as a failure or dead-lettered", name, st)
		}
		if waits := map[string]uint64{"react-money": 0, "payouts": uint64(len(ids))}[name]; st.Deferred > waits {
			t.Fatalf("%s stats %+v: more than %d waits (one RefusalLag per refused payout)", name, st, waits)
		}
	}
	if n, err := f.dead.Count(context.Background()); err != nil || len(n) != 0 {
		t.Fatalf("dead letters %v, %v", n, err)
	}
	if sent := f.bank.Sent(); len(sent) != 1 || sent[0].ID != "po-ok" {
		t.Fatalf("sent %+v, want po-ok only", sent)
	}
	f.assertBalance(t, "u", 8000)
}

// TestReusedPayoutIDIsDeadLetteredAtOnce: the provider already holds a
// different transfer under the payout's ID, which may have been sent: the
// payout is neither failed nor its money returned; the commit goes to an
// operator (worker.Permanent) at once.
func TestReusedPayoutIDIsDeadLetteredAtOnce(t *testing.T) {
	f := newFixture(t, options{})
	f.credit(t, "u", 1000)
	if _, err := f.provider.Send(context.Background(), firmbanking.Transfer{ID: "po-m", Amount: 1, To: domain.BankAccount{Bank: "KB", Number: "9", Holder: "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.withdraw("u", 700, "po-m", "111"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	err := f.m.ReactToPayout(context.Background(), f.commits(t, domain.AggregatePayout, "po-m")[0])
	if _, ok := errors.AsType[*worker.PermanentError](err); !ok || !errors.Is(err, firmbanking.ErrIdempotencyMismatch) {
		t.Fatalf("error %v, want worker.Permanent of an idempotency mismatch", err)
	}
	if p := f.payout(t, "po-m"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want still requested", p)
	}
	f.assertBalance(t, "u", 300)
}

// TestTransientProviderFailuresAreRetried: a provider that is down is a
// failure (retried, and in the end dead-lettered), never a refusal: the
// payout stays requested and its money stays out.
func TestTransientProviderFailuresAreRetried(t *testing.T) {
	f := newFixture(t, options{cfg: process.Config{SettleTimeout: 2 * time.Second}})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-t", "111"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	f.bank.FailNext(1000)
	err := f.m.ReactToPayout(context.Background(), f.commits(t, domain.AggregatePayout, "po-t")[0])
	_, wait := errors.AsType[*worker.RetryAfterError](err)
	_, permanent := errors.AsType[*worker.PermanentError](err)
	if err == nil || wait || permanent || errors.Is(err, firmbanking.ErrRefused) {
		t.Fatalf("error %v, want a plain failure", err)
	}
	if p := f.payout(t, "po-t"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want still requested", p)
	}
	f.bank.FailNext(0)
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-t")
	if p := f.payout(t, "po-t"); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want settled once the provider is back", p)
	}
}

// refusingNow refuses every send, as a provider does for an account that
// has changed since, or a client whose rules have tightened since.
type refusingNow struct{ firmbanking.Provider }

func (refusingNow) Send(context.Context, firmbanking.Transfer) (firmbanking.Result, error) {
	return firmbanking.Result{}, fmt.Errorf("%w: the account no longer takes transfers", firmbanking.ErrRefused)
}

// TestRefusalOfATransferAcceptedEarlierFollowsTheProvider: given a payout an
// earlier attempt sent (the provider holds it), when a later attempt is
// refused, then the payout follows the provider's result — settled here —
// and no money is returned: failing it would pay the money out twice.
func TestRefusalOfATransferAcceptedEarlierFollowsTheProvider(t *testing.T) {
	f := newFixture(t, options{provider: func(p firmbanking.Provider) firmbanking.Provider { return refusingNow{p} }})
	f.credit(t, "u", 1000)
	to := domain.BankAccount{Bank: "KB", Number: "110-1", Holder: "김민수"}
	if _, err := f.Wallets.Withdraw(context.Background(), commands.Meta{}, api.WithdrawRequest{UserID: "u", Amount: 700, BankAccount: to, PayoutID: "po-e"}); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	// The earlier attempt, which reached the provider.
	if _, err := f.provider.Send(context.Background(), firmbanking.Transfer{ID: "po-e", Amount: 700, To: to, Memo: "bankbook"}); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-e")
	if p := f.payout(t, "po-e"); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want settled as the provider says", p)
	}
	f.assertBalance(t, "u", 300)
}

// resolvingProvider records an operator's failure of the payout while the
// send is under way, then sends it.
type resolvingProvider struct {
	firmbanking.Provider
	resolve func()
}

func (p resolvingProvider) Send(ctx context.Context, t firmbanking.Transfer) (firmbanking.Result, error) {
	p.resolve()
	return p.Provider.Send(ctx, t)
}

// TestProviderResultContradictingTheRecordedOneIsDeadLettered: an operator
// recorded a payout failed (payout.resolve) while its send was under way,
// and the provider then settled it. The recorded result stands, and the
// payouts part gives up on the commit as a permanent failure naming the
// contradiction, so that it is dead-lettered for an operator to mend.
func TestProviderResultContradictingTheRecordedOneIsDeadLettered(t *testing.T) {
	var f *fixture
	f = newFixture(t, options{provider: func(p firmbanking.Provider) firmbanking.Provider {
		return resolvingProvider{p, func() {
			if _, err := f.Payouts.Resolve(context.Background(), commands.Meta{Actor: "operator"},
				api.ResolvePayoutRequest{PayoutID: "po-c", Outcome: "failed", Reason: "provider said unknown"}); err != nil {
				t.Error(err)
			}
		}}
	}})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-c", "123-456"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	c := f.commits(t, domain.AggregatePayout, "po-c")
	err := f.m.ReactToPayout(context.Background(), c[0])
	if _, ok := errors.AsType[*worker.PermanentError](err); !ok || !strings.Contains(err.Error(), "the provider settled it, but it was recorded failed") {
		t.Fatalf("error %v, want a permanent failure naming the contradiction", err)
	}
	if p := f.payout(t, "po-c"); p.Status != domain.PayoutFailedStatus {
		t.Fatalf("payout %+v, want the operator's failure kept", p)
	}
	if sent := f.bank.Sent(); len(sent) != 1 {
		t.Fatalf("sent %+v: the provider did send it", sent)
	}
}

// readingThen runs then once, right after a reading of the notes, when
// armed.
type readingThen struct {
	process.SendLog
	armed *atomic.Bool
	then  func()
}

func (s readingThen) Uncertainty(ctx context.Context, id domain.PayoutID) (worker.Uncertainty, error) {
	u, err := s.SendLog.Uncertainty(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		s.then()
	}
	return u, err
}

// TestNoFailureIsDecidedOverASendNotedAfterItsReading: instance A, refused
// a RefusalLag after its first refusal, reads the notes and finds no send
// to wait for; right then instance B (the payout's commit delivered to it
// too) notes its send, the provider takes it, and B dies. A's failure is
// decided only if nothing was noted since its reading: A reads again and
// waits for B's send. The payout settles; its money is not returned.
func TestNoFailureIsDecidedOverASendNotedAfterItsReading(t *testing.T) {
	const lag = time.Second
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond},
		provider: func(p firmbanking.Provider) firmbanking.Provider {
			r := &refusingProvider{Provider: p}
			r.refuse.Store(true)
			return r
		}})
	b := f.instance(t, func(c *process.Config) { c.Provider = killedProvider{f.provider} })
	c := f.requestPayout(t, "po-race", "123-456")
	var armed, killed atomic.Bool
	a := f.instance(t, func(cfg *process.Config) {
		cfg.Sends = readingThen{cfg.Sends, &armed, func() {
			defer func() { killed.Store(recover() != nil) }()
			_ = b.ReactToPayout(context.Background(), c)
		}}
	})
	time.Sleep(waitsAtLeast(t, a, c, lag, "A: the first refusal"))
	armed.Store(true)
	waitsAtLeast(t, a, c, lag, "A: the refusal whose reading B's send came just after")
	if !killed.Load() || len(f.bank.Sent()) != 1 {
		t.Fatalf("B killed %v, sent %v: want B's send taken by the provider", killed.Load(), f.bank.Sent())
	}
	f.settlesKeepingTheMoneyOut(t, "po-race", "the provider took B's send")
}

// TestADecidedFailureWaitsForTheSendsMadeBeforeIt: a payout's failure is
// decided (an operator's forced resolve) after a send the provider may
// have taken: instance B's, taken just before B died. The decision stops
// every later send, not what the provider took: A, handed the payout
// again, asks the provider, waits while it does not show the transfer yet
// (its status lag), and records the settlement, not the decided failure
// (which would return money the provider paid out). Where a send was
// noted and never taken (its answer lost), the failure stands once that
// lag has passed, for the decision's reason.
func TestADecidedFailureWaitsForTheSendsMadeBeforeIt(t *testing.T) {
	const lag = time.Second
	f := newFixture(t, options{bank: firmbanking.FakeOptions{StatusLag: lag}, cfg: process.Config{RefusalLag: lag + 500*time.Millisecond}})
	b := f.instance(t, func(c *process.Config) { c.Provider = killedProvider{f.provider} })
	ctx := context.Background()
	const reason = "operator (forced): a guess"
	decide := func(id domain.PayoutID) {
		t.Helper()
		u, err := f.cfg.Sends.Uncertainty(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.cfg.Sends.Decide(ctx, id, u, reason); err != nil {
			t.Fatal(err)
		}
	}

	taken := f.requestPayout(t, "po-taken", "123-456")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("B was not killed")
			}
		}()
		_ = b.ReactToPayout(ctx, taken)
	}()
	decide("po-taken")
	waitsAtLeast(t, f.m, taken, lag/2, "a decided failure, B's send not shown by the provider yet")
	f.settlesKeepingTheMoneyOut(t, "po-taken", "the provider took B's send before the decision")

	f.credit(t, "v", 1000)
	if err := f.withdraw("v", 700, "po-lost", "123-456"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "v")
	lost := f.commits(t, domain.AggregatePayout, "po-lost")[0]
	if _, err := f.cfg.Sends.Begin(ctx, "po-lost", lag); err != nil {
		t.Fatal(err)
	}
	decide("po-lost")
	waitsAtLeast(t, f.m, lost, lag/2, "a decided failure, a send before it that may not show yet")
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-lost")
	if p := f.payout(t, "po-lost"); p.Status != domain.PayoutFailedStatus || p.Reason != reason {
		t.Fatalf("payout %+v, want failed for the decision's reason", p)
	}
	if sent := f.bank.Sent(); len(sent) != 1 || sent[0].ID != "po-taken" {
		t.Fatalf("the provider got %+v, want B's send alone", sent)
	}
	f.assertBalance(t, "v", 1000) // po-lost's 700 back
}

// TestNoSendAfterAnotherInstanceDecidedTheFailure: once an instance decided
// that a payout fails (and died before recording it), another instance
// handed the payout's commit sends nothing: it records the failure with
// the decision's reason, and the money goes back.
func TestNoSendAfterAnotherInstanceDecidedTheFailure(t *testing.T) {
	f := newFixture(t, options{})
	c := f.requestPayout(t, "po-d", "123-456")
	ctx := context.Background()
	u, err := f.cfg.Sends.Uncertainty(ctx, "po-d")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.cfg.Sends.Decide(ctx, "po-d", u, "refused: http 400: invalid_account"); err != nil {
		t.Fatal(err)
	}
	if err := f.m.ReactToPayout(ctx, c); err != nil {
		t.Fatal(err)
	}
	if n := f.bank.Requests(); n != 0 {
		t.Fatalf("%d provider requests after the decision, want none", n)
	}
	f.react(t, f.m.ReactToPayout, domain.AggregatePayout, "po-d")
	if p := f.payout(t, "po-d"); p.Status != domain.PayoutFailedStatus || p.Reason != "refused: http 400: invalid_account" {
		t.Fatalf("payout %+v, want failed for the decision's reason", p)
	}
	f.assertBalance(t, "u", 1000) // returned
}

// statusThrottledProvider takes sends, and answers every status check with
// the provider's request to come back in wait; it counts the checks.
type statusThrottledProvider struct {
	firmbanking.Provider
	wait   time.Duration
	checks atomic.Int32
}

func (p *statusThrottledProvider) Status(context.Context, string) (firmbanking.Result, error) {
	p.checks.Add(1)
	return firmbanking.Result{}, &firmbanking.ThrottledError{Wait: p.wait, Err: firmbanking.ErrUnavailable}
}

// TestPendingPayoutWaitsWhatAThrottledStatusAsked: a payout the provider
// accepted is still pending, and the provider throttles its status checks
// with a Retry-After longer than the settle timeout. It is asked once, not
// polled until the timeout, and the payout waits what it asked for.
func TestPendingPayoutWaitsWhatAThrottledStatusAsked(t *testing.T) {
	var prov *statusThrottledProvider
	f := newFixture(t, options{bank: firmbanking.FakeOptions{SettleAfter: time.Hour}, provider: func(p firmbanking.Provider) firmbanking.Provider {
		prov = &statusThrottledProvider{Provider: p, wait: 5 * time.Minute}
		return prov
	}})
	f.credit(t, "u", 1000)
	if err := f.withdraw("u", 700, "po-st", "123-456"); err != nil {
		t.Fatal(err)
	}
	f.react(t, f.m.ReactToMoney, domain.AggregateWallet, "u")
	c := f.commits(t, domain.AggregatePayout, "po-st")
	wait(t, f.m.ReactToPayout(context.Background(), c[0]), 5*time.Minute)
	if n := prov.checks.Load(); n != 1 {
		t.Fatalf("the provider was asked the status %d times after asking to wait 5m, want 1", n)
	}
	if p := f.payout(t, "po-st"); p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("payout %+v, want still requested", p)
	}
}

// statusProvider refuses every send, and answers the payout's status with
// res or err: a provider whose earlier attempt of the payout the status
// shows while its repeat is refused. sends, if not nil, counts the sends
// it is asked for.
type statusProvider struct {
	firmbanking.Provider
	res   firmbanking.Result
	err   error
	sends *atomic.Int32
}

func (p statusProvider) Send(context.Context, firmbanking.Transfer) (firmbanking.Result, error) {
	if p.sends != nil {
		p.sends.Add(1)
	}
	return firmbanking.Result{}, fmt.Errorf("%w: http 400: invalid_account", firmbanking.ErrRefused)
}

func (p statusProvider) Status(_ context.Context, id string) (firmbanking.Result, error) {
	r := p.res
	r.ID = id
	return r, p.err
}

// followEarlierAttempt runs, for each status the provider may show of an
// earlier attempt of payout id, the payouts part on the payout (after
// before, which may be nil) and checks that it follows that status:
// settled keeps the money out (and records the provider's fee), failed
// returns it for the provider's reason, and pending or a throttled status
// check waits as asked, the payout still requested and its money neither
// returned nor sent again. With noSends, the part must not ask the provider
// to send at all.
func followEarlierAttempt(t *testing.T, id string, noSends bool, before func(*testing.T, *fixture)) {
	t.Helper()
	tests := []struct {
		name        string
		res         firmbanking.Result
		err         error
		wantWait    time.Duration // 0: a result is recorded
		wantStatus  domain.PayoutStatus
		wantFee     int64
		wantBalance int64
	}{
		{name: "settled", res: firmbanking.Result{Status: firmbanking.StatusSettled, Fee: 300, ProviderRef: "fb-earlier"},
			wantStatus: domain.PayoutSettledStatus, wantFee: 300, wantBalance: 300},
		{name: "failed", res: firmbanking.Result{Status: firmbanking.StatusFailed, Reason: "account closed"},
			wantStatus: domain.PayoutFailedStatus, wantBalance: 1000},
		{name: "pending", res: firmbanking.Result{Status: firmbanking.StatusPending},
			wantWait: 7 * time.Minute, wantStatus: domain.PayoutRequestedStatus, wantBalance: 300},
		{name: "status check throttled", err: &firmbanking.ThrottledError{Wait: 11 * time.Minute, Err: firmbanking.ErrUnavailable},
			wantWait: 11 * time.Minute, wantStatus: domain.PayoutRequestedStatus, wantBalance: 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sends atomic.Int32
			f := newFixture(t, options{cfg: process.Config{PendingRetry: 7 * time.Minute},
				provider: func(p firmbanking.Provider) firmbanking.Provider {
					return statusProvider{Provider: p, res: tt.res, err: tt.err, sends: &sends}
				}})
			c := f.requestPayout(t, id, "123-456")
			if before != nil {
				before(t, f)
			}
			err := f.m.ReactToPayout(context.Background(), c)
			if tt.wantWait != 0 {
				wait(t, err, tt.wantWait)
			} else {
				if err != nil {
					t.Fatalf("react: %v", err)
				}
				f.react(t, f.m.ReactToPayout, domain.AggregatePayout, id)
			}
			if n := sends.Load(); noSends && n != 0 {
				t.Fatalf("%d sends, want none", n)
			}
			wantReason := ""
			if tt.wantStatus == domain.PayoutFailedStatus {
				wantReason = tt.res.Reason // the provider's
			}
			p := f.payout(t, id)
			if p.Status != tt.wantStatus || p.Fee != tt.wantFee || p.Reason != wantReason {
				t.Fatalf("payout %+v, want %s with fee %d and reason %q", p, tt.wantStatus, tt.wantFee, wantReason)
			}
			f.assertBalance(t, "u", tt.wantBalance)
		})
	}
}

// TestRefusedPayoutFollowsTheStatusOfAnEarlierAttempt: given a payout whose
// send is refused, when the provider's status shows an earlier attempt of
// it, then that is the payout's result (followEarlierAttempt).
func TestRefusedPayoutFollowsTheStatusOfAnEarlierAttempt(t *testing.T) {
	followEarlierAttempt(t, "po-s", false, nil)
}

// TestForcedFailureFollowsTheProviderOnASendMadeBeforeIt: given a payout
// with a send noted (the provider may have taken it), when an operator's
// forced failure is decided in the notes and the payouts part is handed
// the payout again, then it sends nothing and follows the provider's
// status of that send (followEarlierAttempt), not the operator's failure.
func TestForcedFailureFollowsTheProviderOnASendMadeBeforeIt(t *testing.T) {
	followEarlierAttempt(t, "po-f", true, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.cfg.Sends.Begin(ctx, "po-f", time.Second); err != nil { // the send made before the decision
			t.Fatal(err)
		}
		u, err := f.cfg.Sends.Uncertainty(ctx, "po-f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.cfg.Sends.Decide(ctx, "po-f", u, "operator (forced): provider gone"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestProviderFailureOfAPayoutRecordedSettledIsDeadLettered: an operator
// recorded a payout settled (payout.resolve) while its send was under way,
// and the provider then failed it (a closed account). The recorded result
// stands, the money is not returned (the payout is not failed), and the
// payouts part gives up on the commit as a permanent failure naming the
// contradiction and where the money is owed, for an operator to mend.
func TestProviderFailureOfAPayoutRecordedSettledIsDeadLettered(t *testing.T) {
	var f *fixture
	f = newFixture(t, options{provider: func(p firmbanking.Provider) firmbanking.Provider {
		return resolvingProvider{p, func() {
			if _, err := f.Payouts.Resolve(context.Background(), commands.Meta{Actor: "operator"},
				api.ResolvePayoutRequest{PayoutID: "po-cs", Outcome: "settled", Reason: "bank statement shows it"}); err != nil {
				t.Error(err)
			}
		}}
	}})
	c := f.requestPayout(t, "po-cs", closed)
	err := f.m.ReactToPayout(context.Background(), c)
	if _, ok := errors.AsType[*worker.PermanentError](err); !ok ||
		!strings.Contains(err.Error(), "the provider failed it, but it was recorded settled") || !strings.Contains(err.Error(), "owed back to wallet u") {
		t.Fatalf("error %v, want a permanent failure naming the contradiction and the wallet owed", err)
	}
	if p := f.payout(t, "po-cs"); p.Status != domain.PayoutSettledStatus {
		t.Fatalf("payout %+v, want the operator's settlement kept", p)
	}
	if n := len(f.commits(t, domain.AggregatePayout, "po-cs")); n != 2 {
		t.Fatalf("%d payout commits, want requested and the operator's settlement", n)
	}
	if res, ok := f.bank.Result("po-cs"); !ok || res.Status != firmbanking.StatusFailed || len(f.bank.Sent()) != 0 {
		t.Fatalf("the provider holds %+v (%v), sent %+v: want it failed, nothing sent", res, ok, f.bank.Sent())
	}
	f.assertBalance(t, "u", 300) // not returned by the engine: by hand
}

// TestProviderResultAfterAnOperatorsRecordWhileThePayoutWaitedIsDeadLettered:
// a payout the provider keeps pending waits in the payouts part; meanwhile
// an operator records its result by force (payout.resolve: a failure is
// decided in the notes first, as the server does). The provider then
// finalises the transfer the other way. When the part is handed the
// payout's commit again, it asks the provider rather than take the
// recorded result as the end of it: while the provider still reports it
// pending the part keeps waiting, and once the provider's final result
// contradicts the recorded one the commit is dead-lettered as a permanent
// failure naming the contradiction. A provider that agrees with the
// record ends the work.
func TestProviderResultAfterAnOperatorsRecordWhileThePayoutWaitedIsDeadLettered(t *testing.T) {
	const pendingRetry = 7 * time.Minute
	tests := []struct {
		name     string
		to       string              // the receiving account: closed fails at the provider
		recorded domain.PayoutStatus // the operator's forced result
		want     string              // the contradiction named; "" for none
		balance  int64               // user u's wallet at the end
	}{
		{name: "recorded failed, the provider settles", to: "123-456", recorded: domain.PayoutFailedStatus,
			want: "the provider settled it, but it was recorded failed", balance: 1000},
		{name: "recorded settled, the provider fails", to: closed, recorded: domain.PayoutSettledStatus,
			want: "the provider failed it, but it was recorded settled", balance: 300},
		{name: "recorded failed, the provider fails too", to: closed, recorded: domain.PayoutFailedStatus, balance: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, options{bank: firmbanking.FakeOptions{SettleAfter: time.Hour}, cfg: process.Config{PendingRetry: pendingRetry}})
			ctx := context.Background()
			c := f.requestPayout(t, "po-w", tt.to)
			wait(t, f.m.ReactToPayout(ctx, c), pendingRetry) // pending at the provider

			const reason = "provider support says it will not go out"
			if tt.recorded == domain.PayoutFailedStatus {
				u, err := f.cfg.Sends.Uncertainty(ctx, "po-w")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.cfg.Sends.Decide(ctx, "po-w", u, "operator (forced): "+reason); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.Payouts.Resolve(ctx, commands.Meta{Actor: "operator"},
				api.ResolvePayoutRequest{PayoutID: "po-w", Outcome: string(tt.recorded), Reason: reason, Force: true}); err != nil {
				t.Fatal(err)
			}
			if tt.recorded == domain.PayoutFailedStatus {
				f.react(t, f.m.ReturnFailedPayouts, domain.AggregatePayout, "po-w") // the money back in the wallet
			}

			// Still pending at the provider: the part keeps following it.
			wait(t, f.m.ReactToPayout(ctx, c), pendingRetry)

			f.bank.Advance(time.Hour) // the provider finalises the transfer
			err := f.m.ReactToPayout(ctx, c)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("the provider agrees with the record: %v, want the work done", err)
				}
			} else if _, ok := errors.AsType[*worker.PermanentError](err); !ok || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a permanent failure naming the contradiction (%s)", err, tt.want)
			}
			if p := f.payout(t, "po-w"); p.Status != tt.recorded {
				t.Fatalf("payout %+v, want the operator's %s kept", p, tt.recorded)
			}
			f.assertBalance(t, "u", tt.balance)
		})
	}
}

// TestAPayoutRecordedSettledThatTheProviderNeverTookIsDeadLettered: the
// sends of the payout failed on the way (503s: the provider may have
// taken one), and an operator then recorded the payout settled by force.
// Once the provider would show a transfer it took, it does not know the
// payout: its money never left, though recorded gone, and the commit is
// dead-lettered naming that. Recorded failed instead, the provider not
// knowing it agrees, and the work ends.
func TestAPayoutRecordedSettledThatTheProviderNeverTookIsDeadLettered(t *testing.T) {
	for _, recorded := range []domain.PayoutStatus{domain.PayoutSettledStatus, domain.PayoutFailedStatus} {
		t.Run(string(recorded), func(t *testing.T) {
			f := newFixture(t, options{cfg: process.Config{SettleTimeout: 2 * time.Second, SendArrival: 100 * time.Millisecond}})
			ctx := context.Background()
			c := f.requestPayout(t, "po-n", "123-456")
			f.bank.FailNext(1000) // the provider down: every send answered 503
			if err := f.m.ReactToPayout(ctx, c); err == nil {
				t.Fatal("sends answered 503 ended the work")
			}
			f.bank.FailNext(0)
			if _, err := f.Payouts.Resolve(ctx, commands.Meta{Actor: "operator"},
				api.ResolvePayoutRequest{PayoutID: "po-n", Outcome: string(recorded), Reason: "the operator's reading", Force: true}); err != nil {
				t.Fatal(err)
			}
			var err error
			testenv.Eventually(t, 10*time.Second, "the provider's silence counts", func() bool {
				err = f.m.ReactToPayout(ctx, c)
				_, waiting := errors.AsType[*worker.RetryAfterError](err)
				return !waiting
			})
			if recorded == domain.PayoutFailedStatus {
				if err != nil {
					t.Fatalf("recorded failed, unknown to the provider: %v, want the work done", err)
				}
				return
			}
			if _, ok := errors.AsType[*worker.PermanentError](err); !ok || !strings.Contains(err.Error(), "does not know it, but it was recorded settled") {
				t.Fatalf("error %v, want a permanent failure naming the contradiction", err)
			}
		})
	}
}

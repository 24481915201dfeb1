package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ops"
)

const subjPayout = "bankbook.q.payout.get"

// refusedAccount is an account the firm-banking provider refuses outright
// (400 invalid_account), although bankbook's own checks accept it.
var refusedAccount = domain.BankAccount{Bank: "하나은행", Number: "999-000-999", Holder: "최거절"}

// gatedBank is a fake firm-banking provider over loopback HTTP whose
// requests can be held at the door: while held, a request waits (without
// reaching the fake) until the gate opens or its caller gives up.
type gatedBank struct {
	fake *firmbanking.FakeService
	url  string

	mu      sync.Mutex
	gate    chan struct{} // closed: open
	waiting int           // requests held right now
	// takeAbandoned: a held request whose caller gives up reaches the
	// fake all the same, and its answer is lost (the caller killed while
	// the provider took its send).
	takeAbandoned bool
}

func newGatedBank(t *testing.T, opts firmbanking.FakeOptions) *gatedBank {
	t.Helper()
	opts.Token, opts.Fee = "test", 500
	g := &gatedBank{fake: firmbanking.NewFakeService(opts), gate: make(chan struct{})}
	close(g.gate)
	next := g.fake.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body) // read while the caller is there
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.mu.Lock()
		gate := g.gate
		g.waiting++
		g.mu.Unlock()
		select {
		case <-gate:
		case <-r.Context().Done():
		}
		g.mu.Lock()
		g.waiting--
		take := g.takeAbandoned
		g.mu.Unlock()
		if r.Context().Err() != nil {
			if take {
				next.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.Background()))
			}
			return // the caller gave up: the request never reached the bank, or its answer is lost
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.open) // before srv.Close, which waits for held requests
	g.url = srv.URL
	return g
}

// hold holds every request from now until open.
func (g *gatedBank) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate = make(chan struct{})
}

// open lets the held requests, and every later one, through.
func (g *gatedBank) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

// held is how many requests are waiting at the gate.
func (g *gatedBank) held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// payoutEngine runs an engine whose payouts go to g.
func payoutEngine(t *testing.T, g *gatedBank) (*testEngine, *bank) {
	return scenarioEngine(t, func(c *engine.Config) {
		c.FirmbankURL, c.FirmbankToken = g.url, "test"
		c.FirmbankStatusLag = engine.Duration(50 * time.Millisecond) // the fake shows what it accepted at once
	})
}

// payout returns a payout's view; ok is false while it is not there yet.
func (e *testEngine) payout(t *testing.T, id string) (api.PayoutView, bool) {
	t.Helper()
	var v api.PayoutView
	_, err := e.c.Call(ctxT(t), subjPayout, map[string]string{"payout_id": id}, &v, nil)
	return v, err == nil
}

func (e *testEngine) withdraw(t *testing.T, user string, amount int64, to domain.BankAccount) string {
	t.Helper()
	var rep api.WithdrawReply
	e.call(t, subjWithdraw, map[string]any{"user_id": user, "amount": amount, "bank_account": to}, &rep, nil)
	if rep.PayoutID == "" || rep.Status != "requested" {
		t.Fatalf("withdraw: %+v", rep)
	}
	return rep.PayoutID
}

// waitPayouts waits until every payout of ids has status.
func (e *testEngine) waitPayouts(t *testing.T, status string, ids ...string) {
	t.Helper()
	testenv.CheckFor(t, 30*time.Second, func() error {
		for _, id := range ids {
			if v, ok := e.payout(t, id); !ok || v.Status != status {
				return fmt.Errorf("payout %s: %+v, want %s", id, v, status)
			}
		}
		return nil
	})
}

// TestWithdrawalToARefusedAccountFailsAndReturnsTheMoney: withdrawals to an
// account the firm-banking provider refuses are accepted and debited, then
// end failed — never retried, never dead-lettered — with the money back in
// the wallet, and another user's payout requested after them settles.
func TestWithdrawalToARefusedAccountFailsAndReturnsTheMoney(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{RefuseAccounts: []string{refusedAccount.Number}})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-r", "최거절", 10000)
	fund(t, e, bk, "u-ok", "김민수", 5000)
	var refused []string
	for range 10 {
		refused = append(refused, e.withdraw(t, "u-r", 1000, refusedAccount))
	}
	ok := e.withdraw(t, "u-ok", 3000, payee)

	e.waitPayouts(t, "settled", ok)
	e.waitPayouts(t, "failed", refused...)
	for _, id := range refused {
		if v, _ := e.payout(t, id); !strings.HasPrefix(v.Failure, "refused: ") || !strings.Contains(v.Failure, "invalid_account") {
			t.Fatalf("payout %s: %+v, want a refusal as its failure", id, v)
		}
	}
	testenv.Eventually(t, 20*time.Second, "the refused money back in the wallet", func() bool { return e.wallet(t, "u-r").Balance == 10000 })
	testenv.Eventually(t, 20*time.Second, "payouts pending drained", func() bool { return e.balanced(t)[domain.AccountPayoutsPending] == 0 })
	if bal := e.balanced(t); bal[domain.AccountWallet("u-r")] != -10000 || bal[domain.AccountWallet("u-ok")] != -2000 || bal[domain.AccountBankFees] != 500 {
		t.Fatalf("ledger: %v", bal)
	}
	if st := e.Loops["payouts"].Stats(); st.Retried != 0 || st.DeadLettered != 0 {
		t.Fatalf("payouts part %+v: a refusal was retried or dead-lettered", st)
	}
	if n, err := e.DeadLetters.Count(context.Background()); err != nil || len(n) != 0 {
		t.Fatalf("dead letters %v, %v", n, err)
	}
	if sent := g.fake.Sent(); len(sent) != 1 || sent[0].ID != ok {
		t.Fatalf("sent %+v, want %s only", sent, ok)
	}
	// The payouts part is supervised and reported like every other.
	if _, rep := e.readyz(t); !ready(rep, "payouts") {
		t.Fatalf("/readyz: %+v", rep)
	}
	_, metrics := e.get(t, "/metrics")
	for _, want := range []string{
		`bankbook_part_up{part="payouts"} 1`,
		`bankbook_consumer_pending{consumer="payouts"} 0`,
		`bankbook_part_work_total{outcome="retried",part="payouts"} 0`,
		`bankbook_part_work_total{outcome="dead_lettered",part="payouts"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func ready(rep ops.ReadyReport, name string) bool {
	p, ok := part(rep, name)
	return ok && p.Ready
}

// TestSlowPayoutsHoldUpNoWalletOrDepositReaction: while the provider holds
// every transfer, 50 withdrawals are recorded as requested payouts, several
// are at the provider at once, and the money reactor works off every
// wallet and deposit commit — an orphan refunded to a wallet included — with
// nothing left pending or unacknowledged. Once the provider answers, every
// payout settles.
func TestSlowPayoutsHoldUpNoWalletOrDepositReaction(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-s", "박지성", 50000)
	g.hold()
	var ids []string
	for range 50 {
		ids = append(ids, e.withdraw(t, "u-s", 1000, payee))
	}
	orphan := bk.deposit("모르는사람", 3000)
	if orphan.Outcome != "orphaned" {
		t.Fatalf("orphan: %+v", orphan)
	}
	e.call(t, subjResolve, map[string]any{"deposit_id": orphan.DepositID, "action": "refund_to_wallet", "user_id": "u-x"}, nil, nil)
	fund(t, e, bk, "u-y", "이영희", 2000) // a late deposit refunded to a wallet

	concurrency := e.cfg.PartConcurrency.Of("payouts")
	testenv.Eventually(t, 20*time.Second, fmt.Sprintf("%d transfers at the provider at once", concurrency), func() bool { return g.held() == concurrency })
	e.waitPayouts(t, "requested", ids...)
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		c, err := js.Consumer(ctxT(t), "BANKBOOK_EVENTS", "react-money")
		if err != nil {
			return err
		}
		info, err := c.Info(ctxT(t))
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("react-money: %d commits pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	if e.wallet(t, "u-x").Balance != 3000 || e.wallet(t, "u-y").Balance != 2000 {
		t.Fatalf("wallets u-x %+v, u-y %+v", e.wallet(t, "u-x"), e.wallet(t, "u-y"))
	}
	if sent := g.fake.Sent(); len(sent) != 0 {
		t.Fatalf("%d transfers reached the bank through a closed gate", len(sent))
	}

	g.open()
	e.waitPayouts(t, "settled", ids...)
	testenv.Eventually(t, 20*time.Second, "payouts pending drained", func() bool { return e.balanced(t)[domain.AccountPayoutsPending] == 0 })
	if bal := e.balanced(t); bal[domain.AccountBankFees] != 50*500 {
		t.Fatalf("ledger: %v", bal)
	}
	if sent := g.fake.Sent(); len(sent) != 50 {
		t.Fatalf("%d transfers sent, want 50", len(sent))
	}
}

// TestOperatorResolvesAStuckPayout: a payout whose ID the provider holds
// another transfer under (422, dead-lettered at once) is failed by an
// operator who asked the provider: its money goes back to the wallet once.
// A payout whose send is under way cannot be failed (409 payout_in_flight);
// once dead-lettered too, it is settled by the operator with the provider's
// fee, which the ledger posts. A payout with a result refuses the other one
// (409 payout_final), and the app may not resolve payouts.
func TestOperatorResolvesAStuckPayout(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-s", "김민수", 10000)
	// stuck requests a payout whose send the provider answers 422: another
	// transfer under its ID reached the provider first. It returns once the
	// send is held at the provider's door, before the other transfer.
	stuck := func(amount int64) (id string, release func()) {
		t.Helper()
		g.hold()
		id = e.withdraw(t, "u-s", amount, payee)
		testenv.Eventually(t, 20*time.Second, "the payout's send held at the provider's door", func() bool { return g.held() > 0 })
		return id, func() {
			body := fmt.Sprintf(`{"id":%q,"amount":1,"to":{"bank":"KB","number":"1-2","holder":"other"},"memo":"other"}`, id)
			req := httptest.NewRequest(http.MethodPost, "/transfers", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer test")
			req.Header.Set("Idempotency-Key", id)
			rec := httptest.NewRecorder()
			g.fake.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("the other transfer: %d %s", rec.Code, rec.Body)
			}
			dead := e.Loops["payouts"].Stats().DeadLettered
			g.open()
			testenv.Eventually(t, 20*time.Second, "the payout dead-lettered", func() bool { return e.Loops["payouts"].Stats().DeadLettered == dead+1 })
		}
	}
	resolve := func(id, outcome string, fee int64) api.ResolvePayoutRequest {
		return api.ResolvePayoutRequest{PayoutID: id, Outcome: outcome, Fee: fee, Reason: "the provider's statement of 12-02"}
	}

	failed, release := stuck(4000)
	release()
	// Its dead letter cannot be discarded before the payout has a result:
	// nothing would move its money then.
	var dead api.DeadLettersReply
	e.call(t, api.DeadLetterList.Subject, api.DeadLettersRequest{Part: "payouts"}, &dead, nil)
	if len(dead.DeadLetters) != 1 {
		t.Fatalf("dead letters %+v, want the payout's", dead)
	}
	// A part name mistyped is refused, not answered with an empty list.
	if ce := e.callErr(t, api.DeadLetterList.Subject, api.DeadLettersRequest{Part: "payout"}, nil); ce.Status != 400 || ce.Code != api.CodeInvalidInput {
		t.Fatalf("dead letters of part payout: %+v, want 400 invalid_input", ce)
	}
	discard := api.DeadLetterRequest{ID: dead.DeadLetters[0].ID, Reason: "the provider has no transfer of ours"}
	if ce := e.callErr(t, api.DeadLetterDiscard.Subject, discard, nil); ce.Status != 409 || ce.Code != "payout_unresolved" {
		t.Fatalf("discarding the dead letter of a payout still requested: %+v", ce)
	}
	var rep api.ResolvePayoutReply
	e.call(t, api.PayoutResolve.Subject, resolve(failed, "failed", 0), &rep, nil)
	if rep.Status != "failed" {
		t.Fatalf("resolve: %+v", rep)
	}
	testenv.Eventually(t, 20*time.Second, "the money back in the wallet", func() bool { return e.wallet(t, "u-s").Balance == 10000 })
	if ce := e.callErr(t, api.PayoutResolve.Subject, resolve(failed, "settled", 0), nil); ce.Status != 409 || ce.Code != "payout_final" {
		t.Fatalf("settling a failed payout: %+v", ce)
	}
	e.call(t, api.PayoutResolve.Subject, resolve(failed, "failed", 0), &rep, nil) // a repeat changes nothing
	var discarded api.DeadLetterReply
	e.call(t, api.DeadLetterDiscard.Subject, discard, &discarded, nil)
	if discarded.Status != "discarded" {
		t.Fatalf("discard after the resolve: %+v", discarded)
	}

	settled, release := stuck(3000)
	if ce := e.callErr(t, api.PayoutResolve.Subject, resolve(settled, "failed", 0), nil); ce.Status != 409 || ce.Code != "payout_in_flight" {
		t.Fatalf("failing a payout whose send is under way: %+v", ce)
	}
	// That answer is not kept under a key: the same key records the result
	// once the payout's work is dead-lettered.
	key := client.WithIdempotencyKey("resolve-" + settled)
	if ce := e.callErr(t, api.PayoutResolve.Subject, resolve(settled, "settled", 700), key); ce.Status != 409 || ce.Code != "payout_in_flight" {
		t.Fatalf("settling a payout whose send is under way: %+v", ce)
	}
	release()
	// While a redrive of its dead letter runs (its send held at the
	// provider's door), the payout is not resolved: the send may pay it.
	e.call(t, api.DeadLetterList.Subject, api.DeadLettersRequest{Part: "payouts"}, &dead, nil)
	if len(dead.DeadLetters) != 1 {
		t.Fatalf("dead letters %+v, want the payout's", dead)
	}
	g.hold()
	redriven := make(chan *client.Error, 1)
	go func() {
		var r api.DeadLetterReply
		_, err := e.c.Call(ctxT(t), api.DeadLetterRedrive.Subject, api.DeadLetterRequest{ID: dead.DeadLetters[0].ID}, &r, nil)
		ce, _ := err.(*client.Error)
		redriven <- ce
	}()
	testenv.Eventually(t, 20*time.Second, "the redrive's send held at the provider's door", func() bool { return g.held() > 0 })
	if ce := e.callErr(t, api.PayoutResolve.Subject, resolve(settled, "settled", 700), nil); ce.Status != 409 || ce.Code != "payout_in_flight" || !strings.Contains(ce.Message, "redriven") {
		t.Fatalf("settling a payout while a redrive sends it: %+v", ce)
	}
	forced := resolve(settled, "failed", 0)
	forced.Force = true
	if ce := e.callErr(t, api.PayoutResolve.Subject, forced, nil); ce.Status != 409 || ce.Code != "payout_in_flight" {
		t.Fatalf("forcing a result while a redrive sends it: %+v", ce)
	}
	// A second redrive meanwhile is refused, and not kept under its key:
	// repeated once the first has ended, it runs.
	again := client.WithIdempotencyKey("redrive-again-" + settled)
	redrive := api.DeadLetterRequest{ID: dead.DeadLetters[0].ID}
	if ce := e.callErr(t, api.DeadLetterRedrive.Subject, redrive, again); ce.Status != 409 || ce.Code != api.CodeDeadLetterBusy || ce.Details["held_by"] != "redrive" {
		t.Fatalf("a second redrive while one runs: %+v", ce)
	}
	g.open()
	if ce := <-redriven; ce == nil || ce.Code != "redrive_failed" { // the other transfer holds the ID still
		t.Fatalf("the redrive: %+v, want redrive_failed", ce)
	}
	if ce := e.callErr(t, api.DeadLetterRedrive.Subject, redrive, again); ce.Code != "redrive_failed" {
		t.Fatalf("the second redrive repeated once the first ended: %+v, want it run (redrive_failed)", ce)
	}
	e.call(t, api.PayoutResolve.Subject, resolve(settled, "settled", 700), &rep, key)
	e.waitPayouts(t, "settled", settled)
	if v, _ := e.payout(t, settled); v.Fee != 700 {
		t.Fatalf("payout %+v, want the operator's fee 700", v)
	}
	testenv.Eventually(t, 20*time.Second, "payouts pending drained", func() bool { return e.balanced(t)[domain.AccountPayoutsPending] == 0 })
	if bal := e.balanced(t); bal[domain.AccountWallet("u-s")] != -7000 || bal[domain.AccountBankFees] != 700 {
		t.Fatalf("ledger: %v", bal)
	}
	if e.wallet(t, "u-s").Balance != 7000 {
		t.Fatalf("wallet %+v, want 7000: the failed payout's money back once", e.wallet(t, "u-s"))
	}
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	if _, err := app.Call(ctxT(t), api.PayoutResolve.Subject, resolve(settled, "failed", 0), nil, nil); err == nil {
		t.Fatal("the app resolved a payout")
	}

	// Not even force records a failure over a send under way: the provider
	// may pay a payout recorded failed, and its money would go out twice.
	// The failure is decided, though: no send of the payout starts again.
	third, release := stuck(2000)
	forced = resolve(third, "failed", 0)
	forced.Force = true
	if ce := e.callErr(t, api.PayoutResolve.Subject, forced, nil); ce.Status != 409 || ce.Code != "payout_in_flight" || ce.Details["retry_after_s"] == nil {
		t.Fatalf("forcing the failure of a payout whose send is under way: %+v", ce)
	}
	if u, err := e.DeadLetters.Uncertainty(ctxT(t), "payouts", third); err != nil || !u.Decided {
		t.Fatalf("the payouts part's notes after a forced failure refused: %+v %v", u, err)
	}
	release()
	e.call(t, api.PayoutResolve.Subject, forced, &rep, nil)
	e.waitPayouts(t, "failed", third)
	testenv.Eventually(t, 20*time.Second, "the forced failure's money back in the wallet", func() bool { return e.wallet(t, "u-s").Balance == 7000 })
}

// TestAForcedFailureDoesNotFailAPayoutTheProviderTookFromAStoppedInstance:
// an operator forces the failure of a payout whose send is held at the
// provider's door (decided, answered payout_in_flight); the instance stops
// (killed, upgraded) while the provider takes the send, so the answer is
// lost. The instance after it finds the failure decided in the payouts
// part's notes, but a send was made before the decision: it asks the
// provider, which settled the payout, and records that. Recording the
// decided failure instead would return the money the provider paid out.
func TestAForcedFailureDoesNotFailAPayoutTheProviderTookFromAStoppedInstance(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-k", "김민수", 5000)
	g.mu.Lock()
	g.takeAbandoned = true
	g.mu.Unlock()
	g.hold()
	id := e.withdraw(t, "u-k", 3000, payee)
	testenv.Eventually(t, 20*time.Second, "the send held at the provider's door", func() bool { return g.held() > 0 })
	forced := api.ResolvePayoutRequest{PayoutID: id, Outcome: "failed", Reason: "the operator's guess", Force: true}
	if ce := e.callErr(t, api.PayoutResolve.Subject, forced, nil); ce.Code != "payout_in_flight" {
		t.Fatalf("forcing the failure of a payout whose send is under way: %+v", ce)
	}
	e = e.restart(t)
	testenv.Eventually(t, 20*time.Second, "the provider took the abandoned send", func() bool { return len(g.fake.Sent()) == 1 })
	g.open()
	e.waitPayouts(t, "settled", id)
	testenv.Eventually(t, 20*time.Second, "payouts pending drained", func() bool { return e.balanced(t)[domain.AccountPayoutsPending] == 0 })
	if w := e.wallet(t, "u-k"); w.Balance != 2000 {
		t.Fatalf("wallet %+v, want 2,000: the provider paid 3,000 out", w)
	}
	if got := g.fake.Sent(); len(got) != 1 || got[0].ID != id {
		t.Fatalf("the provider got %+v, want the payout once", got)
	}
}

// TestAnInstanceWithoutAProviderLeavesPayoutsToOneWithIt: an engine with no
// firm-banking provider runs no payouts part, so a withdrawal's payout
// waits unread on the shared consumer (a part there would take it and hand
// it back every minute, and hold it from an instance with a provider). It
// still returns the money of a payout an operator failed (react-payouts
// runs on every instance). An instance with a provider that joins sends the
// other payout, once.
func TestAnInstanceWithoutAProviderLeavesPayoutsToOneWithIt(t *testing.T) {
	a, bk := scenarioEngine(t)
	if _, runs := a.Loops["payouts"]; runs {
		t.Fatal("an engine without a provider runs the payouts part")
	}
	if _, runs := a.Loops["react-payouts"]; !runs {
		t.Fatal("an engine without a provider runs no react-payouts part")
	}
	fund(t, a, bk, "u-np", "김민수", 10000)
	failed := a.withdraw(t, "u-np", 4000, payee)
	sent := a.withdraw(t, "u-np", 3000, payee)
	a.waitPayouts(t, "requested", failed, sent)
	var rep api.ResolvePayoutReply
	a.call(t, api.PayoutResolve.Subject, api.ResolvePayoutRequest{PayoutID: failed, Outcome: "failed", Reason: "no provider here", Force: true}, &rep, nil)
	// The failure is decided in the payouts part's notes too: no instance
	// sends the payout after it.
	if u, err := a.DeadLetters.Uncertainty(ctxT(t), "payouts", failed); err != nil || !u.Decided || u.Reason != "operator (forced): no provider here" {
		t.Fatalf("the payouts part's notes of the forced failure: %+v %v", u, err)
	}
	testenv.Eventually(t, 20*time.Second, "the failed payout's money back in the wallet", func() bool { return a.wallet(t, "u-np").Balance == 7000 })
	stream, err := a.js.Stream(ctxT(t), a.Events.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	switch cons, err := stream.Consumer(ctxT(t), "payouts"); {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		t.Fatal(err)
	default:
		if st := cons.CachedInfo(); st.Delivered.Consumer != 0 {
			t.Errorf("the payouts consumer delivered %d without a provider; want none", st.Delivered.Consumer)
		}
	}

	g := newGatedBank(t, firmbanking.FakeOptions{})
	startEngine(t, func(c *engine.Config) {
		joinEngine(c, a.Engine)
		c.FirmbankURL, c.FirmbankToken = g.url, "test"
		c.FirmbankStatusLag = engine.Duration(50 * time.Millisecond)
	})
	a.waitPayouts(t, "settled", sent)
	if got := g.fake.Sent(); len(got) != 1 || got[0].ID != sent {
		t.Fatalf("the provider got %+v, want the one payout left requested", got)
	}
	if w := a.wallet(t, "u-np"); w.Balance != 7000 {
		t.Fatalf("wallet %+v, want 7,000: the failed payout's 4,000 back once, 3,000 paid out", w)
	}
}

// TestConcurrentForcedFailuresAnswerNoInternalError: operators forcing the
// failure of one payout at once, on their own connections, spread over two
// instances, while its send is held at the provider's door, each get an
// answer a client acts on (recorded, payout_in_flight to retry, or
// payout_final), never a 500: resolves racing one another for the payouts
// part's notes are in flight. The money comes back once.
func TestConcurrentForcedFailuresAnswerNoInternalError(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	e, bk := payoutEngine(t, g)
	startEngine(t, func(c *engine.Config) {
		joinEngine(c, e.Engine)
		c.DataDir = filepath.Join(t.TempDir(), "b")
	})
	fund(t, e, bk, "u-f", "김민수", 5000)
	g.hold()
	id := e.withdraw(t, "u-f", 3000, payee)
	testenv.Eventually(t, 20*time.Second, "the send held at the provider's door", func() bool { return g.held() > 0 })
	req := api.ResolvePayoutRequest{PayoutID: id, Outcome: "failed", Reason: "the provider's statement", Force: true}
	const operators = 20
	conns := make([]*client.Client, operators)
	for i := range conns {
		conns[i] = connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
	}
	answers := make(chan error, operators)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_, err := c.Call(ctxT(t), api.PayoutResolve.Subject, req, nil, nil)
			answers <- err
		})
	}
	wg.Wait()
	close(answers)
	for err := range answers {
		var ce *client.Error
		if err != nil && (!errors.As(err, &ce) || ce.Status >= 500) {
			t.Errorf("a forced failure among %d at once answered %v", operators, err)
		}
	}
	g.open()
	// Held back while the send may reach the provider, the failure is
	// decided: the send ends, and a resolve then records it.
	testenv.CheckFor(t, 30*time.Second, func() error {
		_, err := e.c.Call(ctxT(t), api.PayoutResolve.Subject, req, nil, nil)
		if ce, ok := errors.AsType[*client.Error](err); ok && ce.Code == "payout_final" {
			return nil // the held send settled it
		}
		return err
	})
	testenv.Eventually(t, 20*time.Second, "payouts pending drained", func() bool { return e.balanced(t)[domain.AccountPayoutsPending] == 0 })
	// The payouts read model follows the ledger on its own projection: wait
	// for it to show the end, then the wallet must hold what that end leaves.
	testenv.CheckFor(t, 20*time.Second, func() error {
		v, _ := e.payout(t, id)
		want, ended := map[string]int64{"failed": 5000, "settled": 2000}[v.Status]
		if w := e.wallet(t, "u-f"); !ended || w.Balance != want {
			return fmt.Errorf("payout %s %s, wallet %+v: want %d", id, v.Status, w, want)
		}
		return nil
	})
}

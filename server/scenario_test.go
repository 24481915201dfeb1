package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/watermarks"
)

const (
	subjRecord  = "bankbook.cmd.deposit.record"
	subjWallet  = "bankbook.q.wallet.get"
	subjTrial   = "bankbook.q.ledger.trial_balance"
	subjAccount = "bankbook.q.ledger.account"
	subjOrphans = "bankbook.q.deposit.orphans"
)

// bank plays the bank feed: it records transactions the way the scanner does
// and moves the scan watermark.
type bank struct {
	t     *testing.T
	e     *testEngine
	marks *watermarks.Store
	n     int
}

func newBank(t *testing.T, e *testEngine) *bank {
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	marks, err := watermarks.Open(context.Background(), js, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	return &bank{t: t, e: e, marks: marks}
}

// deposit records a transfer under name for amount on the collection account.
func (b *bank) deposit(name string, amount int64) api.RecordDepositReply {
	b.t.Helper()
	return b.depositAt(name, amount, time.Now().UTC())
}

// depositAt records a transfer made at the given time.
func (b *bank) depositAt(name string, amount int64, at time.Time) api.RecordDepositReply {
	b.t.Helper()
	b.n++
	var rep api.RecordDepositReply
	b.e.call(b.t, subjRecord, api.RecordDepositRequest{
		BankTxnID: fmt.Sprintf("TXN-%04d", b.n), AccountNumber: b.e.cfg.CollectNumber,
		DepositorName: name, Amount: amount, DepositedAt: at,
	}, &rep, nil)
	return rep
}

// scanned says the bank's data is complete up to at.
func (b *bank) scanned(at time.Time) {
	b.t.Helper()
	if err := b.marks.Advance(context.Background(), b.e.cfg.CollectNumber, at); err != nil {
		b.t.Fatal(err)
	}
}

func (e *testEngine) order(t *testing.T, id string) projections.OrderView {
	t.Helper()
	var v projections.OrderView
	e.call(t, subjGet, map[string]string{"order_id": id}, &v, nil)
	return v
}

func (e *testEngine) wallet(t *testing.T, user string) projections.WalletView {
	t.Helper()
	var w projections.WalletView
	e.call(t, subjWallet, map[string]string{"user_id": user}, &w, nil)
	return w
}

// balanced checks the trial balance and returns the balances by account.
func (e *testEngine) balanced(t *testing.T) map[string]int64 {
	t.Helper()
	var tb api.TrialBalanceReply
	e.call(t, subjTrial, struct{}{}, &tb, nil)
	if tb.Total != 0 {
		t.Fatalf("trial balance total %d at seq %d: %+v", tb.Total, tb.AsOfSeq, tb.Accounts)
	}
	out := map[string]int64{}
	for _, a := range tb.Accounts {
		out[a.Account] = a.Balance
	}
	return out
}

func (e *testEngine) submit(t *testing.T, buyer, name string, amount int64) api.SubmitOrderReply {
	t.Helper()
	var rep api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": buyer, "buyer_name": name, "amount": amount}, &rep, nil)
	return rep
}

func scenarioEngine(t *testing.T, mutate ...func(*engine.Config)) (*testEngine, *bank) {
	e := startEngine(t, append([]func(*engine.Config){func(c *engine.Config) {
		c.CancelWindow = engine.Duration(time.Second)
		c.FinaliseRetry = engine.Duration(200 * time.Millisecond)
	}}, mutate...)...)
	return e, newBank(t, e)
}

func TestScenarioDepositPaysTheOrder(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-1", "김민수", 39000)
	rep := bk.deposit(o.DepositorName, 39000)
	if rep.Outcome != "matched" || rep.OrderID != o.OrderID {
		t.Fatalf("deposit: %+v", rep)
	}
	v := e.order(t, o.OrderID)
	if v.Status != "paid" || v.PaidAmount != 39000 || len(v.DepositIDs) != 1 || v.DepositIDs[0] != rep.DepositID {
		t.Fatalf("order after deposit: %+v", v)
	}
	bal := e.balanced(t)
	if bal[domain.AccountBank(e.cfg.CollectNumber)] != 39000 || bal[domain.AccountPayableOrders] != -39000 {
		t.Fatalf("ledger: %v", bal)
	}
	// The bank reports the transaction again in the next scan.
	var dup api.RecordDepositReply
	e.call(t, subjRecord, api.RecordDepositRequest{BankTxnID: "TXN-0001", AccountNumber: e.cfg.CollectNumber,
		DepositorName: o.DepositorName, Amount: 39000, DepositedAt: time.Now().UTC()}, &dup, nil)
	if dup.Outcome != "duplicate" || dup.DepositID != rep.DepositID || dup.OrderID != o.OrderID {
		t.Fatalf("repeated transaction: %+v", dup)
	}
	if after := e.balanced(t); after[domain.AccountBank(e.cfg.CollectNumber)] != 39000 {
		t.Fatalf("a repeated transaction posted again: %v", after)
	}
	// A name written with spaces, as people do, still matches.
	o2 := e.submit(t, "u-2", "이영희", 5000)
	spaced := string([]rune(o2.DepositorName)[:2]) + " " + string([]rune(o2.DepositorName)[2:])
	if rep := bk.deposit(spaced, 5000); rep.Outcome != "matched" || rep.OrderID != o2.OrderID {
		t.Fatalf("spaced name %q: %+v", spaced, rep)
	}
}

func TestScenarioCancelNotDepositedIsImmediate(t *testing.T) {
	e, _ := scenarioEngine(t)
	o := e.submit(t, "u-1", "박서준", 12000)
	var c api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, &c, nil)
	if c.Status != "cancelled" || c.CancelAt != "" || e.order(t, o.OrderID).Status != "cancelled" {
		t.Fatalf("cancel no: %+v", c)
	}
}

// TestScenarioCancelBeforeScanRefundsToWallet is the case the delayed
// cancellation exists for: the buyer transfers, cancels at once, and the
// deposit arrives with the next scan.
func TestScenarioCancelBeforeScanRefundsToWallet(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-7", "최유진", 25000)
	var c api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": true, "reason": "옵션 추가"}, &c, nil)
	if c.Status != "cancel_reserved" || c.CancelAt == "" {
		t.Fatalf("cancel yes: %+v", c)
	}
	rep := bk.deposit(o.DepositorName, 25000) // the scan finds the transfer
	if rep.Outcome != "refunded_to_wallet" || rep.OrderID != o.OrderID || rep.UserID != "u-7" {
		t.Fatalf("deposit for a reserved order: %+v", rep)
	}
	if w := e.wallet(t, "u-7"); w.Balance != 25000 || len(w.Entries) != 1 || w.Entries[0].Ref != rep.DepositID {
		t.Fatalf("wallet: %+v", w)
	}
	bk.scanned(time.Now().Add(time.Second)) // the scan covers cancel_at
	testenv.Eventually(t, 10*time.Second, "cancellation final", func() bool { return e.order(t, o.OrderID).Status == "cancelled" })
	v := e.order(t, o.OrderID)
	if v.PaidAmount != 0 || len(v.Refunds) != 1 || v.Refunds[0].Amount != 25000 || v.CancelReason != "옵션 추가" {
		t.Fatalf("order: %+v", v)
	}
	var orphans api.OrphansReply
	e.call(t, subjOrphans, struct{}{}, &orphans, nil)
	if len(orphans.Deposits) != 0 {
		t.Fatalf("orphans: %+v", orphans.Deposits)
	}
	bal := e.balanced(t)
	if bal[domain.AccountWallet("u-7")] != -25000 || bal[domain.AccountBank(e.cfg.CollectNumber)] != 25000 {
		t.Fatalf("ledger: %v", bal)
	}
}

// TestScenarioFinalisationWaitsForTheScan: the timer falls due but the bank's
// data lags behind cancel_at, so the order stays reserved until a scan
// covers it.
func TestScenarioFinalisationWaitsForTheScan(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-3", "정하늘", 8000)
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": true}, nil, nil)
	bk.scanned(time.Now().Add(-time.Minute)) // scans lag behind
	time.Sleep(2 * time.Second)              // past cancel_at: the timer has fired and re-armed
	if st := e.order(t, o.OrderID).Status; st != "cancel_reserved" {
		t.Fatalf("finalised before the scan covered cancel_at: %s", st)
	}
	bk.scanned(time.Now())
	testenv.Eventually(t, 10*time.Second, "finalised after the scan", func() bool { return e.order(t, o.OrderID).Status == "cancelled" })
}

func TestScenarioLateDepositAfterCancel(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-4", "한가람", 7000)
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, nil, nil)
	// Within the name grace: refunded to the wallet, not an orphan.
	if rep := bk.deposit(o.DepositorName, 7000); rep.Outcome != "refunded_to_wallet" || rep.UserID != "u-4" {
		t.Fatalf("late deposit: %+v", rep)
	}
	if w := e.wallet(t, "u-4"); w.Balance != 7000 {
		t.Fatalf("wallet: %+v", w)
	}
	// A name in its grace is not handed to a new order.
	for range 20 {
		if n := e.submit(t, "u-5", "한가람", 1); n.DepositorName == o.DepositorName {
			t.Fatalf("name %q reused during its grace", n.DepositorName)
		}
	}
	e.balanced(t)
}

func TestScenarioLateDepositAfterTheGraceIsAnOrphan(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) { c.NameGrace = engine.Duration(time.Millisecond) })
	o := e.submit(t, "u-4", "한가람", 7000)
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, nil, nil)
	time.Sleep(10 * time.Millisecond)
	if rep := bk.deposit(o.DepositorName, 7000); rep.Outcome != "orphaned" || rep.Reason != "order_gone" {
		t.Fatalf("deposit after the grace: %+v", rep)
	}
	// A transfer made before the grace ended but scanned after it is still
	// the buyer's: the grace is measured to when the money was sent.
	o2 := e.submit(t, "u-4b", "한가을", 6000)
	e.call(t, subjCancel, map[string]any{"order_id": o2.OrderID, "deposited": false}, nil, nil)
	var rep api.RecordDepositReply
	e.call(t, subjRecord, api.RecordDepositRequest{BankTxnID: "TX-LATE-SCAN", AccountNumber: e.cfg.CollectNumber,
		DepositorName: o2.DepositorName, Amount: 6000, DepositedAt: time.Now().UTC().Add(-time.Second)}, &rep, nil)
	if rep.Outcome != "refunded_to_wallet" {
		t.Fatalf("transfer made before the order closed, scanned after the grace: %+v", rep)
	}
}

func TestScenarioOrphans(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-6", "오세훈", 15000)
	other := e.submit(t, "u-7", "김철수", 15000) // same amount, another name
	wrongName := bk.deposit("오세후"+o.DepositorName[len("오세훈"):], 15000)
	wrongAmount := bk.deposit(o.DepositorName, 15001)
	if wrongName.Outcome != "orphaned" || wrongName.Reason != "no_such_name" {
		t.Fatalf("mistyped name: %+v", wrongName)
	}
	if wrongAmount.Outcome != "orphaned" || wrongAmount.Reason != "amount_mismatch" || wrongAmount.OrderID != o.OrderID {
		t.Fatalf("wrong amount: %+v", wrongAmount)
	}
	if v := e.order(t, o.OrderID); v.Status != "awaiting_deposit" {
		t.Fatalf("an orphan changed the order: %+v", v)
	}
	var orphans api.OrphansReply
	e.call(t, subjOrphans, struct{}{}, &orphans, nil)
	for _, d := range orphans.Deposits {
		switch d.DepositID {
		case wrongName.DepositID: // the mistyped name suggests its order first
			if len(d.Candidates) != 2 || d.Candidates[0] != o.OrderID || d.Candidates[1] != other.OrderID {
				t.Fatalf("candidates of %q: %v, want [%s %s]", d.DepositorName, d.Candidates, o.OrderID, other.OrderID)
			}
		case wrongAmount.DepositID: // no open order of 15001
			if len(d.Candidates) != 0 {
				t.Fatalf("candidates of the wrong amount: %v", d.Candidates)
			}
		}
	}
	e.call(t, subjOrphans, map[string]any{"limit": 1}, &orphans, nil)
	if len(orphans.Deposits) != 1 || orphans.NextCursor == "" {
		t.Fatalf("first page: %+v", orphans)
	}
	first := orphans.Deposits[0]
	e.call(t, subjOrphans, map[string]any{"limit": 1, "cursor": orphans.NextCursor}, &orphans, nil)
	if len(orphans.Deposits) != 1 || orphans.Deposits[0].DepositID == first.DepositID {
		t.Fatalf("second page: %+v", orphans)
	}
	bal := e.balanced(t)
	if bal[domain.AccountSuspense] != -30001 {
		t.Fatalf("suspense: %v", bal)
	}
	var acct api.LedgerAccountReply
	e.call(t, subjAccount, map[string]any{"account": domain.AccountSuspense}, &acct, nil)
	if acct.Balance != -30001 || len(acct.Entries) != 2 {
		t.Fatalf("suspense account: %+v", acct)
	}
}

// TestScenarioAnOrphanScannedAfterItsOrderWasCancelledSuggestsIt: the
// cancellation problem with a depositor name the bank cut short. The buyer
// transfers and cancels at once ("not transferred yet", by mistake); the
// next scan brings the transfer in after the order is cancelled. The orphan
// suggests the cancelled order, and assigning it refunds the buyer.
func TestScenarioAnOrphanScannedAfterItsOrderWasCancelledSuggestsIt(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-late", "황보영미", 9400)
	sent := time.Now().UTC()
	var cancelled api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, &cancelled, nil)
	if cancelled.Status != "cancelled" {
		t.Fatalf("cancel: %+v", cancelled)
	}
	cut := bk.depositAt(o.DepositorName[:len(o.DepositorName)-1], 9400, sent) // the bank dropped the last digit
	if cut.Outcome != "orphaned" {
		t.Fatalf("a cut-short depositor name: %+v", cut)
	}
	if got := e.orphanCandidates(t, cut.DepositID, cut.Seq); !slices.Equal(got, []string{o.OrderID}) {
		t.Fatalf("candidates %v: want the cancelled order, [%s]", got, o.OrderID)
	}
	e.assignRefundsBuyer(t, cut.DepositID, o.OrderID, "u-late", 9400)
}

// orphanCandidates returns the candidates of orphan dep in the orphan
// queue, once the read models have applied minSeq.
func (e *testEngine) orphanCandidates(t *testing.T, dep string, minSeq api.Seq) []string {
	t.Helper()
	var orphans api.OrphansReply
	e.call(t, subjOrphans, map[string]any{"min_seq": minSeq}, &orphans, nil)
	for _, d := range orphans.Deposits {
		if d.DepositID == dep {
			return d.Candidates
		}
	}
	t.Fatalf("orphan %s not queued", dep)
	return nil
}

// assignRefundsBuyer assigns orphan dep to the closed order and checks that
// the amount went to the buyer's wallet instead.
func (e *testEngine) assignRefundsBuyer(t *testing.T, dep, order, buyer string, amount int64) {
	t.Helper()
	var resolved api.ResolveDepositReply
	e.call(t, subjResolve, map[string]any{"deposit_id": dep, "action": "assign_order", "order_id": order}, &resolved, nil)
	if resolved.UserID != buyer {
		t.Fatalf("assigned to the closed order %s: %+v, want %s's wallet credited", order, resolved, buyer)
	}
	testenv.Eventually(t, 20*time.Second, "the buyer's wallet refunded", func() bool { return e.wallet(t, buyer).Balance == amount })
}

// A transfer whose depositor name the bank cut short is an orphan that
// ranks its order; when the order then closes unpaid (here cancelled; a
// reserved cancellation taking effect does the same), the orphan still
// suggests it, and assigning the orphan to it refunds the buyer's wallet.
func TestScenarioAnOrphanStillSuggestsItsOrderOnceCancelled(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-cut", "황보영미", 9400)
	cut := bk.deposit(o.DepositorName[:len(o.DepositorName)-1], 9400) // the bank dropped the last digit
	if cut.Outcome != "orphaned" {
		t.Fatalf("a cut-short depositor name: %+v", cut)
	}
	if got := e.orphanCandidates(t, cut.DepositID, cut.Seq); !slices.Equal(got, []string{o.OrderID}) {
		t.Fatalf("candidates while the order is open: %v, want [%s]", got, o.OrderID)
	}
	var cancelled api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, &cancelled, nil)
	if got := e.orphanCandidates(t, cut.DepositID, cancelled.Seq); !slices.Equal(got, []string{o.OrderID}) {
		t.Fatalf("candidates once the order is cancelled: %v, want it still, [%s]", got, o.OrderID)
	}
	e.assignRefundsBuyer(t, cut.DepositID, o.OrderID, "u-cut", 9400)
}

func TestScenarioCancelAfterPaymentRefunds(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-8", "강다은", 9900)
	bk.deposit(o.DepositorName, 9900)
	var c api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false, "reason": "품절"}, &c, nil)
	if c.Status != "cancelled" || c.Refund == nil || c.Refund.To != "wallet" || c.Refund.Amount != 9900 {
		t.Fatalf("cancel a paid order: %+v", c)
	}
	if w := e.wallet(t, "u-8"); w.Balance != 9900 {
		t.Fatalf("wallet: %+v", w)
	}
	bal := e.balanced(t)
	if bal[domain.AccountPayableOrders] != 0 || bal[domain.AccountWallet("u-8")] != -9900 {
		t.Fatalf("ledger: %v", bal)
	}
	// A second payment for a paid order is refunded too.
	o2 := e.submit(t, "u-9", "윤지호", 3000)
	bk.deposit(o2.DepositorName, 3000)
	if rep := bk.deposit(o2.DepositorName, 3000); rep.Outcome != "refunded_to_wallet" {
		t.Fatalf("second payment: %+v", rep)
	}
	e.balanced(t)
}

// TestReactorSettlesARefundWhoseCommandDied: a cancel of a paid order
// appended its refund and died before crediting the wallet. The order
// reactor, shared by every instance, credits it.
func TestReactorSettlesARefundWhoseCommandDied(t *testing.T) {
	e, bk := scenarioEngine(t)
	o := e.submit(t, "u-r", "임하준", 4400)
	bk.deposit(o.DepositorName, 4400)

	// What the dying command appended: the cancellation and its refund.
	ctx := context.Background()
	ref := eventstore.Ref{Type: domain.AggregateOrder, ID: o.OrderID}
	commits, err := e.Events.Load(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	codec := domain.Events()
	now := time.Now().UTC()
	var envs []eventstore.Envelope
	for i, ev := range []domain.Event{
		domain.OrderCancelled{OrderID: domain.OrderID(o.OrderID), CancelledAt: now},
		domain.OrderRefunded{OrderID: domain.OrderID(o.OrderID), BuyerID: "u-r", Amount: 4400, FromAccount: domain.AccountPayableOrders, RefundedAt: now},
	} {
		typ, v, data, err := codec.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, eventstore.Envelope{EventID: fmt.Sprintf("dying-%d", i), EventType: typ, SchemaVersion: v, OccurredAt: now, Data: data})
	}
	version := 0
	for _, c := range commits {
		version += len(c.Events)
	}
	if _, err := e.Events.Append(ctx, ref, commits[len(commits)-1].Seq, version, "dying-commit", envs); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the reactor credited the wallet", func() bool { return e.wallet(t, "u-r").Balance == 4400 })
	time.Sleep(300 * time.Millisecond) // a second delivery must not credit again
	if w := e.wallet(t, "u-r"); w.Balance != 4400 || len(w.Entries) != 1 {
		t.Fatalf("wallet: %+v", w)
	}
	e.balanced(t)
}

func TestScenarioAccountNumbersMatchHoweverWritten(t *testing.T) {
	e, _ := scenarioEngine(t)
	o := e.submit(t, "u-a", "백승호", 1234)
	spaced := strings.ReplaceAll(e.cfg.CollectNumber, "-", " ")
	req := api.RecordDepositRequest{BankTxnID: "TX-ACCT", AccountNumber: spaced, DepositorName: o.DepositorName, Amount: 1234, DepositedAt: time.Now().UTC()}
	var first, again api.RecordDepositReply
	e.call(t, subjRecord, req, &first, nil)
	if first.Outcome != "matched" {
		t.Fatalf("account %q: %+v", spaced, first)
	}
	req.AccountNumber = e.cfg.CollectNumber // the same transaction, formatted as configured
	e.call(t, subjRecord, req, &again, nil)
	if again.Outcome != "duplicate" || again.DepositID != first.DepositID {
		t.Fatalf("same transaction, other formatting: %+v", again)
	}
}

// TestRecordingThatDiedAfterPayingIsNotRefundedLater: recording a transfer
// died after order.paid and before deposit.recorded; the order was then
// cancelled (its payment refunded). The scanner's retry of the same
// transaction must see the payment, not credit the wallet a second time.
func TestRecordingThatDiedAfterPayingIsNotRefundedLater(t *testing.T) {
	e, _ := scenarioEngine(t)
	o := e.submit(t, "u-d", "서지우", 39000)
	ctx := context.Background()
	depID := domain.NewDepositID(e.cfg.CollectNumber, "TX-DIED")
	ref := eventstore.Ref{Type: domain.AggregateOrder, ID: o.OrderID}
	commits, err := e.Events.Load(ctx, ref, 0)
	if err != nil {
		t.Fatal(err)
	}
	typ, v, data, err := domain.Events().Encode(domain.OrderPaid{OrderID: domain.OrderID(o.OrderID), DepositID: depID, Amount: 39000,
		FromAccount: domain.AccountBank(e.cfg.CollectNumber), PaidAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Events.Append(ctx, ref, commits[0].Seq, 1, "died-commit", []eventstore.Envelope{{EventID: "died-1", EventType: typ, SchemaVersion: v, OccurredAt: time.Now().UTC(), Data: data}}); err != nil {
		t.Fatal(err)
	}
	var c api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, &c, nil)
	if c.Refund == nil || c.Refund.Amount != 39000 {
		t.Fatalf("cancel of the paid order: %+v", c)
	}
	var rep api.RecordDepositReply
	e.call(t, subjRecord, api.RecordDepositRequest{BankTxnID: "TX-DIED", AccountNumber: e.cfg.CollectNumber,
		DepositorName: o.DepositorName, Amount: 39000, DepositedAt: time.Now().UTC()}, &rep, nil)
	if rep.Outcome != "matched" || rep.DepositID != string(depID) {
		t.Fatalf("retried recording: %+v, want matched", rep)
	}
	time.Sleep(300 * time.Millisecond) // the order reactor must not credit anything more either
	if w := e.wallet(t, "u-d"); w.Balance != 39000 || len(w.Entries) != 1 {
		t.Fatalf("wallet: %+v, want the one order refund", w)
	}
	if bal := e.balanced(t); bal[domain.AccountBank(e.cfg.CollectNumber)] != 39000 {
		t.Fatalf("bank: %v", bal)
	}
}

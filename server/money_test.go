package server_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

const (
	subjWithdraw = "bankbook.cmd.wallet.withdraw"
	subjResolve  = "bankbook.cmd.deposit.resolve"
)

// moneyEngine runs with the simulated bank and firm-banking provider.
func moneyEngine(t *testing.T) (*testEngine, *bank) {
	return scenarioEngine(t, func(c *engine.Config) { c.BankSim = true; c.ScanInterval = engine.Duration(200 * time.Millisecond) })
}

// fund gives user a wallet balance through a late deposit for a cancelled order.
func fund(t *testing.T, e *testEngine, bk *bank, user, name string, amount int64) {
	t.Helper()
	o := e.submit(t, user, name, amount)
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, nil, nil)
	if rep := bk.deposit(o.DepositorName, amount); rep.Outcome != "refunded_to_wallet" {
		t.Fatalf("funding %s: %+v", user, rep)
	}
}

var payee = domain.BankAccount{Bank: "신한은행", Number: "110-123-456789", Holder: "김민수"}

// verifiesClean checks that audit verify finds nothing in the engine's log.
func verifiesClean(t *testing.T, e *testEngine) {
	t.Helper()
	if rep, err := audit.Verify(ctxT(t), audit.Options{Reader: e.Events.Reader(), Codec: domain.Events(), TempDir: t.TempDir()}); err != nil || !rep.OK {
		t.Errorf("audit verify: %v %+v", err, rep.Findings)
	}
}

func TestWithdrawalSettlesWithTheProvidersFee(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-w", "김민수", 25000)
	var rep api.WithdrawReply
	e.call(t, subjWithdraw, map[string]any{"user_id": "u-w", "amount": 20000, "bank_account": payee}, &rep, client.WithIdempotencyKey("wd-1"))
	if rep.Status != "requested" || rep.PayoutID == "" {
		t.Fatalf("withdraw: %+v", rep)
	}
	if w := e.wallet(t, "u-w"); w.Balance != 5000 {
		t.Fatalf("wallet after the request: %+v", w)
	}
	bankAcct := domain.AccountBank(e.cfg.CollectNumber)
	testenv.Eventually(t, 20*time.Second, "payout settled", func() bool {
		return e.balanced(t)[domain.AccountPayoutsPending] == 0 && e.balanced(t)[domain.AccountBankFees] == 500
	})
	bal := e.balanced(t)
	if bal[bankAcct] != 25000-20000-500 || bal[domain.AccountWallet("u-w")] != -5000 {
		t.Fatalf("ledger after settlement: %v", bal)
	}
	// The same request again is the same payout, not a second one.
	var again api.WithdrawReply
	if r := e.call(t, subjWithdraw, map[string]any{"user_id": "u-w", "amount": 20000, "bank_account": payee}, &again, client.WithIdempotencyKey("wd-1")); !r.Replayed || again.PayoutID != rep.PayoutID {
		t.Fatalf("repeat: %+v", again)
	}
	if w := e.wallet(t, "u-w"); w.Balance != 5000 {
		t.Fatalf("wallet after a repeat: %+v", w)
	}
	verifiesClean(t, e)
}

// TestWithdrawalBelowTheMinimumIsRefused: with --min-withdrawal 1000, a
// withdrawal of 999 is refused naming the minimum, and writes nothing; one
// of 1000 is made.
func TestWithdrawalBelowTheMinimumIsRefused(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) {
		c.BankSim = true
		c.ScanInterval = engine.Duration(200 * time.Millisecond)
		c.MinWithdrawal = 1000
	})
	fund(t, e, bk, "u-m", "김민수", 5000)
	before := e.lastSeq(t)
	_, err := e.c.Call(ctxT(t), subjWithdraw, map[string]any{"user_id": "u-m", "amount": 999, "bank_account": payee}, nil, nil)
	if ce, _ := err.(*client.Error); ce == nil || ce.Status != 400 || ce.Code != "invalid_input" || ce.Details["min"] != float64(1000) {
		t.Fatalf("withdrawing 999 with a minimum of 1000: %v, want 400 invalid_input with details.min 1000", err)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the refused withdrawal wrote: last seq %d → %d", before, after)
	}
	var rep api.WithdrawReply
	e.call(t, subjWithdraw, map[string]any{"user_id": "u-m", "amount": 1000, "bank_account": payee}, &rep, nil)
	if rep.Status != "requested" {
		t.Fatalf("withdrawing the minimum: %+v", rep)
	}
	if w := e.wallet(t, "u-m"); w.Balance != 4000 {
		t.Fatalf("wallet after withdrawing the minimum: %+v", w)
	}
}

func TestFailedWithdrawalReturnsToTheWallet(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-f", "이영희", 8000)
	closed := domain.BankAccount{Bank: "우리은행", Number: "000000000000", Holder: "이영희"} // the provider fails it
	e.call(t, subjWithdraw, map[string]any{"user_id": "u-f", "amount": 8000, "bank_account": closed}, nil, nil)
	testenv.Eventually(t, 20*time.Second, "reversal", func() bool { return e.wallet(t, "u-f").Balance == 8000 })
	w := e.wallet(t, "u-f")
	if len(w.Entries) != 3 || w.Entries[2].Kind != domain.CreditPayoutReversal {
		t.Fatalf("wallet: %+v", w)
	}
	bal := e.balanced(t)
	if bal[domain.AccountPayoutsPending] != 0 || bal[domain.AccountBankFees] != 0 || bal[domain.AccountWallet("u-f")] != -8000 {
		t.Fatalf("ledger: %v", bal)
	}
	verifiesClean(t, e)
}

func TestConcurrentWithdrawalsNeverOverdraw(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-c", "박지성", 10000)
	var mu sync.Mutex
	ok, refused := 0, 0
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := e.c.Call(ctxT(t), subjWithdraw, map[string]any{"user_id": "u-c", "amount": 3000, "bank_account": payee}, nil, nil)
			mu.Lock()
			defer mu.Unlock()
			switch ce, _ := err.(*client.Error); {
			case err == nil:
				ok++
			case ce != nil && ce.Status == 422 && ce.Code == "insufficient_funds":
				refused++
			default:
				t.Errorf("withdraw: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 3 || refused != 7 {
		t.Fatalf("%d withdrawals accepted, %d refused; want 3 and 7", ok, refused)
	}
	if w := e.wallet(t, "u-c"); w.Balance != 1000 {
		t.Fatalf("wallet: %+v", w)
	}
}

func TestResolvingOrphans(t *testing.T) {
	e, bk := moneyEngine(t)
	o := e.submit(t, "u-o", "오세훈", 15000)
	// Three orphans: a mistyped name (for the open order), and two strangers.
	typo := bk.deposit("오세후", 15000)
	forWallet := bk.deposit("모르는사람", 3000)
	forBank := bk.deposit("잘못보냄", 4000)
	for _, d := range []api.RecordDepositReply{typo, forWallet, forBank} {
		if d.Outcome != "orphaned" {
			t.Fatalf("setup: %+v", d)
		}
	}
	var r api.ResolveDepositReply
	e.call(t, subjResolve, map[string]any{"deposit_id": typo.DepositID, "action": "assign_order", "order_id": o.OrderID}, &r, nil)
	if v := e.order(t, o.OrderID); v.Status != "paid" || v.DepositIDs[0] != typo.DepositID || r.UserID != "" {
		t.Fatalf("assigned order: %+v; reply %+v", v, r)
	}
	// A second orphan assigned to the order, paid now: its buyer's wallet
	// gets it, and the reply names the wallet.
	twice := bk.deposit("오세혼", 15000)
	e.call(t, subjResolve, map[string]any{"deposit_id": twice.DepositID, "action": "assign_order", "order_id": o.OrderID}, &r, nil)
	if r.OrderID != o.OrderID || r.UserID != "u-o" {
		t.Fatalf("assigned to a paid order: %+v, want the buyer's wallet named", r)
	}
	if w := e.wallet(t, "u-o"); w.Balance != 15000 {
		t.Fatalf("buyer's wallet: %+v", w)
	}
	// The deposit says so too, once the refund is in the read models; the
	// one that paid the order names no wallet.
	for id, user := range map[string]string{twice.DepositID: "u-o", typo.DepositID: ""} {
		var v api.OrphanView
		e.call(t, api.DepositGet.Subject, api.DepositRequest{DepositID: id, ReadAfter: api.ReadAfter{MinSeq: r.Seq}}, &v, nil)
		if v.Resolution != "assign_order" || v.OrderID != o.OrderID || v.UserID != user {
			t.Fatalf("deposit %s after assign_order: %+v, want user_id %q", id, v, user)
		}
	}
	e.call(t, subjResolve, map[string]any{"deposit_id": forWallet.DepositID, "action": "refund_to_wallet", "user_id": "u-x"}, &r, nil)
	if w := e.wallet(t, "u-x"); w.Balance != 3000 {
		t.Fatalf("wallet: %+v", w)
	}
	e.call(t, subjResolve, map[string]any{"deposit_id": forBank.DepositID, "action": "refund_to_bank", "bank_account": payee}, &r, nil)
	if r.PayoutID == "" {
		t.Fatalf("refund to bank: %+v", r)
	}
	var orphans api.OrphansReply
	e.call(t, subjOrphans, struct{}{}, &orphans, nil)
	if len(orphans.Deposits) != 0 {
		t.Fatalf("orphans left: %+v", orphans.Deposits)
	}
	// An orphan is resolved once: the same resolution again answers as the
	// first did; another one is refused.
	e.call(t, subjResolve, map[string]any{"deposit_id": forWallet.DepositID, "action": "refund_to_wallet", "user_id": "u-x"}, &r, nil)
	if r.Outcome != "refund_to_wallet" || r.UserID != "u-x" {
		t.Fatalf("same resolution again: %+v", r)
	}
	// Refused as no orphan whatever the order would say: an open order of
	// another amount, or an unknown one, is not why it is refused.
	open := e.submit(t, "u-q", "권지민", 9000)
	for _, other := range []map[string]any{
		{"deposit_id": forWallet.DepositID, "action": "assign_order", "order_id": o.OrderID},
		{"deposit_id": forWallet.DepositID, "action": "assign_order", "order_id": open.OrderID},
		{"deposit_id": forWallet.DepositID, "action": "assign_order", "order_id": "o-unknown"},
		{"deposit_id": forWallet.DepositID, "action": "refund_to_wallet", "user_id": "u-y"},
	} {
		if ce := e.callErr(t, subjResolve, other, nil); ce.Status != 409 || ce.Code != "not_an_orphan" {
			t.Fatalf("second resolution %v: %+v", other, ce)
		}
	}
	if w := e.wallet(t, "u-y"); w.Balance != 0 {
		t.Fatalf("a refused resolution paid out: %+v", w)
	}
	// Bad input changes nothing.
	for _, body := range []map[string]any{
		{"deposit_id": forBank.DepositID, "action": "burn"},
		{"deposit_id": forBank.DepositID, "action": "refund_to_bank"},
		{"deposit_id": "nope", "action": "refund_to_wallet", "user_id": "u"},
	} {
		if ce := e.callErr(t, subjResolve, body, nil); ce.Status != 400 && ce.Status != 404 {
			t.Fatalf("%v: %+v", body, ce)
		}
	}
	testenv.Eventually(t, 20*time.Second, "refund to the bank settled", func() bool {
		return e.balanced(t)[domain.AccountPayoutsPending] == 0 && e.balanced(t)[domain.AccountBankFees] == 500
	})
	bal := e.balanced(t)
	if bal[domain.AccountSuspense] != 0 || bal[domain.AccountPayableOrders] != -15000 || bal[domain.AccountWallet("u-x")] != -3000 {
		t.Fatalf("ledger: %v", bal)
	}
	// A refund to the bank the provider fails reopens its orphan.
	failing := bk.deposit("또잘못보냄", 2000)
	closed := domain.BankAccount{Bank: "우리은행", Number: "000000000000", Holder: "이영희"}
	e.call(t, subjResolve, map[string]any{"deposit_id": failing.DepositID, "action": "refund_to_bank", "bank_account": closed}, &r, nil)
	testenv.Eventually(t, 20*time.Second, "the failed refund reopened", func() bool {
		var orphans api.OrphansReply
		e.call(t, subjOrphans, struct{}{}, &orphans, nil)
		return len(orphans.Deposits) == 1 && e.balanced(t)[domain.AccountSuspense] == -2000
	})
	verifiesClean(t, e)
}

func TestMoneyEndpointsRefuseBadInputAndWriteNothing(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-b", "조은비", 5000)
	orphan := bk.deposit("아무도아님", 100)
	before := e.lastSeq(t)
	acct := e.cfg.CollectNumber
	now := time.Now().UTC().Format(time.RFC3339Nano)
	cases := []struct {
		name, subject, body string
		status              int
		code                string
	}{
		{"record: missing bank_txn_id", subjRecord, `{"account_number":"` + acct + `","depositor_name":"a","amount":1,"deposited_at":"` + now + `"}`, 400, "invalid_input"},
		{"record: txn id with a space", subjRecord, `{"bank_txn_id":"T 1","account_number":"` + acct + `","depositor_name":"a","amount":1,"deposited_at":"` + now + `"}`, 400, "invalid_input"},
		{"record: zero amount", subjRecord, `{"bank_txn_id":"T1","account_number":"` + acct + `","depositor_name":"a","amount":0,"deposited_at":"` + now + `"}`, 400, "invalid_input"},
		{"record: no time", subjRecord, `{"bank_txn_id":"T1","account_number":"` + acct + `","depositor_name":"a","amount":1}`, 400, "invalid_input"},
		{"record: bad time", subjRecord, `{"bank_txn_id":"T1","account_number":"` + acct + `","depositor_name":"a","amount":1,"deposited_at":"yesterday"}`, 400, "invalid_input"},
		{"record: blank name", subjRecord, `{"bank_txn_id":"T1","account_number":"` + acct + `","depositor_name":" ","amount":1,"deposited_at":"` + now + `"}`, 400, "invalid_input"},
		{"record: unknown field", subjRecord, `{"bank_txn_id":"T1","account_number":"` + acct + `","depositor_name":"a","amount":1,"deposited_at":"` + now + `","memo":"x"}`, 400, "invalid_input"},
		{"withdraw: more than the balance", subjWithdraw, `{"user_id":"u-b","amount":5001,"bank_account":{"bank":"KB","number":"110-1","holder":"조"}}`, 422, "insufficient_funds"},
		{"withdraw: empty wallet", subjWithdraw, `{"user_id":"nobody","amount":1,"bank_account":{"bank":"KB","number":"110-1","holder":"조"}}`, 422, "insufficient_funds"},
		{"withdraw: no bank account", subjWithdraw, `{"user_id":"u-b","amount":1}`, 400, "invalid_input"},
		{"withdraw: letters in the account number", subjWithdraw, `{"user_id":"u-b","amount":1,"bank_account":{"bank":"KB","number":"12ab","holder":"조"}}`, 400, "invalid_input"},
		{"withdraw: negative", subjWithdraw, `{"user_id":"u-b","amount":-5,"bank_account":{"bank":"KB","number":"110-1","holder":"조"}}`, 400, "invalid_input"},
		{"resolve: unknown deposit", subjResolve, `{"deposit_id":"dep_nope","action":"refund_to_wallet","user_id":"u"}`, 404, "deposit_not_found"},
		{"resolve: wildcard deposit id", subjResolve, `{"deposit_id":">","action":"refund_to_wallet","user_id":"u"}`, 400, "invalid_input"},
		{"resolve: deposit id with a space", subjResolve, `{"deposit_id":"a b","action":"refund_to_wallet","user_id":"u"}`, 400, "invalid_input"},
		{"resolve: unknown action", subjResolve, `{"deposit_id":"` + orphan.DepositID + `","action":"burn"}`, 400, "invalid_input"},
		{"resolve: assign without order", subjResolve, `{"deposit_id":"` + orphan.DepositID + `","action":"assign_order"}`, 400, "invalid_input"},
		{"resolve: assign to an unknown order", subjResolve, `{"deposit_id":"` + orphan.DepositID + `","action":"assign_order","order_id":"nope"}`, 422, "order_gone"},
		{"resolve: to bank without account", subjResolve, `{"deposit_id":"` + orphan.DepositID + `","action":"refund_to_bank"}`, 400, "invalid_input"},
		{"wallet: bad user id", subjWallet, `{"user_id":"a.b"}`, 400, "invalid_input"},
		{"ledger: no account", subjAccount, `{}`, 400, "invalid_input"},
		{"ledger: bad cursor", subjAccount, `{"account":"x","cursor":"zz"}`, 400, "invalid_input"},
		{"orphans: limit too large", subjOrphans, `{"limit":501}`, 400, "invalid_input"},
		{"scan_complete: in the future", "bankbook.cmd.deposit.scan_complete", `{"account_number":"` + acct + `","complete_up_to":"2999-01-01T00:00:00Z"}`, 400, "invalid_input"},
		{"sim transfer: zero", "bankbook.sim.bank.transfer", `{"depositor_name":"a","amount":0}`, 400, "invalid_input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ce := e.callErr(t, tc.subject, []byte(tc.body), nil)
			if ce.Status != tc.status || ce.Code != tc.code || ce.Message == "" {
				t.Fatalf("got %d %s (%s), want %d %s", ce.Status, ce.Code, ce.Message, tc.status, tc.code)
			}
		})
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("refused requests wrote events: seq %d → %d", before, after)
	}
}

// deposit.get answers one deposit whatever became of it: an orphan with its
// candidates while it waits, then its resolution and where its money went
// (the wallet, the order, the payout); a matched deposit with the order it
// paid; 404 for one never recorded.
func TestDepositGet(t *testing.T) {
	e, bk := moneyEngine(t)
	paid := e.submit(t, "u-g1", "한지민", 12000)
	open := e.submit(t, "u-g2", "서강준", 3000)
	matched := bk.deposit(paid.DepositorName, 12000)
	orphan := bk.deposit("모르는사람", 3000)
	if matched.Outcome != "matched" || orphan.Outcome != "orphaned" {
		t.Fatalf("setup: %+v %+v", matched, orphan)
	}
	get := func(id string, minSeq api.Seq) api.OrphanView {
		t.Helper()
		var v api.OrphanView
		e.call(t, api.DepositGet.Subject, api.DepositRequest{DepositID: id, ReadAfter: api.ReadAfter{MinSeq: minSeq}}, &v, nil)
		return v
	}
	if v := get(orphan.DepositID, orphan.Seq); v.Outcome != "orphaned" || v.Resolution != "" || !slices.Contains(v.Candidates, open.OrderID) || v.Amount != 3000 {
		t.Fatalf("orphan: %+v, want orphaned with candidate %s", v, open.OrderID)
	}
	if v := get(matched.DepositID, matched.Seq); v.Outcome != "matched" || v.OrderID != paid.OrderID || len(v.Candidates) != 0 || v.Candidates == nil {
		t.Fatalf("matched: %+v, want matched to %s, candidates []", v, paid.OrderID)
	}
	var r api.ResolveDepositReply
	e.call(t, subjResolve, map[string]any{"deposit_id": orphan.DepositID, "action": "refund_to_wallet", "user_id": "u-g3"}, &r, nil)
	if v := get(orphan.DepositID, r.Seq); v.Resolution != "refund_to_wallet" || v.UserID != "u-g3" || len(v.Candidates) != 0 {
		t.Fatalf("resolved orphan: %+v, want refunded to u-g3's wallet", v)
	}
	toOrder, toBank := bk.deposit("서강주", 3000), bk.deposit("잘못보냄", 4000)
	e.call(t, subjResolve, map[string]any{"deposit_id": toOrder.DepositID, "action": "assign_order", "order_id": open.OrderID}, &r, nil)
	if v := get(toOrder.DepositID, r.Seq); v.Resolution != "assign_order" || v.OrderID != open.OrderID {
		t.Fatalf("orphan assigned: %+v, want order %s", v, open.OrderID)
	}
	e.call(t, subjResolve, map[string]any{"deposit_id": toBank.DepositID, "action": "refund_to_bank", "bank_account": payee}, &r, nil)
	if v := get(toBank.DepositID, r.Seq); v.Resolution != "refund_to_bank" || v.PayoutID == "" || v.PayoutID != r.PayoutID {
		t.Fatalf("orphan refunded to the bank: %+v, want payout %s", v, r.PayoutID)
	}
	if ce := e.callErr(t, api.DepositGet.Subject, api.DepositRequest{DepositID: "dep_never"}, nil); ce.Status != 404 || ce.Code != "deposit_not_found" {
		t.Fatalf("unknown deposit: %+v", ce)
	}
}

// A bank transaction recorded again is answered "duplicate" with what its
// recording said (docs/api.md, deposit.record): an orphan's later
// resolution does not turn up in it as though the recording had named an
// order or a wallet.
func TestDuplicateRepeatsTheRecordingNotItsResolution(t *testing.T) {
	e, bk := moneyEngine(t)
	o := e.submit(t, "u-d", "정다은", 7000)
	toOrder := bk.deposit("정다운", 7000)
	toWallet := bk.deposit("모르는분", 2000)
	for _, d := range []api.RecordDepositReply{toOrder, toWallet} {
		if d.Outcome != "orphaned" || d.OrderID != "" || d.UserID != "" {
			t.Fatalf("setup: %+v", d)
		}
	}
	e.call(t, subjResolve, map[string]any{"deposit_id": toOrder.DepositID, "action": "assign_order", "order_id": o.OrderID}, nil, nil)
	e.call(t, subjResolve, map[string]any{"deposit_id": toWallet.DepositID, "action": "refund_to_wallet", "user_id": "u-x"}, nil, nil)
	for i, first := range []api.RecordDepositReply{toOrder, toWallet} {
		var again api.RecordDepositReply
		e.call(t, subjRecord, api.RecordDepositRequest{
			BankTxnID: fmt.Sprintf("TXN-%04d", i+1), AccountNumber: e.cfg.CollectNumber,
			DepositorName: []string{"정다운", "모르는분"}[i], Amount: []int64{7000, 2000}[i], DepositedAt: time.Now().UTC(),
		}, &again, nil)
		if again.DepositID != first.DepositID || again.Outcome != "duplicate" {
			t.Fatalf("recorded again: %+v, first %+v", again, first)
		}
		if again.OrderID != first.OrderID || again.UserID != first.UserID || again.Reason != first.Reason {
			t.Errorf("duplicate of %s: order_id %q user_id %q reason %q; the recording said order_id %q user_id %q reason %q",
				first.DepositID, again.OrderID, again.UserID, again.Reason, first.OrderID, first.UserID, first.Reason)
		}
	}
}

package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/console"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

var seqRE = regexp.MustCompile(`data-testid="result-seq">(\d+)<`)

// An operator resolves an orphan through its candidate: the confirmation
// states the effect, the POST resolves it once however often the form is
// sent (one deposit.resolved event, the order paid once), the suspense
// account drains, and a later stale form gets the API's error.
func TestResolveOrphanThroughItsCandidateOnce(t *testing.T) {
	env := start(t, nil)
	order, dep := env.orphanScene(t, "buyer-1", 12000, "txn-1")
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName]).must(t, http.StatusOK, `data-testid="count-orphans-value">1<`)

	list := b.get("/console/orphans").must(t, http.StatusOK, `data-deposit-id="`+dep.DepositID+`"`, `data-testid="orphan-candidate"`,
		`data-testid="assign-candidate" data-order-id="`+order.OrderID+`"`, "₩12,000")

	confirm := b.get("/console/orphans/" + dep.DepositID + "/resolve?" + url.Values{"action": {"assign_order"}, "order_id": {order.OrderID}}.Encode())
	confirm.must(t, http.StatusOK, `data-testid="effect-order-id">`+order.OrderID+`<`, `data-testid="effect-order-status">awaiting_deposit<`,
		`data-testid="effect-suspense-after">₩0<`, `data-testid="resolve-confirm"`)
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}, "action": {"assign_order"}, "order_id": {order.OrderID}}
	_ = list

	first := b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusOK, `data-testid="result"`, `data-testid="resolve-order-link">`+order.OrderID+`<`)
	if first.has(`data-testid="result-replayed"`) {
		t.Error("the first submission says it was replayed")
	}
	second := b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusOK, `data-testid="result-replayed"`)
	if a, b := first.field(t, seqRE), second.field(t, seqRE); a != b {
		t.Errorf("the double submission answered seq %s and %s; want the first's, replayed", a, b)
	}
	if n := count(env.history(t, "deposit", dep.DepositID), "deposit.resolved"); n != 1 {
		t.Errorf("%d deposit.resolved events, want 1", n)
	}
	if n := count(env.history(t, "order", order.OrderID), "order.paid"); n != 1 {
		t.Errorf("%d order.paid events, want 1", n)
	}
	env.waitOrphans(t, 0)
	b.get("/console/orders/"+order.OrderID).must(t, http.StatusOK, `data-testid="order-status">paid<`)
	testenv.CheckFor(t, 10*time.Second, func() error {
		rep, _, err := client.Do(ctxT(t), env.op, api.LedgerAccount, api.LedgerAccountRequest{Account: "liabilities:suspense:unmatched"}, nil)
		if err == nil && rep.Balance != 0 {
			return errNotDrained
		}
		return err
	})

	// A stale form from another tab, another resolution with its own key:
	// the engine refuses, the page says why.
	stale := url.Values{"csrf": form["csrf"], "idempotency_key": {"console-stale-tab"}, "action": {"refund_to_wallet"}, "user_id": {"buyer-1"}}
	p := b.post("/console/orphans/"+dep.DepositID+"/resolve", stale).must(t, http.StatusConflict, `data-testid="error-code">not_an_orphan<`)
	if p.has(`data-testid="result"`) {
		t.Error("a refused resolution shows a result")
	}
	// The confirmation of a resolved deposit says it is no longer queued.
	b.get("/console/orphans/"+dep.DepositID+"/resolve?action=assign_order&order_id="+order.OrderID).must(t, http.StatusNotFound, "not_in_orphan_queue")
	if n := count(env.history(t, "deposit", dep.DepositID), "deposit.resolved"); n != 1 {
		t.Errorf("%d deposit.resolved events after the stale form, want 1", n)
	}
}

// The confirmation of an assignment says what the engine does with the
// deposit: it pays an order awaiting that amount, is refused by one awaiting
// another, and goes to the buyer's wallet of an order already paid; the
// assignment confirmed then does what it said.
func TestAssignConfirmationSaysWhatTheOrderDoes(t *testing.T) {
	env := start(t, nil)
	paid, dep := env.orphanScene(t, "buyer-4", 12000, "txn-4")
	if rep := env.recordDeposit(t, "txn-5", paid.DepositorName, 12000); rep.Outcome != "matched" {
		t.Fatalf("deposit %+v: want it to pay the order", rep)
	}
	other, _, err := client.Do(ctxT(t), env.op, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "buyer-5", BuyerName: "이영희", Amount: 15000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	testenv.CheckFor(t, 10*time.Second, func() error {
		if !b.get("/console/orders/" + paid.OrderID).has(`data-testid="order-status">paid<`) {
			return errNotYet
		}
		return nil
	})
	assign := func(order string) page {
		return b.get("/console/orphans/" + dep.DepositID + "/resolve?" + url.Values{"action": {"assign_order"}, "order_id": {order}}.Encode())
	}

	mismatch := assign(other.OrderID).must(t, http.StatusOK, `class="warning" data-testid="effect-warning">`, "(amount_mismatch)", "₩15,000")
	if mismatch.has("becomes paid") {
		t.Error("the confirmation of an order awaiting another amount says it becomes paid")
	}
	// The engine refuses it, so the suspense account keeps the deposit:
	// the page must not show it drained.
	if mismatch.has("drains by") || !mismatch.has(`data-testid="effect-suspense-after">-₩12,000<`) {
		t.Error("the confirmation of an assignment the engine refuses shows the suspense account drained")
	}
	confirm := assign(paid.OrderID).must(t, http.StatusOK, `data-testid="effect-order-status">paid<`,
		`<dd data-testid="effect-order-outcome">The order is paid and takes no payment`, "wallet (buyer-4)", "(deposit_refund)")
	if confirm.has("refuse") {
		t.Error("the confirmation of a paid order says the engine refuses the assignment")
	}
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}, "action": {"assign_order"}, "order_id": {paid.OrderID}}
	b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusOK, `data-testid="result"`)
	testenv.CheckFor(t, 10*time.Second, func() error {
		w, _, err := client.Do(ctxT(t), env.op, api.WalletGet, api.WalletRequest{UserID: "buyer-4"}, nil)
		if err == nil && w.Balance != 12000 {
			return fmt.Errorf("buyer-4's wallet holds %d, want the deposit's 12000", w.Balance)
		}
		return err
	})
}

// The refund confirmations state the wallet's balance after, and the bank
// account with the firm-banking fee; a refund by bank transfer leads to
// its payout.
func TestRefundConfirmations(t *testing.T) {
	env := start(t, nil)
	_, dep := env.orphanScene(t, "buyer-2", 30000, "txn-2")
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(kimName, kimPassword)

	b.get("/console/orphans/"+dep.DepositID+"/resolve?action=refund_to_wallet&user_id=buyer-2").must(t, http.StatusOK,
		`data-testid="effect-user-id">buyer-2<`, `data-testid="effect-wallet-after">₩30,000<`, "No firm-banking fee")
	q := url.Values{"action": {"refund_to_bank"}, "bank": {"신한은행"}, "number": {"110-123-456789"}, "holder": {"김민수"}}
	confirm := b.get("/console/orphans/"+dep.DepositID+"/resolve?"+q.Encode()).must(t, http.StatusOK,
		`data-testid="effect-bank-account">신한은행`, "₩500", "expenses:bank-fees", "110-123-456789")
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}}
	for k, v := range q {
		form[k] = v
	}
	done := b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusOK, `data-testid="resolve-payout-link">`)
	payout := regexp.MustCompile(`data-testid="resolve-payout-link">([^<]+)<`).FindStringSubmatch(done.body)[1]
	testenv.CheckFor(t, 10*time.Second, func() error {
		if p := b.get("/console/payouts/" + payout); p.status != http.StatusOK {
			return errNotYet
		}
		return nil
	})
	b.get("/console/payouts/"+payout).must(t, http.StatusOK, `data-testid="payout-status">requested<`, "110-123-456789", `data-testid="payout-fee"`)
	b.get("/console/payouts?status=requested").must(t, http.StatusOK, `data-payout-id="`+payout+`"`)
	b.get("/console/").must(t, http.StatusOK, `data-testid="count-payouts-requested-value">1<`)

	// Input the API refuses is shown with its code before anything is sent.
	b.get("/console/orphans/"+dep.DepositID+"/resolve?action=refund_to_moon").must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`,
		`data-testid="error-message">action: must be`)
}

// An auditor sees the orphans but no action form; a forged POST (with the
// auditor's own valid CSRF token) is refused by the NATS server's
// permissions, shown as such, and changes nothing.
func TestAuditorSeesButCannotAct(t *testing.T) {
	env := start(t, nil)
	order, dep := env.orphanScene(t, "buyer-3", 9000, "txn-3")
	env.waitOrphans(t, 1)
	b := env.browser(t)
	home := b.loginOK(audreyName, env.seeds[audreyName])
	list := b.get("/console/orphans").must(t, http.StatusOK, `data-deposit-id="`+dep.DepositID+`"`, `data-testid="orphan-candidate"`)
	for _, button := range []string{`data-testid="assign-candidate"`, `data-testid="refund-wallet"`, `data-testid="refund-bank"`, `data-testid="resolve-confirm"`} {
		if list.has(button) {
			t.Errorf("the auditor's orphan page carries %s", button)
		}
	}
	confirm := b.get("/console/orphans/"+dep.DepositID+"/resolve?action=assign_order&order_id="+order.OrderID).must(t, http.StatusOK, `data-testid="read-only"`)
	if confirm.has(`data-testid="resolve-form"`) {
		t.Error("the auditor's confirmation carries the resolve form")
	}
	forged := url.Values{"csrf": {home.field(t, csrfRE)}, "idempotency_key": {"console-forged"}, "action": {"assign_order"}, "order_id": {order.OrderID}}
	b.post("/console/orphans/"+dep.DepositID+"/resolve", forged).must(t, http.StatusForbidden, `data-testid="error-code">forbidden<`, "refused by the NATS server")
	if n := count(env.history(t, "deposit", dep.DepositID), "deposit.resolved"); n != 0 {
		t.Errorf("the auditor's forged POST resolved the deposit (%d events)", n)
	}
	env.waitOrphans(t, 1)
}

// Every action POST needs the session's CSRF token: without it, or with
// another session's, the console answers 403 and sends nothing.
func TestActionWithoutCSRFIsRefused(t *testing.T) {
	env := start(t, nil)
	order, dep := env.orphanScene(t, "buyer-4", 7000, "txn-4")
	env.waitOrphans(t, 1)
	a, other := env.browser(t), env.browser(t)
	a.loginOK(opsName, env.seeds[opsName])
	otherToken := other.loginOK(kimName, kimPassword).field(t, csrfRE)
	for name, token := range map[string]string{"missing": "", "another session's": otherToken, "forged": strings.Repeat("A", 43)} {
		form := url.Values{"idempotency_key": {"console-" + name}, "action": {"assign_order"}, "order_id": {order.OrderID}}
		if token != "" {
			form.Set("csrf", token)
		}
		a.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusForbidden, `data-testid="error-code">csrf<`)
	}
	a.post("/console/notifications/ntf_x/redrive", url.Values{}).must(t, http.StatusForbidden, `data-testid="error-code">csrf<`)
	a.post("/console/deadletters/1/redrive", url.Values{}).must(t, http.StatusForbidden, `data-testid="error-code">csrf<`)
	a.post("/console/deadletters/1/discard", url.Values{"idempotency_key": {"console-x"}, "reason": {"r"}}).must(t, http.StatusForbidden, `data-testid="error-code">csrf<`)
	if n := count(env.history(t, "deposit", dep.DepositID), "deposit.resolved"); n != 0 {
		t.Errorf("a POST without a valid CSRF token resolved the deposit (%d events)", n)
	}
}

// The orphan list pages with the API's cursors: a next link while there is
// more, and a link back to the first page.
func TestOrphanPagination(t *testing.T) {
	env := start(t, nil)
	for i, buyer := range []string{"buyer-a", "buyer-b", "buyer-c"} {
		env.orphanScene(t, buyer, int64(1000*(i+1)), "txn-p"+buyer)
	}
	env.waitOrphans(t, 3)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	for _, bad := range []string{"0", "501", "-5", "1e2", "x"} {
		b.get("/console/orphans?limit="+bad).must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`, "limit")
	}
	first := b.get("/console/orphans?limit=2").must(t, http.StatusOK, `data-testid="page-next"`)
	if n := strings.Count(first.body, `data-testid="orphan-row"`); n != 2 || first.has(`data-testid="page-first"`) {
		t.Fatalf("first page: %d rows (want 2), first-page link %v", n, first.has(`data-testid="page-first"`))
	}
	next := regexp.MustCompile(`href="([^"]+)" id="page-next"`).FindStringSubmatch(first.body)[1]
	second := b.get(strings.ReplaceAll(next, "&amp;", "&")).must(t, http.StatusOK, `data-testid="page-first"`)
	if n := strings.Count(second.body, `data-testid="orphan-row"`); n != 1 || second.has(`data-testid="page-next"`) {
		t.Errorf("second page: %d rows (want 1), next link %v", n, second.has(`data-testid="page-next"`))
	}
}

// closedOrphanScene submits an order, cancels it at once (the buyer says
// nothing was sent) and records a transfer made a moment before the cancel
// under its depositor name cut short by its last digit: an orphan whose
// candidate is the cancelled order.
func (env *testEnv) closedOrphanScene(t *testing.T, buyer string, amount int64, txn string) (order api.SubmitOrderReply, deposit api.RecordDepositReply) {
	t.Helper()
	order, _, err := client.Do(ctxT(t), env.op, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: buyer, BuyerName: "박지성", Amount: amount}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	no := false
	if _, _, err := client.Do(ctxT(t), env.op, api.OrderCancel, api.CancelOrderRequest{OrderID: order.OrderID, Deposited: &no}, nil); err != nil {
		t.Fatal(err)
	}
	name := order.DepositorName[:len(order.DepositorName)-1]
	deposit, _, err = client.Do(ctxT(t), env.op, api.DepositRecord, api.RecordDepositRequest{BankTxnID: txn, AccountNumber: "123401-04-567890",
		DepositorName: name, Amount: amount, DepositedAt: sent}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if deposit.Outcome != "orphaned" {
		t.Fatalf("deposit %+v: want an orphan", deposit)
	}
	return order, deposit
}

// The orphan page says each candidate's status and what assigning to it
// does, so that an operator tells an order the deposit pays from a
// cancelled one whose buyer's wallet it is refunded to.
func TestOrphanPageTellsOpenCandidateFromClosed(t *testing.T) {
	env := start(t, nil)
	open, openDep := env.orphanScene(t, "buyer-o", 11000, "txn-o")
	closed, closedDep := env.closedOrphanScene(t, "buyer-c", 13000, "txn-c")
	orphans := env.waitOrphans(t, 2)
	for _, o := range orphans {
		if len(o.Candidates) != 1 {
			t.Fatalf("orphan %s suggests %v, want one candidate", o.DepositID, o.Candidates)
		}
	}
	for _, name := range []string{opsName, audreyName} {
		b := env.browser(t)
		b.loginOK(name, env.seeds[name])
		list := b.get("/console/orphans").must(t, http.StatusOK, `data-deposit-id="`+openDep.DepositID+`"`, `data-deposit-id="`+closedDep.DepositID+`"`)
		row := func(dep string) string {
			start := strings.Index(list.body, `data-deposit-id="`+dep+`"`)
			end := strings.Index(list.body[start:], "</tr>")
			return list.body[start : start+end]
		}
		if r := row(openDep.DepositID); !strings.Contains(r, `data-testid="orphan-candidate-status">awaiting_deposit<`) || !strings.Contains(r, "pays the order") {
			t.Errorf("%s: the open candidate %s is not shown as open, paid by the deposit: %s", name, open.OrderID, r)
		}
		r := row(closedDep.DepositID)
		if !strings.Contains(r, `data-testid="orphan-candidate-status">cancelled<`) || !strings.Contains(r, "buyer-c") || !strings.Contains(r, "wallet") {
			t.Errorf("%s: the cancelled candidate %s is not shown as cancelled, refunded to its buyer's wallet: %s", name, closed.OrderID, r)
		}
		if strings.Contains(r, "pays the order") {
			t.Errorf("%s: the cancelled candidate %s is said to be paid", name, closed.OrderID)
		}
	}
}

// Assigning an orphan to its cancelled candidate credits the buyer's
// wallet, as the API does, and the confirmation and the result say so:
// neither says the order is paid. A second submit does nothing again.
func TestAssignToCancelledCandidateSaysWalletRefund(t *testing.T) {
	env := start(t, nil)
	closed, dep := env.closedOrphanScene(t, "buyer-c", 13000, "txn-c")
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	confirm := b.get("/console/orphans/"+dep.DepositID+"/resolve?"+url.Values{"action": {"assign_order"}, "order_id": {closed.OrderID}}.Encode()).
		must(t, http.StatusOK, `data-testid="effect-order-status">cancelled<`, "wallet (buyer-c)", "within the name grace of 24h)")
	if confirm.has("becomes paid") {
		t.Error("the confirmation says the cancelled order becomes paid")
	}
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}, "action": {"assign_order"}, "order_id": {closed.OrderID}}
	whatRE := regexp.MustCompile(`data-testid="result-what">([^<]*)<`)
	for i := range 2 {
		res := b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusOK, `data-testid="result"`)
		what := res.field(t, whatRE)
		if !strings.Contains(what, "wallet") || !strings.Contains(what, "buyer-c") || strings.Contains(what, "paid") {
			t.Errorf("submit %d: the result says %q; want the buyer's wallet credited, the order not paid", i+1, what)
		}
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		w, _, err := client.Do(ctxT(t), env.op, api.WalletGet, api.WalletRequest{UserID: "buyer-c"}, nil)
		if err == nil && w.Balance != 13000 {
			return fmt.Errorf("buyer-c's wallet holds %d, want the deposit's 13000", w.Balance)
		}
		return err
	})
	if n := count(env.history(t, "order", closed.OrderID), "order.refunded"); n != 1 {
		t.Errorf("%d order.refunded events, want 1", n)
	}
	if n := count(env.history(t, "order", closed.OrderID), "order.paid"); n != 0 {
		t.Errorf("%d order.paid events for the cancelled order, want 0", n)
	}
}

// An engine run with --name-grace 0 frees a closed order's name at once: an
// assignment to a cancelled candidate is refused (order_gone), and the list
// and the confirmation say so, as they do past a longer grace, instead of
// taking the grace for unknown.
func TestAssignToACandidateWithNoNameGraceSaysRefused(t *testing.T) {
	env := start(t, func(c *console.Config) { c.NameGrace = 0 }, func(c *engine.Config) { c.NameGrace = 0 })
	closed, dep := env.closedOrphanScene(t, "buyer-z", 15000, "txn-z")
	env.waitOrphans(t, 1)
	env.clock.Add(time.Hour) // the console's clock well past the order's closing
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	b.get("/console/orphans").must(t, http.StatusOK, "refused: the order closed longer ago than the name grace")
	confirm := b.get("/console/orphans/"+dep.DepositID+"/resolve?"+url.Values{"action": {"assign_order"}, "order_id": {closed.OrderID}}.Encode()).
		must(t, http.StatusOK, `data-testid="effect-warning">`, "order_gone")
	if confirm.has("drains by") {
		t.Error("the confirmation says the suspense account drains, for an assignment the engine refuses")
	}
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}, "action": {"assign_order"}, "order_id": {closed.OrderID}}
	b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusUnprocessableEntity, `data-testid="error-code">order_gone<`)
}

// With the engine's name grace known, the console says what an assignment
// to a cancelled candidate does: within the grace its buyer's wallet is
// credited; past it the engine refuses (order_gone), and the list and the
// confirmation say so, the suspense account keeping the deposit.
func TestAssignToACandidateClosedPastTheNameGraceSaysRefused(t *testing.T) {
	const grace = time.Second
	env := start(t, func(c *console.Config) { c.NameGrace = grace }, func(c *engine.Config) { c.NameGrace = engine.Duration(grace) })
	closed, dep := env.closedOrphanScene(t, "buyer-g", 14000, "txn-g")
	env.waitOrphans(t, 1)
	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	confirmPath := "/console/orphans/" + dep.DepositID + "/resolve?" + url.Values{"action": {"assign_order"}, "order_id": {closed.OrderID}}.Encode()
	b.get(confirmPath).must(t, http.StatusOK, `data-testid="effect-order-outcome">`, "within the name grace of 1s", "wallet (buyer-g)")

	time.Sleep(grace + 200*time.Millisecond) // the engine's clock: its grace runs out
	env.clock.Add(grace + 200*time.Millisecond)
	b.get("/console/orphans").must(t, http.StatusOK, "refused: the order closed longer ago than the name grace")
	confirm := b.get(confirmPath).must(t, http.StatusOK, `data-testid="effect-warning">`, "order_gone")
	if confirm.has("drains by") {
		t.Error("the confirmation says the suspense account drains, for an assignment the engine refuses")
	}
	form := url.Values{"csrf": {confirm.field(t, csrfRE)}, "idempotency_key": {confirm.field(t, keyRE)}, "action": {"assign_order"}, "order_id": {closed.OrderID}}
	b.post("/console/orphans/"+dep.DepositID+"/resolve", form).must(t, http.StatusUnprocessableEntity, `data-testid="error-code">order_gone<`)
}

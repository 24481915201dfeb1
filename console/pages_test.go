package console_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Every read page renders what the API answers, for an operator and an
// auditor alike, and shows the API's error code when it refuses.
func TestReadPages(t *testing.T) {
	env := start(t, nil)
	order, dep := env.orphanScene(t, "buyer-r", 15000, "txn-r1")
	paid, _, err := client.Do(ctxT(t), env.op, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "buyer-s", BuyerName: "이영희", Amount: 8000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.recordDeposit(t, "txn-r2", paid.DepositorName, 8000)
	deposited := true
	cancel, _, err := client.Do(ctxT(t), env.op, api.OrderCancel, api.CancelOrderRequest{OrderID: order.OrderID, Deposited: &deposited}, nil)
	if err != nil || cancel.Status != domain.StatusCancelReserved {
		t.Fatalf("cancel: %+v %v", cancel, err)
	}
	env.waitOrphans(t, 1)
	// A reconciliation run: the paid order's deposit matched, one
	// transaction the engine never recorded.
	lines := []api.StatementLine{
		{BankTxnID: "txn-r2", AccountNumber: "123401-04-567890", DepositorName: paid.DepositorName, Amount: 8000, DepositedAt: time.Now().Add(-time.Minute)},
		{BankTxnID: "txn-unknown", AccountNumber: "123401-04-567890", DepositorName: "박철수", Amount: 5000, DepositedAt: time.Now().Add(-time.Minute)},
	}
	sum := sha256.Sum256([]byte("statement-1"))
	run, _, err := client.Do(ctxT(t), env.op, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, _, err := client.Do(ctxT(t), env.op, api.OrderGet, api.GetOrderRequest{OrderID: paid.OrderID, ReadAfter: api.ReadAfter{MinSeq: run.Seq}}, nil)
		return err
	})

	// A second transfer for the paid order goes to its buyer's wallet,
	// which then pays the buyer's next order.
	env.recordDeposit(t, "txn-r3", paid.DepositorName, 8000)
	fromWallet, _, err := client.Do(ctxT(t), env.op, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "buyer-s", BuyerName: "이영희", Amount: 8000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, _, err := client.Do(ctxT(t), env.op, api.OrderPay, api.PayFromWalletRequest{OrderID: fromWallet.OrderID}, nil)
		return err
	})

	// A distributor's store with a bill.
	if _, _, err := client.Do(ctxT(t), env.op, api.StoreLink, api.LinkStoreRequest{DistributorID: "d-c", StoreID: "s-c", StoreName: "한울식당", DistributorName: "한울유통"}, nil); err != nil {
		t.Fatal(err)
	}
	bill, _, err := client.Do(ctxT(t), env.op, api.BillIssue, api.IssueBillRequest{DistributorID: "d-c", StoreID: "s-c", Amount: 50000, Memo: "12월분"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		_, _, err := client.Do(ctxT(t), env.op, api.BillList, api.BillListRequest{DistributorID: "d-c", StoreID: "s-c", PageRequest: api.PageRequest{ReadAfter: api.ReadAfter{MinSeq: bill.Seq}}}, nil)
		return err
	})

	for _, who := range []struct{ name, secret string }{{opsName, env.seeds[opsName]}, {audreyName, env.seeds[audreyName]}} {
		t.Run(who.name, func(t *testing.T) {
			b := env.browser(t)
			b.loginOK(who.name, who.secret).must(t, http.StatusOK, `data-testid="count-orphans-value">1<`, `data-testid="health-status"`, "not_ready")

			b.get("/console/orders").must(t, http.StatusOK, `data-testid="order-search"`)
			b.get("/console/orders?"+url.Values{"depositor_name": {order.DepositorName}}.Encode()).must(t, http.StatusOK,
				`data-order-id="`+order.OrderID+`"`, `data-testid="order-status">cancel_reserved<`, `data-testid="order-cancel-at">20`)
			b.get("/console/orders?status=paid").must(t, http.StatusOK, `data-order-id="`+paid.OrderID+`"`)
			if p := b.get("/console/orders?"+url.Values{"buyer_name": {"이 영희"}}.Encode()).must(t, http.StatusOK, `data-order-id="`+paid.OrderID+`"`, `id="search-buyer-name"`); p.has(`data-order-id="` + order.OrderID + `"`) {
				t.Error("the search by 이영희 lists 김민수's order")
			}
			b.get("/console/orders?"+url.Values{"order_id": {"no-such-order"}}.Encode()).must(t, http.StatusOK, `data-testid="orders-empty"`)
			b.get("/console/orders/"+order.OrderID).must(t, http.StatusOK, `data-testid="order-status">cancel_reserved<`, `data-testid="order-cancel-at"`)
			b.get("/console/orders/"+fromWallet.OrderID).must(t, http.StatusOK, `data-testid="order-status">paid<`, `data-testid="order-paid-from">from the buyer's wallet<`)
			if b.get("/console/orders/" + paid.OrderID).has(`data-testid="order-paid-from"`) {
				t.Error("an order paid by a transfer says it was paid from the wallet")
			}
			b.get("/console/orders/no-such-order").must(t, http.StatusNotFound, `data-testid="error-code">order_not_found<`)
			b.get("/console/orders?status=lost").must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)

			b.get("/console/wallets").must(t, http.StatusOK, `data-testid="wallet-search"`)
			b.get("/console/wallets?user_id=buyer-r").must(t, http.StatusOK, `data-testid="wallet-balance">₩0<`)
			b.get("/console/bills").must(t, http.StatusOK, `data-testid="bills-search"`, `id="nav-bills" data-testid="nav-bills" href="/console/bills" class="active"`)
			b.get("/console/bills?distributor_id=d-c").must(t, http.StatusOK, `data-store-id="s-c"`, `data-testid="store-account">`+bill.DedicatedAccount.Bank+" "+bill.DedicatedAccount.Number)
			b.get("/console/bills?distributor_id=d-none").must(t, http.StatusOK, `data-testid="stores-empty"`)
			b.get("/console/bills?distributor_id=d-c&store_id=s-c").must(t, http.StatusOK, `data-testid="store-name">한울식당<`,
				`data-bill-id="`+bill.BillID+`"`, `data-testid="bill-status">active<`, `data-testid="bill-outstanding">₩50,000<`, "12월분")
			b.get("/console/bills?distributor_id=d-c&store_id=s-none").must(t, http.StatusNotFound, `data-testid="error-code">store_not_linked<`)
			b.get("/console/bills?distributor_id=d%20c").must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)
			b.get("/console/payouts").must(t, http.StatusOK, `data-testid="payouts-empty"`)
			b.get("/console/payouts/po_nothing").must(t, http.StatusNotFound, `data-testid="error-code">`)

			b.get("/console/notifications").must(t, http.StatusOK, `data-testid="limiter"`, `data-testid="limiter-rate">5<`)
			b.get("/console/deadletters").must(t, http.StatusOK, `data-testid="deadletters-empty"`)

			runs := b.get("/console/reconcile").must(t, http.StatusOK, `data-run-id="`+string(run.RunID)+`"`, `data-testid="reconcile-run-findings">1<`)
			_ = runs
			b.get("/console/reconcile/"+string(run.RunID)).must(t, http.StatusOK, `data-testid="reconcile-findings">1 findings<`,
				`data-testid="category-missing_in_ledger"`, `data-testid="open-item"`, "txn-unknown")
			b.get("/console/reconcile/rec_000000000000000000000000").must(t, http.StatusNotFound, `data-testid="error-code">reconciliation_not_found<`)
			b.get("/console/reconcile/rec_nothing").must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)

			ledger := b.get("/console/ledger").must(t, http.StatusOK, `data-testid="trial-total">₩0<`, `data-account="liabilities:suspense:unmatched"`,
				`data-testid="chart-liabilities-suspense-unmatched"`, `data-testid="chart-liabilities-payouts-pending"`, "<polyline", `data-key="`+dep.DepositID+`"`)
			if !regexp.MustCompile(`data-testid="chart-open">1<`).MatchString(ledger.body) {
				t.Errorf("the suspense chart does not show one open item:\n%s", ledger.body)
			}
			acct := "/console/ledger/account?" + url.Values{"account": {"liabilities:suspense:unmatched"}}.Encode()
			b.get(acct).must(t, http.StatusOK, `data-testid="account-balance">-₩15,000<`, `data-testid="ledger-entry"`, `data-testid="chart-liabilities-suspense-unmatched"`)
			bank := "/console/ledger/account?" + url.Values{"account": {domain.AccountBank("123401-04-567890")}, "limit": {"1"}}.Encode()
			p := b.get(bank).must(t, http.StatusOK, `data-testid="page-next"`)
			if n := strings.Count(p.body, `data-testid="ledger-entry"`); n != 1 {
				t.Errorf("bank account page of 1: %d entries", n)
			}
			b.get("/console/ledger/account?account=Not%20An%20Account").must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)
			b.get("/console/static/console.css").must(t, http.StatusOK)
		})
	}
}

// Notifications: a dead-lettered one (its provider refused it) gets a
// redrive form; redriving sends bankbook.cmd.notify.redrive once (the same
// form again is a replay), and redriving one that is not dead shows the
// API's conflict. An auditor sees no redrive button.
func TestNotificationRedrive(t *testing.T) {
	env := start(t, nil, func(c *engine.Config) { c.ChatSim, c.ChatSimListen = true, "127.0.0.1:0" })
	env.e.ChatSim.RefuseChannel("store:s-dead")
	for _, store := range []string{"s-ok", "s-dead"} {
		if _, _, err := client.Do(ctxT(t), env.op, api.StoreLink, api.LinkStoreRequest{DistributorID: "d-1", StoreID: store, StoreName: "가게 " + store}, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := client.Do(ctxT(t), env.op, api.BillIssue, api.IssueBillRequest{DistributorID: "d-1", StoreID: store, Amount: 39000}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var dead, sent api.NotificationView
	testenv.CheckFor(t, 15*time.Second, func() error {
		for st, into := range map[string]*api.NotificationView{"dead": &dead, "sent": &sent} {
			rep, _, err := client.Do(ctxT(t), env.op, api.NotifyList, api.NotifyListRequest{Status: st}, nil)
			if err != nil {
				return err
			}
			if len(rep.Notifications) != 1 {
				return errNotYet
			}
			*into = rep.Notifications[0]
		}
		return nil
	})

	aud := env.browser(t)
	aud.loginOK(audreyName, env.seeds[audreyName])
	if p := aud.get("/console/notifications?status=dead").must(t, http.StatusOK, `data-notification-id="`+dead.NotificationID+`"`); p.has(`data-testid="redrive-notification"`) {
		t.Error("the auditor's page carries a redrive button")
	}

	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName]).must(t, http.StatusOK, `data-testid="count-notifications-dead-value">1<`)
	list := b.get("/console/notifications?status=dead").must(t, http.StatusOK, `data-testid="redrive-notification"`, `data-testid="notification-status">dead<`)
	form := url.Values{"csrf": {list.field(t, csrfRE)}, "idempotency_key": {list.field(t, keyRE)}}
	first := b.post("/console/notifications/"+dead.NotificationID+"/redrive", form).must(t, http.StatusOK, `data-testid="result"`, "pending again")
	second := b.post("/console/notifications/"+dead.NotificationID+"/redrive", form).must(t, http.StatusOK, `data-testid="result-replayed"`)
	if a, b := first.field(t, seqRE), second.field(t, seqRE); a != b {
		t.Errorf("the double redrive answered seq %s and %s", a, b)
	}
	if n := count(env.history(t, "notification", dead.NotificationID), "notification.redriven"); n != 1 {
		t.Errorf("%d notification.redriven events, want 1", n)
	}
	// Redriving a notification that is not dead: the API's conflict.
	form.Set("idempotency_key", "console-again")
	b.post("/console/notifications/"+sent.NotificationID+"/redrive", form).must(t, http.StatusConflict, `data-testid="error-code">notification_not_dead<`)
	// A dead letter id that names nothing: the API's answer.
	b.post("/console/deadletters/999/redrive", url.Values{"csrf": form["csrf"]}).must(t, http.StatusNotFound, `data-testid="error-code">`)
	b.post("/console/deadletters/zero/redrive", url.Values{"csrf": form["csrf"]}).must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)
}

// A dead letter can be discarded from its page with a reason: without one
// the API's 400 shows and the letter stays; with one the work is set aside,
// a second submit of the form answers the first outcome (Replayed), and the
// letter leaves the list. The auditor's page has no discard form.
func TestDiscardADeadLetter(t *testing.T) {
	env := start(t, nil)
	_, js := testenv.Dial(t, env.e.ClientURL(), testenv.NKey(t, env.e.SeedFile(auth.Engine)))
	// Not a commit: the order reactor gives up on it.
	if _, err := js.Publish(ctxT(t), "bankbook.evt.order.poison", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	var dl api.DeadLetter
	testenv.CheckFor(t, 20*time.Second, func() error {
		list, _, err := client.Do(ctxT(t), env.op, api.DeadLetterList, api.DeadLettersRequest{Part: "react-orders"}, nil)
		if err != nil {
			return err
		}
		if len(list.DeadLetters) != 1 {
			return fmt.Errorf("dead letters %+v", list.DeadLetters)
		}
		dl = list.DeadLetters[0]
		return nil
	})
	id := strconv.FormatUint(dl.ID, 10)
	row := `data-deadletter-id="` + id + `"`

	aud := env.browser(t)
	aud.loginOK(audreyName, env.seeds[audreyName])
	audPage := aud.get("/console/deadletters?part=react-orders").must(t, http.StatusOK, row)
	if audPage.has(`data-testid="discard-deadletter"`) {
		t.Error("the auditor's page carries a discard button")
	}
	// A forged form from the auditor: the engine refuses the identity.
	aud.post("/console/deadletters/"+id+"/discard", url.Values{"csrf": {audPage.field(t, csrfRE)}, "idempotency_key": {"console-auditor"}, "reason": {"not mine to decide"}}).
		must(t, http.StatusForbidden, `data-testid="error-code">`)

	b := env.browser(t)
	b.loginOK(opsName, env.seeds[opsName])
	list := b.get("/console/deadletters?part=react-orders").must(t, http.StatusOK, row, `data-testid="discard-deadletter-form"`, `id="discard-reason-`+id+`"`)
	form := url.Values{"csrf": {list.field(t, csrfRE)}, "idempotency_key": {list.field(t, keyRE)}}
	b.post("/console/deadletters/"+id+"/discard", form).must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)
	form.Set("reason", "  ")
	b.post("/console/deadletters/"+id+"/discard", form).must(t, http.StatusBadRequest, `data-testid="error-code">invalid_input<`)
	b.get("/console/deadletters?part=react-orders").must(t, http.StatusOK, row)
	// The same form, with a reason: the refusals did not use up its key.
	form.Set("reason", "garbage published by a test")
	b.post("/console/deadletters/"+id+"/discard", form).must(t, http.StatusOK, `data-testid="result"`, "react-orders): discarded")
	b.post("/console/deadletters/"+id+"/discard", form).must(t, http.StatusOK, `data-testid="result-replayed"`, "discarded")
	if p := b.get("/console/deadletters?part=react-orders").must(t, http.StatusOK, `data-testid="deadletters-empty"`); p.has(row) {
		t.Error("the discarded letter is still listed")
	}
	// Another key for the same letter: it is gone.
	form.Set("idempotency_key", "console-again")
	b.post("/console/deadletters/"+id+"/discard", form).must(t, http.StatusNotFound, `data-testid="error-code">`)
	b.post("/console/deadletters/"+id+"/discard", url.Values{"csrf": form["csrf"], "reason": {"no key"}}).must(t, http.StatusBadRequest, `data-testid="error-code">invalid_idempotency_key<`)
}

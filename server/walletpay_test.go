package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

const subjPayFromWallet = "bankbook.cmd.order.pay_from_wallet"

// A buyer pays an order from the wallet (DOMAIN.md §3): the wallet is
// debited, the order is paid, the ledger moves the money from the wallet to
// orders payable through wallet payments, and each refusal changes nothing.
func TestPayingAnOrderFromTheWallet(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-p", "정우성", 30000)
	o := e.submit(t, "u-p", "정우성", 12000)

	var rep api.PayFromWalletReply
	e.call(t, subjPayFromWallet, map[string]any{"order_id": o.OrderID}, &rep, client.WithIdempotencyKey("pay-1"))
	if rep.Status != domain.StatusPaid || rep.Amount != 12000 || rep.WalletBalance != 18000 || rep.Seq == 0 {
		t.Fatalf("pay from wallet: %+v", rep)
	}
	v := e.order(t, o.OrderID)
	if v.Status != "paid" || v.PaidAmount != 12000 || v.PaidFrom != api.PaidFromWallet || len(v.DepositIDs) != 0 {
		t.Fatalf("order: %+v", v)
	}
	w := e.wallet(t, "u-p")
	if last := w.Entries[len(w.Entries)-1]; w.Balance != 18000 || last.Kind != "order_payment" || last.Amount != -12000 || last.Ref != domain.PaymentRef(domain.OrderID(o.OrderID)) {
		t.Fatalf("wallet: %+v", w)
	}
	bal := e.balanced(t)
	if bal[domain.AccountWallet("u-p")] != -18000 || bal[domain.AccountPayableOrders] != -12000 || bal[domain.AccountWalletPayments] != 0 {
		t.Fatalf("ledger: %v", bal)
	}

	// Repeats pay once: with the key (the stored reply), and without one.
	var again api.PayFromWalletReply
	if r := e.call(t, subjPayFromWallet, map[string]any{"order_id": o.OrderID}, &again, client.WithIdempotencyKey("pay-1")); !r.Replayed || again != rep {
		t.Fatalf("keyed repeat: %+v (replayed %v)", again, r.Replayed)
	}
	e.call(t, subjPayFromWallet, map[string]any{"order_id": o.OrderID}, &again, nil)
	if again.Status != domain.StatusPaid || again.WalletBalance != 18000 {
		t.Fatalf("unkeyed repeat: %+v", again)
	}
	if w := e.wallet(t, "u-p"); w.Balance != 18000 {
		t.Fatalf("wallet after the repeats: %+v", w)
	}

	// A transfer under the paid order's name is a second payment: refunded.
	if d := bk.deposit(o.DepositorName, 12000); d.Outcome != "refunded_to_wallet" {
		t.Fatalf("a transfer for the order paid from the wallet: %+v", d)
	}
	if w := e.wallet(t, "u-p"); w.Balance != 30000 {
		t.Fatalf("wallet after the transfer's refund: %+v", w)
	}

	// Refusals move nothing.
	before := e.wallet(t, "u-p").Balance
	big := e.submit(t, "u-p", "정우성", 50000)
	if ce := e.callErr(t, subjPayFromWallet, map[string]any{"order_id": big.OrderID}, nil); ce.Status != 422 || ce.Code != "insufficient_funds" {
		t.Fatalf("more than the balance: %+v", ce)
	}
	if v := e.order(t, big.OrderID); v.Status != "awaiting_deposit" {
		t.Fatalf("order refused for the balance: %+v", v)
	}
	byTransfer := e.submit(t, "u-p", "정우성", 7000)
	bk.deposit(byTransfer.DepositorName, 7000)
	if ce := e.callErr(t, subjPayFromWallet, map[string]any{"order_id": byTransfer.OrderID}, nil); ce.Status != 409 || ce.Code != "wrong_state" {
		t.Fatalf("an order paid by a transfer: %+v", ce)
	}
	if ce := e.callErr(t, subjPayFromWallet, map[string]any{"order_id": "no-such-order"}, nil); ce.Status != 404 || ce.Code != "order_not_found" {
		t.Fatalf("an unknown order: %+v", ce)
	}
	if ce := e.callErr(t, subjPayFromWallet, map[string]any{"order_id": ""}, nil); ce.Status != 400 || ce.Code != "invalid_input" {
		t.Fatalf("no order_id: %+v", ce)
	}
	if w := e.wallet(t, "u-p"); w.Balance != before {
		t.Fatalf("wallet after the refusals: %d, want %d", w.Balance, before)
	}

	// Cancelled after payment, the order refunds its amount to the wallet.
	e.call(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": true}, nil, nil)
	testenv.Eventually(t, 10*time.Second, "the order's refund", func() bool { return e.wallet(t, "u-p").Balance == before+12000 })
	if bal := e.balanced(t); bal[domain.AccountWalletPayments] != 0 || bal[domain.AccountPayableOrders] != -7000 {
		t.Fatalf("ledger at the end: %v", bal)
	}
	verifiesClean(t, e)
}

// Concurrent payments of several orders from one wallet never overdraw it.
func TestConcurrentWalletPaymentsNeverOverdraw(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-cc", "손흥민", 10000)
	var orders []string
	for range 5 {
		orders = append(orders, e.submit(t, "u-cc", "손흥민", 3000).OrderID)
	}
	var (
		mu          sync.Mutex
		ok, refused int
		wg          sync.WaitGroup
	)
	for _, id := range orders {
		wg.Go(func() {
			_, err := e.c.Call(ctxT(t), subjPayFromWallet, map[string]any{"order_id": id}, nil, nil)
			mu.Lock()
			defer mu.Unlock()
			switch ce, _ := err.(*client.Error); {
			case err == nil:
				ok++
			case ce != nil && ce.Status == 422 && ce.Code == "insufficient_funds":
				refused++
			default:
				t.Errorf("pay %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if ok != 3 || refused != 2 {
		t.Fatalf("%d payments accepted, %d refused; want 3 and 2", ok, refused)
	}
	paid := 0
	for _, id := range orders {
		if e.order(t, id).Status == "paid" {
			paid++
		}
	}
	if w := e.wallet(t, "u-cc"); w.Balance != 1000 || paid != 3 {
		t.Fatalf("wallet %+v, %d orders paid", w, paid)
	}
	verifiesClean(t, e)
}

// A payment command that died after the wallet spent the money is finished
// by the money reactor: the order takes the money if it still awaits its
// payment, and the money goes back to the wallet if it does not.
func TestTheReactorFinishesAWalletPaymentWhoseCommandDied(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-d", "김연아", 20000)
	open := e.submit(t, "u-d", "김연아", 6000)
	gone := e.submit(t, "u-d", "김연아", 5000)
	e.call(t, subjCancel, map[string]any{"order_id": gone.OrderID, "deposited": false}, nil, nil)

	// What the dying commands appended: the wallet's two payments.
	ctx := context.Background()
	ref := eventstore.Ref{Type: domain.AggregateWallet, ID: "u-d"}
	codec := domain.Events()
	for i, o := range []api.SubmitOrderReply{open, gone} {
		commits, err := e.Events.Load(ctx, ref, 0)
		if err != nil {
			t.Fatal(err)
		}
		version := 0
		for _, c := range commits {
			version += len(c.Events)
		}
		now := time.Now().UTC()
		typ, v, data, err := codec.Encode(domain.WalletSpent{UserID: "u-d", Amount: o.Amount, OrderID: domain.OrderID(o.OrderID), SpentAt: now})
		if err != nil {
			t.Fatal(err)
		}
		env := eventstore.Envelope{EventID: "dying-pay-" + o.OrderID, EventType: typ, SchemaVersion: v, OccurredAt: now, Data: data}
		if _, err := e.Events.Append(ctx, ref, commits[len(commits)-1].Seq, version, "dying-pay-"+string(rune('a'+i)), []eventstore.Envelope{env}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 30*time.Second, "the reactor paid the open order", func() bool { return e.order(t, open.OrderID).Status == "paid" })
	testenv.Eventually(t, 30*time.Second, "the reactor returned the other payment", func() bool { return e.wallet(t, "u-d").Balance == 20000-6000 })
	time.Sleep(300 * time.Millisecond) // a second delivery must move nothing again
	w := e.wallet(t, "u-d")
	if last := w.Entries[len(w.Entries)-1]; w.Balance != 14000 || last.Kind != domain.CreditPaymentReversal || last.Amount != 5000 {
		t.Fatalf("wallet: %+v", w)
	}
	if v := e.order(t, open.OrderID); v.PaidFrom != api.PaidFromWallet {
		t.Fatalf("order: %+v", v)
	}
	if v := e.order(t, gone.OrderID); v.Status != "cancelled" || v.PaidAmount != 0 {
		t.Fatalf("cancelled order: %+v", v)
	}
	// A payment returned is not made again: the order no longer awaits it.
	if ce := e.callErr(t, subjPayFromWallet, map[string]any{"order_id": gone.OrderID}, nil); ce.Status != 409 {
		t.Fatalf("paying the cancelled order: %+v", ce)
	}
	if bal := e.balanced(t); bal[domain.AccountWalletPayments] != 0 || bal[domain.AccountWallet("u-d")] != -14000 {
		t.Fatalf("ledger: %v", bal)
	}
	verifiesClean(t, e)
}

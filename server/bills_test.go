package server_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/accounts"
	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// A distributor's day over NATS, as the app identity: link a store, issue
// a bill, the store pays part of it by transfer to its dedicated account
// (the simulated bank, scanned with its sub-accounts), then the rest; the
// ledger shows the distributor's payable and the platform's fee, and the
// trial balance stays 0.
func TestBillsOverNATS(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) {
		c.BankSim, c.ScanInterval, c.BankSimLag = true, engine.Duration(100*time.Millisecond), 0
		c.StoreFeeBps = 100 // 1 %
	})
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	var link api.LinkStoreReply
	if _, err := app.Call(ctxT(t), api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1", StoreName: "한울식당"}, &link, nil); err != nil {
		t.Fatal(err)
	}
	if link.Status != "linked" || link.DedicatedAccount.Number == "" || link.DedicatedAccount.Number == e.cfg.CollectNumber {
		t.Fatalf("link %+v: want linked, to a dedicated account", link)
	}
	var bill api.IssueBillReply
	if _, err := app.Call(ctxT(t), api.BillIssue.Subject, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 100_000}, &bill, nil); err != nil {
		t.Fatal(err)
	}
	for _, amount := range []int64{40_000, 60_000} {
		var tr api.SimTransferReply
		e.call(t, api.SimBankTransfer.Subject, map[string]any{"depositor_name": "한울식당", "amount": amount, "account_number": link.DedicatedAccount.Number}, &tr, nil)
		if !tr.Scanned {
			t.Fatalf("a transfer to the dedicated account %s: %+v, want scanned", link.DedicatedAccount.Number, tr)
		}
	}
	// The simulator says which transfers the scan never sees.
	var elsewhere api.SimTransferReply
	e.call(t, api.SimBankTransfer.Subject, map[string]any{"depositor_name": "한울식당", "amount": 5, "account_number": "9999-9999"}, &elsewhere, nil)
	if elsewhere.Scanned {
		t.Fatalf("a transfer to an account no scan covers: %+v, want not scanned", elsewhere)
	}
	payable := domain.AccountPayableDistributor("d-1")
	testenv.CheckFor(t, 20*time.Second, func() error {
		var acct api.LedgerAccountReply
		e.call(t, api.LedgerAccount.Subject, map[string]any{"account": payable}, &acct, nil)
		if acct.Balance != -99_000 {
			return fmt.Errorf("%s balance %d, want -99000 (100000 less the 1%% fee)", payable, acct.Balance)
		}
		return nil
	})
	// The read models: the bill, the distributor's active list, the payment
	// lists and the expected settlement.
	var view api.BillView
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": bill.BillID}, &view, nil)
	if view.Status != "paid" || view.PaidAmount != 100_000 || view.Outstanding != 0 || len(view.Payments) != 2 || view.Payments[0].Fee != 400 {
		t.Errorf("bill view: %+v", view)
	}
	var active api.ActiveBillsReply
	e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": "d-1"}, &active, nil)
	if len(active.Bills) != 1 || active.Bills[0].BillID != bill.BillID {
		t.Errorf("active bills: %+v", active)
	}
	var byDist, byStore api.PaymentsReply
	e.call(t, api.PaymentsByDistributor.Subject, map[string]any{"distributor_id": "d-1"}, &byDist, nil)
	e.call(t, api.PaymentsByStore.Subject, map[string]any{"store_id": "s-1"}, &byStore, nil)
	if len(byDist.Payments) != 2 || len(byStore.Payments) != 2 || byDist.Payments[1].BillID != bill.BillID {
		t.Errorf("payments: by distributor %+v, by store %+v", byDist, byStore)
	}
	var settle api.SettlementReply
	e.call(t, api.SettlementExpected.Subject, map[string]any{"distributor_id": "d-1"}, &settle, nil)
	if len(settle.Settlements) != 1 || settle.Settlements[0].Gross != 100_000 || settle.Settlements[0].Fee != 1_000 || settle.Settlements[0].Net != 99_000 {
		t.Errorf("settlement: %+v", settle)
	}
	// A new bill, partly paid: the reminder names the store; the paid
	// bill before it is expired.
	var next api.IssueBillReply
	if _, err := app.Call(ctxT(t), api.BillIssue.Subject, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 30_000}, &next, nil); err != nil {
		t.Fatal(err)
	}
	var remind api.RemindUnpaidReply
	if _, err := app.Call(ctxT(t), api.BillRemind.Subject, api.RemindUnpaidRequest{DistributorID: "d-1"}, &remind, nil); err != nil {
		t.Fatal(err)
	}
	if remind.Status != "reminded" || len(remind.Reminded) != 1 || remind.Reminded[0] != "s-1" || remind.PaymentsCountedTo == "" {
		t.Errorf("remind %+v, want s-1 reminded, payments counted up to the scan's watermark", remind)
	}
	// The store's reminder says up to when its payments are counted.
	testenv.CheckFor(t, 20*time.Second, func() error {
		var list api.NotifyListReply
		e.call(t, api.NotifyList.Subject, map[string]any{"recipient": "store:s-1"}, &list, nil)
		for _, n := range list.Notifications {
			if n.Kind == "unpaid_reminder" {
				if !strings.Contains(n.Message, "까지의 입금을 반영했습니다") {
					t.Fatalf("the reminder %q does not say up to when payments are counted", n.Message)
				}
				return nil
			}
		}
		return fmt.Errorf("no unpaid_reminder to store:s-1 among %d notifications", len(list.Notifications))
	})
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": bill.BillID, "min_seq": next.Seq}, &view, nil)
	if view.Status != "expired" || view.SupersededBy != next.BillID {
		t.Errorf("the first bill after the second: %+v", view)
	}
	// A transfer made just before the second bill, recorded only now (the
	// scan's lag), goes to the first bill, which stays expired.
	nextIssued, err := time.Parse(time.RFC3339Nano, next.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	var late api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-late", AccountNumber: link.DedicatedAccount.Number,
		DepositorName: "한울식당", Amount: 5_000, DepositedAt: nextIssued.Add(-time.Millisecond)}, &late, nil)
	if late.Outcome != "store_payment" || late.BillID != bill.BillID {
		t.Fatalf("late payment: %+v, want a store payment to the first bill %s", late, bill.BillID)
	}
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": bill.BillID, "min_seq": late.Seq}, &view, nil)
	if view.Status != "expired" || view.PaidAmount != 105_000 || len(view.Payments) != 3 {
		t.Errorf("the first bill after a late payment: %+v", view)
	}
	// The deposit, looked up alone, names where it went.
	var dep api.OrphanView
	e.call(t, api.DepositGet.Subject, api.DepositRequest{DepositID: late.DepositID, ReadAfter: api.ReadAfter{MinSeq: late.Seq}}, &dep, nil)
	if dep.Outcome != "store_payment" || dep.LinkID != link.LinkID || dep.BillID != bill.BillID {
		t.Errorf("deposit.get of the late payment: %+v, want link %s, bill %s", dep, link.LinkID, bill.BillID)
	}
	var second api.BillView
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": next.BillID, "min_seq": late.Seq}, &second, nil)
	if second.Status != "active" || second.PaidAmount != 0 {
		t.Errorf("the second bill after a late payment to the first: %+v", second)
	}
	books := e.balanced(t)
	if books[domain.AccountRevenueFees] != -1_050 {
		t.Errorf("fees %d, want -1050: %v", books[domain.AccountRevenueFees], books)
	}
	// The log of an honest engine's bills and payments verifies clean.
	if rep, err := audit.Verify(ctxT(t), audit.Options{Reader: e.Events.Reader(), Codec: domain.Events(), TempDir: t.TempDir()}); err != nil || !rep.OK {
		t.Errorf("audit verify: %v %+v", err, rep.Findings)
	}
	// The feed cannot issue bills; an unlinked store cannot get one.
	feed := connectAs(t, e.ClientURL(), e.SeedFile(auth.Feed))
	if _, err := feed.Call(ctxT(t), api.BillIssue.Subject, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 1}, nil, nil); err == nil {
		t.Error("the feed issued a bill")
	}
	ce := e.callErr(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-2", Amount: 1}, nil)
	if ce.Status != 404 || ce.Code != "store_not_linked" {
		t.Errorf("unlinked store: %+v", ce)
	}
}

// The lists the external contract gives without paging answer whole when
// asked without a limit: 60 bills and a store's 60 payments, more than a
// default page of 50, in one reply with no next_cursor; a limit still pages.
func TestListsWithoutLimitAnswerWhole(t *testing.T) {
	e := startEngine(t)
	var lines []api.BillLine
	var store api.LinkStoreReply
	for i := range 60 {
		id := fmt.Sprintf("s-%02d", i)
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: id, StoreName: "가게" + id}, &store, nil)
		lines = append(lines, api.BillLine{StoreID: id, Amount: 1_000_000})
	}
	var issued api.IssueBulkReply
	e.call(t, api.BillIssueBulk.Subject, api.IssueBulkRequest{DistributorID: "d-1", Bills: lines}, &issued, nil)
	feed := connectAs(t, e.ClientURL(), e.SeedFile(auth.Feed))
	var last api.RecordDepositReply
	for i := range 60 { // to the last store linked, s-59
		if _, err := feed.Call(ctxT(t), api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: fmt.Sprint("T-", i), AccountNumber: store.DedicatedAccount.Number,
			DepositorName: "가게s-59", Amount: 100, DepositedAt: time.Now().UTC().Add(-time.Minute)}, &last, nil); err != nil {
			t.Fatal(err)
		}
	}
	var active api.ActiveBillsReply
	e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": "d-1", "min_seq": last.Seq}, &active, nil)
	if len(active.Bills) != 60 || active.NextCursor != "" {
		t.Errorf("bill.active without a limit: %d bills, next_cursor %q; want 60 and none", len(active.Bills), active.NextCursor)
	}
	e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": "d-1", "limit": 50}, &active, nil)
	if len(active.Bills) != 50 || active.NextCursor == "" {
		t.Errorf("bill.active with limit 50: %d bills, next_cursor %q", len(active.Bills), active.NextCursor)
	}
	for subject, req := range map[string]map[string]any{
		api.PaymentsByStore.Subject:       {"store_id": "s-59"},
		api.PaymentsByDistributor.Subject: {"distributor_id": "d-1"},
	} {
		var pays api.PaymentsReply
		e.call(t, subject, req, &pays, nil)
		if len(pays.Payments) != 60 || pays.NextCursor != "" {
			t.Errorf("%s without a limit: %d payments, next_cursor %q; want 60 and none", subject, len(pays.Payments), pays.NextCursor)
		}
	}
}

// Two engine instances issue bills for one store at once (the queue group
// spreads the requests over both): exactly one bill is current, and every
// other one expired when the next was issued.
func TestTwoInstancesIssuingForOneStoreLeaveOneCurrentBill(t *testing.T) {
	a := startEngine(t)
	b := startEngine(t, func(c *engine.Config) {
		joinEngine(c, a.Engine)
		c.DataDir = filepath.Join(t.TempDir(), "b")
	})
	a.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-2", StoreID: "s-2", StoreName: "두리분식"}, nil, nil)
	const n = 40
	replies := make([]api.IssueBillReply, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := a.c
			if i%2 == 1 {
				c = b.c
			}
			if _, err := c.Call(ctxT(t), api.BillIssue.Subject, api.IssueBillRequest{DistributorID: "d-2", StoreID: "s-2", Amount: int64(10_000 + i)}, &replies[i], nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var last api.Seq
	superseded := map[string]bool{}
	for _, r := range replies {
		last = max(last, r.Seq)
		if r.SupersededBillID != "" {
			if superseded[r.SupersededBillID] {
				t.Errorf("%s superseded twice", r.SupersededBillID)
			}
			superseded[r.SupersededBillID] = true
		}
	}
	if len(superseded) != n-1 {
		t.Errorf("%d bills superseded, want %d", len(superseded), n-1)
	}
	for _, e := range []*testEngine{a, b} {
		var active api.ActiveBillsReply
		e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": "d-2", "min_seq": last}, &active, nil)
		if len(active.Bills) != 1 || superseded[active.Bills[0].BillID] {
			t.Errorf("current bills on one instance: %+v", active.Bills)
		}
	}
}

// A store's dedicated account is never given to another store, even after
// the accounts bucket lost its entries (deleted with the engine's
// identity, say): on its next start the engine writes the links' numbers
// back from the event stream before it takes a command.
func TestLostAccountsBucketIsRestoredFromTheStream(t *testing.T) {
	e := startEngine(t)
	link := func(e *testEngine, store string) string {
		var rep api.LinkStoreReply
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-lost", StoreID: store, StoreName: "한울식당"}, &rep, nil)
		return rep.DedicatedAccount.Number
	}
	first, second := link(e, "s-1"), link(e, "s-2")
	if err := e.js.DeleteKeyValue(ctxT(t), accounts.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	e = e.restart(t)
	if n := link(e, "s-3"); n == first || n == second {
		t.Fatalf("a new store got %s, which s-1 (%s) or s-2 (%s) has", n, first, second)
	}
	if n := link(e, "s-1"); n != first {
		t.Fatalf("s-1 linked again got %s, want its own %s", n, first)
	}
}

// TestLostDepositorNamesAreRestoredFromTheStream: the depositor-name
// bucket is deleted while an order is open (and another closed long ago).
// The engine started again reserves the open order's name from the order
// commits before it takes a command, so a new order of the same buyer
// name gets another name, and a transfer under the open order's name pays
// the open order; the open order counts against its buyer's limit of
// unpaid orders again.
func TestLostDepositorNamesAreRestoredFromTheStream(t *testing.T) {
	e, _ := scenarioEngine(t, func(c *engine.Config) { c.NameGrace, c.MaxUnpaidOrders = engine.Duration(time.Millisecond), 1 })
	open := e.submit(t, "u-n1", "김민수", 12000)
	closed := e.submit(t, "u-n2", "김민수", 13000)
	e.call(t, subjCancel, map[string]any{"order_id": closed.OrderID, "deposited": false}, nil, nil)
	if err := e.js.DeleteKeyValue(ctxT(t), "bankbook_depositor_names"); err != nil {
		t.Fatal(err)
	}
	// Until the restart, readiness names the deleted bucket's stream.
	if code, rep := e.readyz(t); code != 503 || !slices.Contains(rep.NotReady, "streams") {
		t.Fatalf("/readyz with the names bucket deleted: %d, not ready %v, want 503 naming streams", code, rep.NotReady)
	} else if p, _ := part(rep, "streams"); !strings.Contains(p.Reason, "KV_bankbook_depositor_names") {
		t.Fatalf("/readyz streams: %+v, want the names bucket's stream named", p)
	}
	e = e.restart(t)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if code, rep := e.readyz(t); code != 200 {
			return fmt.Errorf("/readyz %d after the restart: not ready %v", code, rep.NotReady)
		}
		return nil
	})
	bk := newBank(t, e)
	fresh := e.submit(t, "u-n3", "김민수", 12000)
	if domain.SameName(fresh.DepositorName, open.DepositorName) {
		t.Fatalf("a new order got %q, the name open order %s holds", fresh.DepositorName, open.OrderID)
	}
	// The open order counts against its buyer's limit again.
	if ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u-n1", "buyer_name": "김민수", "amount": 5000}, nil); ce.Code != "too_many_unpaid_orders" {
		t.Fatalf("a second unpaid order of a buyer limited to one: %+v", ce)
	}
	if rep := bk.deposit(open.DepositorName, 12000); rep.Outcome != "matched" || rep.OrderID != open.OrderID {
		t.Fatalf("a transfer under the open order's name: %+v, want it to pay %s", rep, open.OrderID)
	}
	names, err := e.js.KeyValue(ctxT(t), "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := names.Get(ctxT(t), "meta.kept"); err != nil {
		t.Fatalf("the bucket is not marked whole after the restore: %v", err)
	}
}

// The restore holds only the orders that may still need a name while it
// reads the stream: one paid and past its grace is dropped, and should a
// later commit of it come (the paid order cancelled), it is folded again
// from its first commit, so its name is restored as if it had never been
// dropped; one that stays closed keeps no name.
func TestLostDepositorNamesComeBackForOrdersClosedAndReopenedLater(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) { c.NameGrace = engine.Duration(time.Millisecond) })
	paidThenCancelled := e.submit(t, "u-r1", "이서연", 15000)
	paid := e.submit(t, "u-r2", "이서연", 16000)
	open := e.submit(t, "u-r3", "이서연", 17000)
	for _, o := range []api.SubmitOrderReply{paidThenCancelled, paid} {
		if rep := bk.deposit(o.DepositorName, o.Amount); rep.Outcome != "matched" {
			t.Fatalf("paying %s: %+v", o.OrderID, rep)
		}
	}
	time.Sleep(10 * time.Millisecond) // both payments' grace over
	bk.scanned(time.Now().UTC())      // and scanned: neither needs its name any more
	time.Sleep(10 * time.Millisecond)
	e.call(t, subjCancel, map[string]any{"order_id": paidThenCancelled.OrderID, "deposited": false}, nil, nil)
	if err := e.js.DeleteKeyValue(ctxT(t), "bankbook_depositor_names"); err != nil {
		t.Fatal(err)
	}
	e = e.restart(t)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if code, rep := e.readyz(t); code != 200 {
			return fmt.Errorf("/readyz %d after the restart: not ready %v", code, rep.NotReady)
		}
		return nil
	})
	names, err := e.js.KeyValue(ctxT(t), "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	holder := func(name string) string {
		t.Helper()
		entry, err := names.Get(ctxT(t), base64.RawURLEncoding.EncodeToString([]byte(domain.NormalizeName(name))))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal(entry.Value(), &h); err != nil {
			t.Fatal(err)
		}
		return h.OrderID
	}
	for _, c := range []struct {
		order api.SubmitOrderReply
		want  string
	}{
		{paidThenCancelled, paidThenCancelled.OrderID}, // cancelled after the scan: within its grace as the scan knows it
		{paid, ""},
		{open, open.OrderID},
	} {
		if got := holder(c.order.DepositorName); got != c.want {
			t.Errorf("%s (%s) is held by %q after the restore, want %q", c.order.DepositorName, c.order.OrderID, got, c.want)
		}
	}
}

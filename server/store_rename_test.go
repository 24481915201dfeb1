package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

// TestRenamingAStore: store.rename changes a link's store name, its
// distributor name, or both (a blank distributor name removes it); the
// store queries show the link as it is now; the messages of what happens
// on the link afterwards use the new names, while a bill keeps the names it
// was issued with. Renaming to the names it has writes nothing; a request
// without a name, with a bad one, or for a pair not linked is refused and
// writes nothing.
func TestRenamingAStore(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 50)
	const d = "d-rename"
	a, b := d+"-st-a", d+"-st-b"

	var linkA, linkB api.LinkStoreReply
	e.call(t, api.StoreLink.Subject, map[string]any{"distributor_id": d, "store_id": a, "store_name": "행복식당", "distributor_name": "한울유통"}, &linkA, nil)
	e.call(t, api.StoreLink.Subject, map[string]any{"distributor_id": d, "store_id": b, "store_name": "소망분식"}, &linkB, nil)
	var billA api.IssueBillReply
	e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: a, Amount: 50_000}, &billA, nil)

	rename := func(req map[string]any) api.RenameStoreReply {
		t.Helper()
		var rep api.RenameStoreReply
		e.call(t, api.StoreRename.Subject, req, &rep, nil)
		return rep
	}
	renamed := rename(map[string]any{"distributor_id": d, "store_id": a, "store_name": " 행복식당 본점 "})
	if renamed.Status != api.StoreStatusRenamed || renamed.StoreName != "행복식당 본점" || renamed.DistributorName != "한울유통" ||
		renamed.LinkID != linkA.LinkID || renamed.DedicatedAccount != linkA.DedicatedAccount || renamed.Seq <= billA.Seq {
		t.Fatalf("store.rename of %s: %+v", a, renamed)
	}
	before := e.written(t)
	if again := rename(map[string]any{"distributor_id": d, "store_id": a, "store_name": "행복식당 본점"}); again.Status != api.StoreStatusUnchanged || again.Seq != renamed.Seq {
		t.Errorf("store.rename to the names it has: %+v, want unchanged at seq %d", again, renamed.Seq)
	}
	if got := rename(map[string]any{"distributor_id": d, "store_id": b, "distributor_name": "한울유통"}); got.Status != api.StoreStatusRenamed || got.StoreName != "소망분식" || got.DistributorName != "한울유통" {
		t.Errorf("store.rename giving %s a distributor name: %+v", b, got)
	}
	if after := e.written(t); after != before+1 {
		t.Errorf("the renames wrote %d commits, want 1 (the unchanged one none)", after-before)
	}

	// Refusals write nothing.
	before = e.written(t)
	for name, tt := range map[string]struct {
		body, code, field string
	}{
		"no name":                {`{"distributor_id":"` + d + `","store_id":"` + a + `"}`, "invalid_input", "store_name"},
		"an empty store name":    {`{"distributor_id":"` + d + `","store_id":"` + a + `","store_name":""}`, "invalid_input", "store_name"},
		"a store name of tabs":   {`{"distributor_id":"` + d + `","store_id":"` + a + `","store_name":"\t\t"}`, "invalid_input", "store_name"},
		"a bad distributor name": {`{"distributor_id":"` + d + `","store_id":"` + a + `","distributor_name":"한울\n유통"}`, "invalid_input", "distributor_name"},
		"a pair not linked":      {`{"distributor_id":"` + d + `","store_id":"nobody","store_name":"가게"}`, "store_not_linked", ""},
	} {
		ce := e.callErr(t, api.StoreRename.Subject, json.RawMessage(tt.body), nil)
		if ce.Code != tt.code || tt.field != "" && fmt.Sprint(ce.Details["field"]) != tt.field {
			t.Errorf("store.rename with %s: %+v, want %s on %q", name, ce, tt.code, tt.field)
		}
	}
	if after := e.written(t); after != before {
		t.Errorf("refused renames wrote %d commits", after-before)
	}

	// The store queries show the links as they are now.
	var viewA api.StoreView
	e.call(t, api.StoreGet.Subject, map[string]any{"distributor_id": d, "store_id": a, "min_seq": renamed.Seq}, &viewA, nil)
	if viewA.StoreName != "행복식당 본점" || viewA.DistributorName != "한울유통" || viewA.RenamedAt == "" || viewA.Seq != renamed.Seq ||
		viewA.LinkedAt != linkA.LinkedAt || viewA.DedicatedAccount != linkA.DedicatedAccount {
		t.Errorf("store.get of %s: %+v", a, viewA)
	}
	if ce := e.callErr(t, api.StoreGet.Subject, map[string]any{"distributor_id": d, "store_id": "nobody"}, nil); ce.Code != "store_not_linked" {
		t.Errorf("store.get of a pair not linked: %+v", ce)
	}
	var page1, page2 api.StoreListReply
	e.call(t, api.StoreList.Subject, map[string]any{"distributor_id": d, "limit": 1}, &page1, nil)
	if len(page1.Stores) != 1 || page1.Stores[0].StoreID != a || page1.NextCursor == "" {
		t.Fatalf("store.list, first page of 1: %+v", page1)
	}
	e.call(t, api.StoreList.Subject, map[string]any{"distributor_id": d, "limit": 1, "cursor": page1.NextCursor}, &page2, nil)
	if len(page2.Stores) != 1 || page2.Stores[0].StoreID != b || page2.Stores[0].DistributorName != "한울유통" || page2.Stores[0].RenamedAt == "" || page2.NextCursor != "" {
		t.Errorf("store.list, second page: %+v", page2)
	}

	// The bill keeps the names it was issued with.
	var bill api.BillView
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": billA.BillID}, &bill, nil)
	if bill.StoreName != "행복식당" || bill.DistributorName != "한울유통" {
		t.Errorf("bill.get of the bill issued before the rename: store %q, distributor %q", bill.StoreName, bill.DistributorName)
	}

	// What happens on the links from now on names them as renamed.
	issued, err := time.Parse(time.RFC3339Nano, billA.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	var dep api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-" + a, AccountNumber: billA.DedicatedAccount.Number,
		DepositorName: "입금자", Amount: 20_000, DepositedAt: issued.Add(time.Millisecond)}, &dep, nil)
	if dep.Outcome != "store_payment" || dep.BillID != billA.BillID {
		t.Fatalf("deposit to %s's dedicated account: %+v", a, dep)
	}
	checkStoreMessages(t, delivered(t, sim, "payment_complete", []string{a}, time.Minute),
		map[string]string{a: "[입금 완료] 한울유통: 행복식당 본점 님, 20,000원 입금이 확인되었습니다.\n"})
	var billB api.IssueBillReply
	e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: b, Amount: 30_000}, &billB, nil)
	checkStoreMessages(t, delivered(t, sim, "bill_issued", []string{b}, time.Minute),
		map[string]string{b: "[청구서] 한울유통: 소망분식 님, 30,000원 청구서가 발행되었습니다.\n"})

	// A blank distributor name removes it: the cancellation names the store only.
	if got := rename(map[string]any{"distributor_id": d, "store_id": a, "distributor_name": " "}); got.Status != api.StoreStatusRenamed || got.DistributorName != "" {
		t.Errorf("store.rename removing the distributor name: %+v", got)
	}
	var cancelled api.CancelBillReply
	e.call(t, api.BillCancel.Subject, api.CancelBillRequest{BillID: billA.BillID}, &cancelled, nil)
	checkStoreMessages(t, delivered(t, sim, "bill_cancelled", []string{a}, time.Minute),
		map[string]string{a: "[청구서 취소] 행복식당 본점 님, "})
	// The store's bills: the one cancelled, as issued (its names then).
	var list api.BillListReply
	e.call(t, api.BillList.Subject, map[string]any{"distributor_id": d, "store_id": a, "min_seq": cancelled.Seq}, &list, nil)
	if len(list.Bills) != 1 || list.Bills[0].BillID != billA.BillID || list.Bills[0].Status != "cancelled" || list.Bills[0].StoreName != "행복식당" || list.Bills[0].PaymentCount != 1 {
		t.Errorf("bill.list of %s: %+v", a, list)
	}
	if ce := e.callErr(t, api.BillList.Subject, map[string]any{"distributor_id": d, "store_id": "nobody"}, nil); ce.Code != "store_not_linked" {
		t.Errorf("bill.list of a pair not linked: %+v", ce)
	}
	// A rename is not told to the store: its messages are only these.
	if n := len(sim.Messages("store:" + a)); n != 3 {
		t.Errorf("store %s has %d messages, want 3 (bill, payment, cancellation)", a, n)
	}
}

package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestRemindTheStoresNamed: bill.remind_unpaid with store_ids considers
// those stores only, in their order, and says why each other one it named
// was not reminded (not linked, no current bill, nothing outstanding);
// without store_ids it reminds every linked store with something
// outstanding, as before. A bad list is refused whole and writes nothing.
func TestRemindTheStoresNamed(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 50)
	const d = "d-remind"
	var paidBill api.IssueBillReply
	for _, s := range []string{"a", "b", "c", "p"} {
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: d, StoreID: s, StoreName: "가게 " + s}, nil, nil)
	}
	for s, amount := range map[string]int64{"a": 50_000, "b": 30_000, "p": 10_000} {
		var bill api.IssueBillReply
		e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: s, Amount: amount}, &bill, nil)
		if s == "p" {
			paidBill = bill
		}
	}
	issued, err := time.Parse(time.RFC3339Nano, paidBill.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	var dep api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-p", AccountNumber: paidBill.DedicatedAccount.Number,
		DepositorName: "가게 p", Amount: 10_000, DepositedAt: issued.Add(time.Millisecond)}, &dep, nil)
	if dep.BillID != paidBill.BillID {
		t.Fatalf("the payment of p's bill: %+v", dep)
	}

	var named api.RemindUnpaidReply
	e.call(t, api.BillRemind.Subject, map[string]any{"distributor_id": d, "store_ids": []string{"c", "a", "x", "p"}}, &named, nil)
	wantNot := []api.NotReminded{{StoreID: "c", Reason: "no_current_bill"}, {StoreID: "x", Reason: "not_linked"}, {StoreID: "p", Reason: "nothing_outstanding"}}
	if named.Status != api.RemindStatusReminded || !reflect.DeepEqual(named.Reminded, []string{"a"}) || !reflect.DeepEqual(named.NotReminded, wantNot) || named.Seq == 0 {
		t.Fatalf("remind c, a, x and p: %+v", named)
	}
	var none api.RemindUnpaidReply
	e.call(t, api.BillRemind.Subject, map[string]any{"distributor_id": d, "store_ids": []string{"c"}}, &none, nil)
	if none.Status != api.RemindStatusNone || len(none.Reminded) != 0 || none.Seq != 0 || len(none.NotReminded) != 1 {
		t.Errorf("remind c alone: %+v, want nobody reminded, nothing written", none)
	}

	var all map[string]any
	e.call(t, api.BillRemind.Subject, map[string]any{"distributor_id": d}, &all, nil)
	if fmt.Sprint(all["reminded"]) != "[a b]" || all["not_reminded"] != nil {
		t.Errorf("remind every store: %v, want a and b, and no not_reminded", all)
	}

	before := e.written(t)
	for name, tt := range map[string]struct{ ids, field string }{
		"an empty list":       {`[]`, "store_ids"},
		"a store named twice": {`["a","b","a"]`, "store_ids[2]"},
		"a bad ID":            {`["a","b c"]`, "store_ids[1]"},
		"1,001 stores":        {`[` + strings.TrimSuffix(strings.Repeat(`"s",`, 1001), ",") + `]`, "store_ids"},
	} {
		ce := e.callErr(t, api.BillRemind.Subject, json.RawMessage(`{"distributor_id":"`+d+`","store_ids":`+tt.ids+`}`), nil)
		if ce.Code != "invalid_input" || fmt.Sprint(ce.Details["field"]) != tt.field {
			t.Errorf("store_ids %s: %+v, want invalid_input on %s", name, ce, tt.field)
		}
	}
	if after := e.written(t); after != before {
		t.Errorf("refused reminders wrote %d commits", after-before)
	}

	// a was reminded twice, b once, the others never.
	testenv.CheckFor(t, time.Minute, func() error {
		for s, want := range map[string]int{"a": 2, "b": 1, "c": 0, "p": 0} {
			if n := kindCount(sim.Messages("store:"+s), "unpaid_reminder"); n != want {
				return fmt.Errorf("store %s got %d unpaid reminders, want %d", s, n, want)
			}
		}
		return nil
	})
}

// TestRemindTheMostStoresWithTheLongestIDs: store_ids may name as many
// stores as it allows (api.MaxRemindStores), each with an ID as long as one
// may be, in one request.
func TestRemindTheMostStoresWithTheLongestIDs(t *testing.T) {
	e := startEngine(t)
	const d = "d-many"
	ids := make([]string, api.MaxRemindStores)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%0*d", domain.MaxIDLength-1, i)
	}
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: d, StoreID: ids[500], StoreName: "가게"}, nil, nil)
	e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: ids[500], Amount: 10_000}, nil, nil)

	req := api.RemindUnpaidRequest{DistributorID: d, StoreIDs: ids}
	if body, _ := json.Marshal(req); len(body) > api.BillRemind.MaxBodyBytes {
		t.Errorf("a request of %d stores is %d bytes, more than the %d the endpoint takes", len(ids), len(body), api.BillRemind.MaxBodyBytes)
	}
	var rep api.RemindUnpaidReply
	e.call(t, api.BillRemind.Subject, req, &rep, nil)
	if !reflect.DeepEqual(rep.Reminded, []string{ids[500]}) || len(rep.NotReminded) != len(ids)-1 {
		t.Fatalf("remind %d stores: reminded %v, %d not reminded", len(ids), rep.Reminded, len(rep.NotReminded))
	}
}

// TestRemindAnEmptySelection: a Go client that sends the request type with
// an empty (not nil) StoreIDs, a selection that came out empty, is refused
// as the JSON [] is: it must not reach the engine as "every store".
func TestRemindAnEmptySelection(t *testing.T) {
	e := startEngine(t)
	const d = "d-empty"
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: d, StoreID: "a", StoreName: "가게 a"}, nil, nil)
	e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: "a", Amount: 10_000}, nil, nil)
	before := e.written(t)
	_, _, err := client.Do(ctxT(t), e.c, api.BillRemind, api.RemindUnpaidRequest{DistributorID: d, StoreIDs: []string{}}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalidInput || fmt.Sprint(ae.Details["field"]) != "store_ids" {
		t.Fatalf("remind an empty selection: %v, want invalid_input on store_ids", err)
	}
	if after := e.written(t); after != before {
		t.Errorf("the empty selection wrote %d commits (reminded every store)", after-before)
	}
	if body, _ := json.Marshal(api.RemindUnpaidRequest{DistributorID: d}); strings.Contains(string(body), "store_ids") {
		t.Errorf("a request without a selection is %s, want store_ids left out", body)
	}
}

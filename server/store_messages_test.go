package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/chat"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestStoreMessagesNameTheirDistributor: a store buys from several
// distributors and has one channel, so its messages name the distributor
// when the link was made with a distributor_name: the bill, the payment's
// confirmation, the reminder and the cancellation. The name is trimmed, kept
// as first linked (a repeat with another does not rename), and shown by the
// link's reply and the bill queries. A link made without one keeps the
// messages as they were, and a repeat does not add one.
func TestStoreMessagesNameTheirDistributor(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 50)
	const d = "d-names"
	named, plain := d+"-st-named", d+"-st-plain"

	link := func(store, storeName, distName string) map[string]any {
		t.Helper()
		req := map[string]any{"distributor_id": d, "store_id": store, "store_name": storeName}
		if distName != "" {
			req["distributor_name"] = distName
		}
		var rep map[string]any
		e.call(t, api.StoreLink.Subject, req, &rep, nil)
		return rep
	}
	if rep := link(named, "행복식당", "  한울유통 "); rep["distributor_name"] != "한울유통" {
		t.Fatalf("store.link with a distributor_name: %v, want it trimmed in the reply", rep)
	}
	if rep := link(named, "행복식당", "다른유통"); rep["distributor_name"] != "한울유통" {
		t.Errorf("store.link again with another distributor_name: %v, want the first kept", rep)
	}
	if rep := link(plain, "소망분식", ""); rep["distributor_name"] != nil {
		t.Errorf("store.link without a distributor_name: %v, want none in the reply", rep)
	}
	if rep := link(plain, "소망분식", "한울유통"); rep["distributor_name"] != nil {
		t.Errorf("store.link again, now with a distributor_name: %v, want none (a repeat changes nothing)", rep)
	}
	for name, body := range map[string]string{
		"of 101 characters": `{"distributor_id":"d-x","store_id":"s-x","store_name":"가게","distributor_name":` + jsonString(strings.Repeat("유", 101)) + `}`,
		"with a newline":    `{"distributor_id":"d-x","store_id":"s-x","store_name":"가게","distributor_name":"한울\n유통"}`,
		"with a bidi mark":  `{"distributor_id":"d-x","store_id":"s-x","store_name":"가게","distributor_name":"한울\u202e유통"}`,
	} {
		ce := e.callErr(t, api.StoreLink.Subject, json.RawMessage(body), nil)
		if ce.Code != "invalid_input" || fmt.Sprint(ce.Details["field"]) != "distributor_name" {
			t.Errorf("a distributor_name %s: %+v, want invalid_input on distributor_name", name, ce)
		}
	}

	bills := map[string]api.IssueBillReply{}
	for _, s := range []string{named, plain} {
		var bill api.IssueBillReply
		e.call(t, api.BillIssue.Subject, api.IssueBillRequest{DistributorID: d, StoreID: s, Amount: 50_000}, &bill, nil)
		bills[s] = bill
	}
	want := map[string]string{named: "[청구서] 한울유통: 행복식당 님, 50,000원 청구서가 발행되었습니다.\n", plain: "[청구서] 소망분식 님, 50,000원 청구서가 발행되었습니다.\n"}
	checkStoreMessages(t, delivered(t, sim, "bill_issued", []string{named, plain}, time.Minute), want)

	// The bill queries show the name with the store's.
	var namedView, plainView map[string]any
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": bills[named].BillID, "min_seq": bills[named].Seq}, &namedView, nil)
	if namedView["distributor_name"] != "한울유통" || namedView["store_name"] != "행복식당" {
		t.Errorf("bill.get of %s's bill: %v", named, namedView)
	}
	e.call(t, api.BillGet.Subject, map[string]any{"bill_id": bills[plain].BillID, "min_seq": bills[plain].Seq}, &plainView, nil)
	if _, ok := plainView["distributor_name"]; ok {
		t.Errorf("bill.get of %s's bill: %v, want no distributor_name", plain, plainView)
	}
	var active struct {
		Bills []map[string]any `json:"bills"`
	}
	e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": d, "min_seq": bills[plain].Seq}, &active, nil)
	for _, b := range active.Bills {
		if got, wantName := b["distributor_name"], map[string]any{named: "한울유통", plain: nil}[fmt.Sprint(b["store_id"])]; got != wantName {
			t.Errorf("bill.active: %s's bill has distributor_name %v, want %v", b["store_id"], got, wantName)
		}
	}

	// A payment to each dedicated account, a reminder of what is left,
	// then the cancellation of each bill.
	for _, s := range []string{named, plain} {
		issued, err := time.Parse(time.RFC3339Nano, bills[s].IssuedAt)
		if err != nil {
			t.Fatal(err)
		}
		var dep api.RecordDepositReply
		e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-" + s, AccountNumber: bills[s].DedicatedAccount.Number,
			DepositorName: "입금자", Amount: 20_000, DepositedAt: issued.Add(time.Millisecond)}, &dep, nil)
		if dep.Outcome != "store_payment" || dep.BillID != bills[s].BillID {
			t.Fatalf("deposit to %s's dedicated account: %+v", s, dep)
		}
	}
	want = map[string]string{named: "[입금 완료] 한울유통: 행복식당 님, 20,000원 입금이 확인되었습니다.\n", plain: "[입금 완료] 소망분식 님, 20,000원 입금이 확인되었습니다.\n"}
	checkStoreMessages(t, delivered(t, sim, "payment_complete", []string{named, plain}, time.Minute), want)
	// The distributor's own message is as it was.
	for _, m := range sim.Messages("distributor:" + d) {
		if m.CustomType == "payment_received" && (strings.Contains(m.Message, "한울유통") || strings.Contains(m.Data, "distributor_name")) {
			t.Errorf("the distributor's payment_received names the distributor: %q %s", m.Message, m.Data)
		}
	}

	var remind api.RemindUnpaidReply
	e.call(t, api.BillRemind.Subject, api.RemindUnpaidRequest{DistributorID: d}, &remind, nil)
	if len(remind.Reminded) != 2 {
		t.Fatalf("remind: %+v, want both stores", remind)
	}
	want = map[string]string{named: "[미납 안내] 한울유통: 행복식당 님, 청구 금액 50,000원 중 30,000원이", plain: "[미납 안내] 소망분식 님, 청구 금액 50,000원 중 30,000원이"}
	checkStoreMessages(t, delivered(t, sim, "unpaid_reminder", []string{named, plain}, time.Minute), want)

	for _, s := range []string{named, plain} {
		var rep api.CancelBillReply
		e.call(t, api.BillCancel.Subject, api.CancelBillRequest{BillID: bills[s].BillID}, &rep, nil)
	}
	want = map[string]string{named: "[청구서 취소] 한울유통: 행복식당 님, ", plain: "[청구서 취소] 소망분식 님, "}
	checkStoreMessages(t, delivered(t, sim, "bill_cancelled", []string{named, plain}, time.Minute), want)

	// Each store got one message of each kind: nothing was sent twice.
	testenv.CheckFor(t, time.Minute, func() error {
		for _, s := range []string{named, plain} {
			if n := len(sim.Messages("store:" + s)); n != 4 {
				return fmt.Errorf("store %s has %d messages, want 4", s, n)
			}
		}
		return nil
	})
}

// checkStoreMessages checks that each store's message begins with
// want[store], and that its data has the distributor's name only when the
// text names it.
func checkStoreMessages(t *testing.T, msgs []chat.SimMessage, want map[string]string) {
	t.Helper()
	onceEach(t, msgs)
	for _, m := range msgs {
		s := strings.TrimPrefix(m.Channel, "store:")
		if !strings.HasPrefix(m.Message, want[s]) {
			t.Errorf("%s to %s: %q, want it to begin %q", m.CustomType, s, m.Message, want[s])
		}
		var data map[string]string
		if err := json.Unmarshal([]byte(m.Data), &data); err != nil {
			t.Fatal(err)
		}
		name, ok := data["distributor_name"]
		if named := strings.Contains(want[s], "한울유통"); named && name != "한울유통" || !named && ok {
			t.Errorf("%s to %s: data %v, distributor_name %q", m.CustomType, s, data, name)
		}
	}
}

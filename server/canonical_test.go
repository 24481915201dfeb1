package server_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Two requests that mean the same are one request for an Idempotency-Key:
// the default currency written or not, an account number grouped with
// spaces or not, a bank name with surrounding spaces or not.
func TestIdempotencyComparesCanonicalRequests(t *testing.T) {
	e, bk := moneyEngine(t)

	t.Run("explicit default currency", func(t *testing.T) {
		key := client.WithIdempotencyKey("same-order")
		var first, again api.SubmitOrderReply
		e.call(t, subjSubmit, map[string]any{"buyer_id": "u-c", "buyer_name": "김민수", "amount": 5000}, &first, key)
		before := e.lastSeq(t)
		r := e.call(t, subjSubmit, map[string]any{"buyer_id": "u-c", "buyer_name": "김민수", "amount": 5000, "currency": "KRW"}, &again, key)
		if !r.Replayed || again.OrderID != first.OrderID {
			t.Fatalf("with \"currency\":\"KRW\": replayed %v, order %s vs %s", r.Replayed, again.OrderID, first.OrderID)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatalf("the repeat wrote: %d → %d", before, after)
		}
	})

	t.Run("explicit default currency on every money request", func(t *testing.T) {
		fund(t, e, bk, "u-k", "김민수", 9000)
		account := map[string]string{"bank": "신한은행", "number": "110123456789", "holder": "김민수"}
		key := client.WithIdempotencyKey("same-withdrawal")
		var first, again api.WithdrawReply
		e.call(t, subjWithdraw, map[string]any{"user_id": "u-k", "amount": 1000, "currency": "KRW", "bank_account": account}, &first, key)
		r := e.call(t, subjWithdraw, map[string]any{"user_id": "u-k", "amount": 1000, "bank_account": account}, &again, key)
		if !r.Replayed || again.PayoutID != first.PayoutID {
			t.Fatalf("withdraw without \"currency\":\"KRW\": replayed %v, payout %s vs %s", r.Replayed, again.PayoutID, first.PayoutID)
		}
		if ce := e.callErr(t, subjWithdraw, map[string]any{"user_id": "u-k", "amount": 1000, "currency": "USD", "bank_account": account}, nil); ce.Status != 400 || ce.Code != "unsupported_currency" {
			t.Fatalf("withdraw in USD: %+v", ce)
		}
		var rec api.RecordDepositReply
		e.call(t, api.DepositRecord.Subject, map[string]any{"bank_txn_id": "cur-1", "account_number": "123401-04-567890", "depositor_name": "누군가",
			"amount": 700, "currency": "KRW", "deposited_at": time.Now().UTC()}, &rec, nil)
		if rec.DepositID == "" {
			t.Fatalf("deposit.record with \"currency\":\"KRW\": %+v", rec)
		}
		if ce := e.callErr(t, api.DepositRecord.Subject, map[string]any{"bank_txn_id": "cur-2", "account_number": "123401-04-567890", "depositor_name": "누군가",
			"amount": 700, "currency": "USD", "deposited_at": time.Now().UTC()}, nil); ce.Status != 400 || ce.Code != "unsupported_currency" {
			t.Fatalf("deposit.record in USD: %+v", ce)
		}
	})

	t.Run("bank account written differently", func(t *testing.T) {
		fund(t, e, bk, "u-g", "박지성", 9000)
		key := client.WithIdempotencyKey("same-payout")
		var first, again api.WithdrawReply
		e.call(t, subjWithdraw, map[string]any{"user_id": "u-g", "amount": 1000,
			"bank_account": map[string]string{"bank": " 신한은행 ", "number": "110 123 456789", "holder": "박지성"}}, &first, key)
		r := e.call(t, subjWithdraw, map[string]any{"user_id": "u-g", "amount": 1000,
			"bank_account": map[string]string{"bank": "신한은행", "number": "110123456789", "holder": "박지성 "}}, &again, key)
		if !r.Replayed || again.PayoutID != first.PayoutID {
			t.Fatalf("same account, other writing: replayed %v, payout %s vs %s", r.Replayed, again.PayoutID, first.PayoutID)
		}
		// Another account is another request.
		if ce := e.callErr(t, subjWithdraw, map[string]any{"user_id": "u-g", "amount": 1000,
			"bank_account": map[string]string{"bank": "신한은행", "number": "110123456780", "holder": "박지성"}}, key); ce.Status != 422 || ce.Code != "idempotency_key_reused" {
			t.Fatalf("another account under the same key: %+v", ce)
		}
	})

	t.Run("store name and memo with surrounding spaces", func(t *testing.T) {
		var link api.LinkStoreReply
		e.call(t, api.StoreLink.Subject, map[string]any{"distributor_id": "d-c", "store_id": "s-c", "store_name": "  한울 식당\u00a0 "}, &link, nil)
		if link.StoreName != "한울 식당" {
			t.Fatalf("store name %q, want it without its surrounding spaces", link.StoreName)
		}
		// A blank memo is no memo; a memo is compared without its spaces.
		var blank api.IssueBillReply
		e.call(t, api.BillIssue.Subject, map[string]any{"distributor_id": "d-c", "store_id": "s-c", "amount": 1000, "memo": "   "}, &blank, nil)
		key := client.WithIdempotencyKey("same-bill")
		var first, again api.IssueBillReply
		e.call(t, api.BillIssue.Subject, map[string]any{"distributor_id": "d-c", "store_id": "s-c", "amount": 2000, "memo": " 11월분 "}, &first, key)
		r := e.call(t, api.BillIssue.Subject, map[string]any{"distributor_id": "d-c", "store_id": "s-c", "amount": 2000, "memo": "11월분"}, &again, key)
		if !r.Replayed || again.BillID != first.BillID {
			t.Fatalf("same memo, other spacing: replayed %v, bill %s vs %s", r.Replayed, again.BillID, first.BillID)
		}
		var view api.BillView
		e.call(t, api.BillGet.Subject, map[string]any{"bill_id": blank.BillID}, &view, nil)
		if view.Memo != "" || view.StoreName != "한울 식당" {
			t.Fatalf("bill with a blank memo: %+v", view)
		}
	})

	// A reason is recorded without its surrounding spaces, so a repeat
	// that writes them otherwise is the same request.
	t.Run("reason with surrounding spaces", func(t *testing.T) {
		var sub api.SubmitOrderReply
		e.call(t, subjSubmit, map[string]any{"buyer_id": "u-r", "buyer_name": "김민수", "amount": 4000}, &sub, nil)
		key := client.WithIdempotencyKey("same-cancel")
		var first, again api.CancelOrderReply
		e.call(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": " 옵션 변경\n"}, &first, key)
		before := e.lastSeq(t)
		r := e.call(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": "옵션 변경"}, &again, key)
		if !r.Replayed || again.Seq != first.Seq {
			t.Fatalf("order.cancel, same reason, other spacing: replayed %v, seq %d vs %d", r.Replayed, again.Seq, first.Seq)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatalf("the repeat wrote: %d → %d", before, after)
		}

		var link api.LinkStoreReply
		e.call(t, api.StoreLink.Subject, map[string]any{"distributor_id": "d-r", "store_id": "s-r", "store_name": "가게"}, &link, nil)
		var bill api.IssueBillReply
		e.call(t, api.BillIssue.Subject, map[string]any{"distributor_id": "d-r", "store_id": "s-r", "amount": 1000}, &bill, nil)
		bkey := client.WithIdempotencyKey("same-bill-cancel")
		var bfirst, bagain api.CancelBillReply
		e.call(t, api.BillCancel.Subject, map[string]any{"bill_id": bill.BillID, "reason": "잘못 발행 "}, &bfirst, bkey)
		r = e.call(t, api.BillCancel.Subject, map[string]any{"bill_id": bill.BillID, "reason": "잘못 발행"}, &bagain, bkey)
		if !r.Replayed || bagain.Seq != bfirst.Seq {
			t.Fatalf("bill.cancel, same reason, other spacing: replayed %v, seq %d vs %d", r.Replayed, bagain.Seq, bfirst.Seq)
		}
		// Another reason is another request.
		if ce := e.callErr(t, api.BillCancel.Subject, map[string]any{"bill_id": bill.BillID, "reason": "중복"}, bkey); ce.Status != 422 || ce.Code != "idempotency_key_reused" {
			t.Fatalf("another reason under the same key: %+v", ce)
		}
	})
}

// An account number grouped with spaces is accepted, recorded and sent in
// canonical form, and the firm-banking provider pays it: what the API
// accepts, firm banking executes (a payout to "1 2" used to be retried for
// ever and hold its money in payouts pending).
func TestWithdrawalToGroupedAccountNumberIsPaid(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-s", "손흥민", 30000)
	want := map[string]string{}
	for _, number := range []string{"1 2", "110 123 456789", "110-123 456789"} {
		var rep api.WithdrawReply
		e.call(t, subjWithdraw, map[string]any{"user_id": "u-s", "amount": 5000,
			"bank_account": map[string]string{"bank": "신한은행", "number": number, "holder": "손흥민"}}, &rep, nil)
		want[rep.PayoutID] = domain.CanonicalBankAccount(domain.BankAccount{Number: number}).Number
	}
	testenv.Eventually(t, 30*time.Second, "payouts settled", func() bool {
		return e.balanced(t)[domain.AccountPayoutsPending] == 0 && e.balanced(t)[domain.AccountBankFees] == 3*500
	})
	for id, number := range want {
		var p api.PayoutView
		e.call(t, api.PayoutGet.Subject, map[string]string{"payout_id": id}, &p, nil)
		if p.Status != "settled" || p.To.Number != number {
			t.Errorf("payout %s: status %s, to %q; want settled to %q", id, p.Status, p.To.Number, number)
		}
	}
}

// A repeat while the first attempt is in progress (or its instance died
// and its lease runs) is told when to retry.
func TestInProgressSaysWhenToRetry(t *testing.T) {
	e := startEngine(t)
	idem, _ := e.idempotencyStore(t)
	// An attempt claimed the key and died before finishing.
	canonical, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: "u-7", BuyerName: "박지성", Amount: 12000})
	if _, _, err := idem.Begin(ctxT(t), subjSubmit+".operator", "died", idempotency.HashBody(canonical), json.RawMessage(`{"order_id":"planned-9"}`)); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Request(ctxT(t), subjSubmit, map[string]any{"buyer_id": "u-7", "buyer_name": "박지성", "amount": 12000, "currency": "KRW"}, client.WithIdempotencyKey("died"))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "in_progress" {
		t.Fatalf("repeat during the lease: %v", err)
	}
	retry, ok := ae.Details["retry_after_s"].(float64)
	if !ok || retry < 1 || retry > idempotency.DefaultLease.Seconds() {
		t.Fatalf("details %v: want retry_after_s between 1 and %v", ae.Details, idempotency.DefaultLease.Seconds())
	}
}

// An error reply that says when to retry says it in a Retry-After header
// too, in whole seconds, as retrying clients and HTTP gateways read it.
func TestRetryAfterHeader(t *testing.T) {
	e := startEngine(t)
	idem, _ := e.idempotencyStore(t)
	canonical, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: "u-8", BuyerName: "차범근", Amount: 13000})
	if _, _, err := idem.Begin(ctxT(t), subjSubmit+".operator", "held", idempotency.HashBody(canonical), json.RawMessage(`{"order_id":"planned-10"}`)); err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subjSubmit)
	msg.Header.Set(api.HeaderIdempotencyKey, "held")
	msg.Data = []byte(`{"buyer_id":"u-8","buyer_name":"차범근","amount":13000}`)
	resp, err := e.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &body); err != nil || body.Error.Code != "in_progress" {
		t.Fatalf("reply %s (%v): want in_progress", resp.Data, err)
	}
	retry, ok := body.Error.Details["retry_after_s"].(float64)
	if !ok {
		t.Fatalf("details %v: no retry_after_s", body.Error.Details)
	}
	if got, want := resp.Header.Get(api.HeaderRetryAfter), strconv.Itoa(int(retry)); got != want {
		t.Fatalf("Retry-After header %q, want %q (details.retry_after_s)", got, want)
	}

	// An error that names no wait carries no header.
	msg = nats.NewMsg(subjCancel)
	msg.Data = []byte(`{"order_id":"nope","deposited":false}`)
	resp, err = e.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(micro.ErrorCodeHeader); got != "404" {
		t.Fatalf("cancel of an unknown order: status %q, want 404", got)
	}
	if got := resp.Header.Values(api.HeaderRetryAfter); len(got) != 0 {
		t.Fatalf("404 carries Retry-After %q", got)
	}
}

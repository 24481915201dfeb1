package server_test

import (
	"encoding/json"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/idempotency"
)

// A keyed command an earlier engine executed, whose body this engine's
// validation refuses (it has grown stricter: a reason with a zero-width
// space, a payout holder with a variation selector), is
// answered its stored reply when repeated with its key after the upgrade,
// as any repeat is: not 400, which would tell the client that a
// cancellation or a withdrawal that took effect did not. The same body
// under a key with no record is still refused, and nothing is written.
func TestRepeatOfACommandAnEarlierEngineAcceptedGetsItsReply(t *testing.T) {
	e := startEngine(t)
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-up", "buyer_name": "박지성", "amount": 12000}, &sub, nil)
	// An earlier engine cancelled the order for a request whose reason
	// holds U+200B, and stored its reply under the key.
	var cancelled api.CancelOrderReply
	first := e.call(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": "changed mind"}, &cancelled, nil)
	deposited := false
	old := api.CancelOrderRequest{OrderID: sub.OrderID, Deposited: &deposited, Reason: "changed\u200bmind"}
	if err := old.Validate(); err == nil {
		t.Fatal("the earlier engine's request is valid here: the test shows nothing")
	}
	body, _ := json.Marshal(old)
	idem, _ := e.idempotencyStore(t)
	claim, _, err := idem.Begin(ctxT(t), subjCancel+".operator", "cancel-before-upgrade", idempotency.HashBody(body), nil)
	if err != nil || claim == nil {
		t.Fatalf("claim: %v", err)
	}
	if err := idem.Complete(ctxT(t), claim, idempotency.Reply{Status: 200, Body: first.Data}); err != nil {
		t.Fatal(err)
	}
	before := e.lastSeq(t)

	req := map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": "changed\u200bmind"}
	var again api.CancelOrderReply
	r, err := e.c.Call(ctxT(t), subjCancel, req, &again, client.WithIdempotencyKey("cancel-before-upgrade"))
	if err != nil {
		t.Fatalf("repeat of the earlier engine's cancellation: %v; want its stored reply", err)
	}
	if !r.Replayed || string(r.Data) != string(first.Data) {
		t.Fatalf("repeat: replayed %v\n%s\nwant\n%s", r.Replayed, r.Data, first.Data)
	}
	if ce := e.callErr(t, subjCancel, req, client.WithIdempotencyKey("cancel-new-key")); ce.Status != 400 || ce.Code != "invalid_input" {
		t.Fatalf("the same body under a new key: %+v, want 400 invalid_input", ce)
	}
	if ce := e.callErr(t, subjCancel, req, nil); ce.Status != 400 || ce.Code != "invalid_input" {
		t.Fatalf("the same body without a key: %+v, want 400 invalid_input", ce)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("repeats wrote events: last seq %d → %d", before, after)
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/server"
)

const (
	subjSubmit = "bankbook.cmd.order.submit"
	subjCancel = "bankbook.cmd.order.cancel"
	subjGet    = "bankbook.q.order.get"
)

func TestServiceInfoListsEveryEndpoint(t *testing.T) {
	e := startEngine(t)
	subject, err := micro.ControlSubject(micro.InfoVerb, api.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := e.nc.Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != "bankbook" {
		t.Fatalf("service name %q", info.Name)
	}
	got := map[string]string{}
	for _, ep := range info.Endpoints {
		got[ep.Subject] = ep.Metadata["kind"]
	}
	for _, want := range api.Endpoints() {
		if want.Kind == api.KindSimulator {
			continue // served only with a simulator
		}
		if got[want.Subject] != string(want.Kind) {
			t.Errorf("$SRV.INFO.bankbook lists %s with kind %q, want %q", want.Subject, got[want.Subject], want.Kind)
		}
	}
	if info.Version != api.Version {
		t.Errorf("version %q, want %q", info.Version, api.Version)
	}
	if _, err := e.nc.Request("$SRV.PING.bankbook", nil, 5*time.Second); err != nil {
		t.Fatalf("$SRV.PING.bankbook: %v", err)
	}

	// $SRV.STATS.bankbook counts what the handlers answered, errors included,
	// in micro's own fields, as `nats micro stats bankbook` reads them.
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": "a", "amount": 1}, nil, nil)
	e.callErr(t, subjGet, map[string]string{"order_id": "missing"}, nil)
	e.callErr(t, subjGet, map[string]string{"order_id": "bad id!"}, nil)
	msg, err = e.nc.Request("$SRV.STATS.bankbook", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	byName := map[string]*micro.EndpointStats{}
	for _, ep := range stats.Endpoints {
		byName[ep.Subject] = ep
	}
	if d := byName[subjSubmit]; d == nil || d.NumRequests != 1 || d.NumErrors != 0 || d.AverageProcessingTime <= 0 || d.QueueGroup != "q" {
		t.Fatalf("submit stats %+v", d)
	}
	if d := byName[subjGet]; d == nil || d.NumRequests != 2 || d.NumErrors != 2 || d.LastError != "400 invalid_input" {
		t.Fatalf("get stats %+v", d)
	}
}

func TestConsistencyToken(t *testing.T) {
	e := startEngine(t)
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-ct", "buyer_name": "이수진", "amount": 5000}, &sub, nil)
	if sub.Seq == 0 {
		t.Fatalf("submit reply carries no seq: %+v", sub)
	}
	var cancel api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false}, &cancel, nil)
	if cancel.Seq <= sub.Seq {
		t.Fatalf("cancel seq %d, submit seq %d", cancel.Seq, sub.Seq)
	}
	// A second client (another connection, no writes of its own) reads after
	// the token and sees the cancellation.
	other := connect(t, e.Engine)
	var got api.OrderView
	if _, err := other.Call(ctxT(t), subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": cancel.Seq}, &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.Status != "cancelled" || got.Seq != cancel.Seq {
		t.Fatalf("order after min_seq %d: status %s seq %d", cancel.Seq, got.Status, got.Seq)
	}
	// A token the stream has not reached is refused at once (it would
	// otherwise hold a request slot for the whole wait), naming the last
	// sequence there is.
	ce := e.callErr(t, subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": cancel.Seq + 1000}, nil)
	if ce.Status != 503 || ce.Code != "not_caught_up" || ce.Details["last_seq"] == nil {
		t.Fatalf("future min_seq: %v", ce)
	}
	// A malformed token is bad input, named as the client wrote it.
	for _, tc := range []struct {
		subject string
		req     map[string]any
		field   string
	}{
		{subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": "soon"}, "min_seq"},
		{subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": -1}, "min_seq"},
		{"bankbook.q.ledger.account", map[string]any{"account": "x", "min_seq": 1.5}, "min_seq"},
		{"bankbook.q.ledger.account", map[string]any{"account": "x", "limit": "ten"}, "limit"},
	} {
		if ce := e.callErr(t, tc.subject, tc.req, nil); ce.Status != 400 || ce.Details["field"] != tc.field {
			t.Errorf("%s %v: %v %v, want 400 naming %s", tc.subject, tc.req, ce, ce.Details, tc.field)
		}
	}
	// Queries without parameters take it too.
	var tb api.TrialBalanceReply
	e.call(t, "bankbook.q.ledger.trial_balance", map[string]any{"min_seq": cancel.Seq}, &tb, nil)
	if tb.AsOfSeq < cancel.Seq {
		t.Fatalf("trial balance as of %d, want ≥ %d", tb.AsOfSeq, cancel.Seq)
	}
}

var depositorName = regexp.MustCompile(`^김민수[0-9]{3}$`)

func TestOrderSubmitGetCancel(t *testing.T) {
	e := startEngine(t)

	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-1", "buyer_name": "김민수", "amount": 39000}, &sub, nil)
	if sub.OrderID == "" || sub.Status != "awaiting_deposit" || !depositorName.MatchString(sub.DepositorName) ||
		sub.CollectAccount.Number != e.cfg.CollectNumber || sub.CancelWindowS != 300 || sub.Amount != 39000 || sub.Currency != "KRW" {
		t.Fatalf("submit reply %+v", sub)
	}
	at, err := time.Parse(time.RFC3339Nano, sub.SubmittedAt)
	if err != nil || !strings.Contains(sub.SubmittedAt, ".") || !strings.HasSuffix(sub.SubmittedAt, "Z") || time.Since(at) > time.Minute {
		t.Fatalf("submitted_at %q: %v", sub.SubmittedAt, err)
	}

	// Read-your-writes: the query right after the command sees it.
	var got projections.OrderView
	e.call(t, subjGet, map[string]string{"order_id": sub.OrderID}, &got, nil)
	if got.OrderID != sub.OrderID || got.Status != "awaiting_deposit" || got.BuyerID != "u-1" || got.Amount != 39000 ||
		got.DepositorName != sub.DepositorName || got.PaidAmount != 0 || got.DepositIDs == nil || got.Refunds == nil ||
		got.SubmittedAt != sub.SubmittedAt || got.UpdatedAt != sub.SubmittedAt {
		t.Fatalf("get = %+v", got)
	}

	var can api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": "옵션 변경"}, &can, nil)
	if can.OrderID != sub.OrderID || can.Status != "cancelled" || can.CancelAt != "" || can.Refund != nil {
		t.Fatalf("cancel reply %+v", can)
	}
	e.call(t, subjGet, map[string]string{"order_id": sub.OrderID}, &got, nil)
	if got.Status != "cancelled" || got.CancelReason != "옵션 변경" || got.UpdatedAt == got.SubmittedAt {
		t.Fatalf("after cancel: %+v", got)
	}

	before := e.written(t)
	if ce := e.callErr(t, subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false}, nil); ce.Status != 409 || ce.Code != "wrong_state" || ce.Details["status"] != "cancelled" {
		t.Fatalf("second cancel: %+v", ce)
	}
	// Client-chosen order IDs are honoured and unique.
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-1", "buyer_name": "김민수", "amount": 1, "order_id": "ord-42"}, &sub, nil)
	if sub.OrderID != "ord-42" {
		t.Fatalf("order_id %q", sub.OrderID)
	}
	if ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u-2", "buyer_name": "이영희", "amount": 5, "order_id": "ord-42"}, nil); ce.Status != 409 || ce.Code != "order_exists" {
		t.Fatalf("duplicate order_id: %+v", ce)
	}
	// deposited: true reserves the cancellation until the scan window ends.
	var reserved api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": "ord-42", "deposited": true}, &reserved, nil)
	submitted, _ := time.Parse(time.RFC3339Nano, sub.SubmittedAt)
	if reserved.Status != "cancel_reserved" || reserved.CancelAt != domain.FormatTime(submitted.Add(300*time.Second)) {
		t.Fatalf("cancel deposited: %+v, want cancel_reserved at submitted_at+300s", reserved)
	}
	e.call(t, subjGet, map[string]string{"order_id": "ord-42"}, &got, nil)
	if got.Status != "cancel_reserved" || got.CancelAt != reserved.CancelAt {
		t.Fatalf("reserved order: %+v", got)
	}
	if ce := e.callErr(t, subjCancel, map[string]any{"order_id": "ord-42", "deposited": false}, nil); ce.Status != 409 || ce.Code != "wrong_state" {
		t.Fatalf("cancel of a reserved order: %+v", ce)
	}
	if after := e.written(t); after != before+2 {
		t.Fatalf("refused commands wrote: %d commits → %d, want only the submit and the reservation", before, after)
	}
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	e := startEngine(t)
	var existing api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": "김민수", "amount": 100, "order_id": "exists"}, &existing, nil)
	before := e.lastSeq(t)

	ok := `"buyer_id":"u-1","buyer_name":"김민수"`
	cases := []struct {
		name, subject, body string
		status              int
		code                string
	}{
		{"malformed json", subjSubmit, `{"buyer_id":`, 400, "invalid_input"},
		{"not an object", subjSubmit, `[1,2]`, 400, "invalid_input"},
		{"empty body", subjSubmit, ``, 400, "invalid_input"},
		{"null", subjSubmit, `null`, 400, "invalid_input"},
		{"trailing data", subjSubmit, `{` + ok + `,"amount":5} {}`, 400, "invalid_input"},
		{"unknown field", subjSubmit, `{` + ok + `,"amount":5,"amout":5}`, 400, "invalid_input"},
		{"missing buyer_id", subjSubmit, `{"buyer_name":"김민수","amount":5}`, 400, "invalid_input"},
		{"missing buyer_name", subjSubmit, `{"buyer_id":"u","amount":5}`, 400, "invalid_input"},
		{"blank buyer_name", subjSubmit, `{"buyer_id":"u","buyer_name":"  ","amount":5}`, 400, "invalid_input"},
		{"missing amount", subjSubmit, `{` + ok + `}`, 400, "invalid_input"},
		{"zero amount", subjSubmit, `{` + ok + `,"amount":0}`, 400, "invalid_input"},
		{"negative amount", subjSubmit, `{` + ok + `,"amount":-1}`, 400, "invalid_input"},
		{"amount over 10^15", subjSubmit, `{` + ok + `,"amount":1000000000000001}`, 400, "invalid_input"},
		{"amount beyond int64", subjSubmit, `{` + ok + `,"amount":1e30}`, 400, "invalid_input"},
		{"fractional amount", subjSubmit, `{` + ok + `,"amount":1.5}`, 400, "invalid_input"},
		{"amount as string", subjSubmit, `{` + ok + `,"amount":"100"}`, 400, "invalid_input"},
		{"unsupported currency", subjSubmit, `{` + ok + `,"amount":5,"currency":"USD"}`, 400, "unsupported_currency"},
		{"order_id with a dot", subjSubmit, `{` + ok + `,"amount":5,"order_id":"a.b"}`, 400, "invalid_input"},
		{"order_id with a wildcard", subjSubmit, `{` + ok + `,"amount":5,"order_id":"a*"}`, 400, "invalid_input"},
		{"buyer_id too long", subjSubmit, `{"buyer_id":"` + strings.Repeat("x", 65) + `","buyer_name":"a","amount":5}`, 400, "invalid_input"},
		{"existing order_id", subjSubmit, `{` + ok + `,"amount":5,"order_id":"exists"}`, 409, "order_exists"},
		{"cancel: missing order_id", subjCancel, `{"deposited":false}`, 400, "invalid_input"},
		{"cancel: missing deposited", subjCancel, `{"order_id":"exists"}`, 400, "invalid_input"},
		{"cancel: deposited not a bool", subjCancel, `{"order_id":"exists","deposited":"no"}`, 400, "invalid_input"},
		{"cancel: unknown order", subjCancel, `{"order_id":"nope","deposited":false}`, 404, "order_not_found"},
		{"cancel: unknown field", subjCancel, `{"order_id":"exists","deposited":false,"x":1}`, 400, "invalid_input"},
		{"cancel: reason too long", subjCancel, `{"order_id":"exists","deposited":false,"reason":"` + strings.Repeat("가", 501) + `"}`, 400, "invalid_input"},
		{"get: unknown order", subjGet, `{"order_id":"nope"}`, 404, "order_not_found"},
		{"get: missing order_id", subjGet, `{}`, 400, "invalid_input"},
		{"get: unknown field", subjGet, `{"order_id":"exists","x":1}`, 400, "invalid_input"},
		{"huge body", subjSubmit, `{` + ok + `,"amount":5,"order_id":"` + strings.Repeat("x", 70000) + `"}`, 400, "invalid_input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := nats.NewMsg(tc.subject)
			msg.Data = []byte(tc.body)
			resp, err := e.nc.RequestMsg(msg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get(micro.ErrorCodeHeader); got != fmt.Sprint(tc.status) {
				t.Fatalf("status header %q, want %d (body %s)", got, tc.status, resp.Data)
			}
			if got := resp.Header.Get(micro.ErrorHeader); got != tc.code {
				t.Fatalf("Nats-Service-Error %q, want %q", got, tc.code)
			}
			var body struct {
				Error struct {
					Code    string         `json:"code"`
					Message string         `json:"message"`
					Details map[string]any `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(resp.Data, &body); err != nil || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("error body %s (%v)", resp.Data, err)
			}
		})
	}
	// An invalid Idempotency-Key header is refused too.
	if ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": "a", "amount": 5}, nats.Header{"Idempotency-Key": []string{""}}); ce.Status != 400 || ce.Code != "invalid_idempotency_key" {
		t.Fatalf("empty key: %+v", ce)
	}
	if ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": "a", "amount": 5}, client.WithIdempotencyKey("키")); ce.Status != 400 {
		t.Fatalf("non-ASCII key: %+v", ce)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("refused requests wrote events: last seq %d → %d", before, after)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.DuplicateWindow = engine.Duration(100 * time.Millisecond) })
	req := map[string]any{"buyer_id": "u-7", "buyer_name": "박지성", "amount": 12000}

	t.Run("100 concurrent repeats make one order", func(t *testing.T) {
		before := e.written(t)
		key := client.WithIdempotencyKey("checkout-1")
		var mu sync.Mutex
		orderIDs := map[string]int{}
		inProgress := 0
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var rep api.SubmitOrderReply
				_, err := e.c.Call(ctxT(t), subjSubmit, req, &rep, key)
				mu.Lock()
				defer mu.Unlock()
				if ce, ok := err.(*client.Error); ok && ce.Status == 409 && ce.Code == "in_progress" {
					inProgress++
					return
				}
				if err != nil {
					t.Errorf("repeat: %v", err)
					return
				}
				orderIDs[rep.OrderID]++
			}()
		}
		wg.Wait()
		if len(orderIDs) != 1 {
			t.Fatalf("repeats produced orders %v", orderIDs)
		}
		if after := e.written(t); after != before+1 {
			t.Fatalf("100 repeats appended %d commits, want 1", after-before)
		}
		t.Logf("%d repeats answered with the order, %d with 409 in_progress", 100-inProgress, inProgress)
		// Once finished, every repeat gets the stored reply.
		var rep api.SubmitOrderReply
		r := e.call(t, subjSubmit, req, &rep, key)
		if !r.Replayed {
			t.Fatal("repeat after completion lacks Idempotency-Replayed: true")
		}
		for id := range orderIDs {
			if rep.OrderID != id {
				t.Fatalf("replayed order %s, original %s", rep.OrderID, id)
			}
		}
	})

	t.Run("a different body with the same key is refused", func(t *testing.T) {
		key := client.WithIdempotencyKey("checkout-2")
		var first api.SubmitOrderReply
		e.call(t, subjSubmit, req, &first, key)
		before := e.lastSeq(t)
		other := map[string]any{"buyer_id": "u-7", "buyer_name": "박지성", "amount": 12001}
		if ce := e.callErr(t, subjSubmit, other, key); ce.Status != 422 || ce.Code != "idempotency_key_reused" {
			t.Fatalf("reused key: %+v", ce)
		}
		// The same body in another JSON layout is the same request.
		raw := []byte(`{ "amount": 12000, "buyer_name": "박지성", "buyer_id": "u-7" }`)
		var again api.SubmitOrderReply
		r := e.call(t, subjSubmit, raw, &again, key)
		if !r.Replayed || again.OrderID != first.OrderID {
			t.Fatalf("reordered body: replayed %v, order %s vs %s", r.Replayed, again.OrderID, first.OrderID)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatal("refused or replayed requests wrote events")
		}
	})

	t.Run("the reply goes before the record; a repeat meanwhile gets it", func(t *testing.T) {
		release := make(chan struct{})
		var releaseOnce sync.Once
		free := func() { releaseOnce.Do(func() { close(release) }) }
		held, undo := server.HoldCompletion("checkout-4", release)
		defer undo()
		defer free() // a failing test must not hold the engine's Stop
		key := client.WithIdempotencyKey("checkout-4")
		var first api.SubmitOrderReply
		// Answered while the record is held: the reply does not wait for it.
		firstRaw := e.call(t, subjSubmit, req, &first, key)
		select {
		case <-held:
		case <-time.After(10 * time.Second):
			t.Fatal("the record was not written after the reply")
		}
		before := e.lastSeq(t)
		var again api.SubmitOrderReply
		r := e.call(t, subjSubmit, req, &again, key)
		if !r.Replayed || string(r.Data) != string(firstRaw.Data) {
			t.Fatalf("repeat before the record: replayed %v\n%s\nvs\n%s", r.Replayed, r.Data, firstRaw.Data)
		}
		other := map[string]any{"buyer_id": "u-7", "buyer_name": "박지성", "amount": 12002}
		if ce := e.callErr(t, subjSubmit, other, key); ce.Status != 422 || ce.Code != "idempotency_key_reused" {
			t.Fatalf("reused key before the record: %+v", ce)
		}
		// The record is still in progress: the repeat above was answered
		// from the completion this instance holds.
		idem, _ := e.idempotencyStore(t)
		canonical, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: "u-7", BuyerName: "박지성", Amount: 12000})
		if _, _, err := idem.Begin(ctxT(t), subjSubmit+".operator", "checkout-4", idempotency.HashBody(canonical), nil); !errors.Is(err, idempotency.ErrInProgress) {
			t.Fatalf("record while held: %v, want in progress", err)
		}
		free()
		testenv.CheckFor(t, 10*time.Second, func() error {
			_, stored, err := idem.Begin(ctxT(t), subjSubmit+".operator", "checkout-4", idempotency.HashBody(canonical), nil)
			if err != nil || stored == nil {
				return fmt.Errorf("record not written yet: %v", err)
			}
			return nil
		})
		r = e.call(t, subjSubmit, req, &again, key)
		if !r.Replayed || string(r.Data) != string(firstRaw.Data) {
			t.Fatalf("repeat after the record: replayed %v\n%s", r.Replayed, r.Data)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatal("repeats wrote events")
		}
	})

	t.Run("a retry after the dedup window gets the original reply", func(t *testing.T) {
		key := client.WithIdempotencyKey("checkout-3")
		var first api.SubmitOrderReply
		firstRaw := e.call(t, subjSubmit, req, &first, key)
		time.Sleep(400 * time.Millisecond) // 4× the stream's 100ms dedup window
		before := e.lastSeq(t)
		var again api.SubmitOrderReply
		r := e.call(t, subjSubmit, req, &again, key)
		if !r.Replayed || string(r.Data) != string(firstRaw.Data) {
			t.Fatalf("retry after the window: replayed %v\n%s\nvs\n%s", r.Replayed, r.Data, firstRaw.Data)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatal("retry after the dedup window wrote events")
		}
	})

	t.Run("header names are case-insensitive", func(t *testing.T) {
		lower := nats.Header{"idempotency-key": []string{"checkout-lower"}}
		var first, again api.SubmitOrderReply
		e.call(t, subjSubmit, req, &first, lower)
		r := e.call(t, subjSubmit, req, &again, nats.Header{"IDEMPOTENCY-KEY": []string{"checkout-lower"}})
		if !r.Replayed || again.OrderID != first.OrderID {
			t.Fatalf("lower/upper-case header: replayed %v, %s vs %s", r.Replayed, again.OrderID, first.OrderID)
		}
	})

	t.Run("a claim left by a failed attempt is resumed with its plan", func(t *testing.T) {
		// An attempt claimed the key, planned order ID "planned-1", and
		// failed (a 5xx): its claim is abandoned.
		idem, _ := e.idempotencyStore(t)
		canonical, _ := json.Marshal(api.SubmitOrderRequest{BuyerID: "u-7", BuyerName: "박지성", Amount: 12000})
		claim, _, err := idem.Begin(ctxT(t), subjSubmit+".operator", "checkout-failed", idempotency.HashBody(canonical), json.RawMessage(`{"order_id":"planned-1"}`))
		if err != nil || claim == nil {
			t.Fatalf("claim: %v", err)
		}
		if err := idem.Abandon(ctxT(t), claim); err != nil {
			t.Fatal(err)
		}
		// The client's retry takes the claim over and creates the planned order.
		var rep api.SubmitOrderReply
		r := e.call(t, subjSubmit, req, &rep, client.WithIdempotencyKey("checkout-failed"))
		if r.Replayed || rep.OrderID != "planned-1" {
			t.Fatalf("resumed attempt: replayed %v, order %q; want a new order planned-1", r.Replayed, rep.OrderID)
		}
		r = e.call(t, subjSubmit, req, &rep, client.WithIdempotencyKey("checkout-failed"))
		if !r.Replayed || rep.OrderID != "planned-1" {
			t.Fatalf("repeat after the resumed attempt: replayed %v, order %q", r.Replayed, rep.OrderID)
		}
	})

	t.Run("a claim left by an attempt that appended is answered from its events", func(t *testing.T) {
		// An attempt claimed the key, planned order ID "planned-2",
		// appended the order and died before recording the reply.
		idem, js := e.idempotencyStore(t)
		req := api.SubmitOrderRequest{BuyerID: "u-8", BuyerName: "차범근", Amount: 13000}
		canonical, _ := json.Marshal(req)
		claim, _, err := idem.Begin(ctxT(t), subjSubmit+".operator", "checkout-appended", idempotency.HashBody(canonical), json.RawMessage(`{"order_id":"planned-2"}`))
		if err != nil || claim == nil {
			t.Fatalf("claim: %v", err)
		}
		planned := req
		planned.OrderID = "planned-2"
		first, err := e.Commands.Orders.SubmitOrder(ctxT(t), commands.Meta{Command: subjSubmit, IdempotencyKey: "checkout-appended", Actor: "operator"}, planned)
		if err != nil {
			t.Fatal(err)
		}
		if err := idem.Abandon(ctxT(t), claim); err != nil {
			t.Fatal(err)
		}
		// The retry takes the claim over with the plan's ID (not a fresh
		// one): it reads the order and answers what the attempt did,
		// without reserving another depositor name.
		names, err := js.KeyValue(ctxT(t), "bankbook_depositor_names")
		if err != nil {
			t.Fatal(err)
		}
		countNames := func() int {
			keys, err := names.ListKeys(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range keys.Keys() {
				n++
			}
			return n
		}
		before, namesBefore := e.lastSeq(t), countNames()
		var rep api.SubmitOrderReply
		r := e.call(t, subjSubmit, req, &rep, client.WithIdempotencyKey("checkout-appended"))
		if rep.OrderID != "planned-2" || rep.DepositorName != first.DepositorName || rep.Seq != first.Seq {
			t.Fatalf("resumed attempt answered %+v, want the first attempt's %+v", rep, first)
		}
		// The first attempt may have answered before it died (its reply
		// goes before its record): this is that reply again.
		if !r.Replayed {
			t.Fatal("the reply found again by key lacks Idempotency-Replayed: true")
		}
		if after := e.lastSeq(t); after != before {
			t.Fatalf("the resumed attempt wrote: stream at %d, was %d", after, before)
		}
		if n := countNames(); n != namesBefore {
			t.Fatalf("the resumed attempt reserved names: %d keys, were %d", n, namesBefore)
		}
	})

	t.Run("a resumed bulk issue that issues the rest is not a replay", func(t *testing.T) {
		// An attempt issued the first of two lines and died: its claim is
		// abandoned. The retry issues the second line; only the repeat
		// after that is a replay.
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-resume", StoreID: "s-r1", StoreName: "한울식당"}, nil, nil)
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-resume", StoreID: "s-r2", StoreName: "두리분식"}, nil, nil)
		req := api.IssueBulkRequest{DistributorID: "d-resume", Bills: []api.BillLine{{StoreID: "s-r1", Amount: 5000}, {StoreID: "s-r2", Amount: 6000}}}
		idem, _ := e.idempotencyStore(t)
		canonical, _ := json.Marshal(req)
		claim, _, err := idem.Begin(ctxT(t), api.BillIssueBulk.Subject+".operator", "bulk-resumed", idempotency.HashBody(canonical), nil)
		if err != nil || claim == nil {
			t.Fatalf("claim: %v", err)
		}
		firstLine := req
		firstLine.Bills = req.Bills[:1]
		done, err := e.Commands.Links.IssueBulk(ctxT(t), commands.Meta{Command: api.BillIssueBulk.Subject, IdempotencyKey: "bulk-resumed", Actor: "operator"}, firstLine)
		if err != nil || done.Issued != 1 {
			t.Fatalf("first attempt: %+v, %v", done, err)
		}
		if err := idem.Abandon(ctxT(t), claim); err != nil {
			t.Fatal(err)
		}
		var rep api.IssueBulkReply
		r := e.call(t, api.BillIssueBulk.Subject, req, &rep, client.WithIdempotencyKey("bulk-resumed"))
		if r.Replayed || rep.Issued != 2 || rep.Results[0].BillID != done.Results[0].BillID {
			t.Fatalf("resumed attempt: replayed %v, %+v; want line 1's bill %s found and line 2 issued, not replayed", r.Replayed, rep, done.Results[0].BillID)
		}
		var again api.IssueBulkReply
		r = e.call(t, api.BillIssueBulk.Subject, req, &again, client.WithIdempotencyKey("bulk-resumed"))
		if !r.Replayed || again.Results[1].BillID != rep.Results[1].BillID {
			t.Fatalf("repeat: replayed %v, %+v", r.Replayed, again)
		}
	})

	t.Run("a refusal is replayed too", func(t *testing.T) {
		key := client.WithIdempotencyKey("cancel-unknown")
		body := map[string]any{"order_id": "ghost", "deposited": false}
		first := e.callErr(t, subjCancel, body, key)
		if first.Status != 404 {
			t.Fatalf("first: %+v", first)
		}
		_, err := e.c.Request(ctxT(t), subjCancel, body, key)
		ce, ok := err.(*client.Error)
		if !ok || ce.Status != 404 || ce.Code != "order_not_found" {
			t.Fatalf("replayed refusal: %v", err)
		}
	})
}

// The envelope's actor is the identity the NATS server asserts (here the
// operator the test connects as), whatever Actor header the client sends.
func TestEventsCarryTheirEnvelope(t *testing.T) {
	e := startEngine(t)
	h := nats.Header{"Idempotency-Key": []string{"k-env"}, "Correlation-Id": []string{"corr-1"}, "Actor": []string{"buyer:u-9"}}
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-9", "buyer_name": "Kim", "amount": 7}, &sub, h)
	commits, err := e.Events.Load(context.Background(), eventstore.Ref{Type: "order", ID: sub.OrderID}, 0)
	if err != nil || len(commits) != 1 {
		t.Fatalf("load: %v %d", err, len(commits))
	}
	env := commits[0].Events[0]
	if env.EventID == "" || env.AggregateType != "order" || env.AggregateID != sub.OrderID || env.Version != 1 ||
		env.EventType != "order.submitted" || env.SchemaVersion != 1 || env.OccurredAt.IsZero() || env.RecordedAt.IsZero() ||
		env.CorrelationID != "corr-1" || env.IdempotencyKey != "k-env" || env.Actor != "operator" || env.Command != subjSubmit {
		t.Fatalf("envelope %+v", env)
	}
	var ev domain.OrderSubmitted
	if err := json.Unmarshal(env.Data, &ev); err != nil || ev.DepositorName != sub.DepositorName {
		t.Fatalf("payload %s: %v", env.Data, err)
	}
}

// TestScanCompleteIgnoresTheIdempotencyKey: deposit.scan_complete is
// idempotent by nature and ignores the header (api.md): a feed that sends
// one key with every call moves the watermark each time, and a repeat
// shows the watermark as it is now, not a stored reply.
func TestScanCompleteIgnoresTheIdempotencyKey(t *testing.T) {
	e := startEngine(t)
	key := client.WithIdempotencyKey("scanner-key")
	t1 := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Microsecond)
	t2 := t1.Add(time.Minute)
	var first, second, again api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: t1}, &first, key)
	rep, err := e.c.Call(ctxT(t), api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: t2}, &second, key)
	if err != nil || second.Watermark != domain.FormatTime(t2) || rep.Replayed {
		t.Fatalf("a later complete_up_to under the same key: %+v replayed %v, %v; want the watermark at %s", second, rep.Replayed, err, domain.FormatTime(t2))
	}
	rep, err = e.c.Call(ctxT(t), api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: t1}, &again, key)
	if err != nil || again.Watermark != domain.FormatTime(t2) || rep.Replayed {
		t.Fatalf("the first request again: %+v replayed %v, %v; want the watermark as it is now, %s", again, rep.Replayed, err, domain.FormatTime(t2))
	}
}

// TestRecordedDepositRepeatsWithItsAccountGroupedOtherwise: under one
// Idempotency-Key, the same bank transaction with its account number's
// digits grouped otherwise is the same request (replayed); another account
// number is another request (422).
func TestRecordedDepositRepeatsWithItsAccountGroupedOtherwise(t *testing.T) {
	e := startEngine(t)
	key := client.WithIdempotencyKey("feed-txn-1")
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
	req := api.RecordDepositRequest{BankTxnID: "T-grp", AccountNumber: "123401-04-567890", DepositorName: "아무개", Amount: 5000, DepositedAt: at}
	var first, again api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, req, &first, key)
	req.AccountNumber = "1234 0104 567890"
	rep, err := e.c.Call(ctxT(t), api.DepositRecord.Subject, req, &again, key)
	if err != nil || !rep.Replayed || again.DepositID != first.DepositID {
		t.Fatalf("the account grouped with spaces: %+v replayed %v, %v; want the first reply, deposit %s", again, rep.Replayed, err, first.DepositID)
	}
	req.AccountNumber = "1234 0104 567891"
	_, err = e.c.Call(ctxT(t), api.DepositRecord.Subject, req, &again, key)
	if ae, ok := errors.AsType[*api.Error](err); !ok || ae.Status != 422 || ae.Code != "idempotency_key_reused" {
		t.Fatalf("another account under the same key: %v, want 422 idempotency_key_reused", err)
	}
}

// A keyed command that panics is answered 500 internal like any other
// failure, and its claim on the key is let go: the client's retry runs at
// once (it is not refused 409 in_progress until the claim's lease ends),
// and the order is submitted once.
func TestAPanickedKeyedCommandIsRetriedAtOnce(t *testing.T) {
	e := startEngine(t)
	undo := server.PanicOnce("panics-1")
	defer undo()
	key := client.WithIdempotencyKey("panics-1")
	req := map[string]any{"buyer_id": "u-9", "buyer_name": "최민호", "amount": 7000}
	before := e.lastSeq(t)
	if ce := e.callErr(t, subjSubmit, req, key); ce.Status != 500 || ce.Code != "internal" {
		t.Fatalf("a panicking command answered %d %s, want 500 internal", ce.Status, ce.Code)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the panicked command wrote: last seq %d → %d", before, after)
	}
	var rep api.SubmitOrderReply
	if r := e.call(t, subjSubmit, req, &rep, key); r.Replayed || rep.OrderID == "" {
		t.Fatalf("retry after the panic: replayed %v, %+v", r.Replayed, rep)
	}
	if after := e.lastSeq(t); after != before+1 {
		t.Fatalf("retry wrote %d commits, want 1", after-before)
	}
}

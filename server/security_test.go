package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// The attacks an anonymous client could make before the engine required
// authentication, each made now by every client role against a real engine:
// each is refused by the NATS server, and the books, the streams and the
// buckets are as they were.
func TestAttacksAreRefused(t *testing.T) {
	e := startEngine(t)
	victim := e.submit(t, "u-victim", "김민수", 39000)
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	names, err := js.KeyValue(ctx, "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	nameKeys, err := names.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var nameKey string
	for k := range nameKeys.Keys() {
		if !strings.HasPrefix(k, "unpaid.") {
			nameKey = k
		}
	}
	before, err := names.Get(ctx, nameKey)
	if err != nil {
		t.Fatalf("the victim's name reservation %q: %v", nameKey, err)
	}
	seq := e.lastSeq(t)
	books := e.balanced(t)

	forgedCredit := `{"commit_id":"x","aggregate_type":"wallet","aggregate_id":"u-thief","events":[{"event_type":"wallet.credited","data":{"amount":1000000}}]}`
	attacks := []struct {
		name, subject, body string
	}{
		{"forged wallet.credited commit", "bankbook.evt.wallet.u-thief", forgedCredit},
		{"forged order.paid commit", "bankbook.evt.order." + victim.OrderID, `{"events":[{"event_type":"order.paid"}]}`},
		{"made-up deposit", api.DepositRecord.Subject, `{"bank_txn_id":"t-1","account_number":"123401-04-567890","depositor_name":"x","amount":1000000,"deposited_at":"2026-01-01T00:00:00Z"}`},
		{"scan watermark advanced", api.DepositScanComplete.Subject, `{"account_number":"123401-04-567890","complete_up_to":"2099-01-01T00:00:00Z"}`},
		{"depositor name rewritten", "$KV.bankbook_depositor_names." + nameKey, `{"order_id":"o-thief"}`},
		{"event stream deleted", "$JS.API.STREAM.DELETE.BANKBOOK_EVENTS", ""},
		{"timers purged", "$JS.API.STREAM.PURGE.BANKBOOK_TIMERS", ""},
		{"idempotency bucket purged", "$JS.API.STREAM.PURGE.KV_bankbook_idempotency", ""},
	}
	// Who may legitimately send some of these: feed records deposits and
	// reports scans; the operator may do what feed does.
	legit := map[string][]auth.Role{
		"made-up deposit":         {auth.Feed, auth.Operator},
		"scan watermark advanced": {auth.Feed, auth.Operator},
	}
	for _, role := range []auth.Role{auth.App, auth.Feed, auth.Operator, auth.Auditor} {
		c := connectAs(t, e.ClientURL(), e.SeedFile(role))
		for _, a := range attacks {
			if containsRole(legit[a.name], role) {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Request(rctx, a.subject, []byte(a.body), nil)
			cancel()
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Code != api.CodeForbidden {
				t.Errorf("%s as %s: want refused by the NATS server, got %v", a.name, role, err)
			}
		}
	}
	if got := e.lastSeq(t); got != seq {
		t.Errorf("the event stream moved from %d to %d", seq, got)
	}
	for _, stream := range []string{"BANKBOOK_EVENTS", "BANKBOOK_TIMERS", "KV_bankbook_idempotency"} {
		if _, err := js.Stream(ctx, stream); err != nil {
			t.Errorf("stream %s: %v", stream, err)
		}
	}
	after, err := names.Get(ctx, nameKey)
	if err != nil || string(after.Value()) != string(before.Value()) || after.Revision() != before.Revision() {
		t.Errorf("the name reservation changed: %q → %v %v", before.Value(), after, err)
	}
	if got := e.balanced(t); len(got) != len(books) {
		t.Errorf("the books changed: %v → %v", books, got)
	}
	var ord api.OrderView
	e.call(t, subjGet, map[string]any{"order_id": victim.OrderID}, &ord, nil)
	if ord.Status != "awaiting_deposit" {
		t.Errorf("the victim's order is %s", ord.Status)
	}
}

// A client that queue-subscribes to a command subject in its own account
// gets nothing: buyers are always told the engine's collection account.
func TestQueueSubscriberCannotAnswerCommands(t *testing.T) {
	e := startEngine(t)
	var refusals atomic.Int32
	thief := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	thiefNC, err := nats.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.App)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				refusals.Add(1)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer thiefNC.Close()
	var answered atomic.Int32
	if _, err := thiefNC.QueueSubscribe(api.OrderSubmit.Subject, "bankbook", func(m *nats.Msg) {
		answered.Add(1)
		_ = m.Respond([]byte(`{"collect_account":{"number":"stranger"}}`))
	}); err != nil {
		t.Fatal(err)
	}
	_ = thiefNC.Flush()
	for i := range 20 {
		var rep api.SubmitOrderReply
		if _, err := thief.Call(ctxT(t), subjSubmit, map[string]any{"buyer_id": "u-q", "buyer_name": "정하늘", "amount": 1000 + i}, &rep, nil); err != nil {
			t.Fatal(err)
		}
		if rep.CollectAccount.Number != e.cfg.CollectNumber {
			t.Fatalf("told to pay %q", rep.CollectAccount.Number)
		}
	}
	if answered.Load() != 0 {
		t.Errorf("the thief's subscription answered %d commands", answered.Load())
	}
	if refusals.Load() == 0 {
		t.Error("the server did not refuse the subscription")
	}
}

// The recorded actor is the identity the server asserts, not the Actor
// header nor a forged Nats-Request-Info.
func TestActorIsTheAuthenticatedIdentity(t *testing.T) {
	e := startEngine(t)
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	forged := nats.Header{"Actor": []string{"operator"}, auth.RequestInfoHeader: []string{`{"acc":"operator"}`}}
	var sub api.SubmitOrderReply
	if _, err := app.Call(ctxT(t), subjSubmit, map[string]any{"buyer_id": "u-a", "buyer_name": "Kim", "amount": 7}, &sub, forged); err != nil {
		t.Fatal(err)
	}
	commits, err := e.Events.Load(context.Background(), eventstore.Ref{Type: "order", ID: sub.OrderID}, 0)
	if err != nil || len(commits) != 1 {
		t.Fatalf("load: %v", err)
	}
	if actor := commits[0].Events[0].Actor; actor != "app" {
		t.Errorf("actor %q, want app", actor)
	}
}

// One identity's Idempotency-Key is its own: another identity using the
// same key neither replays the first's reply nor is refused by it.
func TestIdempotencyKeysArePerIdentity(t *testing.T) {
	e := startEngine(t)
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	op := connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
	body := map[string]any{"buyer_id": "u-k", "buyer_name": "Kim", "amount": 7}
	key := client.WithIdempotencyKey("same-key")
	var a, b api.SubmitOrderReply
	if _, err := app.Call(ctxT(t), subjSubmit, body, &a, key); err != nil {
		t.Fatal(err)
	}
	rep, err := op.Call(ctxT(t), subjSubmit, body, &b, key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Replayed || a.OrderID == b.OrderID {
		t.Errorf("the operator got the app's reply for its key (replayed %v, orders %s %s)", rep.Replayed, a.OrderID, b.OrderID)
	}
}

// Commands on an aggregate two identities share (a store link and its
// bills) keep keys apart too: an earlier attempt is found among the
// aggregate's commits only under the same identity's key.
func TestIdempotencyKeysArePerIdentityOnSharedAggregates(t *testing.T) {
	e := startEngine(t)
	var op *client.Client
	// call sends body as app and then as operator, each with the same key,
	// and fails if the operator's reply was a replay. The engine restarts
	// in between, so the operator's command reads the aggregate's commits,
	// the app's among them, before it decides.
	call := func(subject, key string, appBody, opBody any, appReply, opReply any) {
		t.Helper()
		k := client.WithIdempotencyKey(key)
		app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
		if _, err := app.Call(ctxT(t), subject, appBody, appReply, k); err != nil {
			t.Fatalf("%s as app: %v", subject, err)
		}
		e = e.restart(t)
		op = connectAs(t, e.ClientURL(), e.SeedFile(auth.Operator))
		rep, err := op.Call(ctxT(t), subject, opBody, opReply, k)
		if err != nil {
			t.Fatalf("%s as operator: %v", subject, err)
		}
		if rep.Replayed {
			t.Errorf("%s: the operator's request was answered as a replay of the app's under the same key", subject)
		}
	}
	link := api.LinkStoreRequest{DistributorID: "d-keys", StoreID: "s-keys", StoreName: "Keys"}
	call(api.StoreLink.Subject, "k-link", link, link, &api.LinkStoreReply{}, &api.LinkStoreReply{})

	var a, b api.IssueBillReply
	call(api.BillIssue.Subject, "k-issue",
		api.IssueBillRequest{DistributorID: "d-keys", StoreID: "s-keys", Amount: 777},
		api.IssueBillRequest{DistributorID: "d-keys", StoreID: "s-keys", Amount: 778}, &a, &b)
	if b.BillID == a.BillID || b.Amount != 778 || b.SupersededBillID != a.BillID {
		t.Errorf("the operator's bill %+v, want a new bill of 778 superseding the app's %s", b, a.BillID)
	}

	var ab, ob api.IssueBulkReply
	call(api.BillIssueBulk.Subject, "k-bulk",
		api.IssueBulkRequest{DistributorID: "d-keys", Bills: []api.BillLine{{StoreID: "s-keys", Amount: 5}}},
		api.IssueBulkRequest{DistributorID: "d-keys", Bills: []api.BillLine{{StoreID: "s-keys", Amount: 6}}}, &ab, &ob)
	if len(ab.Results) != 1 || len(ob.Results) != 1 || ob.Issued != 1 || ob.Results[0].BillID == ab.Results[0].BillID {
		t.Fatalf("bulk: app %+v, operator %+v, want a bill each", ab, ob)
	}
	var bill api.BillView
	if _, err := op.Call(ctxT(t), api.BillGet.Subject, api.GetBillRequest{BillID: ob.Results[0].BillID, ReadAfter: api.ReadAfter{MinSeq: ob.Seq}}, &bill, nil); err != nil {
		t.Fatal(err)
	}
	if bill.Amount != 6 {
		t.Errorf("the operator's bulk bill is of %d, want 6", bill.Amount)
	}

	remind := api.RemindUnpaidRequest{DistributorID: "d-keys"}
	call(api.BillRemind.Subject, "k-remind", remind, remind, &api.RemindUnpaidReply{}, &api.RemindUnpaidReply{})
}

func containsRole(rs []auth.Role, r auth.Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// TestNotifyEndpointsByRole: against a real engine with a dead-lettered
// notification, each role requests the notification endpoints. Only the
// operator may redrive; app, operator and auditor may list and read the
// limiter; feed may do neither; the fake chat provider's messages are for
// app and operator (the simulator grant). A refused redrive is refused by
// the NATS server (403 forbidden) and writes nothing, notification commits
// included; the operator's redrive then brings the notification back.
func TestNotifyEndpointsByRole(t *testing.T) {
	sim := newChatSim(t, 100)
	e := chatEngine(t, sim, 50)
	sim.RefuseChannel("store:d-roles-st-000")
	linkAndIssue(t, e, "d-roles", 1)
	var dead api.NotifyListReply
	testenv.CheckFor(t, 30*time.Second, func() error {
		dead = api.NotifyListReply{}
		if _, err := e.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationDead}, &dead, nil); err != nil {
			return err
		}
		if len(dead.Notifications) != 1 {
			return fmt.Errorf("%d dead notifications, want 1", len(dead.Notifications))
		}
		return nil
	})
	id := dead.Notifications[0].NotificationID
	sim.AllowChannel("store:d-roles-st-000") // once redriven, it can be sent
	redrive := api.NotifyRedriveRequest{NotificationID: id, Reason: "channel fixed"}

	type request struct {
		subject string
		body    any
		allowed []auth.Role
	}
	requests := []request{
		{api.NotifyRedrive.Subject, redrive, []auth.Role{auth.Operator}},
		{api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationDead}, []auth.Role{auth.App, auth.Operator, auth.Auditor}},
		{api.NotifyLimiter.Subject, api.EmptyRequest{}, []auth.Role{auth.App, auth.Operator, auth.Auditor}},
		{api.SimChatMessages.Subject, api.SimChatMessagesRequest{}, []auth.Role{auth.App, auth.Operator}},
	}
	seq := e.streamSeq(t)
	for _, role := range []auth.Role{auth.App, auth.Feed, auth.Auditor, auth.Operator} { // the operator last: its redrive writes
		c := connectAs(t, e.ClientURL(), e.SeedFile(role))
		for _, r := range requests {
			_, err := c.Request(ctxT(t), r.subject, r.body, nil)
			var ae *api.Error
			refused := errors.As(err, &ae) && ae.Status == 403 && ae.Code == api.CodeForbidden
			switch allowed := containsRole(r.allowed, role); {
			case allowed && err != nil:
				t.Errorf("%s → %s: want allowed, got %v", role, r.subject, err)
			case !allowed && !refused:
				t.Errorf("%s → %s: want 403 forbidden from the NATS server, got %v", role, r.subject, err)
			}
		}
		if role == auth.Operator {
			break
		}
		if got := e.streamSeq(t); got != seq {
			t.Fatalf("after %s's requests the event stream moved from %d to %d", role, seq, got)
		}
		var still api.NotifyListReply
		e.call(t, api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationDead}, &still, nil)
		if len(still.Notifications) != 1 || still.Notifications[0].NotificationID != id {
			t.Fatalf("after %s's requests the dead list is %+v", role, still.Notifications)
		}
	}
	if got := e.streamSeq(t); got <= seq {
		t.Fatalf("the operator's redrive wrote nothing: last seq %d", got)
	}
	testenv.CheckFor(t, 30*time.Second, func() error {
		var sent api.NotifyListReply
		if _, err := e.c.Call(ctxT(t), api.NotifyList.Subject, api.NotifyListRequest{Status: api.NotificationSent}, &sent, nil); err != nil {
			return err
		}
		if len(sent.Notifications) != 1 || sent.Notifications[0].NotificationID != id {
			return fmt.Errorf("sent after the operator's redrive: %+v", sent.Notifications)
		}
		return nil
	})
	if msgs := sim.Messages("store:d-roles-st-000"); len(msgs) != 1 {
		t.Errorf("the provider has %d messages for the store, want 1", len(msgs))
	}
}

// streamSeq is the event stream's last sequence, notification commits
// included (lastSeq counts only the business aggregates).
func (e *testEngine) streamSeq(t testing.TB) eventstore.Seq {
	t.Helper()
	seq, err := e.Events.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// history asks for one page of an aggregate's history as c's identity.
func history(t *testing.T, c *client.Client, q api.AuditHistoryRequest) (api.AuditHistoryReply, error) {
	t.Helper()
	rep, _, err := client.Do(ctxT(t), c, api.AuditHistory, q, nil)
	return rep, err
}

// wholeHistory reads every page of an aggregate's history, limit events
// a page, and returns the events and how many pages it took.
func wholeHistory(t *testing.T, c *client.Client, typ, id string, limit int) ([]api.AuditEvent, int) {
	t.Helper()
	var all []api.AuditEvent
	q := api.AuditHistoryRequest{AggregateType: typ, AggregateID: id, PageRequest: api.PageRequest{Limit: limit}}
	for pages := 1; ; pages++ {
		rep, err := history(t, c, q)
		if err != nil {
			t.Fatalf("page %d of %s/%s: %v", pages, typ, id, err)
		}
		if rep.AggregateType != typ || rep.AggregateID != id {
			t.Fatalf("page %d names %s/%s", pages, rep.AggregateType, rep.AggregateID)
		}
		if n := len(rep.Events); n == 0 || limit > 0 && n > limit {
			t.Fatalf("page %d holds %d events (limit %d)", pages, n, limit)
		}
		all = append(all, rep.Events...)
		if rep.NextCursor == "" {
			return all, pages
		}
		q.Cursor = rep.NextCursor
	}
}

// storedHashes reads messages back with the engine identity's JetStream,
// as stored, and hashes them: what commit_hash must be.
func (e *testEngine) storedHashes(t *testing.T) func(seq api.Seq) string {
	t.Helper()
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctxT(t), e.Events.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	return func(seq api.Seq) string {
		msg, err := stream.GetMsg(ctxT(t), uint64(seq))
		if err != nil {
			t.Fatalf("get seq %d: %v", seq, err)
		}
		sum := sha256.Sum256(msg.Data)
		return hex.EncodeToString(sum[:])
	}
}

// The history of an order through submit and cancel, read by an auditor,
// shows every event with its envelope: the identity the NATS server
// asserted for each command (not the Actor header a client sent), the
// Idempotency-Key, the correlation ID, and the hash of the stored commit.
// The notification the cancellation called for names the cancellation
// event as its cause.
func TestAuditHistoryOfAnOrder(t *testing.T) {
	e := startEngine(t)
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	auditor := connectAs(t, e.ClientURL(), e.SeedFile(auth.Auditor))
	hashOf := e.storedHashes(t)

	forged := nats.Header{api.HeaderIdempotencyKey: []string{"k-submit"}, api.HeaderCorrelationID: []string{"corr-audit"}, "Actor": []string{"operator"}}
	var sub api.SubmitOrderReply
	if _, err := app.Call(ctxT(t), api.OrderSubmit.Subject, map[string]any{"buyer_id": "u-audit", "buyer_name": "김감사", "amount": 39000}, &sub, forged); err != nil {
		t.Fatal(err)
	}
	var cancel api.CancelOrderReply
	e.call(t, api.OrderCancel.Subject, map[string]any{"order_id": sub.OrderID, "deposited": false, "reason": "변심"}, &cancel,
		nats.Header{api.HeaderIdempotencyKey: []string{"k-cancel"}, api.HeaderCorrelationID: []string{"corr-audit"}})

	rep, err := history(t, auditor, api.AuditHistoryRequest{AggregateType: "order", AggregateID: sub.OrderID, PageRequest: api.PageRequest{ReadAfter: api.ReadAfter{MinSeq: cancel.Seq}}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.AggregateType != "order" || rep.AggregateID != sub.OrderID || rep.NextCursor != "" || len(rep.Events) != 2 {
		t.Fatalf("history %+v", rep)
	}
	want := []struct {
		seq         api.Seq
		typ, actor  string
		key         string
		dataHolding string
	}{
		{sub.Seq, "order.submitted", "app", "k-submit", sub.DepositorName},
		{cancel.Seq, "order.cancelled", "operator", "k-cancel", "변심"},
	}
	for i, w := range want {
		ev := rep.Events[i]
		if ev.Seq != w.seq || ev.Version != i+1 || ev.EventType != w.typ || ev.SchemaVersion < 1 || ev.EventID == "" ||
			ev.Actor != w.actor || ev.IdempotencyKey != w.key || ev.CorrelationID != "corr-audit" || ev.CausationID != "" || ev.Damaged != nil {
			t.Errorf("event %d: %+v, want seq %d %s by %s with key %s", i, ev, w.seq, w.typ, w.actor, w.key)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.OccurredAt); err != nil {
			t.Errorf("event %d occurred_at %q: %v", i, ev.OccurredAt, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev.RecordedAt); err != nil {
			t.Errorf("event %d recorded_at %q: %v", i, ev.RecordedAt, err)
		}
		if !json.Valid(ev.Data) || !strings.Contains(string(ev.Data), w.dataHolding) {
			t.Errorf("event %d data %s, want it to hold %q", i, ev.Data, w.dataHolding)
		}
		if h := hashOf(ev.Seq); ev.CommitHash != h {
			t.Errorf("event %d commit_hash %s, the stored message hashes to %s", i, ev.CommitHash, h)
		}
	}
	// The reply's field names are API.md's.
	raw, err := auditor.Request(ctxT(t), api.AuditHistory.Subject, map[string]any{"aggregate_type": "order", "aggregate_id": sub.OrderID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fields struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(raw.Data, &fields); err != nil || len(fields.Events) != 2 {
		t.Fatalf("reply %s: %v", raw.Data, err)
	}
	for _, f := range []string{"seq", "version", "event_type", "schema_version", "occurred_at", "recorded_at", "actor", "correlation_id", "idempotency_key", "data", "commit_hash"} {
		if _, ok := fields.Events[0][f]; !ok {
			t.Errorf("an event without %q: %s", f, raw.Data)
		}
	}

	// The cancellation calls for a message to the buyer: the notify
	// reactor's commit names the cancellation event as its cause.
	var noteSeq eventstore.Seq
	testenv.CheckFor(t, 10*time.Second, func() error {
		noteSeq = e.notificationSeq(t)
		if noteSeq == 0 {
			return errors.New("no notification recorded yet")
		}
		return nil
	})
	note, err := e.Events.Get(context.Background(), noteSeq)
	if err != nil {
		t.Fatal(err)
	}
	notes, err := history(t, auditor, api.AuditHistoryRequest{AggregateType: domain.AggregateNotification, AggregateID: note.AggregateID})
	if err != nil || len(notes.Events) == 0 {
		t.Fatalf("notification history: %+v, %v", notes, err)
	}
	first := notes.Events[0]
	if first.CausationID != rep.Events[1].EventID || first.CorrelationID != "corr-audit" || first.Actor != "reactor" || first.IdempotencyKey != "" || first.CommitHash != hashOf(first.Seq) {
		t.Errorf("notification event %+v, want caused by %s", first, rep.Events[1].EventID)
	}
}

// A wallet with 1,200 movements, in commits of 1 to 7 events, reads page
// by page, whatever the page size: every event exactly once, in order,
// pages splitting commits where they must; and a page never exceeds NATS's
// 1 MiB payload limit however large its events are.
func TestAuditHistoryPages(t *testing.T) {
	e := startEngine(t)
	codec := domain.Events()
	appendCredits := func(user string, n int, ref func(i int) string) {
		t.Helper()
		w := eventstore.Ref{Type: domain.AggregateWallet, ID: user}
		var last eventstore.Seq
		for version := 0; version < n; {
			size := min(version%7+1, n-version)
			events := make([]eventstore.Envelope, size)
			for i := range events {
				typ, v, data, err := codec.Encode(domain.WalletCredited{UserID: domain.UserID(user), Amount: 1, Kind: domain.CreditPayoutReversal,
					Ref: ref(version + i + 1), FromAccount: domain.AccountSuspense, CreditedAt: time.Now().UTC()})
				if err != nil {
					t.Fatal(err)
				}
				events[i] = eventstore.Envelope{EventID: fmt.Sprintf("ev-%s-%d", user, version+i+1), EventType: typ, SchemaVersion: v,
					OccurredAt: time.Now().UTC(), Actor: "test", CorrelationID: "c", Data: data}
			}
			c, err := e.Events.Append(context.Background(), w, last, version, fmt.Sprintf("commit-%s-%d", user, version), events)
			if err != nil {
				t.Fatal(err)
			}
			last, version = c.Seq, version+size
		}
	}
	appendCredits("u-long", 1200, func(i int) string { return fmt.Sprint("reversal:", i) })

	for _, limit := range []int{0, 13, 500} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			events, pages := wholeHistory(t, e.c, domain.AggregateWallet, "u-long", limit)
			want := 1 // no limit: the whole history, which one reply carries
			if limit > 0 {
				want = (1200 + limit - 1) / limit
			}
			if len(events) != 1200 || pages != want {
				t.Fatalf("%d events in %d pages, want 1200 in %d", len(events), pages, want)
			}
			for i, ev := range events {
				if ev.Version != i+1 || ev.EventID != fmt.Sprint("ev-u-long-", i+1) || i > 0 && ev.Seq < events[i-1].Seq {
					t.Fatalf("event %d: version %d id %s seq %d (previous seq %d)", i, ev.Version, ev.EventID, ev.Seq, events[max(i-1, 0)].Seq)
				}
			}
		})
	}

	// 300 events of about 8 KiB each: 500 would be 2.4 MiB.
	big := strings.Repeat("x", 8<<10)
	appendCredits("u-big", 300, func(i int) string { return fmt.Sprintf("reversal:%d:%s", i, big) })
	for _, limit := range []int{500, 0} {
		bigPages(t, e, limit)
	}
}

// bigPages reads u-big's 300 events of about 8 KiB each with limit: pages
// of less than 1 MiB each, every event once, in order.
func bigPages(t *testing.T, e *testEngine, limit int) {
	t.Helper()
	q := api.AuditHistoryRequest{AggregateType: domain.AggregateWallet, AggregateID: "u-big", PageRequest: api.PageRequest{Limit: limit}}
	seen := 0
	for pages := 1; ; pages++ {
		raw, err := e.c.Request(ctxT(t), api.AuditHistory.Subject, q, nil)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		var rep api.AuditHistoryReply
		if err := json.Unmarshal(raw.Data, &rep); err != nil {
			t.Fatal(err)
		}
		if len(raw.Data) >= 1<<20 || len(rep.Events) == 0 {
			t.Fatalf("limit %d, page %d: %d bytes, %d events", limit, pages, len(raw.Data), len(rep.Events))
		}
		for _, ev := range rep.Events {
			if seen++; ev.Version != seen {
				t.Fatalf("page %d: version %d, want %d", pages, ev.Version, seen)
			}
		}
		if rep.NextCursor == "" {
			if seen != 300 || pages < 3 {
				t.Fatalf("%d events in %d pages; want 300 in at least 3", seen, pages)
			}
			break
		}
		q.Cursor = rep.NextCursor
	}
}

// An aggregate the stream holds nothing for is 404; a cursor of another
// aggregate, or one never handed out, is 400; a min_seq the stream has
// not reached is 503 not_caught_up.
func TestAuditHistoryRefusals(t *testing.T) {
	e := startEngine(t)
	o := e.submit(t, "u-1", "김민수", 5000)
	other := e.submit(t, "u-2", "이서연", 6000)

	_, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: "o-never"})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeAggregateNotFound || ae.Details["aggregate_id"] != "o-never" || ae.Details["aggregate_type"] != "order" {
		t.Fatalf("unknown order: %v", err)
	}
	// A bill is no aggregate: the answer names the link that holds its events.
	link := domain.LinkID("d-1", "s-1")
	if _, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "bill", AggregateID: domain.BillID(link, 3)}); !errors.As(err, &ae) || ae.Status != 400 || ae.Details["field"] != "aggregate_type" || !strings.Contains(ae.Message, link) {
		t.Fatalf("a bill's history: %v, want 400 naming link %s", err, link)
	}
	// The wallet of a buyer who never had one: the order exists, the wallet does not.
	if _, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "wallet", AggregateID: "u-1"}); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("unknown wallet: %v", err)
	}

	page, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: other.OrderID})
	if err != nil {
		t.Fatal(err)
	}
	cursorOf := func(seq api.Seq, index int) string { return fmt.Sprintf("%016x%08x", uint64(seq), index) }
	for name, tc := range map[string]struct {
		id, cursor string
		status     int
	}{
		"a cursor into another aggregate's commit": {o.OrderID, cursorOf(page.Events[0].Seq, 0), 400},
		"an index past the commit's events":        {other.OrderID, cursorOf(page.Events[0].Seq, 1), 400},
		"a sequence beyond the stream":             {o.OrderID, cursorOf(9999, 0), 400},
		"upper-case hex":                           {o.OrderID, strings.ToUpper(cursorOf(0xab, 0)), 400},
		"sequence 0":                               {o.OrderID, cursorOf(0, 0), 400},
		"a cursor for an unknown aggregate":        {"o-never", cursorOf(page.Events[0].Seq, 0), 404},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: tc.id, PageRequest: api.PageRequest{Cursor: tc.cursor}})
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || tc.status == 400 && ae.Details["field"] != "cursor" {
				t.Fatalf("got %v, want %d", err, tc.status)
			}
		})
	}
	if _, err := history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: o.OrderID, PageRequest: api.PageRequest{Cursor: cursorOf(o.Seq, 0)}}); err != nil {
		t.Fatalf("a cursor at the order's own commit: %v", err)
	}

	_, err = history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: o.OrderID, PageRequest: api.PageRequest{ReadAfter: api.ReadAfter{MinSeq: 999999}}})
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != api.CodeNotCaughtUp {
		t.Fatalf("min_seq beyond the stream: %v", err)
	}
}

// bankbook.q.audit.* is for operators and auditors (API.md "Access and
// identity"): the NATS server refuses the app's request (403), and the
// feed's, before the engine sees it.
func TestAuditHistoryRoles(t *testing.T) {
	e := startEngine(t)
	o := e.submit(t, "u-1", "김민수", 5000)
	q := api.AuditHistoryRequest{AggregateType: "order", AggregateID: o.OrderID}
	for _, tc := range []struct {
		role    auth.Role
		allowed bool
	}{{auth.App, false}, {auth.Feed, false}, {auth.Operator, true}, {auth.Auditor, true}} {
		t.Run(string(tc.role), func(t *testing.T) {
			rep, err := history(t, connectAs(t, e.ClientURL(), e.SeedFile(tc.role)), q)
			var ae *api.Error
			switch {
			case tc.allowed && (err != nil || len(rep.Events) != 1):
				t.Fatalf("%s: %+v, %v", tc.role, rep, err)
			case !tc.allowed && (!errors.As(err, &ae) || ae.Status != 403 || ae.Code != api.CodeForbidden):
				t.Fatalf("%s: %v, want 403 forbidden", tc.role, err)
			}
		})
	}
}

// A damaged message on an aggregate's subject is an entry of its history
// saying so, with the hash of what is stored, not a 500; once set aside,
// the entry carries the operator's record, and the history goes on.
func TestAuditHistoryShowsADamagedCommit(t *testing.T) {
	e := startEngine(t)
	o := e.submit(t, "u-d", "박민지", 5000)
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctxT(t), "bankbook.evt.order."+o.OrderID, []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	junk := sha256.Sum256([]byte("junk!"))
	q := api.AuditHistoryRequest{AggregateType: "order", AggregateID: o.OrderID}
	rep, err := history(t, e.c, q)
	if err != nil || len(rep.Events) != 2 {
		t.Fatalf("history: %+v, %v", rep, err)
	}
	d := rep.Events[1]
	if d.Seq != api.Seq(ack.Sequence) || d.Damaged == nil || d.Damaged.Problem == "" || d.Damaged.SetAside != nil || d.CommitHash != hex.EncodeToString(junk[:]) ||
		d.EventType != "" || d.Version != 0 || string(d.Data) != "null" || d.RecordedAt == "" {
		t.Fatalf("damaged entry %+v", d)
	}
	// Page by page: the damaged entry is a page of its own.
	q.Limit = 1
	rep, err = history(t, e.c, q)
	if err != nil || len(rep.Events) != 1 || rep.NextCursor == "" {
		t.Fatalf("first page: %+v, %v", rep, err)
	}
	q.Cursor = rep.NextCursor
	if rep, err = history(t, e.c, q); err != nil || len(rep.Events) != 1 || rep.Events[0].Damaged == nil || rep.NextCursor != "" {
		t.Fatalf("second page: %+v, %v", rep, err)
	}

	var set api.SetAsideReply
	e.call(t, api.EventSetAside.Subject, map[string]any{"seq": ack.Sequence, "reason": "forged in a test"}, &set, nil)
	var cancel api.CancelOrderReply
	e.call(t, api.OrderCancel.Subject, map[string]any{"order_id": o.OrderID, "deposited": false}, &cancel, nil)
	rep, err = history(t, e.c, api.AuditHistoryRequest{AggregateType: "order", AggregateID: o.OrderID})
	if err != nil || len(rep.Events) != 3 {
		t.Fatalf("history after the set-aside: %+v, %v", rep, err)
	}
	if sa := rep.Events[1].Damaged.SetAside; sa == nil || sa.Reason != "forged in a test" || sa.Actor != "operator" {
		t.Fatalf("set-aside record %+v", sa)
	}
	if last := rep.Events[2]; last.EventType != "order.cancelled" || last.Version != 2 || last.Seq != cancel.Seq {
		t.Fatalf("after the damaged commit: %+v", last)
	}
}

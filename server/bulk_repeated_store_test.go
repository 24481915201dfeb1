package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/idempotency"
)

// billsIssued counts the bill.issued events of the link of (dist, store).
func billsIssued(t *testing.T, e *testEngine, dist, store string) int {
	t.Helper()
	commits, err := e.Events.Load(ctxT(t), eventstore.Ref{Type: domain.AggregateLink, ID: domain.LinkID(domain.DistributorID(dist), domain.StoreID(store))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range commits {
		for _, env := range c.Events {
			if env.EventType == "bill.issued" {
				n++
			}
		}
	}
	return n
}

// A bill.issue_bulk that names a store on more than one line is ambiguous
// (a store has at most one active bill: which amount was meant?). Every
// line naming it is refused with invalid_input naming the store and its
// lines, nothing is issued to that store, and the other lines are issued as
// ever. Store IDs compare exactly, as links are keyed: S-2 is another store
// than s-2. A line refused for its own fields still counts as naming its
// store.
func TestBulkRefusesEveryLineOfAStoreNamedTwice(t *testing.T) {
	e := startEngine(t)
	for _, s := range []string{"s-1", "s-2", "S-2", "s-3", "s-4"} {
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: s, StoreName: "가게 " + s}, nil, nil)
	}
	req := api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{
		{StoreID: "s-1", Amount: 1000},
		{StoreID: "s-2", Amount: 2000},
		{StoreID: "s-1", Amount: 3000},
		{StoreID: "S-2", Amount: 4000}, // another store
		{StoreID: "s-1", Amount: 5000},
		{StoreID: "s-3", Amount: 0}, // refused for its amount
		{StoreID: "s-3", Amount: 6000},
		{StoreID: "s-4", Amount: 7000, Memo: "5월분"},
	}}
	type want struct {
		field string // "" for an issued line
		store string // the repeated store named in the message
		lines []int
	}
	wants := []want{
		{"store_id", "s-1", []int{1, 3, 5}},
		{},
		{"store_id", "s-1", []int{1, 3, 5}},
		{},
		{"store_id", "s-1", []int{1, 3, 5}},
		{"amount", "", nil},
		{"store_id", "s-3", []int{6, 7}},
		{},
	}
	var rep api.IssueBulkReply
	r := e.call(t, api.BillIssueBulk.Subject, req, &rep, client.WithIdempotencyKey("k-twice"))
	if r.Replayed || len(rep.Results) != len(req.Bills) {
		t.Fatalf("replayed %v, %d results for %d lines", r.Replayed, len(rep.Results), len(req.Bills))
	}
	for i, w := range wants {
		got := rep.Results[i]
		if got.Line != i+1 || got.StoreID != req.Bills[i].StoreID {
			t.Errorf("line %d answered as line %d of %q", i+1, got.Line, got.StoreID)
		}
		if w.field == "" {
			if got.Error != nil || got.BillID == "" {
				t.Errorf("line %d (%s): %+v %+v, want a bill", i+1, got.StoreID, got, got.Error)
			}
			continue
		}
		if got.Error == nil || got.BillID != "" || got.Error.Code != "invalid_input" || got.Error.Details["field"] != w.field {
			t.Errorf("line %d (%s): %+v %+v, want invalid_input on %s and no bill", i+1, got.StoreID, got, got.Error, w.field)
			continue
		}
		if w.store == "" {
			continue
		}
		wantLines := make([]string, len(w.lines))
		for j, l := range w.lines {
			wantLines[j] = fmt.Sprint(l)
		}
		named := "lines " + strings.Join(wantLines[:len(wantLines)-1], ", ") + " and " + wantLines[len(wantLines)-1]
		if !strings.Contains(got.Error.Message, w.store) || !strings.Contains(got.Error.Message, named) {
			t.Errorf("line %d: message %q does not name store %s and %s", i+1, got.Error.Message, w.store, named)
		}
		var lines []int
		raw, _ := json.Marshal(got.Error.Details["lines"])
		if err := json.Unmarshal(raw, &lines); err != nil || !slices.Equal(lines, w.lines) || got.Error.Details["store_id"] != w.store {
			t.Errorf("line %d: details %v, want store_id %s and lines %v", i+1, got.Error.Details, w.store, w.lines)
		}
	}
	if rep.Issued != 3 || rep.Failed != 5 {
		t.Errorf("issued %d failed %d, want 3 and 5", rep.Issued, rep.Failed)
	}
	// Nothing was issued to a store named twice (so it was told nothing);
	// each other store got exactly its one bill.
	for store, n := range map[string]int{"s-1": 0, "s-3": 0, "s-2": 1, "S-2": 1, "s-4": 1} {
		if got := billsIssued(t, e, "d-1", store); got != n {
			t.Errorf("store %s: %d bills issued, want %d", store, got, n)
		}
	}
	var active api.ActiveBillsReply
	e.call(t, api.BillActive.Subject, map[string]any{"distributor_id": "d-1", "min_seq": rep.Seq}, &active, nil)
	var stores []string
	for _, b := range active.Bills {
		stores = append(stores, b.StoreID)
	}
	slices.Sort(stores)
	if !slices.Equal(stores, []string{"S-2", "s-2", "s-4"}) {
		t.Errorf("current bills of stores %v, want S-2, s-2 and s-4", stores)
	}
	// The same request under the same key is the same answer.
	before := e.lastSeq(t)
	var again api.IssueBulkReply
	r = e.call(t, api.BillIssueBulk.Subject, req, &again, client.WithIdempotencyKey("k-twice"))
	if !r.Replayed || again.Issued != 3 || again.Results[1].BillID != rep.Results[1].BillID || again.Results[0].Error == nil {
		t.Errorf("repeat: replayed %v, %+v", r.Replayed, again)
	}
	if after := e.lastSeq(t); after != before {
		t.Errorf("the repeat wrote: stream at %d, was %d", after, before)
	}
}

// An engine before the rule issued both lines of a store named twice. A
// keyed repeat of that request is answered with the reply it stored, not
// refused; and a repeat of one it began and did not finish (it died after
// the first line) finishes it as it began: the first line's bill found
// again, the second issued after it, so that the reply tells what the
// store's link holds.
func TestBulkRepeatOfARequestAnEarlierEngineRan(t *testing.T) {
	e := startEngine(t)
	for _, s := range []string{"s-1", "s-2"} {
		e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: s, StoreName: "가게 " + s}, nil, nil)
	}
	// What an earlier engine wrote for line n of a keyed bulk request.
	oldLine := func(key string, n int, line api.BillLine) api.IssueBillReply {
		t.Helper()
		rep, err := e.Commands.Links.IssueBill(ctxT(t), commands.Meta{Command: api.BillIssueBulk.Subject, IdempotencyKey: fmt.Sprintf("%s#%d", key, n), Actor: "operator"},
			api.IssueBillRequest{DistributorID: "d-1", StoreID: line.StoreID, Amount: line.Amount})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	claim := func(key string, req api.IssueBulkRequest) (*idempotency.Store, *idempotency.Claim) {
		t.Helper()
		idem, _ := e.idempotencyStore(t)
		canonical, _ := json.Marshal(req.Canonical())
		c, stored, err := idem.Begin(ctxT(t), api.BillIssueBulk.Subject+".operator", key, idempotency.HashBody(canonical), nil)
		if err != nil || c == nil || stored != nil {
			t.Fatalf("claim %s: %v %v", key, err, stored)
		}
		return idem, c
	}

	t.Run("its stored reply", func(t *testing.T) {
		req := api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{{StoreID: "s-1", Amount: 1000}, {StoreID: "s-1", Amount: 2000}}}
		idem, c := claim("k-old", req)
		first, second := oldLine("k-old", 1, req.Bills[0]), oldLine("k-old", 2, req.Bills[1])
		old := api.IssueBulkReply{Results: []api.BulkResult{
			{Line: 1, StoreID: "s-1", BillID: first.BillID, Status: first.Status, Seq: first.Seq},
			{Line: 2, StoreID: "s-1", BillID: second.BillID, Status: second.Status, SupersededBillID: second.SupersededBillID, Seq: second.Seq},
		}, Issued: 2, Written: api.Written{Seq: second.Seq}}
		body, _ := json.Marshal(old)
		if err := idem.Complete(ctxT(t), c, idempotency.Reply{Status: 200, Body: body}); err != nil {
			t.Fatal(err)
		}
		before := e.lastSeq(t)
		var rep api.IssueBulkReply
		r := e.call(t, api.BillIssueBulk.Subject, req, &rep, client.WithIdempotencyKey("k-old"))
		if !r.Replayed || rep.Issued != 2 || rep.Results[0].Error != nil || rep.Results[1].BillID != second.BillID {
			t.Fatalf("replayed %v, %+v; want the stored reply %s", r.Replayed, rep, body)
		}
		if after := e.lastSeq(t); after != before {
			t.Fatalf("the repeat wrote: stream at %d, was %d", after, before)
		}
	})

	t.Run("finished as it began", func(t *testing.T) {
		req := api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{
			{StoreID: "s-2", Amount: 1000}, {StoreID: "s-1", Amount: 3000}, {StoreID: "s-2", Amount: 2000},
		}}
		idem, c := claim("k-half", req)
		first := oldLine("k-half", 1, req.Bills[0])
		if err := idem.Abandon(ctxT(t), c); err != nil { // it died
			t.Fatal(err)
		}
		var rep api.IssueBulkReply
		r := e.call(t, api.BillIssueBulk.Subject, req, &rep, client.WithIdempotencyKey("k-half"))
		if r.Replayed || rep.Issued != 3 || rep.Failed != 0 {
			t.Fatalf("replayed %v, %+v; want every line issued, not a replay", r.Replayed, rep)
		}
		if rep.Results[0].BillID != first.BillID || rep.Results[2].SupersededBillID != first.BillID {
			t.Errorf("lines %+v, want line 1's bill %s found and superseded by line 3", rep.Results, first.BillID)
		}
		if n := billsIssued(t, e, "d-1", "s-2"); n != 2 {
			t.Errorf("store s-2: %d bills issued, want 2 (line 1 once, line 3)", n)
		}
	})

	t.Run("refused where it had issued nothing", func(t *testing.T) {
		// The first attempt issued line 2 and none of the lines of the
		// store named twice: the repeat finds line 2 and refuses those.
		req := api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{
			{StoreID: "s-1", Amount: 4000}, {StoreID: "s-2", Amount: 5000}, {StoreID: "s-1", Amount: 6000},
		}}
		idem, c := claim("k-none", req)
		second := oldLine("k-none", 2, req.Bills[1])
		if err := idem.Abandon(ctxT(t), c); err != nil {
			t.Fatal(err)
		}
		before := billsIssued(t, e, "d-1", "s-1")
		var rep api.IssueBulkReply
		e.call(t, api.BillIssueBulk.Subject, req, &rep, client.WithIdempotencyKey("k-none"))
		if rep.Issued != 1 || rep.Results[1].BillID != second.BillID {
			t.Fatalf("%+v, want line 2's bill %s found", rep, second.BillID)
		}
		for _, i := range []int{0, 2} {
			if e := rep.Results[i].Error; e == nil || e.Code != "invalid_input" || !strings.Contains(e.Message, "lines 1 and 3") {
				t.Errorf("line %d: %+v, want s-1 refused, named on lines 1 and 3", i+1, e)
			}
		}
		if n := billsIssued(t, e, "d-1", "s-1"); n != before {
			t.Errorf("store s-1: %d bills issued by the repeat, want none", n-before)
		}
	})
}

// A request of 1,000 lines for one store (of the longest ID) is answered
// line by line, each refusal naming the first lines and how many more:
// the reply still fits a NATS message.
func TestBulkOfOneStoreOnEveryLineIsRefusedLineByLine(t *testing.T) {
	e := startEngine(t)
	store := strings.Repeat("s", domain.MaxIDLength)
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: store, StoreName: "가게"}, nil, nil)
	req := api.IssueBulkRequest{DistributorID: "d-1", Bills: make([]api.BillLine, api.MaxBulkBills)}
	for i := range req.Bills {
		req.Bills[i] = api.BillLine{StoreID: store, Amount: int64(1000 + i)}
	}
	var rep api.IssueBulkReply
	e.call(t, api.BillIssueBulk.Subject, req, &rep, nil)
	if rep.Issued != 0 || rep.Failed != api.MaxBulkBills || len(rep.Results) != api.MaxBulkBills {
		t.Fatalf("issued %d failed %d, %d results", rep.Issued, rep.Failed, len(rep.Results))
	}
	last := rep.Results[api.MaxBulkBills-1].Error
	if last == nil || !strings.Contains(last.Message, "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 990 more") || last.Details["line_count"] != float64(api.MaxBulkBills) {
		t.Fatalf("the last line's error: %+v", last)
	}
	if n := billsIssued(t, e, "d-1", store); n != 0 {
		t.Fatalf("%d bills issued", n)
	}
}

package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// consoleEngine runs with the simulated bank and firm-banking provider, and
// a cancellation window long enough that a reserved cancellation stays
// reserved while the test looks at it.
func consoleEngine(t *testing.T) (*testEngine, *bank) {
	return scenarioEngine(t, func(c *engine.Config) {
		c.BankSim, c.ScanInterval, c.CancelWindow = true, engine.Duration(200*time.Millisecond), engine.Duration(time.Hour)
	})
}

func searchIDs(r api.OrderSearchReply) []string {
	ids := []string{}
	for _, o := range r.Orders {
		ids = append(ids, o.OrderID)
	}
	return ids
}

// The console's queries through the real API: orders found by status,
// depositor name and ID; payouts by status; reconciliation runs; and the
// suspense account drawn commit by commit as an orphan arrives and is
// resolved, agreeing with the ledger.
func TestConsoleQueries(t *testing.T) {
	e, bk := consoleEngine(t)
	paid := e.submit(t, "u-a", "김민수", 11000)
	open := e.submit(t, "u-b", "이영희", 12000)
	reserved := e.submit(t, "u-c", "박지성", 13000)
	var cancel api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": reserved.OrderID, "deposited": true, "reason": "wrong size"}, &cancel, nil)
	if cancel.Status != domain.StatusCancelReserved || cancel.CancelAt == "" {
		t.Fatalf("cancel: %+v", cancel)
	}
	// An orphan for the first order, assigned to it by hand: suspense fills
	// and drains.
	typo := bk.deposit("김민쑤", 11000)
	if typo.Outcome != "orphaned" {
		t.Fatalf("orphan: %+v", typo)
	}
	var series api.LedgerSeriesReply
	e.call(t, api.LedgerSeries.Subject, api.LedgerSeriesRequest{Account: domain.AccountSuspense, ReadAfter: api.ReadAfter{MinSeq: typo.Seq}}, &series, nil)
	if n := len(series.Points); n != 1 || series.Points[0].Balance != -11000 || series.Points[0].OpenCount != 1 ||
		len(series.OpenItems) != 1 || series.OpenItems[0].Key != typo.DepositID || series.OpenItems[0].Amount != 11000 || series.OpenCount != 1 {
		t.Fatalf("suspense with the orphan: %+v", series)
	}
	since := series.OpenItems[0].Since
	if series.Points[0].OldestOpenSince != since || series.Points[0].Seq != typo.Seq {
		t.Fatalf("suspense point %+v, open since %s, deposit seq %d", series.Points[0], since, typo.Seq)
	}
	var resolved api.ResolveDepositReply
	e.call(t, subjResolve, map[string]any{"deposit_id": typo.DepositID, "action": "assign_order", "order_id": paid.OrderID}, &resolved, nil)
	testenv.CheckFor(t, 20*time.Second, func() error {
		var s api.LedgerSeriesReply
		if _, err := e.c.Call(ctxT(t), api.LedgerSeries.Subject, api.LedgerSeriesRequest{Account: domain.AccountSuspense}, &s, nil); err != nil {
			return err
		}
		if last := s.Points[len(s.Points)-1]; last.Balance != 0 || last.OpenCount != 0 || last.OldestOpenSince != "" || len(s.OpenItems) != 0 {
			return fmt.Errorf("suspense not drained: %+v", s)
		}
		series = s
		return nil
	})
	if len(series.Points) != 2 || e.balanced(t)[domain.AccountSuspense] != 0 {
		t.Fatalf("suspense after the assignment: %+v", series)
	}

	t.Run("order search", func(t *testing.T) {
		search := func(q api.OrderSearchRequest) api.OrderSearchReply {
			t.Helper()
			var rep api.OrderSearchReply
			e.call(t, api.OrderSearch.Subject, q, &rep, nil)
			return rep
		}
		for _, tc := range []struct {
			name string
			q    api.OrderSearchRequest
			want []string
		}{
			{"every order, newest first", api.OrderSearchRequest{}, []string{reserved.OrderID, open.OrderID, paid.OrderID}},
			{"paid", api.OrderSearchRequest{Status: "paid"}, []string{paid.OrderID}},
			{"awaiting deposit", api.OrderSearchRequest{Status: "awaiting_deposit"}, []string{open.OrderID}},
			{"reserved cancellations", api.OrderSearchRequest{Status: "cancel_reserved"}, []string{reserved.OrderID}},
			{"expired", api.OrderSearchRequest{Status: "expired"}, []string{}},
			{"depositor name with a space", api.OrderSearchRequest{DepositorName: strings.Replace(open.DepositorName, "희", "희 ", 1)}, []string{open.OrderID}},
			{"depositor name and another status", api.OrderSearchRequest{DepositorName: open.DepositorName, Status: "paid"}, []string{}},
			{"order ID", api.OrderSearchRequest{OrderID: paid.OrderID}, []string{paid.OrderID}},
			{"unknown order ID", api.OrderSearchRequest{OrderID: "no-such-order"}, []string{}},
		} {
			if got := searchIDs(search(tc.q)); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
		r := search(api.OrderSearchRequest{Status: "cancel_reserved"})
		if v := r.Orders[0]; v.CancelAt != cancel.CancelAt || v.CancelReason != "wrong size" {
			t.Errorf("reserved cancellation: %+v, want cancel_at %s", v, cancel.CancelAt)
		}
		first := search(api.OrderSearchRequest{PageRequest: api.PageRequest{Limit: 2}})
		rest := search(api.OrderSearchRequest{PageRequest: api.PageRequest{Limit: 2, Cursor: first.NextCursor}})
		if got := append(searchIDs(first), searchIDs(rest)...); first.NextCursor == "" || rest.NextCursor != "" ||
			!slices.Equal(got, []string{reserved.OrderID, open.OrderID, paid.OrderID}) {
			t.Errorf("pages: %v (%q, %q)", got, first.NextCursor, rest.NextCursor)
		}
	})

	t.Run("payout list", func(t *testing.T) {
		fund(t, e, bk, "u-w", "조은비", 9000)
		ok := e.withdraw(t, "u-w", 5000, payee)
		failed := e.withdraw(t, "u-w", 4000, domain.BankAccount{Bank: "우리은행", Number: "000000000000", Holder: "조은비"}) // the provider fails it
		e.waitPayouts(t, "settled", ok)
		e.waitPayouts(t, "failed", failed)
		list := func(status string, limit int, cursor string) api.PayoutListReply {
			t.Helper()
			var rep api.PayoutListReply
			e.call(t, api.PayoutList.Subject, api.PayoutListRequest{Status: status, PageRequest: api.PageRequest{Limit: limit, Cursor: cursor}}, &rep, nil)
			return rep
		}
		ids := func(r api.PayoutListReply) []string {
			out := []string{}
			for _, p := range r.Payouts {
				out = append(out, p.PayoutID)
			}
			return out
		}
		for status, want := range map[string][]string{"": {failed, ok}, "settled": {ok}, "failed": {failed}, "requested": {}} {
			if got := ids(list(status, 0, "")); !slices.Equal(got, want) {
				t.Errorf("status %q: %v, want %v", status, got, want)
			}
		}
		if p := list("settled", 0, "").Payouts[0]; p.Fee != 500 || p.ProviderRef == "" {
			t.Errorf("settled payout: %+v", p)
		}
		if p := list("failed", 0, "").Payouts[0]; p.Failure == "" {
			t.Errorf("failed payout: %+v", p)
		}
		first := list("", 1, "")
		rest := list("", 1, first.NextCursor)
		if !slices.Equal(ids(first), []string{failed}) || !slices.Equal(ids(rest), []string{ok}) || rest.NextCursor != "" {
			t.Errorf("pages: %v %v (%q)", ids(first), ids(rest), rest.NextCursor)
		}
		// The payouts drained the clearing account, point by point.
		var pending api.LedgerSeriesReply
		testenv.CheckFor(t, 20*time.Second, func() error {
			if _, err := e.c.Call(ctxT(t), api.LedgerSeries.Subject, api.LedgerSeriesRequest{Account: domain.AccountPayoutsPending}, &pending, nil); err != nil {
				return err
			}
			if n := len(pending.Points); n == 0 || pending.Points[n-1].Balance != 0 || pending.OpenCount != 0 {
				return fmt.Errorf("payouts pending: %+v", pending)
			}
			return nil
		})
		var most int
		for _, p := range pending.Points {
			most = max(most, p.OpenCount)
		}
		if most == 0 || len(pending.Points) < 4 {
			t.Errorf("payouts pending never held an item: %+v", pending)
		}
	})

	t.Run("reconcile list", func(t *testing.T) {
		at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		var runs []string
		for i := range 2 {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s %d", t.Name(), i)))
			rep, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]),
				Lines: []api.StatementLine{{BankTxnID: fmt.Sprintf("T-R%d", i), AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 5000, DepositedAt: at}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, string(rep.RunID))
		}
		var list api.ReconcileListReply
		e.call(t, api.ReconcileList.Subject, api.ReconcileListRequest{}, &list, nil)
		if len(list.Runs) != 2 || list.Runs[0].RunID != runs[1] || list.Runs[1].RunID != runs[0] || list.NextCursor != "" {
			t.Fatalf("runs %+v, want %v newest first", list.Runs, runs)
		}
		r := list.Runs[0]
		var full api.ReconcileReply
		e.call(t, api.ReconcileGet.Subject, api.ReconcileGetRequest{RunID: r.RunID}, &full, nil)
		if r.Kind != "bank" || r.FileSHA256 != full.FileSHA256 || r.Lines != 1 || r.Findings != full.Findings || r.Findings == 0 ||
			r.CompletedAt != domain.FormatTime(full.CompletedAt) || r.Counts["missing_in_ledger"] != full.Counts.MissingInLedger || len(r.Counts) != 6 {
			t.Errorf("summary %+v of run %+v", r, full)
		}
		var page api.ReconcileListReply
		e.call(t, api.ReconcileList.Subject, api.ReconcileListRequest{PageRequest: api.PageRequest{Limit: 1}}, &page, nil)
		var next api.ReconcileListReply
		e.call(t, api.ReconcileList.Subject, api.ReconcileListRequest{PageRequest: api.PageRequest{Limit: 1, Cursor: page.NextCursor}}, &next, nil)
		if len(page.Runs) != 1 || len(next.Runs) != 1 || next.Runs[0].RunID != runs[0] || next.NextCursor != "" {
			t.Errorf("pages: %+v, %+v", page, next)
		}
	})
}

// Bad requests are 400 invalid_input naming the field.
func TestConsoleQueriesRefuseBadInput(t *testing.T) {
	e := startEngine(t)
	for _, tc := range []struct {
		subject string
		body    string
		field   string
	}{
		{api.OrderSearch.Subject, `{"status":"lost"}`, "status"},
		{api.OrderSearch.Subject, `{"order_id":"a.b"}`, "order_id"},
		{api.OrderSearch.Subject, `{"order_id":"o-1","cursor":"00"}`, "cursor"},
		{api.OrderSearch.Subject, `{"depositor_name":"   "}`, "depositor_name"},
		{api.OrderSearch.Subject, `{"limit":501}`, "limit"},
		{api.OrderSearch.Subject, `{"cursor":"not hex"}`, "cursor"},
		{api.OrderSearch.Subject, `{"cursor":"zz"}`, "cursor"},
		{api.OrderSearch.Subject, `{"name":"x"}`, ""},
		{api.PayoutList.Subject, `{"status":"sent"}`, "status"},
		{api.PayoutList.Subject, `{"limit":-1}`, "limit"},
		{api.PayoutList.Subject, `{"cursor":"zz"}`, "cursor"},
		{api.ReconcileList.Subject, `{"limit":1000}`, "limit"},
		{api.ReconcileList.Subject, `{"cursor":"zz"}`, "cursor"},
		{api.LedgerSeries.Subject, `{}`, "account"},
		{api.LedgerSeries.Subject, `{"account":"assets:bank:123"}`, "account"},
		{api.LedgerSeries.Subject, `{"account":"liabilities:suspense:unmatched","limit":5001}`, "limit"},
	} {
		ce := e.callErr(t, tc.subject, []byte(tc.body), nil)
		if ce.Status != 400 || ce.Code != api.CodeInvalidInput || (tc.field != "" && ce.Details["field"] != tc.field) {
			t.Errorf("%s %s: %+v, want 400 invalid_input on %q", tc.subject, tc.body, ce, tc.field)
		}
	}
	// An account with nothing in it yet answers empty lists, not null.
	var s api.LedgerSeriesReply
	e.call(t, api.LedgerSeries.Subject, api.LedgerSeriesRequest{Account: domain.AccountPayoutsPending}, &s, nil)
	if s.Points == nil || s.OpenItems == nil || s.Account != domain.AccountPayoutsPending {
		t.Errorf("empty series: %+v", s)
	}
}

// Who may read what: app, operator and auditor read orders, payouts and
// the series; reconciliation results only the operator and the auditor (as
// bankbook.q.reconcile.get); feed none of them.
func TestConsoleQueriesByRole(t *testing.T) {
	e := startEngine(t)
	queries := []struct {
		subject string
		body    any
		roles   []auth.Role
	}{
		{api.OrderSearch.Subject, api.OrderSearchRequest{}, []auth.Role{auth.App, auth.Operator, auth.Auditor}},
		{api.PayoutList.Subject, api.PayoutListRequest{}, []auth.Role{auth.App, auth.Operator, auth.Auditor}},
		{api.LedgerSeries.Subject, api.LedgerSeriesRequest{Account: domain.AccountSuspense}, []auth.Role{auth.App, auth.Operator, auth.Auditor}},
		{api.ReconcileList.Subject, api.ReconcileListRequest{}, []auth.Role{auth.Operator, auth.Auditor}},
	}
	for _, role := range []auth.Role{auth.App, auth.Feed, auth.Operator, auth.Auditor} {
		c := connectAs(t, e.ClientURL(), e.SeedFile(role))
		for _, q := range queries {
			_, err := c.Request(ctxT(t), q.subject, q.body, nil)
			var ae *api.Error
			refused := errors.As(err, &ae) && ae.Status == 403 && ae.Code == api.CodeForbidden
			switch allowed := slices.Contains(q.roles, role); {
			case allowed && err != nil:
				t.Errorf("%s → %s: %v", role, q.subject, err)
			case !allowed && !refused:
				t.Errorf("%s → %s: %v, want 403 forbidden", role, q.subject, err)
			}
		}
	}
}

package projections_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

func apply(t testing.TB, st *projections.Store, commits ...eventstore.Commit) {
	t.Helper()
	if err := st.Apply(commits); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func orderIDs(vs []projections.OrderView) []string {
	ids := []string{}
	for _, v := range vs {
		ids = append(ids, v.OrderID)
	}
	return ids
}

// Orders are found by status, by depositor name as the engine compares names,
// and by ID, newest submission first, in pages that end exactly where the
// matches end.
func TestSearchOrders(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	for i := 1; i <= 5; i++ {
		id := fmt.Sprintf("o%d", i)
		apply(t, st, l.commit(t, orderRef(id), t0, submitted(id, i)))
	}
	at := t0.Add(time.Hour)
	apply(t, st,
		l.commit(t, orderRef("o2"), at, domain.OrderPaid{OrderID: "o2", DepositID: "d2", Amount: 10_002, FromAccount: "assets:bank:1", PaidAt: at}),
		l.commit(t, orderRef("o3"), at, domain.OrderCancelReserved{OrderID: "o3", Reason: "changed mind", ReservedAt: at, CancelAt: at.Add(10 * time.Minute)}),
		l.commit(t, orderRef("o1"), at, domain.OrderCancelled{OrderID: "o1", CancelledAt: at}),
	)
	// o6 takes o1's depositor name once o1 is closed.
	o6 := submitted("o6", 1)
	o6.OrderID, o6.SubmittedAt = "o6", t0.Add(time.Minute)
	apply(t, st, l.commit(t, orderRef("o6"), t0.Add(time.Minute), o6))
	// o7 is another buyer's, submitted first.
	o7 := submitted("o7", 7)
	o7.BuyerName, o7.DepositorName, o7.SubmittedAt = "이영희", "이영희007", t0.Add(-time.Minute)
	apply(t, st, l.commit(t, orderRef("o7"), t0.Add(-time.Minute), o7))

	search := func(q projections.OrderSearch, limit int, cursor string) ([]string, string) {
		t.Helper()
		vs, next, err := st.SearchOrders(q, limit, cursor)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		return orderIDs(vs), next
	}
	cases := []struct {
		name string
		q    projections.OrderSearch
		want []string
	}{
		{"everything, newest first", projections.OrderSearch{}, []string{"o6", "o5", "o4", "o3", "o2", "o1", "o7"}},
		{"status awaiting_deposit", projections.OrderSearch{Status: "awaiting_deposit"}, []string{"o6", "o5", "o4", "o7"}},
		{"status paid", projections.OrderSearch{Status: "paid"}, []string{"o2"}},
		{"status cancel_reserved", projections.OrderSearch{Status: "cancel_reserved"}, []string{"o3"}},
		{"status cancelled", projections.OrderSearch{Status: "cancelled"}, []string{"o1"}},
		{"status expired", projections.OrderSearch{Status: "expired"}, []string{}},
		{"depositor name as written", projections.OrderSearch{DepositorName: "김민수003"}, []string{"o3"}},
		{"depositor name spaced and full-width", projections.OrderSearch{DepositorName: "김민수 ００３"}, []string{"o3"}},
		{"a name two orders held", projections.OrderSearch{DepositorName: "김민수001"}, []string{"o6", "o1"}},
		{"name and status", projections.OrderSearch{DepositorName: "김민수001", Status: "cancelled"}, []string{"o1"}},
		{"buyer name, spaced and full-width", projections.OrderSearch{BuyerName: "김 민수"}, []string{"o6", "o5", "o4", "o3", "o2", "o1"}},
		{"another buyer's name", projections.OrderSearch{BuyerName: "이영희"}, []string{"o7"}},
		{"buyer name and status", projections.OrderSearch{BuyerName: "김민수", Status: "paid"}, []string{"o2"}},
		{"buyer name and another's depositor name", projections.OrderSearch{BuyerName: "이영희", DepositorName: "김민수003"}, []string{}},
		{"unknown name", projections.OrderSearch{DepositorName: "김민수999"}, []string{}},
		{"by ID", projections.OrderSearch{OrderID: "o4"}, []string{"o4"}},
		{"by ID, another status", projections.OrderSearch{OrderID: "o4", Status: "paid"}, []string{}},
		{"unknown ID", projections.OrderSearch{OrderID: "nope"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, next := search(tc.q, 50, "")
			if !slices.Equal(got, tc.want) || next != "" {
				t.Fatalf("got %v next %q, want %v", got, next, tc.want)
			}
		})
	}

	t.Run("each order has exactly its index keys", func(t *testing.T) {
		// "*" and its status per order in one index, its name in the other:
		// a status change leaves no key behind.
		for bucket, want := range map[string]int{"orders_by_status": 2 * 7, "orders_by_depositor": 7, "orders_by_buyer_name": 7} {
			if n, err := projections.BucketLen(st, bucket); err != nil || n != want {
				t.Errorf("%s holds %d keys (%v), want %d", bucket, n, err, want)
			}
		}
	})
	t.Run("pages", func(t *testing.T) {
		var all []string
		cursor, pages := "", 0
		for {
			got, next := search(projections.OrderSearch{}, 4, cursor)
			all, pages = append(all, got...), pages+1
			if next == "" {
				break
			}
			cursor = next
		}
		if want := []string{"o6", "o5", "o4", "o3", "o2", "o1", "o7"}; !slices.Equal(all, want) || pages != 2 {
			t.Fatalf("paged: %v in %d pages, want %v in 2", all, pages, want)
		}
	})
	t.Run("no empty last page when the filter skips the rest", func(t *testing.T) {
		got, next := search(projections.OrderSearch{DepositorName: "김민수001", Status: "awaiting_deposit"}, 1, "")
		if !slices.Equal(got, []string{"o6"}) || next != "" {
			t.Fatalf("got %v next %q", got, next)
		}
	})
	t.Run("reserved cancellation shows when it becomes final", func(t *testing.T) {
		vs, _, err := st.SearchOrders(projections.OrderSearch{Status: "cancel_reserved"}, 1, "")
		if err != nil || len(vs) != 1 || vs[0].CancelAt != domain.FormatTime(at.Add(10*time.Minute)) {
			t.Fatalf("got %+v, %v", vs, err)
		}
	})
	t.Run("an order submitted again moves its name keys", func(t *testing.T) {
		// Only a submission sets the names: a second one (which the
		// projection takes as the order's) moves them, as a status change
		// moves the status key.
		again := submitted("o5", 5)
		again.BuyerName, again.DepositorName = "박지성", "박지성005"
		apply(t, st, l.commit(t, orderRef("o5"), t0, again))
		if got, _ := search(projections.OrderSearch{BuyerName: "박지성"}, 50, ""); !slices.Equal(got, []string{"o5"}) {
			t.Errorf("by the new buyer name: %v, want [o5]", got)
		}
		if got, _ := search(projections.OrderSearch{DepositorName: "김민수005"}, 50, ""); !slices.Equal(got, []string{}) {
			t.Errorf("by the old depositor name: %v, want none", got)
		}
		for bucket, want := range map[string]int{"orders_by_depositor": 7, "orders_by_buyer_name": 7} {
			if n, err := projections.BucketLen(st, bucket); err != nil || n != want {
				t.Errorf("%s holds %d keys (%v), want %d", bucket, n, err, want)
			}
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		if _, _, err := st.SearchOrders(projections.OrderSearch{}, 1, "zz"); !errors.Is(err, projections.ErrBadCursor) {
			t.Fatalf("got %v, want ErrBadCursor", err)
		}
	})
}

func payoutRef(id string) eventstore.Ref { return eventstore.Ref{Type: domain.AggregatePayout, ID: id} }

func TestListPayouts(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	for i, id := range []string{"po_1", "po_2", "po_3"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		apply(t, st, l.commit(t, payoutRef(id), at, domain.PayoutRequested{
			PayoutID: domain.PayoutID(id), Amount: 1000, To: domain.BankAccount{Bank: "B", Number: "1", Holder: "H"},
			PayFrom: "123", Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: at,
		}))
	}
	at := t0.Add(time.Hour)
	apply(t, st,
		l.commit(t, payoutRef("po_1"), at, domain.PayoutSettled{PayoutID: "po_1", Amount: 1000, Fee: 500, BankAccount: "123", ProviderRef: "FB1", SettledAt: at}),
		l.commit(t, payoutRef("po_2"), at, domain.PayoutFailed{PayoutID: "po_2", Reason: "closed account", FailedAt: at}),
	)
	list := func(status string, limit int, cursor string) ([]string, string) {
		t.Helper()
		vs, next, err := st.Payouts(status, limit, cursor)
		if err != nil {
			t.Fatalf("payouts %q: %v", status, err)
		}
		ids := []string{}
		for _, v := range vs {
			ids = append(ids, v.PayoutID)
			if status != "" && v.Status != status {
				t.Errorf("%s is %s, listed under %s", v.PayoutID, v.Status, status)
			}
		}
		return ids, next
	}
	for status, want := range map[string][]string{
		"": {"po_3", "po_2", "po_1"}, "requested": {"po_3"}, "settled": {"po_1"}, "failed": {"po_2"},
	} {
		if got, next := list(status, 50, ""); !slices.Equal(got, want) || next != "" {
			t.Errorf("status %q: %v next %q, want %v", status, got, next, want)
		}
	}
	first, next := list("", 2, "")
	rest, last := list("", 2, next)
	if !slices.Equal(first, []string{"po_3", "po_2"}) || !slices.Equal(rest, []string{"po_1"}) || last != "" {
		t.Fatalf("pages: %v (%q), %v (%q)", first, next, rest, last)
	}
	if _, _, err := st.Payouts("", 1, "not hex"); !errors.Is(err, projections.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestListReconcileRuns(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	var ids []string
	for i, kind := range []string{domain.ReconcileKindBank, domain.ReconcileKindPayouts, domain.ReconcileKindBank} {
		sha := fmt.Sprintf("%064x", i+1)
		id := domain.NewReconciliationID(kind, sha)
		ids = append(ids, string(id))
		at := t0.Add(time.Duration(i) * time.Hour)
		apply(t, st, l.commit(t, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(id)}, at, domain.ReconciliationCompleted{
			RunID: id, Kind: kind, FileSHA256: sha, Lines: 10 + i,
			Counts:      domain.ReconcileCounts{Matched: 7, MissingInLedger: i, Duplicate: 1, TimingDifference: 2},
			CompletedAt: at,
		}))
	}
	runs, next, err := st.ReconcileRuns(2, "")
	if err != nil || next == "" || len(runs) != 2 {
		t.Fatalf("first page: %+v %q %v", runs, next, err)
	}
	more, last, err := st.ReconcileRuns(2, next)
	if err != nil || last != "" || len(more) != 1 {
		t.Fatalf("second page: %+v %q %v", more, last, err)
	}
	runs = append(runs, more...)
	for i, r := range runs {
		n := 2 - i // newest first
		want := api.ReconcileRunSummary{
			RunID: ids[n], Kind: []string{"bank", "payouts", "bank"}[n], FileSHA256: fmt.Sprintf("%064x", n+1), Lines: 10 + n,
			CompletedAt: domain.FormatTime(t0.Add(time.Duration(n) * time.Hour)),
			Counts:      map[string]int{"matched": 7, "missing_in_ledger": n, "missing_at_bank": 0, "amount_mismatch": 0, "duplicate": 1, "timing_difference": 2},
			Findings:    n + 1, Seq: api.Seq(n + 1),
		}
		if fmt.Sprint(r) != fmt.Sprint(want) {
			t.Errorf("run %d:\n got %+v\nwant %+v", i, r, want)
		}
	}
}

// How far the nightly runs of a kind covered is the latest end of a
// period a run of that kind by the actor "timer" was given: an
// operator's run, a run without a period and a run of the other kind do
// not count, and a run recorded after a later one does not move it back.
func TestNightlyCovered(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	day := func(n int) time.Time {
		if n < 0 {
			return time.Time{}
		}
		return t0.Add(time.Duration(n) * 24 * time.Hour).Add(-time.Nanosecond)
	}
	covered := map[string]int{domain.ReconcileKindBank: -1, domain.ReconcileKindPayouts: -1}
	check := func(after string) {
		t.Helper()
		for kind, want := range covered {
			at, err := st.NightlyCovered(kind)
			if err != nil {
				t.Fatal(err)
			}
			if !at.Equal(day(want)) {
				t.Fatalf("after %s: %s covered to %s, want %s", after, kind, at, day(want))
			}
		}
	}
	check("no run")
	for i, r := range []struct {
		kind, actor string
		to          int // the period's end, a day; -1: no period
		want        int // the kind's covered end after it, a day
	}{
		{domain.ReconcileKindBank, domain.ActorTimer, 1, 1},
		{domain.ReconcileKindBank, "operator", 5, 1},
		{domain.ReconcileKindPayouts, domain.ActorTimer, 6, 6},
		{domain.ReconcileKindPayouts, "operator", 8, 6},
		{domain.ReconcileKindBank, domain.ActorTimer, -1, 1},
		{domain.ReconcileKindBank, domain.ActorTimer, 3, 3},
		{domain.ReconcileKindBank, domain.ActorTimer, 2, 3},
		{domain.ReconcileKindPayouts, domain.ActorTimer, 4, 6},
		{domain.ReconcileKindPayouts, domain.ActorTimer, 7, 7},
	} {
		sha := fmt.Sprintf("%064x", i+1)
		id := domain.NewReconciliationID(r.kind, sha)
		run := domain.ReconciliationCompleted{RunID: id, Kind: r.kind, FileSHA256: sha, Lines: 1, CompletedAt: day(9)}
		if r.to >= 0 {
			run.Period = &domain.ReconcilePeriod{From: day(r.to - 1), To: day(r.to)}
		}
		c := l.commit(t, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(id)}, day(9), run)
		c.Events[0].Actor = r.actor
		apply(t, st, c)
		covered[r.kind] = r.want
		check(fmt.Sprintf("run %d (%s by %s, to day %d)", i, r.kind, r.actor, r.to))
	}
}

// The lists of orders and notifications (payouts and reconciliation runs
// page as orders do) end a page before the item that would take its
// encoding past api.MaxPageBytes (made 4,000 bytes here), as the bills
// and payments do: a cancel reason of 500 '&'s
// is 3,000 bytes in JSON, so 500 of them would not fit one NATS reply.
// Each item is still listed once, in order, over the pages.
func TestListPagesEndBeforeTheReplyIsTooLarge(t *testing.T) {
	const bound = 4_000
	projections.SetMaxPageBytes(t, bound)
	st := openStore(t, tempPath(t, "rm.db"))
	l := newCommitLog()
	var want []string
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("o%02d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		s := submitted(id, i)
		s.SubmittedAt = at
		apply(t, st, l.commit(t, orderRef(id), at, s),
			l.commit(t, orderRef(id), at, domain.OrderCancelReserved{OrderID: domain.OrderID(id), Reason: strings.Repeat("&", 500), ReservedAt: at, CancelAt: at.Add(time.Hour)}))
		want = append([]string{id}, want...)
	}
	var got []string
	pages := 0
	for cursor := ""; ; {
		vs, next, err := st.SearchOrders(projections.OrderSearch{}, 500, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if enc, _ := json.Marshal(vs); len(vs) == 0 || len(enc) > bound {
			t.Fatalf("page %d: %d orders in %d bytes, bound %d", pages, len(vs), len(enc), bound)
		}
		got = append(got, orderIDs(vs)...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || pages < 2 {
		t.Fatalf("orders %v in %d pages, want %v in more than one", got, pages, want)
	}

	st = openStore(t, tempPath(t, "notifications.db")) // a log of its own
	w, _ := newNotifyWorld(t, st)
	for i := range 30 {
		w.create(fmt.Sprintf("evt-%d", i), "store:s1", t0.Add(time.Duration(i)*time.Second))
	}
	seen, pages := map[string]bool{}, 0
	for cursor := ""; ; {
		page, err := st.Notifications("", "", 500, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if enc, _ := json.Marshal(page.Notifications); len(page.Notifications) == 0 || len(enc) > bound {
			t.Fatalf("page %d: %d notifications in %d bytes, bound %d", pages, len(page.Notifications), len(enc), bound)
		}
		for _, n := range page.Notifications {
			if seen[n.NotificationID] {
				t.Fatalf("%s listed twice", n.NotificationID)
			}
			seen[n.NotificationID] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 30 || pages < 2 {
		t.Fatalf("%d notifications in %d pages, want 30 in more than one", len(seen), pages)
	}
}

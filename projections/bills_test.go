package projections_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// collectAccount is the collection account the dedicated accounts are
// virtual sub-accounts of.
const collectAccount = "123-456-7890"

// billWorld writes link commits as the commands package would: each step
// decides its events on the link's state (domain.Decide*), folds them into
// that state and hands the commit to sink.
type billWorld struct {
	t     testing.TB
	links map[string]domain.Link
	n     int // links made, for their account numbers
	sink  func(ref eventstore.Ref, at time.Time, evs []domain.Event) eventstore.Commit
}

// newBillWorld builds commits in memory (commitLog) and applies each, one
// batch per commit, to st.
func newBillWorld(t testing.TB, st *projections.Store) (*billWorld, *[]eventstore.Commit) {
	t.Helper()
	l := newCommitLog()
	var all []eventstore.Commit
	w := &billWorld{t: t, links: map[string]domain.Link{}}
	w.sink = func(ref eventstore.Ref, at time.Time, evs []domain.Event) eventstore.Commit {
		t.Helper()
		c := l.commit(t, ref, at, evs...)
		if err := st.Apply([]eventstore.Commit{c}); err != nil {
			t.Fatalf("apply seq %d: %v", c.Seq, err)
		}
		all = append(all, c)
		return c
	}
	return w, &all
}

// on decides one command on the link of (dist, store) and commits its
// events at at.
func (w *billWorld) on(dist, store string, at time.Time, decide func(domain.Link) ([]domain.Event, error)) (eventstore.Commit, []domain.Event) {
	w.t.Helper()
	id := domain.LinkID(domain.DistributorID(dist), domain.StoreID(store))
	l := w.links[id]
	evs, err := decide(l)
	if err != nil || len(evs) == 0 {
		w.t.Fatalf("%s/%s: decide: %d events, %v", dist, store, len(evs), err)
	}
	for _, e := range evs {
		l = l.Apply(e)
	}
	w.links[id] = l
	return w.sink(eventstore.Ref{Type: domain.AggregateLink, ID: id}, at, evs), evs
}

func (w *billWorld) link(dist, store string, at time.Time) domain.BankAccount {
	w.t.Helper()
	w.n++
	acct := domain.BankAccount{Bank: "KB", Number: fmt.Sprintf("50010%05d", w.n), Holder: "bankbook"}
	w.on(dist, store, at, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideLink(l, domain.LinkStore{
			LinkID: domain.LinkID(domain.DistributorID(dist), domain.StoreID(store)), DistributorID: domain.DistributorID(dist),
			StoreID: domain.StoreID(store), StoreName: "store " + store, Account: acct, Now: at,
		})
	})
	return acct
}

func (w *billWorld) issue(dist, store string, amount int64, memo string, at time.Time) (eventstore.Commit, domain.BillIssued) {
	w.t.Helper()
	c, evs := w.on(dist, store, at, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideIssueBill(l, domain.IssueBill{Amount: amount, Memo: memo, Now: at})
	})
	return c, evs[len(evs)-1].(domain.BillIssued)
}

func (w *billWorld) cancel(dist, store, bill string, at time.Time) eventstore.Commit {
	w.t.Helper()
	c, _ := w.on(dist, store, at, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideCancelBill(l, domain.CancelBill{BillID: bill, Reason: "wrong amount", Now: at})
	})
	return c
}

// pay records a payment with a settlement schedule of D+1 business day.
func (w *billWorld) pay(dist, store, deposit string, amount int64, paidAt time.Time, feeBps int) (eventstore.Commit, domain.StorePaymentReceived) {
	w.t.Helper()
	c, evs := w.on(dist, store, paidAt.Add(time.Minute), func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideStorePayment(l, domain.StorePayment{
			DepositID: domain.DepositID(deposit), Amount: amount, PaidAt: paidAt, CollectAccount: collectAccount,
			FeeBps: feeBps, SettlementDays: 1, Now: paidAt.Add(time.Minute),
		})
	})
	return c, evs[0].(domain.StorePaymentReceived)
}

func (w *billWorld) remind(dist, store string, at time.Time) eventstore.Commit {
	w.t.Helper()
	c, _ := w.on(dist, store, at, func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideRemind(l, domain.Remind{Now: at})
	})
	return c
}

// kst is a time on a day of March 2026 in Asia/Seoul (the 5th is a
// Thursday).
func kst(day, hour int) time.Time {
	return time.Date(2026, 3, day, hour, 0, 0, 0, domain.Seoul())
}

func getBill(t testing.TB, st *projections.Store, id string) projections.BillView {
	t.Helper()
	v, ok, err := st.Bill(id)
	if err != nil || !ok {
		t.Fatalf("bill %s: found %v, %v", id, ok, err)
	}
	return v
}

// checkBill compares the bill's view with want, whose payments are all
// the bill's (fewer than a view carries).
func checkBill(t testing.TB, st *projections.Store, want projections.BillView) {
	t.Helper()
	want.PaymentCount = len(want.Payments)
	if got := getBill(t, st, want.BillID); !reflect.DeepEqual(got, want) {
		t.Fatalf("bill %s\n got %+v\nwant %+v", want.BillID, got, want)
	}
}

func activeIDs(t testing.TB, st *projections.Store, dist string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		page, err := st.ActiveBills(dist, 2, cursor)
		if err != nil {
			t.Fatalf("active bills of %s: %v", dist, err)
		}
		for _, b := range page.Bills {
			ids = append(ids, b.BillID)
		}
		if cursor = page.NextCursor; cursor == "" {
			return ids
		}
	}
}

func depositIDs(ps []projections.BillPayment) []string {
	ids := []string{}
	for _, p := range ps {
		ids = append(ids, p.DepositID)
	}
	return ids
}

// TestBillLife follows one store's bills through DOMAIN.md §4's flows: a
// bill paid in two parts (the second overpaying), superseded by the next
// bill, which is partly paid and cancelled, then a payment with no bill.
// Each bill's figures and the active list are checked after every step.
func TestBillLife(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	const dist, store = "dist-a", "s1"
	acct := w.link(dist, store, kst(2, 9))
	linkID := domain.LinkID(dist, store)

	c1, b1 := w.issue(dist, store, 100_000, "March", kst(2, 10))
	bill1 := projections.BillView{
		BillID: b1.BillID, LinkID: linkID, DistributorID: dist, StoreID: store, StoreName: "store s1",
		Amount: 100_000, Outstanding: 100_000, Status: "active", Memo: "March", DedicatedAccount: acct,
		IssuedAt: domain.FormatTime(kst(2, 10)), Payments: []projections.BillPayment{}, Seq: api.Seq(c1.Seq),
	}
	checkBill(t, st, bill1)
	if got := activeIDs(t, st, dist); !slices.Equal(got, []string{b1.BillID}) {
		t.Fatalf("active after issue: %v", got)
	}

	// Thursday 10:00 KST, 2.5%: fee 1,000, settles Friday.
	c2, _ := w.pay(dist, store, "d1", 40_000, kst(5, 10), 250)
	bill1.PaidAmount, bill1.Outstanding, bill1.Status, bill1.Seq = 40_000, 60_000, "partially_paid", api.Seq(c2.Seq)
	bill1.Payments = []projections.BillPayment{
		{DepositID: "d1", Amount: 40_000, Fee: 1_000, Net: 39_000, PaidAt: domain.FormatTime(kst(5, 10)), SettlementDate: "2026-03-06"},
	}
	checkBill(t, st, bill1)

	// Friday, overpaying: fee 1,750, settles Monday.
	c3, _ := w.pay(dist, store, "d2", 70_000, kst(6, 11), 250)
	bill1.PaidAmount, bill1.Outstanding, bill1.Status, bill1.Seq = 110_000, 0, "paid", api.Seq(c3.Seq)
	bill1.Payments = append(bill1.Payments,
		projections.BillPayment{DepositID: "d2", Amount: 70_000, Fee: 1_750, Net: 68_250, PaidAt: domain.FormatTime(kst(6, 11)), SettlementDate: "2026-03-09"})
	checkBill(t, st, bill1)
	if got := activeIDs(t, st, dist); !slices.Equal(got, []string{b1.BillID}) {
		t.Fatalf("a paid bill stays current until the next: active %v", got)
	}

	// The next bill supersedes it.
	c4, b2 := w.issue(dist, store, 50_000, "", kst(7, 9))
	if b2.SupersededBillID != b1.BillID {
		t.Fatalf("bill 2 supersedes %q", b2.SupersededBillID)
	}
	bill1.Status, bill1.ClosedAt, bill1.SupersededBy, bill1.Seq = "expired", domain.FormatTime(kst(7, 9)), b2.BillID, api.Seq(c4.Seq)
	checkBill(t, st, bill1)
	bill2 := projections.BillView{
		BillID: b2.BillID, LinkID: linkID, DistributorID: dist, StoreID: store, StoreName: "store s1",
		Amount: 50_000, Outstanding: 50_000, Status: "active", DedicatedAccount: acct,
		IssuedAt: domain.FormatTime(kst(7, 9)), Payments: []projections.BillPayment{}, Seq: api.Seq(c4.Seq),
	}
	checkBill(t, st, bill2)
	if got := activeIDs(t, st, dist); !slices.Equal(got, []string{b2.BillID}) {
		t.Fatalf("active after supersede: %v, want only %s", got, b2.BillID)
	}

	// Saturday, after a fee change to 1%: fee 200, settles Tuesday (the
	// business day of a weekend payment is Monday).
	c5, _ := w.pay(dist, store, "d3", 20_000, kst(7, 15), 100)
	bill2.PaidAmount, bill2.Outstanding, bill2.Status, bill2.Seq = 20_000, 30_000, "partially_paid", api.Seq(c5.Seq)
	bill2.Payments = []projections.BillPayment{
		{DepositID: "d3", Amount: 20_000, Fee: 200, Net: 19_800, PaidAt: domain.FormatTime(kst(7, 15)), SettlementDate: "2026-03-10"},
	}
	checkBill(t, st, bill2)

	// A reminder changes no bill.
	w.remind(dist, store, kst(8, 9))
	checkBill(t, st, bill2)

	c6 := w.cancel(dist, store, b2.BillID, kst(8, 10))
	bill2.Status, bill2.ClosedAt, bill2.Seq = "cancelled", domain.FormatTime(kst(8, 10)), api.Seq(c6.Seq)
	checkBill(t, st, bill2)
	if got := activeIDs(t, st, dist); len(got) != 0 {
		t.Fatalf("active after cancel: %v", got)
	}

	// Monday, no current bill: an unbilled payment, fee 150, settles Tuesday.
	_, d4 := w.pay(dist, store, "d4", 15_000, kst(9, 10), 100)
	if d4.BillID != "" {
		t.Fatalf("payment without a current bill went to %s", d4.BillID)
	}
	checkBill(t, st, bill1)
	checkBill(t, st, bill2)

	t.Run("payment lists", func(t *testing.T) {
		want := []projections.BillPayment{
			{DepositID: "d1", DistributorID: dist, StoreID: store, BillID: b1.BillID, Amount: 40_000, Fee: 1_000, Net: 39_000, PaidAt: domain.FormatTime(kst(5, 10)), SettlementDate: "2026-03-06"},
			{DepositID: "d2", DistributorID: dist, StoreID: store, BillID: b1.BillID, Amount: 70_000, Fee: 1_750, Net: 68_250, PaidAt: domain.FormatTime(kst(6, 11)), SettlementDate: "2026-03-09"},
			{DepositID: "d3", DistributorID: dist, StoreID: store, BillID: b2.BillID, Amount: 20_000, Fee: 200, Net: 19_800, PaidAt: domain.FormatTime(kst(7, 15)), SettlementDate: "2026-03-10"},
			{DepositID: "d4", DistributorID: dist, StoreID: store, Amount: 15_000, Fee: 150, Net: 14_850, PaidAt: domain.FormatTime(kst(9, 10)), SettlementDate: "2026-03-10"},
		}
		byDist, err := st.PaymentsByDistributor(dist, nil, nil, 50, "")
		if err != nil || !reflect.DeepEqual(byDist, api.PaymentsReply{Payments: want}) {
			t.Fatalf("by distributor = %+v, %v\nwant %+v", byDist, err, want)
		}
		byStore, err := st.PaymentsByStore(store, 50, "")
		if err != nil || !reflect.DeepEqual(byStore, api.PaymentsReply{Payments: want}) {
			t.Fatalf("by store = %+v, %v\nwant %+v", byStore, err, want)
		}
	})

	t.Run("settlements", func(t *testing.T) {
		// Hand-computed: 2.5% on d1 and d2, 1% on d3 and d4.
		want := api.SettlementReply{DistributorID: dist, Settlements: []projections.Settlement{
			{Date: "2026-03-06", Gross: 40_000, Fee: 1_000, Net: 39_000, Payments: 1},
			{Date: "2026-03-09", Gross: 70_000, Fee: 1_750, Net: 68_250, Payments: 1},
			{Date: "2026-03-10", Gross: 35_000, Fee: 350, Net: 34_650, Payments: 2},
		}}
		got, err := st.Settlements(dist)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("settlements = %+v, %v\nwant %+v", got, err, want)
		}
		none, err := st.Settlements("dist-none")
		if err != nil || none.Settlements == nil || len(none.Settlements) != 0 {
			t.Fatalf("settlements of a distributor without payments = %+v, %v", none, err)
		}
	})

	t.Run("unknown bill", func(t *testing.T) {
		if v, ok, err := st.Bill(domain.BillID(linkID, 3)); ok || err != nil {
			t.Fatalf("bill never issued: %+v, %v, %v", v, ok, err)
		}
	})
}

// TestActiveBillsPerDistributor: the active list holds each distributor's
// current bills only, in store order, one per store, however the bills
// were superseded or cancelled; pages follow one another without repeats
// or gaps even when bills are issued between them.
func TestActiveBillsPerDistributor(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	at := kst(2, 9)
	stores := []string{"s1", "s10", "s2", "s3", "s4", "s5", "s6"}
	current := map[string]string{}
	for i, s := range stores {
		w.link("dist-a", s, at)
		_, b := w.issue("dist-a", s, int64(10_000+i), "", at.Add(time.Minute))
		current[s] = b.BillID
	}
	// Another distributor (whose ID has dist-a as a prefix) with the same store.
	w.link("dist-ab", "s1", at)
	_, other := w.issue("dist-ab", "s1", 5_000, "", at)

	_, b := w.issue("dist-a", "s2", 20_000, "", at.Add(time.Hour)) // supersedes s2's bill
	current["s2"] = b.BillID
	w.cancel("dist-a", "s4", current["s4"], at.Add(time.Hour))
	delete(current, "s4")
	_, b = w.issue("dist-a", "s6", 30_000, "", at.Add(time.Hour)) // supersedes, then cancelled
	w.cancel("dist-a", "s6", b.BillID, at.Add(2*time.Hour))
	delete(current, "s6")

	want := func() []string {
		var ids []string
		for _, s := range stores { // store_id order
			if id, ok := current[s]; ok {
				ids = append(ids, id)
			}
		}
		return ids
	}
	if got := activeIDs(t, st, "dist-a"); !slices.Equal(got, want()) {
		t.Fatalf("active of dist-a\n got %v\nwant %v", got, want())
	}
	if got := activeIDs(t, st, "dist-ab"); !slices.Equal(got, []string{other.BillID}) {
		t.Fatalf("active of dist-ab: %v", got)
	}
	if got := activeIDs(t, st, "dist-none"); len(got) != 0 {
		t.Fatalf("active of an unknown distributor: %v", got)
	}

	t.Run("each with its figures", func(t *testing.T) {
		w.pay("dist-a", "s3", "p1", 4_000, kst(5, 10), 0)
		page, err := st.ActiveBills("dist-a", 50, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Bills {
			if !reflect.DeepEqual(v, getBill(t, st, v.BillID)) {
				t.Errorf("active entry %+v differs from bill.get", v)
			}
			if v.StoreID == "s3" && (v.Status != "partially_paid" || v.PaidAmount != 4_000 || len(v.Payments) != 1) {
				t.Errorf("s3's bill in the active list: %+v", v)
			}
		}
	})

	t.Run("pages stay valid while bills are issued", func(t *testing.T) {
		first, err := st.ActiveBills("dist-a", 2, "")
		if err != nil || len(first.Bills) != 2 || first.NextCursor == "" {
			t.Fatalf("first page = %+v, %v", first, err)
		}
		// Re-issue for a store already listed and one still to come.
		_, b := w.issue("dist-a", first.Bills[0].StoreID, 1_000, "", at.Add(3*time.Hour))
		current[first.Bills[0].StoreID] = b.BillID
		_, b = w.issue("dist-a", "s5", 2_000, "", at.Add(3*time.Hour))
		current["s5"] = b.BillID
		var rest []string
		for cursor := first.NextCursor; cursor != ""; {
			page, err := st.ActiveBills("dist-a", 2, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Bills {
				rest = append(rest, v.BillID)
			}
			cursor = page.NextCursor
		}
		if all := want(); !slices.Equal(rest, all[2:]) {
			t.Fatalf("later pages %v, want %v", rest, all[2:])
		}
	})

	t.Run("bad cursor", func(t *testing.T) {
		if _, err := st.ActiveBills("dist-a", 2, "not hex"); !errors.Is(err, projections.ErrBadCursor) {
			t.Fatalf("got %v, want ErrBadCursor", err)
		}
	})
}

func TestStoresOf(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	for _, s := range []string{"s2", "s10", "s1"} {
		w.link("dist-a", s, kst(2, 9))
	}
	w.link("dist-ab", "s9", kst(2, 9))
	w.link("dist", "s8", kst(2, 9))

	got, err := st.StoresOf("dist-a")
	if want := []string{"s1", "s10", "s2"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("stores of dist-a = %+v, %v\nwant %+v", got, err, want)
	}
	if got, err := st.StoresOf("dist-x"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("stores of a distributor without any = %#v, %v", got, err)
	}
}

// TestStoreLinks: a distributor's links page by store_id, never past its
// own (dist-a's pages hold nothing of dist-ab or dist); a cursor at the
// last link gives an empty page; a rename shows in the link's view with
// when and at which sequence.
func TestStoreLinks(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	for _, s := range []string{"s2", "s10", "s1"} {
		w.link("dist-a", s, kst(2, 9))
	}
	w.link("dist-ab", "s0", kst(2, 9))
	w.link("dist", "s9", kst(2, 9))
	name := "가게 본점"
	c, _ := w.on("dist-a", "s10", kst(3, 9), func(l domain.Link) ([]domain.Event, error) {
		return domain.DecideRename(l, domain.RenameStore{StoreName: &name, Now: kst(3, 9)})
	})

	for _, limit := range []int{1, 2, 3, 50} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := st.StoreLinks("dist-a", limit, cursor)
			if err != nil || pages > 3 {
				t.Fatalf("limit %d, page %d: %+v %v", limit, pages, page, err)
			}
			for _, v := range page.Stores {
				got = append(got, v.DistributorID+"/"+v.StoreID)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if want := []string{"dist-a/s1", "dist-a/s10", "dist-a/s2"}; !reflect.DeepEqual(got, want) {
			t.Errorf("limit %d: %v, want %v", limit, got, want)
		}
	}
	last, err := st.StoreLinks("dist-a", 1, hex.EncodeToString([]byte("s2")))
	if err != nil || len(last.Stores) != 0 || last.NextCursor != "" {
		t.Errorf("the page after the last link: %+v %v, want none", last, err)
	}
	v, ok, err := st.StoreLink("dist-a", "s10")
	if err != nil || !ok || v.StoreName != name || v.RenamedAt != domain.FormatTime(kst(3, 9)) || v.Seq != api.Seq(c.Seq) ||
		v.LinkID != domain.LinkID("dist-a", "s10") || v.DedicatedAccount.Number == "" {
		t.Errorf("the renamed link: %+v %v %v", v, ok, err)
	}
	if _, ok, err := st.StoreLink("dist-a", "s0"); ok || err != nil {
		t.Errorf("dist-a's s0 (dist-ab's): found %v, %v", ok, err)
	}
	if _, err := st.StoreLinks("dist-a", 1, "00"); !errors.Is(err, projections.ErrBadCursor) {
		t.Errorf("cursor 00: %v, want ErrBadCursor", err)
	}
}

// TestStoreBills: a store's bills, whatever became of them, newest first
// by their number (bill 10 after bill 9, not after bill 1), in pages that
// follow one another; each with its payments; none of another store's.
func TestStoreBills(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	w.link("dist-a", "s1", kst(2, 9))
	w.link("dist-a", "s2", kst(2, 9))
	var ids []string
	for i := 1; i <= 12; i++ {
		_, b := w.issue("dist-a", "s1", int64(i*1_000), "", kst(2, 10).Add(time.Duration(i)*time.Minute))
		ids = append(ids, b.BillID)
		if i == 11 {
			w.pay("dist-a", "s1", "dep-11", 500, kst(2, 10).Add(time.Duration(i)*time.Minute+time.Second), 100)
		}
	}
	w.cancel("dist-a", "s1", ids[11], kst(3, 9))
	w.issue("dist-a", "s2", 7_000, "", kst(3, 9))

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, linked, err := st.StoreBills("dist-a", "s1", 5, cursor)
		if err != nil || !linked || pages > 3 {
			t.Fatalf("page %d: %+v %v %v", pages, page, linked, err)
		}
		for _, v := range page.Bills {
			got = append(got, v.BillID)
			switch v.BillID {
			case ids[11]:
				if v.Status != "cancelled" {
					t.Errorf("bill 12: %s, want cancelled", v.Status)
				}
			case ids[10]:
				if v.Status != "expired" || v.PaidAmount != 500 || len(v.Payments) != 1 {
					t.Errorf("bill 11: %+v, want expired with its payment", v)
				}
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bills of s1\n got %v\nwant %v", got, want)
	}
	if page, linked, err := st.StoreBills("dist-a", "s3", 5, ""); linked || err != nil || len(page.Bills) != 0 {
		t.Errorf("a pair not linked: %+v %v %v", page, linked, err)
	}
	for _, c := range []string{"0", "01", "x", "-1"} {
		if _, _, err := st.StoreBills("dist-a", "s1", 5, c); !errors.Is(err, projections.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// TestPaymentListsPagesAndRanges: the lists are ordered by paid_at then
// deposit_id (whatever order the payments were recorded in), a store's
// list spans its distributors, from is inclusive and to exclusive, and
// pages of one follow one another through the range.
func TestPaymentListsPagesAndRanges(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	for _, pair := range [][2]string{{"dist-a", "s1"}, {"dist-a", "s2"}, {"dist-b", "s1"}} {
		w.link(pair[0], pair[1], kst(2, 9))
	}
	w.issue("dist-a", "s1", 100_000, "", kst(2, 10))
	// Recorded out of paid_at order; p3 and p2 at the same time.
	w.pay("dist-a", "s1", "p5", 500, kst(6, 9), 0)
	w.pay("dist-a", "s2", "p3", 300, kst(4, 9), 0)
	w.pay("dist-a", "s1", "p2", 200, kst(4, 9), 0)
	w.pay("dist-b", "s1", "p1", 100, kst(3, 9), 0)
	w.pay("dist-a", "s1", "p4", 400, kst(5, 9), 0)
	w.pay("dist-a", "s2", "p6", 600, kst(9, 9), 0)

	list := func(t *testing.T, from, to *time.Time, limit int) []string {
		t.Helper()
		var ids []string
		for cursor, pages := "", 0; ; pages++ {
			page, err := st.PaymentsByDistributor("dist-a", from, to, limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Payments) > limit || pages > 10 {
				t.Fatalf("page of %d payments for limit %d, page %d", len(page.Payments), limit, pages)
			}
			ids = append(ids, depositIDs(page.Payments)...)
			if cursor = page.NextCursor; cursor == "" {
				return ids
			}
		}
	}
	ptr := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name     string
		from, to *time.Time
		want     []string
	}{
		{"all", nil, nil, []string{"p2", "p3", "p4", "p5", "p6"}},
		{"from inclusive", ptr(kst(4, 9)), nil, []string{"p2", "p3", "p4", "p5", "p6"}},
		{"from", ptr(kst(4, 10)), nil, []string{"p4", "p5", "p6"}},
		{"to exclusive", nil, ptr(kst(5, 9)), []string{"p2", "p3"}},
		{"from and to", ptr(kst(4, 9)), ptr(kst(6, 9).Add(time.Microsecond)), []string{"p2", "p3", "p4", "p5"}},
		{"empty range", ptr(kst(7, 0)), ptr(kst(9, 0)), []string{}},
		{"from in another zone", ptr(kst(5, 9).UTC()), nil, []string{"p4", "p5", "p6"}},
		// Bounds finer than paid_at's microseconds: a payment at 05 09:00
		// is before a from 1 ns later, and before a to 100 ns later.
		{"from a nanosecond after a payment", ptr(kst(5, 9).Add(time.Nanosecond)), nil, []string{"p5", "p6"}},
		{"to 100 ns after a payment", nil, ptr(kst(5, 9).Add(100 * time.Nanosecond)), []string{"p2", "p3", "p4"}},
		{"from and to within one microsecond", ptr(kst(5, 9).Add(-time.Nanosecond)), ptr(kst(5, 9).Add(time.Nanosecond)), []string{"p4"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 50} {
				if got := list(t, tc.from, tc.to, limit); !slices.Equal(got, tc.want) {
					t.Errorf("limit %d: %v, want %v", limit, got, tc.want)
				}
			}
		})
	}

	t.Run("by store across distributors", func(t *testing.T) {
		var got []projections.BillPayment
		for cursor := ""; ; {
			page, err := st.PaymentsByStore("s1", 2, cursor)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Payments...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if ids := depositIDs(got); !slices.Equal(ids, []string{"p1", "p2", "p4", "p5"}) {
			t.Fatalf("payments of s1: %v", ids)
		}
		if got[0].DistributorID != "dist-b" || got[0].BillID != "" || got[1].DistributorID != "dist-a" || got[1].BillID == "" {
			t.Fatalf("payments of s1 carry %+v and %+v", got[0], got[1])
		}
	})

	t.Run("bad cursors", func(t *testing.T) {
		for _, c := range []string{"zz", "0102", "00"} {
			if _, err := st.PaymentsByDistributor("dist-a", nil, nil, 2, c); !errors.Is(err, projections.ErrBadCursor) {
				t.Errorf("cursor %q: got %v, want ErrBadCursor", c, err)
			}
		}
	})
}

// TestBillEventsThatDoNotFit: events no link could have written fail their
// batch with ErrInconsistent and write nothing.
func TestBillEventsThatDoNotFit(t *testing.T) {
	linkID := domain.LinkID("dist-a", "s1")
	bill1, bill2 := domain.BillID(linkID, 1), domain.BillID(linkID, 2)
	issued := func(id string) domain.BillIssued {
		return domain.BillIssued{LinkID: linkID, BillID: id, DistributorID: "dist-a", StoreID: "s1", Amount: 1_000, IssuedAt: t0}
	}
	paid := domain.StorePaymentReceived{
		LinkID: linkID, DepositID: "d1", DistributorID: "dist-a", StoreID: "s1", Amount: 1_000, Net: 1_000, CollectAccount: collectAccount,
		SettlementDate: "2026-03-02", PaidAt: t0, BillID: bill1, BillAmount: 1_000, BillPaidAmount: 1_000, BillStatus: domain.BillStatusPaid,
	}
	expired := domain.BillExpired{LinkID: linkID, BillID: bill1, DistributorID: "dist-a", StoreID: "s1", SupersededBy: bill2, Amount: 1_000, ExpiredAt: t0}
	cases := []struct {
		name       string
		before     [][]domain.Event
		bad        []domain.Event
		projection string // the one that refuses
	}{
		{"payment to a bill never issued", nil, []domain.Event{paid}, "bills"},
		{"payment to an expired bill", [][]domain.Event{{issued(bill1)}, {expired, issued(bill2)}}, []domain.Event{paid}, "bills"},
		{"a second current bill", [][]domain.Event{{issued(bill1)}}, []domain.Event{issued(bill2)}, "bills"},
		{"a bill issued twice", [][]domain.Event{{issued(bill1)}}, []domain.Event{issued(bill1)}, "bills"},
		{"cancel of a bill never issued", nil, []domain.Event{domain.BillCancelled{LinkID: linkID, BillID: bill1, DistributorID: "dist-a", StoreID: "s1", CancelledAt: t0}}, "bills"},
		{"a settlement date that is no date", nil, []domain.Event{func() domain.Event { p := paid; p.BillID, p.SettlementDate = "", "soon"; return p }()}, "settlements"},
	}
	ref := eventstore.Ref{Type: domain.AggregateLink, ID: linkID}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t, tempPath(t, "rm.db"))
			l := newCommitLog()
			for _, evs := range tc.before {
				if err := st.Apply([]eventstore.Commit{l.commit(t, ref, t0, evs...)}); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := hashOf(t, st)
			err := st.Apply([]eventstore.Commit{l.commit(t, ref, t0, tc.bad...)})
			var ce *projections.CommitError
			if !errors.Is(err, projections.ErrInconsistent) || !errors.As(err, &ce) || ce.Projection != tc.projection {
				t.Fatalf("got %v, want ErrInconsistent from projection %s", err, tc.projection)
			}
			if after, _ := hashOf(t, st); after != before {
				t.Fatal("a refused batch changed the read models")
			}
		})
	}
}

// billHistory writes the bills of a few distributors and stores through w:
// every kind of link event, two fee rates.
func billHistory(w *billWorld) {
	for i, pair := range [][2]string{{"dist-a", "s1"}, {"dist-a", "s2"}, {"dist-b", "s1"}, {"dist-b", "s3"}} {
		d, s := pair[0], pair[1]
		w.link(d, s, kst(2, 9))
		w.issue(d, s, int64(50_000+i*1_000), "memo", kst(2, 10))
		w.pay(d, s, fmt.Sprintf("d%d-1", i), 20_000, kst(3+i, 10), 250)
		w.remind(d, s, kst(5, 9))
		if i == 1 {
			name, dist := "renamed "+s, "distributor "+d
			w.on(d, s, kst(5, 10), func(l domain.Link) ([]domain.Event, error) {
				return domain.DecideRename(l, domain.RenameStore{StoreName: &name, DistributorName: &dist, Now: kst(5, 10)})
			})
		}
		_, b2 := w.issue(d, s, 30_000, "", kst(6, 9))
		w.pay(d, s, fmt.Sprintf("d%d-2", i), 40_000, kst(7, 9), 100)
		if i%2 == 0 {
			w.cancel(d, s, b2.BillID, kst(8, 9))
			w.pay(d, s, fmt.Sprintf("d%d-3", i), 7_000, kst(9, 9), 100)
		}
	}
}

// TestBillProjectionsRebuildToTheSameContent: the live file, fed one commit
// at a time, and a rebuild from sequence 1 in one batch have the same
// content hash.
func TestBillProjectionsRebuildToTheSameContent(t *testing.T) {
	live := openStore(t, tempPath(t, "live.db"))
	w, commits := newBillWorld(t, live)
	billHistory(w)
	liveHash, cp := hashOf(t, live)

	fresh := openStore(t, tempPath(t, "rebuilt.db"))
	if err := fresh.Apply(*commits); err != nil {
		t.Fatal(err)
	}
	if h, rcp := hashOf(t, fresh); h != liveHash || rcp != cp {
		t.Fatalf("rebuild %s at %d, live %s at %d", h, rcp, liveHash, cp)
	}
	empty, _ := hashOf(t, openStore(t, tempPath(t, "empty.db")))
	if liveHash == empty {
		t.Fatal("the bill history left no trace in the hash")
	}
}

// streamSink appends link commits to the real event stream, each right
// after the aggregate's last commit.
type streamSink struct {
	f    *fixture
	last map[string]eventstore.Seq
	ver  map[string]int
}

func (s *streamSink) sink(t testing.TB) func(eventstore.Ref, time.Time, []domain.Event) eventstore.Commit {
	return func(ref eventstore.Ref, at time.Time, evs []domain.Event) eventstore.Commit {
		t.Helper()
		var envs []eventstore.Envelope
		for i, ev := range evs {
			env := s.f.envelope(t, ev, at)
			env.EventID = fmt.Sprintf("%s-e%d", ref.ID, s.ver[ref.ID]+i+1)
			envs = append(envs, env)
		}
		c, err := s.f.es.Append(context.Background(), ref, s.last[ref.ID], s.ver[ref.ID], fmt.Sprintf("%s-v%d", ref.ID, s.ver[ref.ID]), envs)
		if err != nil {
			t.Fatalf("append to link %s: %v", ref.ID, err)
		}
		s.last[ref.ID], s.ver[ref.ID] = c.Seq, s.ver[ref.ID]+len(evs)
		return c
	}
}

// TestBillProjectionsFollowTheStreamAndReplay: with the real event stream,
// the runner builds the bill read models live, and a replay into a fresh
// file has the live file's content hash.
func TestBillProjectionsFollowTheStreamAndReplay(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	r := projections.NewRunner(f.es, st, testLogger(t))
	startRunner(t, r)

	s := &streamSink{f: f, last: map[string]eventstore.Seq{}, ver: map[string]int{}}
	w := &billWorld{t: t, links: map[string]domain.Link{}, sink: s.sink(t)}
	billHistory(w)
	history(t, f, 0, 3) // orders, wallets, payouts and a deposit beside them
	waitFor(t, r, f.lastSeq(t))

	got, err := st.Settlements("dist-a")
	if err != nil {
		t.Fatal(err)
	}
	// dist-a: s1 pays 20,000 (2.5%) Tue 3rd, 40,000 (1%) Sat 7th, 7,000
	// (1%) Mon 9th; s2 pays 20,000 (2.5%) Wed 4th and 40,000 (1%) Sat 7th.
	want := []projections.Settlement{
		{Date: "2026-03-04", Gross: 20_000, Fee: 500, Net: 19_500, Payments: 1},
		{Date: "2026-03-05", Gross: 20_000, Fee: 500, Net: 19_500, Payments: 1},
		{Date: "2026-03-10", Gross: 87_000, Fee: 870, Net: 86_130, Payments: 3},
	}
	if !reflect.DeepEqual(got.Settlements, want) {
		t.Fatalf("settlements of dist-a\n got %+v\nwant %+v", got.Settlements, want)
	}
	if links, err := st.StoresOf("dist-b"); err != nil || len(links) != 2 {
		t.Fatalf("links of dist-b = %+v, %v", links, err)
	}

	liveHash, cp := hashOf(t, st)
	if replayed, rcp := replayHash(t, f, nil); replayed != liveHash || rcp != cp {
		t.Fatalf("live %s at %d, replay %s at %d", liveHash, cp, replayed, rcp)
	}
}

// TestBillViewCarriesItsRecentPayments: a bill paid more often than a view
// carries (api.MaxBillPayments) shows its most recent payments, in the
// order they were recorded, and counts them all, in bill.get and in the
// active list alike.
func TestBillViewCarriesItsRecentPayments(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	w.link("d-many", "s-many", kst(2, 9))
	_, issued := w.issue("d-many", "s-many", 1_000_000, "", kst(2, 10))
	const payments = api.MaxBillPayments + 7
	for i := range payments {
		w.pay("d-many", "s-many", fmt.Sprintf("dep-%03d", i), 10, kst(3, 9).Add(time.Duration(i)*time.Minute), 30)
	}
	want := []string{}
	for i := payments - api.MaxBillPayments; i < payments; i++ {
		want = append(want, fmt.Sprintf("dep-%03d", i))
	}
	v := getBill(t, st, string(issued.BillID))
	if v.PaymentCount != payments || !slices.Equal(depositIDs(v.Payments), want) || v.PaidAmount != 10*payments {
		t.Fatalf("bill: %d payments counted, %d paid, carries %v; want %d, %d and the newest %d oldest first",
			v.PaymentCount, v.PaidAmount, depositIDs(v.Payments), payments, 10*payments, api.MaxBillPayments)
	}
	page, err := st.ActiveBills("d-many", 10, "")
	if err != nil || len(page.Bills) != 1 || !reflect.DeepEqual(page.Bills[0], v) {
		t.Fatalf("active list %+v, %v; want the same view as bill.get", page, err)
	}
}

// TestListsWithoutLimitArePagedBySize: a list asked for without a limit
// (api.MaxUnpaged) answers everything one reply carries and pages the rest
// by size. With pages bounded to 30,000 bytes here (api.MaxPageBytes in
// the engine), 12 bills of 20 payments each and the distributor's 240
// payments come in pages under the bound, each bill and payment once.
func TestListsWithoutLimitArePagedBySize(t *testing.T) {
	const bound = 30_000
	projections.SetMaxPageBytes(t, bound)
	st := openStore(t, tempPath(t, "rm.db"))
	w, _ := newBillWorld(t, st)
	at := kst(2, 9)
	for s := range 12 {
		store := fmt.Sprintf("s%02d", s)
		w.link("dist-a", store, at)
		w.issue("dist-a", store, 1_000_000_000, "", at.Add(time.Minute))
		for p := range 20 {
			w.pay("dist-a", store, fmt.Sprintf("dep-%s-%03d", store, p), 1, at.Add(time.Duration(p+2)*time.Minute), 0)
		}
	}
	bills, pages := 0, 0
	for cursor := ""; ; {
		page, err := st.ActiveBills("dist-a", api.MaxUnpaged, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if enc, _ := json.Marshal(page.Bills); len(enc) > bound || len(page.Bills) == 0 {
			t.Fatalf("page %d: %d bills in %d bytes", pages, len(page.Bills), len(enc))
		}
		for _, b := range page.Bills {
			if want := fmt.Sprintf("s%02d", bills); string(b.StoreID) != want || len(b.Payments) != 20 {
				t.Fatalf("bill %d of the list: store %s with %d payments, want %s with 20", bills, b.StoreID, len(b.Payments), want)
			}
			bills++
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if bills != 12 || pages < 2 {
		t.Fatalf("%d bills in %d pages, want 12 in more than one", bills, pages)
	}
	seen, pages := map[string]bool{}, 0
	for cursor := ""; ; {
		page, err := st.PaymentsByDistributor("dist-a", nil, nil, api.MaxUnpaged, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if enc, _ := json.Marshal(page.Payments); len(enc) > bound || len(page.Payments) == 0 {
			t.Fatalf("page %d: %d payments in %d bytes", pages, len(page.Payments), len(enc))
		}
		for _, p := range page.Payments {
			if seen[string(p.DepositID)] {
				t.Fatalf("payment %s twice", p.DepositID)
			}
			seen[string(p.DepositID)] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 240 || pages < 2 {
		t.Fatalf("%d payments in %d pages, want 240 in more than one", len(seen), pages)
	}
}

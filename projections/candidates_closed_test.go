package projections_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/projections"
)

// TestOrphanCandidatesKeepTheOrdersTheySuggestedThatClosedUnpaid runs
// random histories of orders opening, being paid, cancelled (at once or
// after a reservation) and expiring, and of orphans recorded, resolved and
// reopened, and checks after every step that each unresolved orphan's
// candidates are, without repeats, best first: orders of its amount that
// are open, closed unpaid since the orphan was last opened, or closed
// unpaid before that but open when its transfer was made (within the
// clocks' skew); and that no open order, no order shown for it when it
// closed unpaid, and no order open at its transfer that closed unpaid
// before it was opened ranks better
// than the worst shown without being shown (all of them shown when fewer
// than MaxCandidates are).
func TestOrphanCandidatesKeepTheOrdersTheySuggestedThatClosedUnpaid(t *testing.T) {
	for run := range 2 {
		seed := time.Now().UnixNano() + int64(run)
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkClosedUnpaidCandidates(t, seed) })
	}
}

func checkClosedUnpaidCandidates(t *testing.T, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	d := newOrphanDesk(t)
	type order struct {
		name   string
		amount int64
		at     time.Time
		open   bool
		// closedAt is when it closed unpaid (zero: open, or paid)
		closedAt time.Time
	}
	type orphan struct {
		name     string
		amount   int64
		at       time.Time
		resolved bool
		closed   map[string]bool // closed unpaid while the orphan was open, or after its transfer before that
		sticky   map[string]bool // shown for it when they closed unpaid, or closed unpaid after its transfer before it opened
	}
	orders := map[string]*order{}
	orphans := map[string]*orphan{}
	name := func() string { return randomName(rng, "ab", 2) }
	type ranked struct {
		id    string
		later bool
		dist  int
		gap   time.Duration
	}
	rank := func(o *orphan, id string) ranked {
		ord := orders[id]
		gap := o.at.Sub(ord.at)
		if gap < 0 {
			gap = -gap
		}
		dist := min(levenshtein(o.name, ord.name), levenshtein(o.name, strings.TrimRight(ord.name, "0123456789"))+1)
		return ranked{id, ord.at.Sub(o.at) > domain.MaxClockSkew, dist, gap}
	}
	compare := func(a, b ranked) int {
		return cmp.Or(cmp.Compare(btoi(a.later), btoi(b.later)), cmp.Compare(a.dist, b.dist), cmp.Compare(a.gap, b.gap), strings.Compare(a.id, b.id))
	}
	openIDs := func() []string {
		var ids []string
		for id, o := range orders {
			if o.open {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	amounts := []int64{1_000, 2_000}
	shown := map[string][]string{}
	n := 0
	span := []int{600, 10_000}[rng.IntN(2)] // seconds: a short span submits fewer orders "later" than a transfer
	for step := range 400 {
		at := t0.Add(time.Duration(rng.IntN(span)) * time.Second)
		open := openIDs()
		closedUnpaid := func(id string) {
			orders[id].open, orders[id].closedAt = false, at
			for _, o := range orphans {
				if o.resolved || o.amount != orders[id].amount {
					continue
				}
				o.closed[id] = true
			}
			for dep, ids := range shown {
				if slices.Contains(ids, id) {
					orphans[dep].sticky[id] = true
				}
			}
		}
		// opened gives an orphan opened now the orders that were open when
		// its transfer was made and have closed unpaid since.
		opened := func(o *orphan) {
			for id, ord := range orders {
				if !ord.closedAt.IsZero() && ord.amount == o.amount && !ord.closedAt.Before(o.at.Add(-domain.MaxClockSkew)) && ord.at.Sub(o.at) <= domain.MaxClockSkew {
					o.closed[id], o.sticky[id] = true, true
				}
			}
		}
		what := ""
		switch k := rng.IntN(20); {
		case k < 8:
			n++
			id := fmt.Sprintf("o%03d", n)
			o := &order{name: name(), amount: amounts[rng.IntN(2)], at: at, open: true}
			d.submit(id, o.name, o.amount, at)
			orders[id] = o
			what = "submit " + id
		case k < 11 && len(open) > 0:
			id := open[rng.IntN(len(open))]
			d.pay(id, "dep-pay-"+id, orders[id].amount, at)
			orders[id].open = false
			what = "pay " + id
		case k < 13 && len(open) > 0:
			id := open[rng.IntN(len(open))]
			if rng.IntN(2) == 0 {
				d.apply(orderRef(id), at, domain.OrderCancelReserved{OrderID: domain.OrderID(id), CancelAt: at, ReservedAt: at})
			}
			d.apply(orderRef(id), at, domain.OrderCancelled{OrderID: domain.OrderID(id), CancelledAt: at})
			closedUnpaid(id)
			what = "cancel " + id
		case k < 14 && len(open) > 0:
			id := open[rng.IntN(len(open))]
			d.apply(orderRef(id), at, domain.OrderExpired{OrderID: domain.OrderID(id), ExpiresAt: at, ExpiredAt: at})
			closedUnpaid(id)
			what = "expire " + id
		case k < 18:
			n++
			id := fmt.Sprintf("dep%03d", n)
			o := &orphan{name: name(), amount: amounts[rng.IntN(2)], at: at, closed: map[string]bool{}, sticky: map[string]bool{}}
			d.orphan(id, o.name, o.amount, at)
			orphans[id] = o
			opened(o)
			what = "orphan " + id
		default:
			if len(orphans) == 0 {
				continue
			}
			id := slices.Sorted(mapKeys(orphans))[rng.IntN(len(orphans))]
			o := orphans[id]
			if o.resolved {
				d.reopen(id, o.amount, at)
				o.resolved = false
				opened(o)
				what = "reopen " + id
			} else {
				d.resolve(id, at)
				o.resolved = true
				o.closed, o.sticky = map[string]bool{}, map[string]bool{}
				what = "resolve " + id
			}
		}
		got := d.candidates()
		for dep, o := range orphans {
			ids, queued := got[dep]
			if queued == o.resolved {
				t.Fatalf("step %d (%s): orphan %s queued %v, resolved %v", step, what, dep, queued, o.resolved)
			}
			if o.resolved {
				continue
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("step %d (%s): orphan %s (%s, %d): candidates %v: %s", step, what, dep, o.name, o.amount, ids, fmt.Sprintf(format, args...))
			}
			if len(ids) > projections.MaxCandidates {
				fail("more than %d", projections.MaxCandidates)
			}
			var rs []ranked
			for i, id := range ids {
				ord, known := orders[id]
				switch {
				case !known || ord.amount != o.amount:
					fail("%s is not an order of the amount", id)
				case !ord.open && !o.closed[id]:
					fail("%s is neither open nor closed unpaid while the orphan was open", id)
				case slices.Contains(ids[:i], id):
					fail("%s shown twice", id)
				}
				rs = append(rs, rank(o, id))
			}
			if !slices.IsSortedFunc(rs, compare) {
				fail("not best first")
			}
			var must []string // open or sticky: shown if better than the worst shown
			for id, ord := range orders {
				if ord.amount == o.amount && (ord.open || o.sticky[id]) {
					must = append(must, id)
				}
			}
			for _, id := range must {
				if slices.Contains(ids, id) {
					continue
				}
				if len(ids) < projections.MaxCandidates || compare(rank(o, id), rs[len(rs)-1]) < 0 {
					fail("%s (open %v, sticky %v, %+v) not shown", id, orders[id].open, o.sticky[id], rank(o, id))
				}
			}
		}
		shown = got
	}
}

// TestOrphanCandidatesKeepAClosedOrderBehindBetterOpenOnes: an order shown
// for an orphan that closes unpaid stays suggested until the orphan is
// resolved, however many better orders open (and are paid) meanwhile.
func TestOrphanCandidatesKeepAClosedOrderBehindBetterOpenOnes(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	d.submit("x", "abcd", 5_000, at(1))
	d.orphan("dep-1", "abc", 5_000, at(2))
	d.apply(orderRef("x"), at(3), domain.OrderCancelled{OrderID: "x", CancelledAt: at(3)})
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x"}) {
		t.Fatalf("cancelled: candidates %v, want [x]", got)
	}
	var better []string
	for i := range 9 {
		id := fmt.Sprintf("b%d", i)
		d.submit(id, "abc", 5_000, at(2)) // the very name, at the transfer
		better = append(better, id)
	}
	for _, id := range better {
		d.pay(id, "dep-"+id, 5_000, at(4))
	}
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x"}) {
		t.Fatalf("after nine better orders opened and were paid: candidates %v, want [x] still", got)
	}
}

// TestOrphanCandidatesNameAnOrderSubmittedAgainOnce: an order submitted
// again after it closed unpaid (a log replayed with it twice) is one
// candidate, not two.
func TestOrphanCandidatesNameAnOrderSubmittedAgainOnce(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	d.submit("x", "abcd", 5_000, at(1))
	d.submit("y", "zzzz", 5_000, at(1))
	d.orphan("dep-1", "abc", 5_000, at(2))
	d.apply(orderRef("x"), at(3), domain.OrderExpired{OrderID: "x", ExpiresAt: at(3), ExpiredAt: at(3)})
	d.submit("x", "abcd", 5_000, at(1))
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("candidates %v, want [x y]", got)
	}
	d.pay("x", "dep-x", 5_000, at(4))
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x", "y"}) {
		t.Fatalf("paid once submitted again: candidates %v, want [x y] (it closed unpaid before)", got)
	}
}

// TestOrphanCandidatesNameAnOrderThatClosedBeforeTheScanBroughtTheMoney:
// the cancellation problem with a depositor name the bank cut short. The
// buyer transfers, the order is cancelled, and only then does the scan
// bring the transfer in: the orphan suggests the cancelled order, as it
// would had it been recorded before the cancellation. Orders that closed
// before the transfer was made, or more than a week before the transfer
// was recorded, are not suggested, and those a week old are let go.
func TestOrphanCandidatesNameAnOrderThatClosedBeforeTheScanBroughtTheMoney(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	recorded := func(id, name string, amount int64, deposited, recorded time.Time) {
		t.Helper()
		d.apply(depositRef(id), recorded, domain.DepositRecorded{
			DepositID: domain.DepositID(id), BankTxnID: "txn-" + id, AccountNumber: "123-456-7890", DepositorName: name, Amount: amount,
			DepositedAt: deposited, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: recorded,
		})
	}
	d.submit("before", "황보영미829", 30_000, at(0))
	d.apply(orderRef("before"), at(1), domain.OrderCancelled{OrderID: "before", CancelledAt: at(1)}) // before the transfer
	d.submit("x", "황보영미829", 30_000, at(10))
	d.submit("other-amount", "황보영미829", 31_000, at(10))
	d.apply(orderRef("x"), at(12), domain.OrderCancelReserved{OrderID: "x", CancelAt: at(15), ReservedAt: at(12)})
	d.apply(orderRef("x"), at(15), domain.OrderCancelled{OrderID: "x", CancelledAt: at(15), AfterReservation: true})
	d.apply(orderRef("other-amount"), at(15), domain.OrderExpired{OrderID: "other-amount", ExpiresAt: at(15), ExpiredAt: at(15)})
	d.submit("open", "김철수111", 30_000, at(20))
	recorded("dep-1", "황보영미82", 30_000, at(11), at(25)) // transferred at 11, scanned at 25
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x", "open"}) {
		t.Fatalf("candidates %v, want [x open]: the order cancelled after the transfer, then the open one", got)
	}
	d.resolve("dep-1", at(30))
	d.reopen("dep-1", 30_000, at(40)) // its refund by bank transfer came back
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"x", "open"}) {
		t.Fatalf("reopened: candidates %v, want [x open]", got)
	}

	week := 7 * 24 * time.Hour
	recorded("dep-late", "황보영미82", 30_000, at(11), at(15).Add(week+time.Minute))
	if got := d.candidates()["dep-late"]; !slices.Equal(got, []string{"open"}) {
		t.Fatalf("recorded more than a week after x closed: candidates %v, want [open]", got)
	}
	if n, err := projections.BucketLen(d.st, "candidate_closed_orders"); err != nil || n != 3 {
		t.Fatalf("orders closed unpaid kept: %d (%v), want 3", n, err)
	}
	d.submit("y", "abc", 1_000, at(15).Add(week))
	d.apply(orderRef("y"), at(15).Add(week+2*time.Minute), domain.OrderCancelled{OrderID: "y", CancelledAt: at(15).Add(week + 2*time.Minute)})
	for _, bucket := range []string{"candidate_closed_orders", "candidate_closed_by_time"} {
		if n, err := projections.BucketLen(d.st, bucket); err != nil || n != 1 {
			t.Fatalf("%s: %d keys (%v) once y closed a week after the others, want 1 (y's)", bucket, n, err)
		}
	}
}

// TestOrphanCandidatesLeaveOutAnOrderSubmittedAfterTheTransferThatClosed:
// an order submitted after the transfer was made (beyond the clocks' skew)
// was not open when it was made, so once it has closed unpaid before the
// orphan is recorded it is not suggested for it: the transfer cannot be its
// payment (domain.ErrDepositBeforeOrder).
func TestOrphanCandidatesLeaveOutAnOrderSubmittedAfterTheTransferThatClosed(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	d.submit("before", "abcd", 5_000, at(0))
	d.apply(orderRef("before"), at(12), domain.OrderCancelled{OrderID: "before", CancelledAt: at(12)})
	d.submit("after", "abc", 5_000, at(20)) // ten minutes after the transfer
	d.apply(orderRef("after"), at(25), domain.OrderCancelled{OrderID: "after", CancelledAt: at(25)})
	d.apply(depositRef("dep-1"), at(30), domain.DepositRecorded{
		DepositID: "dep-1", BankTxnID: "txn-dep-1", AccountNumber: "123-456-7890", DepositorName: "abc", Amount: 5_000,
		DepositedAt: at(10), Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: at(30),
	})
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"before"}) {
		t.Fatalf("candidates %v, want [before]: after was submitted after the transfer", got)
	}
	d.resolve("dep-1", at(35))
	d.reopen("dep-1", 5_000, at(40))
	if got := d.candidates()["dep-1"]; !slices.Equal(got, []string{"before"}) {
		t.Fatalf("reopened: candidates %v, want [before]", got)
	}
}

package projections_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/projections"
)

// orphanDesk writes order and deposit events as the engine would and reads
// the orphan queue.
type orphanDesk struct {
	t  testing.TB
	st *projections.Store
	l  *commitLog
}

func newOrphanDesk(t testing.TB) *orphanDesk {
	return &orphanDesk{t: t, st: openStore(t, tempPath(t, "rm.db")), l: newCommitLog()}
}

func (d *orphanDesk) apply(ref eventstore.Ref, at time.Time, evs ...domain.Event) {
	d.t.Helper()
	if err := d.st.Apply([]eventstore.Commit{d.l.commit(d.t, ref, at, evs...)}); err != nil {
		d.t.Fatal(err)
	}
}

func orderRef(id string) eventstore.Ref { return eventstore.Ref{Type: domain.AggregateOrder, ID: id} }
func depositRef(id string) eventstore.Ref {
	return eventstore.Ref{Type: domain.AggregateDeposit, ID: id}
}

func (d *orphanDesk) submit(id, name string, amount int64, at time.Time) {
	d.t.Helper()
	d.apply(orderRef(id), at, domain.OrderSubmitted{
		OrderID: domain.OrderID(id), BuyerID: "buyer-" + domain.UserID(id), BuyerName: name, Amount: domain.Money{Amount: amount, Currency: "KRW"},
		DepositorName: name, CollectAccount: domain.BankAccount{Bank: "KB", Number: "123-456-7890", Holder: "bankbook"}, CancelWindowS: 600, SubmittedAt: at,
	})
}

func (d *orphanDesk) orphan(id, name string, amount int64, at time.Time) {
	d.t.Helper()
	d.apply(depositRef(id), at, domain.DepositRecorded{
		DepositID: domain.DepositID(id), BankTxnID: "txn-" + id, AccountNumber: "123-456-7890", DepositorName: name, Amount: amount,
		DepositedAt: at, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: at,
	})
}

func (d *orphanDesk) pay(order, deposit string, amount int64, at time.Time) {
	d.t.Helper()
	d.apply(orderRef(order), at, domain.OrderPaid{OrderID: domain.OrderID(order), DepositID: domain.DepositID(deposit), Amount: amount, FromAccount: domain.AccountSuspense, PaidAt: at})
}

func (d *orphanDesk) resolve(deposit string, at time.Time) {
	d.t.Helper()
	d.apply(depositRef(deposit), at, domain.DepositResolved{DepositID: domain.DepositID(deposit), Action: domain.ResolveRefundToWallet, UserID: "u1", ResolvedAt: at})
}

func (d *orphanDesk) reopen(deposit string, amount int64, at time.Time) {
	d.t.Helper()
	d.apply(depositRef(deposit), at, domain.DepositReopened{DepositID: domain.DepositID(deposit), Amount: amount, PayoutID: "po-" + domain.PayoutID(deposit), Reason: "closed account", ReopenedAt: at})
}

// candidates returns every unresolved orphan's candidates, by deposit ID,
// through the pages of the orphan queue.
func (d *orphanDesk) candidates() map[string][]string {
	d.t.Helper()
	out := map[string][]string{}
	cursor := ""
	for {
		page, next, err := d.st.Orphans(7, cursor)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, o := range page {
			out[o.DepositID] = o.Candidates
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// TestOrphanCandidatesAreTheBestAmongAllOpenOrders: with more than 1,000
// open orders of the orphan's amount, the best by name and then by time are
// found wherever their IDs sort (the search used to stop at the first 1,000
// by ID).
func TestOrphanCandidatesAreTheBestAmongAllOpenOrders(t *testing.T) {
	d := newOrphanDesk(t)
	const amount = 15_000
	for i := range 1_200 {
		d.submit(fmt.Sprintf("o%04d", i), fmt.Sprintf("가나다라마바%03d", i%1000), amount, t0.Add(time.Duration(i)*time.Second))
	}
	d.submit("o9999", "김민수123", amount, t0.Add(time.Hour))               // the name, mistyped by one character
	d.submit("o9998", "김민수777", amount, t0.Add(time.Hour+5*time.Minute)) // the same name without its suffix, further in time
	d.submit("o0000b", "김민지001", amount, t0.Add(-time.Hour))             // further off: third
	d.submit("o9997", "김민수124", amount+1, t0.Add(time.Hour))             // another amount
	d.orphan("dep-1", "김민수12", amount, t0.Add(time.Hour+time.Minute))

	got := d.candidates()["dep-1"]
	if want := []string{"o9999", "o9998", "o0000b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
}

// TestOrphanCandidatesPutOrdersSubmittedAfterTheTransferLast: an order
// submitted more than the clocks' skew after the transfer cannot be what it
// paid (the deposit-before-order rule made it an orphan), however close its
// name: it ranks after every order submitted before.
func TestOrphanCandidatesPutOrdersSubmittedAfterTheTransferLast(t *testing.T) {
	d := newOrphanDesk(t)
	const amount = 15_000
	d.submit("o-after", "김민수123", amount, t0.Add(10*time.Minute)) // the very name, after the transfer
	d.submit("o-skew", "김민수125", amount, t0.Add(4*time.Minute))   // after it, within the clocks' skew
	d.submit("o-before", "김민지001", amount, t0.Add(-time.Hour))    // a worse name, before it
	d.orphan("dep-1", "김민수123", amount, t0)
	if got, want := d.candidates()["dep-1"], []string{"o-skew", "o-before", "o-after"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("candidates %v, want %v", got, want)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestOrphanCandidatesFollowOrdersAndResolutions: the ranking stays current:
// a candidate that is paid, cancelled or expires leaves it and the next best
// takes its place; a better order submitted later enters it; a
// cancel-reserved order stays; a resolved orphan leaves the queue and a
// reopened one comes back ranked against the orders open then.
func TestOrphanCandidatesFollowOrdersAndResolutions(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	// Twelve orders (more than an orphan keeps ranked), names ever further
	// from the orphan's.
	names := []string{"abcdef", "abcdeg", "abcdgg", "abcggg", "abgggg", "aggggg", "gggggg", "ggggggh", "ggggghh", "gggghhh", "ggghhhh", "gghhhhh"}
	for i, n := range names {
		d.submit(fmt.Sprintf("o%02d", i), n, 5_000, at(i))
	}
	// Made after every order below was submitted (an order submitted
	// after the transfer would rank last).
	d.orphan("dep-1", "abcdef", 5_000, at(60))
	check := func(step string, want ...string) {
		t.Helper()
		if got := d.candidates()["dep-1"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: candidates %v, want %v", step, got, want)
		}
	}
	check("recorded", "o00", "o01", "o02")

	d.pay("o00", "dep-x", 5_000, at(21))
	check("best paid", "o01", "o02", "o03")
	d.apply(orderRef("o01"), at(22), domain.OrderCancelReserved{OrderID: "o01", CancelAt: at(30), ReservedAt: at(22)})
	check("cancel reserved: still open", "o01", "o02", "o03")
	// Orders ranked for the orphan that close unpaid stay ranked: the
	// money is likely theirs (a reserved cancellation taking effect on a
	// transfer whose name the bank cut short).
	d.apply(orderRef("o01"), at(30), domain.OrderCancelled{OrderID: "o01", CancelledAt: at(30), AfterReservation: true})
	check("cancelled", "o01", "o02", "o03")
	d.apply(orderRef("o02"), at(31), domain.OrderExpired{OrderID: "o02", ExpiresAt: at(31), ExpiredAt: at(31)})
	check("expired", "o01", "o02", "o03")
	d.submit("o50", "abcdeh", 5_000, at(32))
	check("a closer name submitted", "o50", "o01", "o02")
	// Close every ranked open order but the last ones: the orphan searches
	// the open orders again when it runs short, and keeps the closed ones.
	for _, id := range []string{"o50", "o03", "o04", "o05", "o06", "o07", "o08", "o09"} {
		d.pay(id, "dep-"+id, 5_000, at(40))
	}
	check("after eight paid", "o01", "o02", "o11") // o07..o11 the same distance: closer in time first
	d.pay("o11", "dep-o11", 5_000, at(41))
	check("after the last ranked open one paid, searched again", "o01", "o02", "o10")
	// An orphan whose transfer was made after an order closed is not
	// offered that order.
	d.orphan("dep-2", "abcdeg", 5_000, at(45))
	if got := d.candidates()["dep-2"]; !reflect.DeepEqual(got, []string{"o10"}) {
		t.Fatalf("an orphan transferred after o01 and o02 closed: candidates %v, want the one open order, o10", got)
	}

	d.resolve("dep-1", at(50))
	if _, queued := d.candidates()["dep-1"]; queued {
		t.Fatal("a resolved orphan is still queued")
	}
	d.submit("o60", "abcdef", 5_000, at(51))
	d.reopen("dep-1", 5_000, at(52))
	check("reopened: searched among the open orders", "o60", "o10")
}

// TestOrphanCandidatesMatchASearchOfAllOpenOrders compares the kept
// rankings with a plain search of every open order after each step of a
// random history of orders opening and closing and orphans recorded,
// resolved and reopened.
func TestOrphanCandidatesMatchASearchOfAllOpenOrders(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 7))
	d := newOrphanDesk(t)
	type order struct {
		name   string
		amount int64
		at     time.Time
	}
	type orphan struct {
		name     string
		amount   int64
		at       time.Time
		resolved bool
	}
	open := map[string]order{}
	orphans := map[string]*orphan{}
	name := func() string { return randomName(rng, "abc", 3) }
	amounts := []int64{1_000, 2_000}
	n := 0
	for step := range 400 {
		at := t0.Add(time.Duration(rng.IntN(10_000)) * time.Second)
		switch k := rng.IntN(10); {
		case k < 5:
			n++
			id := fmt.Sprintf("o%03d", n)
			o := order{name: name(), amount: amounts[rng.IntN(2)], at: at}
			d.submit(id, o.name, o.amount, at)
			open[id] = o
		case k < 7 && len(open) > 0:
			id := slices.Sorted(mapKeys(open))[rng.IntN(len(open))]
			d.pay(id, "dep-pay-"+id, open[id].amount, at)
			delete(open, id)
		case k < 9:
			n++
			id := fmt.Sprintf("dep%03d", n)
			o := &orphan{name: name(), amount: amounts[rng.IntN(2)], at: at}
			d.orphan(id, o.name, o.amount, at)
			orphans[id] = o
		default:
			if len(orphans) == 0 {
				continue
			}
			id := slices.Sorted(mapKeys(orphans))[rng.IntN(len(orphans))]
			if o := orphans[id]; o.resolved {
				d.reopen(id, o.amount, at)
				o.resolved = false
			} else {
				d.resolve(id, at)
				o.resolved = true
			}
		}
		want := map[string][]string{}
		for id, o := range orphans {
			if o.resolved {
				continue
			}
			type ranked struct {
				id    string
				later bool // submitted more than the clocks' skew after the transfer
				dist  int
				gap   time.Duration
			}
			var all []ranked
			for oid, ord := range open {
				if ord.amount != o.amount {
					continue
				}
				gap := o.at.Sub(ord.at)
				if gap < 0 {
					gap = -gap
				}
				dist := min(levenshtein(o.name, ord.name), levenshtein(o.name, strings.TrimRight(ord.name, "0123456789"))+1)
				later := ord.at.Sub(o.at) > domain.MaxClockSkew
				all = append(all, ranked{oid, later, dist, gap})
			}
			slices.SortFunc(all, func(a, b ranked) int {
				return cmp.Or(cmp.Compare(btoi(a.later), btoi(b.later)), cmp.Compare(a.dist, b.dist), cmp.Compare(a.gap, b.gap), strings.Compare(a.id, b.id))
			})
			ids := []string{}
			for _, r := range all[:min(len(all), projections.MaxCandidates)] {
				ids = append(ids, r.id)
			}
			want[id] = ids
		}
		if got := d.candidates(); !reflect.DeepEqual(got, want) {
			t.Fatalf("step %d (seed %d): candidates\n got %v\nwant %v", step, seed, got, want)
		}
	}
}

// randomName is a depositor name of 2 to 1+lengths letters drawn from
// letters, half the time with a 3-digit suffix from 000 to 002.
func randomName(rng *rand.Rand, letters string, lengths int) string {
	var b strings.Builder
	for range 2 + rng.IntN(lengths) {
		b.WriteByte(letters[rng.IntN(len(letters))])
	}
	if rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "%03d", rng.IntN(3))
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// levenshtein is the edit distance of two ASCII strings, written out
// independently of the projection's.
func levenshtein(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range len(b) + 1 {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			sub := d[i-1][j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, sub)
		}
	}
	return d[len(a)][len(b)]
}

// BenchmarkOrphanPage reads a page of 500 orphans while 1,500 open orders
// have their amount (3.8 s when candidates were searched per query).
func BenchmarkOrphanPage(b *testing.B) {
	d := newOrphanDesk(b)
	seedOrphanQueue(d, 1_500, 500)
	b.ResetTimer()
	for range b.N {
		page, _, err := d.st.Orphans(500, "")
		if err != nil || len(page) != 500 {
			b.Fatal(len(page), err)
		}
	}
}

// BenchmarkOrphanRecorded is the cost of recording one more orphan of that
// amount: the one search over the open orders.
func BenchmarkOrphanRecorded(b *testing.B) {
	d := newOrphanDesk(b)
	seedOrphanQueue(d, 1_500, 500)
	b.ResetTimer()
	for i := range b.N {
		d.orphan(fmt.Sprintf("bench-%d", i), "누군가", 10_000, t0)
	}
}

// seedOrphanQueue submits orders open orders and records orphans orphans,
// all of 10,000.
func seedOrphanQueue(d *orphanDesk, orders, orphans int) {
	var batch []eventstore.Commit
	flush := func() {
		if err := d.st.Apply(batch); err != nil {
			d.t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range orders {
		at := t0.Add(time.Duration(i) * time.Second)
		id := fmt.Sprintf("o%05d", i)
		batch = append(batch, d.l.commit(d.t, orderRef(id), at, domain.OrderSubmitted{
			OrderID: domain.OrderID(id), BuyerID: "b", BuyerName: "김민수", Amount: domain.Money{Amount: 10_000, Currency: "KRW"},
			DepositorName: fmt.Sprintf("김민수%03d", i%1000), CollectAccount: domain.BankAccount{Bank: "KB", Number: "1", Holder: "h"}, SubmittedAt: at,
		}))
		if len(batch) == 500 {
			flush()
		}
	}
	for i := range orphans {
		at := t0.Add(time.Duration(i) * time.Second)
		id := fmt.Sprintf("dep%05d", i)
		batch = append(batch, d.l.commit(d.t, depositRef(id), at, domain.DepositRecorded{
			DepositID: domain.DepositID(id), BankTxnID: id, AccountNumber: "1", DepositorName: fmt.Sprintf("김민%d", i), Amount: 10_000,
			DepositedAt: at, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: at,
		}))
		if len(batch) == 500 {
			flush()
		}
	}
	flush()
}

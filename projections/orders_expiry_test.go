package projections_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// TestApplyShowsExpiredOrders: an order submitted with a payment deadline
// shows expires_at; order.expired makes it expired; an order from before
// expiry shows no expires_at.
func TestApplyShowsExpiredOrders(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	ev := submitted("E", 1)
	ev.PaymentDeadlineS = 86400
	subE := f.append(t, "E", f.envelope(t, ev, ev.SubmittedAt))
	subOld := f.submit(t, "OLD", 2)
	expiredAt := ev.SubmittedAt.Add(24*time.Hour + time.Minute)
	exp := domain.OrderExpired{OrderID: "E", ExpiresAt: ev.SubmittedAt.Add(24 * time.Hour), ExpiredAt: expiredAt}
	expE := f.append(t, "E", f.envelope(t, exp, expiredAt))
	if err := st.Apply([]eventstore.Commit{subE, subOld, expE}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	got := order(t, st, "E")
	if got.Status != "expired" || got.ExpiresAt != "2026-03-02T09:00:01.123456Z" || got.UpdatedAt != domain.FormatTime(expiredAt) ||
		got.Version != 2 || got.Seq != api.Seq(expE.Seq) || got.PaidAmount != 0 {
		t.Fatalf("expired order: %+v", got)
	}
	if old := order(t, st, "OLD"); old.ExpiresAt != "" || old.Status != "awaiting_deposit" {
		t.Fatalf("order from before expiry: %+v", old)
	}
}

// TestOrderViewSaysWhenTheOrderClosed: an order's view carries closed_at,
// as domain.Order.ClosedAt: absent while it is open (a reserved
// cancellation included), the time it was paid, cancelled or expired.
func TestOrderViewSaysWhenTheOrderClosed(t *testing.T) {
	d := newOrphanDesk(t)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, id := range []string{"paid", "cancelled", "expired"} {
		d.submit(id, "abc"+id, 5_000, at(0))
	}
	d.apply(orderRef("cancelled"), at(1), domain.OrderCancelReserved{OrderID: "cancelled", CancelAt: at(3), ReservedAt: at(1)})
	if v := order(t, d.st, "cancelled"); v.ClosedAt != "" {
		t.Fatalf("cancel reserved: closed_at %q, want none: it is open", v.ClosedAt)
	}
	d.pay("paid", "dep-1", 5_000, at(2))
	d.apply(orderRef("cancelled"), at(3), domain.OrderCancelled{OrderID: "cancelled", CancelledAt: at(3), AfterReservation: true})
	d.apply(orderRef("expired"), at(4), domain.OrderExpired{OrderID: "expired", ExpiresAt: at(4), ExpiredAt: at(4)})
	for id, m := range map[string]int{"paid": 2, "cancelled": 3, "expired": 4} {
		if got, want := order(t, d.st, id).ClosedAt, domain.FormatTime(at(m)); got != want {
			t.Errorf("%s: closed_at %q, want %q", id, got, want)
		}
	}
}

// TestOverdueOpenOrdersAreThoseWhoseTimerWasDue: the open orders whose timer
// fell due before a time: an order awaiting its deposit by its payment
// deadline, a cancel-reserved one by its cancel time; not an order due
// later, a closed one, nor one from before payment deadlines.
func TestOverdueOpenOrdersAreThoseWhoseTimerWasDue(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	withDeadline := func(id string, i int, deadline time.Duration) eventstore.Commit {
		ev := submitted(id, i)
		ev.PaymentDeadlineS = int64(deadline / time.Second)
		return f.append(t, id, f.envelope(t, ev, ev.SubmittedAt))
	}
	// Submitted at t0+1s…: due at t0+1h+1s (AWAIT-DUE), t0+3h+2s (AWAIT-LATER).
	commits := []eventstore.Commit{
		withDeadline("AWAIT-DUE", 1, time.Hour),
		withDeadline("AWAIT-LATER", 2, 3*time.Hour),
		withDeadline("RESERVED-DUE", 3, 3*time.Hour),
		withDeadline("RESERVED-LATER", 4, time.Hour),
		withDeadline("CLOSED-DUE", 5, time.Hour),
		f.submit(t, "NO-DEADLINE", 6),
	}
	reserve := func(id string, cancelAt time.Time) eventstore.Commit {
		ev := domain.OrderCancelReserved{OrderID: domain.OrderID(id), CancelAt: cancelAt, ReservedAt: t0.Add(time.Minute)}
		return f.append(t, id, f.envelope(t, ev, ev.ReservedAt))
	}
	commits = append(commits,
		reserve("RESERVED-DUE", t0.Add(10*time.Minute)), // its expiry (3h) is later, its cancel time is what counts
		reserve("RESERVED-LATER", t0.Add(5*time.Hour)),  // its expiry (1h) would be due: its cancel time is not
		f.cancel(t, "CLOSED-DUE", "closed before its deadline", t0.Add(time.Minute)),
	)
	if err := st.Apply(commits); err != nil {
		t.Fatal(err)
	}
	got, err := st.OverdueOpenOrders(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []domain.OrderID{"AWAIT-DUE", "RESERVED-DUE"}; !slices.Equal(got, want) {
		t.Fatalf("overdue before t0+2h: %v, want %v", got, want)
	}
	if got, err := st.OverdueOpenOrders(t0); err != nil || len(got) != 0 {
		t.Fatalf("overdue before t0: %v %v, want none", got, err)
	}
}

// BenchmarkOverdueOpenOrders is the engine's timer-check part reading the
// open orders (BANKBOOK_BENCH_OPEN_ORDERS, default 100,000, each with a
// payment deadline, none overdue) to find those whose timer is overdue:
// once every --timer-check (1 minute).
//
//	go test -run '^$' -bench OverdueOpenOrders ./projections/
func BenchmarkOverdueOpenOrders(b *testing.B) {
	n := 100_000
	if s := os.Getenv("BANKBOOK_BENCH_OPEN_ORDERS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	d := newOrphanDesk(b)
	var batch []eventstore.Commit
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		id := fmt.Sprintf("o%07d", i)
		batch = append(batch, d.l.commit(b, orderRef(id), at, domain.OrderSubmitted{
			OrderID: domain.OrderID(id), BuyerID: domain.UserID("b" + id), BuyerName: "김민수", Amount: domain.Money{Amount: int64(10_000 + i%5000), Currency: "KRW"},
			DepositorName: fmt.Sprintf("김민수%03d", i%1000), CollectAccount: domain.BankAccount{Bank: "KB", Number: "1", Holder: "h"},
			CancelWindowS: 600, PaymentDeadlineS: 86400, SubmittedAt: at,
		}))
		if len(batch) == 1000 || i == n-1 {
			if err := d.st.Apply(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	for b.Loop() {
		ids, err := d.st.OverdueOpenOrders(t0)
		if err != nil || len(ids) != 0 {
			b.Fatal(len(ids), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/order")
}

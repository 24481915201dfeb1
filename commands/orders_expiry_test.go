package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/reservations"
	"github.com/rs/zerolog"
)

// armedOf returns the timers of one kind armed so far.
func armedOf(tm *commandstest.Timers, kind string) []commandstest.Armed {
	var out []commandstest.Armed
	for _, a := range tm.Armed() {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// newUnitWith is newUnit with a name grace of an hour and cfg changed by
// mutate.
func newUnitWith(t *testing.T, es commands.EventStore, mutate func(*commands.Config)) *unit {
	t.Helper()
	return newUnitOn(t, es, &commandstest.Accounts{From: 5001000000}, func(c *commands.Config) {
		c.NameGrace = time.Hour
		mutate(c)
	})
}

func (u *unit) submitAs(t *testing.T, id, buyer, name string, amount int64) (api.SubmitOrderReply, error) {
	t.Helper()
	return u.Orders.SubmitOrder(context.Background(), commands.Meta{}, api.SubmitOrderRequest{OrderID: id, BuyerID: buyer, BuyerName: name, Amount: amount})
}

func (u *unit) deposit(t *testing.T, txn, name string, amount int64) api.RecordDepositReply {
	t.Helper()
	rep, err := u.Deposits.RecordDeposit(context.Background(), commands.Meta{}, api.RecordDepositRequest{BankTxnID: txn, AccountNumber: collect.Number, DepositorName: name, Amount: amount, DepositedAt: u.clock.Now()})
	if err != nil {
		t.Fatalf("deposit %s under %q: %v", txn, name, err)
	}
	return rep
}

func (u *unit) scanned(t *testing.T, upTo time.Time) {
	t.Helper()
	if _, err := u.Deposits.ScanComplete(context.Background(), commands.Meta{}, api.ScanCompleteRequest{AccountNumber: collect.Number, CompleteUpTo: upTo}); err != nil {
		t.Fatal(err)
	}
}

func (u *unit) order(t *testing.T, id string) domain.Order {
	t.Helper()
	return fold[domain.Order](t, u, domain.AggregateOrder, id)
}

// orderIDTrying returns an order ID starting with prefix whose first
// depositor name for buyer name is name.
func orderIDTrying(t *testing.T, prefix, name, buyerName string, maxRunes int) string {
	t.Helper()
	for i := range 100000 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if domain.DepositorName(buyerName, domain.SuffixOrder(id, 1)[0], maxRunes) == name {
			return id
		}
	}
	t.Fatalf("no order ID tries %q first", name)
	return ""
}

// TestOrderExpiresAtItsDeadlineOnceTheScanCoversIt: given an unpaid order,
// its expiry is armed at submit for submitted_at + the payment deadline;
// when the timer fires early or before the bank scan covers the deadline it
// waits; then the order expires, once; a late deposit within the name grace
// is refunded to the buyer's wallet, and after the grace the name is free.
func TestOrderExpiresAtItsDeadlineOnceTheScanCoversIt(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {})
		ctx := context.Background()
		cfg := u.Orders.Config()
		if cfg.PaymentDeadline != 24*time.Hour {
			t.Fatalf("default payment deadline %v, want 24h", cfg.PaymentDeadline)
		}
		sub, err := u.submitAs(t, "o-1", "u-1", "김민수", 5000)
		if err != nil {
			t.Fatal(err)
		}
		due := u.clock.Now().Add(cfg.PaymentDeadline)
		if sub.ExpiresAt != domain.FormatTime(due) {
			t.Fatalf("reply expires_at %q, want %s", sub.ExpiresAt, domain.FormatTime(due))
		}
		if got := armedOf(u.timers, commands.TimerExpireOrder); len(got) != 1 || got[0] != (commandstest.Armed{Kind: commands.TimerExpireOrder, ID: "o-1", At: due}) {
			t.Fatalf("expiry timers %+v, want one at %v", got, due)
		}

		// Early (a timer armed again for an overdue order fires at once).
		u.clock.Set(due.Add(-time.Minute))
		if wait, err := u.Orders.ExpireOrder(ctx, "o-1"); err != nil || wait != time.Minute {
			t.Fatalf("expire a minute early: wait %v, %v; want 1m", wait, err)
		}
		// Due, but the scan lags behind the deadline.
		u.clock.Set(due.Add(time.Minute))
		u.scanned(t, due.Add(-time.Second))
		if wait, err := u.Orders.ExpireOrder(ctx, "o-1"); err != nil || wait != cfg.FinaliseRetry {
			t.Fatalf("expire before the scan: wait %v, %v; want %v", wait, err, cfg.FinaliseRetry)
		}
		if n := len(u.commits(t, domain.AggregateOrder, "o-1")); n != 1 {
			t.Fatalf("%d order commits before the expiry, want 1", n)
		}
		u.scanned(t, due)
		for range 2 { // timers fire at least once
			if wait, err := u.Orders.ExpireOrder(ctx, "o-1"); err != nil || wait != 0 {
				t.Fatalf("expire: wait %v, %v", wait, err)
			}
		}
		commits := u.commits(t, domain.AggregateOrder, "o-1")
		if len(commits) != 2 || commits[1].Events[0].EventType != "order.expired" || commits[1].Events[0].Actor != "timer" || commits[1].Events[0].Command != "timer.order_expire" {
			t.Fatalf("order commits %+v, want submit and one expiry by the timer", commits)
		}
		if o := u.order(t, "o-1"); o.Status != domain.StatusExpired {
			t.Fatalf("status %s, want expired", o.Status)
		}
		// A cancel now is refused.
		no := false
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no}); !errors.Is(err, domain.ErrWrongState) {
			t.Fatalf("cancel of an expired order: %v", err)
		}

		// A late transfer within the name grace goes to the wallet.
		u.clock.Set(due.Add(30 * time.Minute))
		if rep := u.deposit(t, "late-1", sub.DepositorName, 5000); rep.Outcome != domain.OutcomeRefundedToWallet || rep.OrderID != "o-1" || rep.UserID != "u-1" {
			t.Fatalf("late deposit: %+v", rep)
		}
		assertBalance(t, u, "u-1", 5000)
		// During the grace no other order gets the name.
		id := orderIDTrying(t, "during", sub.DepositorName, "김민수", cfg.DepositorNameMax)
		if rep, err := u.submitAs(t, id, "u-2", "김민수", 700); err != nil || rep.DepositorName == sub.DepositorName {
			t.Fatalf("submit during the grace: %+v %v", rep, err)
		}
		// After it, once the bank scan has covered it, the name is free.
		u.clock.Set(due.Add(time.Minute + cfg.NameGrace + time.Second))
		u.scanned(t, u.clock.Now())
		id = orderIDTrying(t, "after", sub.DepositorName, "김민수", cfg.DepositorNameMax)
		if rep, err := u.submitAs(t, id, "u-3", "김민수", 800); err != nil || rep.DepositorName != sub.DepositorName {
			t.Fatalf("submit after the grace: %+v %v, want the expired order's name %q", rep, err, sub.DepositorName)
		}
	})
}

// TestExpiryOfAnOrderNoLongerAwaitingItsDepositDoesNothing: the timer of a
// paid order, of a cancelled one and of one that never appeared writes
// nothing and does not wait.
func TestExpiryOfAnOrderNoLongerAwaitingItsDepositDoesNothing(t *testing.T) {
	u := newUnitWith(t, storeOpeners[0].open(t), func(c *commands.Config) { c.PaymentDeadline = time.Hour })
	ctx := context.Background()
	paid, _ := u.submitAs(t, "o-paid", "u", "박서준", 100)
	u.deposit(t, "t-1", paid.DepositorName, 100)
	if _, err := u.submitAs(t, "o-cancelled", "u", "박서준", 200); err != nil {
		t.Fatal(err)
	}
	no := false
	if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-cancelled", Deposited: &no}); err != nil {
		t.Fatal(err)
	}
	u.clock.Set(u.clock.Now().Add(2 * time.Hour))
	u.scanned(t, u.clock.Now())
	for _, id := range []string{"o-paid", "o-cancelled", "o-never"} {
		before := len(u.commits(t, domain.AggregateOrder, id))
		if wait, err := u.Orders.ExpireOrder(ctx, id); err != nil || wait != 0 {
			t.Fatalf("expire %s: wait %v, %v", id, wait, err)
		}
		if n := len(u.commits(t, domain.AggregateOrder, id)); n != before {
			t.Fatalf("expire %s wrote %d commits", id, n-before)
		}
	}
}

// TestClosedOrderReleasesItsNameAfterTheGrace: the timer of a closed order
// (paid, cancelled, or expired by that firing) arms itself again for the end
// of the name grace, and then, once the bank scan covers that time,
// releases the order's depositor name; again, it changes nothing. A name
// another order took over after the grace stays that order's. A
// cancel-reserved order's timer looks again a grace after its cancel time,
// and goes on from there once the cancellation is final.
func TestClosedOrderReleasesItsNameAfterTheGrace(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {
			c.PaymentDeadline = time.Hour
			c.NameGrace = 2 * time.Hour
			c.CancelWindow = 90 * time.Minute // outlasts the deadline
		})
		ctx := context.Background()
		start := u.clock.Now()
		paid, _ := u.submitAs(t, "o-paid", "u-1", "박서준", 100)
		u.deposit(t, "t-1", paid.DepositorName, 100)
		cancelled, _ := u.submitAs(t, "o-cancelled", "u-2", "김민수", 200)
		no := false
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-cancelled", Deposited: &no}); err != nil {
			t.Fatal(err)
		}
		expired, _ := u.submitAs(t, "o-expired", "u-3", "이서연", 300)
		reserved, _ := u.submitAs(t, "o-reserved", "u-5", "최지우", 500)
		yes := true
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-reserved", Deposited: &yes}); err != nil {
			t.Fatal(err)
		}
		held := func(name string, want domain.OrderID) {
			t.Helper()
			h, _, err := u.names.Holder(ctx, name)
			switch {
			case want == "" && !errors.Is(err, reservations.ErrFree):
				t.Fatalf("%s: held by %+v (%v), want free", name, h, err)
			case want != "" && (err != nil || h.OrderID != want):
				t.Fatalf("%s: held by %+v (%v), want %s", name, h, err, want)
			}
		}
		armedAt := func(id string) time.Time {
			t.Helper()
			var at time.Time
			for _, a := range armedOf(u.timers, commands.TimerExpireOrder) {
				if a.ID == id {
					at = a.At // the last arm replaces the earlier ones
				}
			}
			return at
		}
		fire := func(id string, want time.Duration) {
			t.Helper()
			if wait, err := u.Orders.ExpireOrder(ctx, id); err != nil || wait != want {
				t.Fatalf("timer of %s: wait %v, %v; want %v", id, wait, err, want)
			}
		}

		// At the payment deadline: the expiry, and the timers of the closed
		// orders arm themselves for the end of their grace.
		u.clock.Set(start.Add(time.Hour))
		u.scanned(t, u.clock.Now())
		for _, id := range []string{"o-paid", "o-cancelled", "o-expired", "o-reserved"} {
			fire(id, 0)
		}
		if st := u.order(t, "o-expired").Status; st != domain.StatusExpired {
			t.Fatalf("o-expired: %s", st)
		}
		for id, want := range map[string]time.Time{"o-paid": start.Add(2 * time.Hour), "o-cancelled": start.Add(2 * time.Hour), "o-expired": start.Add(3 * time.Hour),
			"o-reserved": start.Add(90*time.Minute + 2*time.Hour)} { // a grace after its cancel time
			if got := armedAt(id); !got.Equal(want) {
				t.Fatalf("timer of %s armed for %v, want the end of its grace %v", id, got, want)
			}
		}
		held(paid.DepositorName, "o-paid")
		held(cancelled.DepositorName, "o-cancelled")
		held(expired.DepositorName, "o-expired")

		// The grace of two has ended, but the scan lags behind it.
		// Its timer is armed again, for as long as the scan has lagged
		// (more than FinaliseRetry here), not held.
		u.clock.Set(start.Add(2*time.Hour + time.Minute))
		u.scanned(t, start.Add(2*time.Hour-time.Second))
		fire("o-paid", 0)
		if got, want := armedAt("o-paid"), u.clock.Now().Add(time.Minute); !got.Equal(want) {
			t.Fatalf("while the scan lags the timer is armed for %v, want %v", got, want)
		}
		held(paid.DepositorName, "o-paid")
		// Nor can another order take the cancelled order's name over yet:
		// a transfer made within its grace may still be scanned.
		early := orderIDTrying(t, "early", cancelled.DepositorName, "김민수", u.Orders.Config().DepositorNameMax)
		if rep, err := u.submitAs(t, early, "u-6", "김민수", 400); err != nil || rep.DepositorName == cancelled.DepositorName {
			t.Fatalf("submit after the grace, before the scan covered it: %+v %v", rep, err)
		}
		// Once the scan has covered the grace, another order takes the
		// name over (stale), before the cancelled order's timer releases it.
		u.scanned(t, u.clock.Now())
		id := orderIDTrying(t, "next", cancelled.DepositorName, "김민수", u.Orders.Config().DepositorNameMax)
		if rep, err := u.submitAs(t, id, "u-4", "김민수", 400); err != nil || rep.DepositorName != cancelled.DepositorName {
			t.Fatalf("submit after the grace: %+v %v", rep, err)
		}
		for range 2 { // timers fire at least once
			fire("o-paid", 0)
			fire("o-cancelled", 0)
		}
		held(paid.DepositorName, "")
		held(cancelled.DepositorName, domain.OrderID(id))
		held(expired.DepositorName, "o-expired")
		// Scanned up to the grace's last instant, not past it: a transfer
		// dated at that instant, within the grace, may not be recorded.
		u.clock.Set(start.Add(3*time.Hour + time.Second))
		u.scanned(t, start.Add(3*time.Hour))
		fire("o-expired", 0)
		held(expired.DepositorName, "o-expired")
		u.scanned(t, u.clock.Now())
		fire("o-expired", 0)
		held(expired.DepositorName, "")
		// The reserved cancellation became final (late: the scan lagged);
		// its name goes a grace after that.
		closed := start.Add(3 * time.Hour)
		u.clock.Set(closed)
		if wait, err := u.Orders.FinaliseCancel(ctx, "o-reserved"); err != nil || wait != 0 {
			t.Fatalf("finalise: %v %v", wait, err)
		}
		u.clock.Set(start.Add(3*time.Hour + 30*time.Minute))
		fire("o-reserved", 0)
		if got := armedAt("o-reserved"); !got.Equal(closed.Add(2 * time.Hour)) {
			t.Fatalf("timer of the cancelled reservation armed for %v, want %v", got, closed.Add(2*time.Hour))
		}
		held(reserved.DepositorName, "o-reserved")
		u.clock.Set(closed.Add(2*time.Hour + time.Second))
		u.scanned(t, u.clock.Now())
		fire("o-reserved", 0)
		held(reserved.DepositorName, "")
		// The released orders no longer count against their buyers; the
		// order that took a name over does.
		for _, b := range []domain.UserID{"u-1", "u-2", "u-3", "u-5"} {
			if got := u.names.Unpaid(b); len(got) != 0 {
				t.Fatalf("unpaid orders of %s after the release: %+v", b, got)
			}
		}
		if got := u.names.Unpaid("u-4"); len(got) != 1 || got[0].OrderID != domain.OrderID(id) {
			t.Fatalf("unpaid orders of u-4: %+v", got)
		}
		// A deposit under a released name is an orphan; the orders are
		// unchanged.
		if rep := u.deposit(t, "t-late", paid.DepositorName, 100); rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonNoSuchName {
			t.Fatalf("deposit under a released name: %+v", rep)
		}
		if n := len(u.commits(t, domain.AggregateOrder, "o-paid")); n != 2 {
			t.Fatalf("o-paid has %d commits, want 2", n)
		}
	})
}

// TestExpiryArmedWithTheNameIsArmedAgainIfThatFailed: the expiry is armed
// while the name is reserved; should that write fail, the order is still
// stored with its expiry armed (armed again before the append), and a
// submit whose second arm fails too stores nothing.
func TestExpiryArmedWithTheNameIsArmedAgainIfThatFailed(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {})
		var calls atomic.Int32
		u.timers.Fail = func(kind, id string) error {
			if id == "o-1" && calls.Add(1) == 1 {
				return errors.New("timers stream unavailable")
			}
			if id == "o-2" {
				return errors.New("timers stream unavailable")
			}
			return nil
		}
		sub, err := u.submitAs(t, "o-1", "u-1", "김민수", 5000)
		if err != nil {
			t.Fatal(err)
		}
		got := armedOf(u.timers, commands.TimerExpireOrder)
		if len(got) != 1 || domain.FormatTime(got[0].At) != sub.ExpiresAt || got[0].ID != "o-1" || calls.Load() != 2 {
			t.Fatalf("expiry timers %+v after %d arms, want one at %s", got, calls.Load(), sub.ExpiresAt)
		}
		if _, err := u.submitAs(t, "o-2", "u-1", "이영희", 5000); err == nil {
			t.Fatal("a submit whose expiry could not be armed succeeded")
		}
		if n := len(u.commits(t, domain.AggregateOrder, "o-2")); n != 0 {
			t.Fatalf("the order without an expiry was stored (%d commits)", n)
		}
	})
}

// TestBuyerUnpaidOrderLimit: a buyer holds at most MaxUnpaidOrders unpaid
// orders; one more is refused before anything is reserved or written; a
// paid order frees its slot at once, a cancelled unpaid one after the name
// grace; other buyers are not affected.
func TestBuyerUnpaidOrderLimit(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) { c.MaxUnpaidOrders = 3 })
		ctx := context.Background()
		var subs []api.SubmitOrderReply
		for i := range 3 {
			rep, err := u.submitAs(t, fmt.Sprintf("o-%d", i), "greedy", "김민수", int64(100+i))
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, rep)
		}
		reserves, timers := u.names.Reserves(), len(u.timers.Armed())
		_, err := u.submitAs(t, "o-3", "greedy", "김민수", 103)
		de := requireErr(t, err, domain.ErrTooManyUnpaidOrders)
		if de.Kind != domain.KindRule || de.Details["limit"] != 3 || fmt.Sprint(de.Details["order_ids"]) != "[o-0 o-1 o-2]" || de.Details["buyer_id"] != "greedy" {
			t.Fatalf("refusal: %+v", de)
		}
		if u.names.Reserves() != reserves || len(u.timers.Armed()) != timers || len(u.commits(t, domain.AggregateOrder, "o-3")) != 0 {
			t.Fatal("the refused submit reserved a name, armed a timer or wrote")
		}
		// The same for an ID generated for the request.
		fresh := "o-generated"
		_, err = u.Orders.SubmitOrder(ctx, commands.Meta{FreshID: true}, api.SubmitOrderRequest{OrderID: fresh, BuyerID: "greedy", BuyerName: "김민수", Amount: 103})
		requireErr(t, err, domain.ErrTooManyUnpaidOrders)
		if u.names.Reserves() != reserves || len(u.timers.Armed()) != timers || len(u.commits(t, domain.AggregateOrder, fresh)) != 0 {
			t.Fatal("the refused submit of a generated ID reserved a name, armed a timer or wrote")
		}
		// Another buyer is not limited by it.
		if _, err := u.submitAs(t, "other-0", "modest", "김민수", 100); err != nil {
			t.Fatalf("another buyer: %v", err)
		}
		// A paid order no longer counts.
		u.deposit(t, "t-0", subs[0].DepositorName, 100)
		if _, err := u.submitAs(t, "o-3", "greedy", "김민수", 103); err != nil {
			t.Fatalf("submit after paying one: %v", err)
		}
		// A cancelled unpaid order counts through the name grace (cancelling
		// does not hand its name to anyone else meanwhile)...
		no := false
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no}); err != nil {
			t.Fatal(err)
		}
		if _, err := u.submitAs(t, "o-4", "greedy", "김민수", 104); !errors.Is(err, domain.ErrTooManyUnpaidOrders) {
			t.Fatalf("submit after cancelling one, within the grace: %v", err)
		}
		// ...and not after it.
		u.clock.Set(u.clock.Now().Add(u.Orders.Config().NameGrace + time.Second))
		if _, err := u.submitAs(t, "o-4", "greedy", "김민수", 104); err != nil {
			t.Fatalf("submit after the grace of the cancelled one: %v", err)
		}
	})
}

// requireErr checks err matches want and returns it as a *domain.Error.
func requireErr(t *testing.T, err error, want *domain.Error) *domain.Error {
	t.Helper()
	var de *domain.Error
	if !errors.Is(err, want) || !errors.As(err, &de) {
		t.Fatalf("error %v, want %s", err, want.Code)
	}
	return de
}

// TestRefusedSubmitsAreCheap: with every depositor name of a buyer name
// held, a submit is refused after Config.NameProbes tries, not 1000; a
// submit of an order ID in use, or of a buyer at the limit, tries none.
func TestRefusedSubmitsAreCheap(t *testing.T) {
	u := newUnitWith(t, storeOpeners[0].open(t), func(c *commands.Config) { c.MaxUnpaidOrders = 1 })
	ctx := context.Background()
	cfg := u.Orders.Config()
	if cfg.NameProbes != 64 {
		t.Fatalf("default name probes %d, want 64", cfg.NameProbes)
	}
	if _, err := u.submitAs(t, "mine", "u-0", "이서연", 10); err != nil {
		t.Fatal(err)
	}
	for s := range domain.DepositorSuffixes { // held by submits still running
		name := domain.DepositorName("이서연", s, cfg.DepositorNameMax)
		if _, _, err := u.names.Holder(ctx, name); errors.Is(err, reservations.ErrFree) {
			if err := u.names.Reserve(ctx, name, domain.OrderID(fmt.Sprintf("ghost-%d", s))); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name, id, buyer string
		want            *domain.Error
		maxTries        int
	}{
		{"every name held", "new", "u-1", domain.ErrDepositorNamesExhausted, cfg.NameProbes},
		{"order ID in use", "mine", "u-2", domain.ErrOrderExists, 0},
		{"buyer at the limit", "mine-2", "u-0", domain.ErrTooManyUnpaidOrders, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := u.names.Reserves()
			_, err := u.submitAs(t, tt.id, tt.buyer, "이서연", 10)
			requireErr(t, err, tt.want)
			if tries := u.names.Reserves() - before; tries > tt.maxTries {
				t.Fatalf("the refused submit tried %d names, want at most %d", tries, tt.maxTries)
			}
		})
	}
	// An ID generated for the request, refused for its names, leaves no
	// expiry behind, and no admission.
	_, err := u.Orders.SubmitOrder(ctx, commands.Meta{FreshID: true}, api.SubmitOrderRequest{OrderID: "generated", BuyerID: "u-3", BuyerName: "이서연", Amount: 10})
	requireErr(t, err, domain.ErrDepositorNamesExhausted)
	for _, a := range u.timers.Armed() {
		if a.ID == "generated" {
			t.Fatalf("the refused submit left its expiry armed: %+v", a)
		}
	}
	// Nor does it count against its buyer (limit 1): the buyer's next
	// submit, under another name, is admitted at once.
	if got := u.names.Unpaid("u-3"); len(got) != 0 {
		t.Fatalf("the refused submit is still counted: %+v", got)
	}
	if _, err := u.submitAs(t, "next", "u-3", "김민수", 10); err != nil {
		t.Fatalf("the buyer's next submit: %v", err)
	}
}

// TestRefusedSubmitLeavesNoNameBehind (issue 7, finding 6): a submit of an
// order ID in use, under another buyer name, is refused (order_exists) and
// reserves nothing, so a transfer under the name it would have had does not
// pay the existing order.
func TestRefusedSubmitLeavesNoNameBehind(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {})
		ctx := context.Background()
		if _, err := u.submitAs(t, "o-x", "alice", "ALICE", 39000); err != nil {
			t.Fatal(err)
		}
		_, err := u.submitAs(t, "o-x", "bob", "BOB", 39000)
		requireErr(t, err, domain.ErrOrderExists)
		bobs := domain.DepositorName("BOB", domain.SuffixOrder("o-x", 1)[0], u.Orders.Config().DepositorNameMax)
		if h, _, err := u.names.Holder(ctx, bobs); !errors.Is(err, reservations.ErrFree) {
			t.Fatalf("%q after the refused submit: held by %+v (%v)", bobs, h, err)
		}
		if rep := u.deposit(t, "t-bob", bobs, 39000); rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonNoSuchName {
			t.Fatalf("transfer under %q: %+v, want an orphan (no_such_name)", bobs, rep)
		}
		if o := u.order(t, "o-x"); o.Status != domain.StatusAwaitingDeposit {
			t.Fatalf("order o-x is %s", o.Status)
		}
	})
}

// racingStore lets another submit of the same order ID happen right after
// the first read of that order: the case the existence check before
// reserving cannot see.
type racingStore struct {
	commands.EventStore
	id    string
	fired atomic.Bool
	other func()
}

func (s *racingStore) Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	commits, err := s.EventStore.Load(ctx, ref, after)
	if ref.ID == s.id && s.fired.CompareAndSwap(false, true) {
		s.other() // its own loads pass through
	}
	return commits, err
}

// TestSubmitThatLosesARaceForItsIDReleasesItsName: two submits of one order
// ID under different buyer names; the loser is refused (order_exists) and
// frees the name it reserved, and the winner keeps its own.
func TestSubmitThatLosesARaceForItsIDReleasesItsName(t *testing.T) {
	race := &racingStore{EventStore: storeOpeners[0].open(t), id: "o-race"}
	u := newUnitWith(t, race, func(c *commands.Config) {})
	var winner api.SubmitOrderReply
	race.other = func() {
		var err error
		if winner, err = u.submitAs(t, "o-race", "alice", "ALICE", 500); err != nil {
			t.Errorf("winning submit: %v", err)
		}
	}
	_, err := u.submitAs(t, "o-race", "bob", "BOB", 500)
	requireErr(t, err, domain.ErrOrderExists)
	ctx := context.Background()
	bobs := domain.DepositorName("BOB", domain.SuffixOrder("o-race", 1)[0], u.Orders.Config().DepositorNameMax)
	if h, _, err := u.names.Holder(ctx, bobs); !errors.Is(err, reservations.ErrFree) {
		t.Fatalf("%q after the lost race: held by %+v (%v)", bobs, h, err)
	}
	if h, _, err := u.names.Holder(ctx, winner.DepositorName); err != nil || h.OrderID != "o-race" {
		t.Fatalf("winner's name %q: %+v %v", winner.DepositorName, h, err)
	}
}

// TestDepositUnderAReservationOfAnotherNameIsAnOrphan: a reservation that
// points at an order holding another depositor name (left behind by a
// refused submit before the fix) does not make a transfer under it pay
// that order.
func TestDepositUnderAReservationOfAnotherNameIsAnOrphan(t *testing.T) {
	u := newUnitWith(t, storeOpeners[0].open(t), func(c *commands.Config) {})
	sub, err := u.submitAs(t, "o-y", "alice", "ALICE", 1200)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.names.Reserve(context.Background(), "BOB001", "o-y"); err != nil {
		t.Fatal(err)
	}
	if rep := u.deposit(t, "t-1", "BOB001", 1200); rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonNoSuchName {
		t.Fatalf("transfer under a stale reservation: %+v", rep)
	}
	if rep := u.deposit(t, "t-2", sub.DepositorName, 1200); rep.Outcome != domain.OutcomeMatched {
		t.Fatalf("transfer under the order's own name: %+v", rep)
	}
}

// TestOverdueOrderFromBeforeExpiryIsArmedWhenItsNameIsWanted: an order
// submitted before orders expired has no expiry timer; when a submit finds
// it holding a wanted name past the configured deadline, its expiry is
// armed, and it expires like any other.
func TestOverdueOrderFromBeforeExpiryIsArmedWhenItsNameIsWanted(t *testing.T) {
	es := storeOpeners[0].open(t)
	u := newUnitWith(t, es, func(c *commands.Config) { c.PaymentDeadline = time.Hour })
	ctx := context.Background()
	cfg := u.Orders.Config()
	submittedAt := u.clock.Now()
	name := domain.DepositorName("정하늘", 7, cfg.DepositorNameMax)
	data, _ := json.Marshal(map[string]any{
		"order_id": "o-old", "buyer_id": "u-old", "buyer_name": "정하늘", "amount": map[string]any{"amount": 900, "currency": "KRW"},
		"depositor_name": name, "collect_account": collect, "cancel_window_s": 300, "submitted_at": submittedAt,
	})
	if _, err := es.Append(ctx, eventstore.Ref{Type: domain.AggregateOrder, ID: "o-old"}, 0, 0, "c-old", []eventstore.Envelope{{
		EventID: "e-old", EventType: "order.submitted", SchemaVersion: 1, OccurredAt: submittedAt, Data: data,
	}}); err != nil {
		t.Fatal(err)
	}
	if err := u.names.Reserve(ctx, name, "o-old"); err != nil {
		t.Fatal(err)
	}
	armedOld := func() []commandstest.Armed {
		var out []commandstest.Armed
		for _, a := range armedOf(u.timers, commands.TimerExpireOrder) {
			if a.ID == "o-old" {
				out = append(out, a)
			}
		}
		return out
	}

	// Not yet overdue: a submit wanting its name arms nothing for it.
	if rep, err := u.submitAs(t, orderIDTrying(t, "early", name, "정하늘", cfg.DepositorNameMax), "u-new", "정하늘", 100); err != nil || rep.DepositorName == name {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	if got := armedOld(); len(got) != 0 {
		t.Fatalf("expiry of an order not yet overdue armed: %+v", got)
	}
	// Overdue: the collision arms it, due at once.
	u.clock.Set(submittedAt.Add(time.Hour + time.Minute))
	if rep, err := u.submitAs(t, orderIDTrying(t, "late", name, "정하늘", cfg.DepositorNameMax), "u-new2", "정하늘", 100); err != nil || rep.DepositorName == name {
		t.Fatalf("submit: %+v %v", rep, err)
	}
	if got := armedOld(); len(got) != 1 || !got[0].At.Equal(u.clock.Now()) {
		t.Fatalf("expiry of the overdue order: %+v, want one due now (%v)", got, u.clock.Now())
	}
	u.scanned(t, u.clock.Now())
	if wait, err := u.Orders.ExpireOrder(ctx, "o-old"); err != nil || wait != 0 {
		t.Fatalf("expire the old order: %v %v", wait, err)
	}
	if o := u.order(t, "o-old"); o.Status != domain.StatusExpired {
		t.Fatalf("old order is %s, want expired", o.Status)
	}
}

// racedSubmits runs first until it arms order's expiry, then, the clock an
// hour on, second, whose own arm of it is held until first has returned:
// second reads order free, and first stores it before second appends.
func racedSubmits(t *testing.T, u *unit, order string, first, second func() (api.SubmitOrderReply, error)) (a, b api.SubmitOrderReply, bErr error) {
	t.Helper()
	aIn, bIn, aDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	calls := 0 // the arms below run one after another
	u.timers.Fail = func(kind, id string) error {
		if kind != commands.TimerExpireOrder || id != order {
			return nil
		}
		switch calls++; calls {
		case 1: // first's, held until second has read the ID free and armed
			close(aIn)
			<-bIn
		case 2: // second's, held until first has appended
			close(bIn)
			<-aDone
		}
		return nil
	}
	var aErr error
	go func() {
		defer close(aDone)
		a, aErr = first()
	}()
	<-aIn
	u.clock.Set(u.clock.Now().Add(time.Hour))
	b, bErr = second()
	<-aDone
	if aErr != nil {
		t.Fatalf("first submit: %v", aErr)
	}
	return a, b, bErr
}

// TestSubmitThatLosesTheRaceArmsTheWinnersExpiryAgain: a submit that read
// its order ID free and lost the race for it to another (which appended
// first) had armed that ID's expiry at its own clock, replacing the stored
// order's; it arms the stored order's again at that order's deadline.
func TestSubmitThatLosesTheRaceArmsTheWinnersExpiryAgain(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {})
		a, _, errB := racedSubmits(t, u, "o-1",
			func() (api.SubmitOrderReply, error) { return u.submitAs(t, "o-1", "u-1", "김민수", 5000) },
			func() (api.SubmitOrderReply, error) { return u.submitAs(t, "o-1", "u-2", "김민수", 5000) })
		requireErr(t, errB, domain.ErrOrderExists)
		got := armedOf(u.timers, commands.TimerExpireOrder)
		if last := got[len(got)-1]; domain.FormatTime(last.At) != a.ExpiresAt || len(got) != 3 {
			t.Fatalf("order o-1 expires at %s, but its expiry timers are %+v (the last one counts)", a.ExpiresAt, got)
		}
	})
}

// namesInContention answers every Reserve as a reservation that kept
// changing under other writers (a conflict to retry).
type namesInContention struct{ commands.Names }

func (namesInContention) Reserve(_ context.Context, name string, _ domain.OrderID) error {
	return fmt.Errorf("reserve %q: %w", name, kvcas.ErrTooManyConflicts)
}

// TestSubmitThatFailsAfterArmingArmsTheStoredOrdersExpiryAgain: a submit
// that read its order ID free and armed that ID's expiry at its own clock,
// then failed to reserve a name (a conflict to retry) while another request
// stored an order under that ID, arms the stored order's expiry again at
// that order's deadline.
func TestSubmitThatFailsAfterArmingArmsTheStoredOrdersExpiryAgain(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnitWith(t, es, func(c *commands.Config) {})
		other, err := commands.New(commands.Deps{Events: es, Codec: domain.Events(), Names: namesInContention{u.names}, Timers: u.timers, Watermarks: u.marks, Accounts: u.accts},
			commands.Config{CollectAccount: collect, Now: u.clock.Now, NameGrace: time.Hour}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		a, _, errB := racedSubmits(t, u, "o-1",
			func() (api.SubmitOrderReply, error) { return u.submitAs(t, "o-1", "u-1", "김민수", 5000) },
			func() (api.SubmitOrderReply, error) {
				return other.Orders.SubmitOrder(context.Background(), commands.Meta{Command: "order.submit", Actor: "app"},
					api.SubmitOrderRequest{OrderID: "o-1", BuyerID: "u-2", BuyerName: "김민수", Amount: 5000})
			})
		if !errors.Is(errB, kvcas.ErrTooManyConflicts) {
			t.Fatalf("the submit whose name kept changing: %v, want a conflict", errB)
		}
		got := armedOf(u.timers, commands.TimerExpireOrder)
		if last := got[len(got)-1]; domain.FormatTime(last.At) != a.ExpiresAt || len(got) != 3 {
			t.Fatalf("order o-1 expires at %s, but its expiry timers are %+v (the last one counts)", a.ExpiresAt, got)
		}
	})
}

// TestResumedRepeatRacingItsFirstAttemptAnswersItsOrder: a repeat under the
// same key that runs while its first attempt still does (the first's answer
// was lost, its lease ran out) reads the ID free; when the first stores the
// order, the repeat answers that order, on this instance or another, and
// the order's expiry is armed at its own deadline.
func TestResumedRepeatRacingItsFirstAttemptAnswersItsOrder(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		for _, elsewhere := range []bool{false, true} {
			u := newUnitWith(t, es, func(c *commands.Config) {})
			repeat := u.Orders
			if elsewhere { // another instance: its own handlers and cache
				other, err := commands.New(commands.Deps{Events: es, Codec: domain.Events(), Names: u.names, Timers: u.timers, Watermarks: u.marks, Accounts: u.accts},
					commands.Config{CollectAccount: collect, Now: u.clock.Now, NameGrace: time.Hour}, zerolog.Nop())
				if err != nil {
					t.Fatal(err)
				}
				repeat = other.Orders
			}
			order := fmt.Sprintf("o-%v", elsewhere)
			meta := commands.Meta{IdempotencyKey: "k-" + order, Command: "order.submit", Actor: "app"}
			req := api.SubmitOrderRequest{OrderID: order, BuyerID: "u-1", BuyerName: "김민수", Amount: 5000}
			resumed := meta
			resumed.Resumed = true
			a, b, errB := racedSubmits(t, u, order,
				func() (api.SubmitOrderReply, error) { return u.Orders.SubmitOrder(context.Background(), meta, req) },
				func() (api.SubmitOrderReply, error) { return repeat.SubmitOrder(context.Background(), resumed, req) })
			if errB != nil || b.ExpiresAt != a.ExpiresAt || b.DepositorName != a.DepositorName {
				t.Fatalf("elsewhere %v: the repeat answered %+v, %v; want the first attempt's %+v", elsewhere, b, errB, a)
			}
			var got []commandstest.Armed
			for _, a := range armedOf(u.timers, commands.TimerExpireOrder) {
				if a.ID == order {
					got = append(got, a)
				}
			}
			if last := got[len(got)-1]; domain.FormatTime(last.At) != a.ExpiresAt {
				t.Fatalf("elsewhere %v: order %s expires at %s, but its expiry timers are %+v (the last one counts)", elsewhere, order, a.ExpiresAt, got)
			}
		}
	})
}

// flakyLoads fails every full load of an aggregate once fail is set.
type flakyLoads struct {
	commands.EventStore
	fail atomic.Bool
}

func (f *flakyLoads) Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	if f.fail.Load() && after == 0 {
		return nil, errors.New("load: store unavailable")
	}
	return f.EventStore.Load(ctx, ref, after)
}

// TestRacingRepeatAnswersOrderExistsOnlyForAnotherRequestsOrder: a keyed
// repeat refused because the order was stored meanwhile answers
// order_exists (which is kept under its key) only when the order is not
// its key's: another actor's under the same key, or another command's; a
// failed look for its key's commit is that failure.
func TestRacingRepeatAnswersOrderExistsOnlyForAnotherRequestsOrder(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		fl := &flakyLoads{EventStore: es}
		u := newUnitWith(t, fl, func(c *commands.Config) {})
		mine := commands.Meta{IdempotencyKey: "k-1", Command: "order.submit", Actor: "app", Resumed: true}
		for _, tc := range []struct {
			order string
			first commands.Meta
		}{
			{"o-1", commands.Meta{IdempotencyKey: "k-1", Command: "order.submit", Actor: "other"}},
			{"o-2", commands.Meta{IdempotencyKey: "k-1", Command: "order.other", Actor: "app"}},
		} {
			req := api.SubmitOrderRequest{OrderID: tc.order, BuyerID: "u-1", BuyerName: "김민수", Amount: 5000}
			_, b, errB := racedSubmits(t, u, tc.order,
				func() (api.SubmitOrderReply, error) { return u.Orders.SubmitOrder(context.Background(), tc.first, req) },
				func() (api.SubmitOrderReply, error) { return u.Orders.SubmitOrder(context.Background(), mine, req) })
			if !errors.Is(errB, domain.ErrOrderExists) {
				t.Fatalf("%s stored by %+v: the repeat answered %+v, %v; want order_exists", tc.order, tc.first, b, errB)
			}
		}
		req := api.SubmitOrderRequest{OrderID: "o-3", BuyerID: "u-1", BuyerName: "김민수", Amount: 5000}
		first := mine
		first.Resumed = false
		_, b, errB := racedSubmits(t, u, "o-3",
			func() (api.SubmitOrderReply, error) {
				defer fl.fail.Store(true)
				return u.Orders.SubmitOrder(context.Background(), first, req)
			},
			func() (api.SubmitOrderReply, error) { return u.Orders.SubmitOrder(context.Background(), mine, req) })
		if errB == nil || errors.Is(errB, domain.ErrOrderExists) {
			t.Fatalf("the repeat whose look for its commit failed answered %+v, %v; want that failure", b, errB)
		}
	})
}

// RestoreNames reserves the names a stale check would keep (an open
// order's; a closed order's within the name grace, or before the scan
// covered it) and no others, reports a name another order holds, and
// counts the unpaid orders against their buyer's limit again.
func TestRestoreNamesKeepsWhatAStaleCheckWouldKeep(t *testing.T) {
	u := newUnitWith(t, storeOpeners[0].open(t), func(*commands.Config) {}) // a grace of an hour
	ctx := context.Background()
	now := u.clock.Now()
	u.scanned(t, now.Add(-time.Hour))
	order := func(id, name string, st domain.OrderStatus, closed time.Duration) domain.Order {
		o := domain.Order{ID: domain.OrderID(id), BuyerID: "b-1", DepositorName: name, Status: st, Version: 1}
		if closed > 0 {
			o.ClosedAt = now.Add(-closed)
		}
		return o
	}
	if err := u.names.Reserve(ctx, "박지훈1", "o-newer"); err != nil {
		t.Fatal(err)
	}
	keeps, err := u.Orders.NameKeeper(ctx)
	if err != nil {
		t.Fatal(err)
	}
	restored, taken, err := u.Orders.RestoreNames(ctx, []domain.Order{
		order("o-open", "김민수1", domain.StatusAwaitingDeposit, 0),
		order("o-recent", "김민수2", domain.StatusCancelled, 10*time.Minute),            // within the grace
		order("o-unscanned", "김민수3", domain.StatusPaid, 110*time.Minute),             // grace over 50 minutes ago, scanned up to an hour ago
		order("o-released", "김민수4", domain.StatusCancelled, 3*time.Hour),             // grace over and scanned
		{ID: "o-never", DepositorName: "김민수5", Status: domain.StatusAwaitingDeposit}, // never submitted
		order("o-taken", "박지훈1", domain.StatusAwaitingDeposit, 0),
	}, keeps)
	if err != nil || restored != 3 || !slices.Equal(taken, []string{"o-newer/o-taken"}) {
		t.Fatalf("restored %d, taken %v, %v: want 3, [o-newer/o-taken]", restored, taken, err)
	}
	var unpaid []domain.OrderID
	for _, u := range u.names.Unpaid("b-1") {
		unpaid = append(unpaid, u.OrderID)
	}
	if want := []domain.OrderID{"o-open", "o-recent", "o-taken"}; !slices.Equal(unpaid, want) {
		t.Errorf("the buyer's unpaid orders %v, want %v", unpaid, want)
	}
	for name, want := range map[string]domain.OrderID{"김민수1": "o-open", "김민수2": "o-recent", "김민수3": "o-unscanned", "김민수4": "", "김민수5": "", "박지훈1": "o-newer"} {
		h, _, err := u.names.Holder(ctx, name)
		if want == "" {
			if !errors.Is(err, reservations.ErrFree) {
				t.Errorf("%s: held by %+v %v, want free", name, h, err)
			}
			continue
		}
		if err != nil || h.OrderID != want {
			t.Errorf("%s: held by %+v %v, want %s", name, h, err, want)
		}
	}
}

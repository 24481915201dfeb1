package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/timers"
)

// readModels runs the projections over s's event stream into a new file
// until the test ends.
func (s *realStack) readModels(t *testing.T) (*projections.Store, *projections.Runner) {
	t.Helper()
	models, err := projections.Open(filepath.Join(t.TempDir(), "readmodels.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := projections.NewRunner(s.es, models, zerolog.Nop())
	testenv.Run(t, r.Run)
	t.Cleanup(func() { _ = models.Close() }) // after the runner stopped (cleanups run last first)
	return models, r
}

// caughtUp waits until the read models have applied the whole stream.
func (s *realStack) caughtUp(t *testing.T, r *projections.Runner) {
	t.Helper()
	head, err := s.es.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitFor(ctx, head); err != nil {
		t.Fatalf("read models at seq %d: %v", head, err)
	}
}

func (s *realStack) armed(t *testing.T, want uint64) {
	t.Helper()
	testenv.CheckFor(t, 10*time.Second, func() error {
		n, err := s.tm.Armed(context.Background())
		if err == nil && n != want {
			err = fmt.Errorf("%d timers armed, want %d", n, want)
		}
		return err
	})
}

// TestRearmRepairsAPurgedTimersStream: given an order with a reserved
// cancellation and one awaiting its deposit, when the timers stream is
// purged (their timers gone), then re-arming from the read models' open
// orders arms both again, once each however often it runs, and the
// reserved cancellation becomes final when the timers worker runs.
func TestRearmRepairsAPurgedTimersStream(t *testing.T) {
	// The orders are an hour old: the cancellation is overdue (its timer
	// falls due at once), the expiry is a day away.
	clk := &clock{now: time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)}
	s := newRealStack(t, commands.Config{Now: clk.Now, FinaliseRetry: 50 * time.Millisecond})
	ctx := context.Background()
	s.submit(t, "o-reserved", "김민수", 1000)
	yes := true
	rep, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-reserved", Deposited: &yes})
	if err != nil || rep.Status != domain.StatusCancelReserved {
		t.Fatalf("reserve the cancellation: %+v %v", rep, err)
	}
	s.submit(t, "o-awaiting", "이영희", 2000)
	s.submit(t, "o-cancelled", "박지성", 3000)
	no := false
	if _, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-cancelled", Deposited: &no}); err != nil {
		t.Fatal(err)
	}
	s.armed(t, 3) // the three expiries (the cancellation fell due at once)

	stream, err := s.js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx); err != nil {
		t.Fatalf("purge the timers stream: %v", err)
	}
	s.armed(t, 0)

	models, runner := s.readModels(t)
	s.caughtUp(t, runner)
	ids, err := models.OpenOrderIDs()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []domain.OrderID{"o-awaiting", "o-reserved"}) {
		t.Fatalf("open orders %v", ids)
	}
	for range 2 { // idempotent: the second run replaces the schedules
		n, err := s.h.Orders.RearmTimers(ctx, ids)
		if err != nil || n != 2 {
			t.Fatalf("rearm: %d timers, %v; want 2", n, err)
		}
		s.armed(t, 1) // o-awaiting's expiry; o-reserved's cancellation fell due at once
	}

	// The bank scan covers the cancel time; the timers worker finalises.
	clk.Set(clk.Now().Add(10 * time.Minute))
	if err := s.marks.Advance(ctx, realCollect.Number, clk.Now()); err != nil {
		t.Fatal(err)
	}
	loop, err := s.tm.Worker(ctx, func(ctx context.Context, d timers.Due) (time.Duration, error) {
		switch d.Kind {
		case commands.TimerFinaliseCancel:
			return s.h.Orders.FinaliseCancel(ctx, d.ID)
		case commands.TimerExpireOrder:
			return s.h.Orders.ExpireOrder(ctx, d.ID)
		}
		return 0, fmt.Errorf("timer of unknown kind %q", d.Kind)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, loop.Run)
	testenv.CheckFor(t, 15*time.Second, func() error {
		v, found, err := models.Order("o-reserved")
		switch {
		case err != nil:
			return err
		case !found || v.Status != string(domain.StatusCancelled):
			return fmt.Errorf("o-reserved is %q", v.Status)
		}
		return nil
	})
	if v, _, err := models.Order("o-awaiting"); err != nil || v.Status != string(domain.StatusAwaitingDeposit) {
		t.Fatalf("o-awaiting: %q %v, want it still awaiting its deposit (its expiry is a day away)", v.Status, err)
	}
	// The cancellation was final once: submit, reserve, cancel.
	if n := s.commits(t, domain.AggregateOrder, "o-reserved"); n != 3 {
		t.Fatalf("o-reserved has %d commits, want 3", n)
	}
}

// TestRearmStalledLeavesTimersTheServerFired: a reserved cancellation
// whose timer fell due and fired (its schedule gone, the firing waiting to
// be handled) and an expiry not due yet are not armed again; nor is an
// order that is not open.
func TestRearmStalledLeavesTimersTheServerFired(t *testing.T) {
	clk := &clock{now: time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)}
	s := newRealStack(t, commands.Config{Now: clk.Now})
	ctx := context.Background()
	s.submit(t, "o-reserved", "김민수", 1000)
	yes := true
	if _, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-reserved", Deposited: &yes}); err != nil {
		t.Fatal(err)
	}
	s.submit(t, "o-awaiting", "이영희", 2000)
	s.armed(t, 2) // the two expiries, a day away; the cancellation fired
	n, err := s.h.Orders.RearmStalled(ctx, []domain.OrderID{"o-reserved", "o-awaiting", "o-never"}, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("rearm stalled: %d, %v; want nothing armed", n, err)
	}
	s.armed(t, 2)
}

// TestRearmSkipsWhatIsNotOpen: a stale list (orders closed since, orders
// that never existed) arms nothing for them.
func TestRearmSkipsWhatIsNotOpen(t *testing.T) {
	s := newRealStack(t, commands.Config{})
	ctx := context.Background()
	s.submit(t, "o-1", "김민수", 1000)
	no := false
	if _, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no}); err != nil {
		t.Fatal(err)
	}
	n, err := s.h.Orders.RearmTimers(ctx, []domain.OrderID{"o-1", "o-never"})
	if err != nil || n != 0 {
		t.Fatalf("rearm: %d, %v; want nothing armed", n, err)
	}
}

// TestRearmWarnsOfOpenOrdersQuotingAnotherCollectionAccount: an engine
// started with another --collect-number than its open orders were given
// warns at start, naming them: their buyers pay into an account the
// scanner does not poll. Closed orders are not named, nor is anything with
// the account unchanged.
func TestRearmWarnsOfOpenOrdersQuotingAnotherCollectionAccount(t *testing.T) {
	s := newRealStack(t, commands.Config{})
	ctx := context.Background()
	s.submit(t, "o-1", "김민수", 1000)
	s.submit(t, "o-2", "이영희", 2000)
	s.submit(t, "o-3", "박지성", 3000)
	no := false
	if _, err := s.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-3", Deposited: &no}); err != nil {
		t.Fatal(err)
	}
	ids := []domain.OrderID{"o-1", "o-2", "o-3"}
	const warning = "open orders quote another collection account"
	if _, err := s.h.Orders.RearmTimers(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s.log.String(), warning) {
		t.Fatalf("warned with the account unchanged:\n%s", s.log.String())
	}

	var logs testenv.SyncBuffer
	moved, err := commands.New(commands.Deps{Events: s.es, Codec: domain.Events(), Names: s.names, Timers: s.tm, Watermarks: s.marks},
		commands.Config{CollectAccount: domain.BankAccount{Bank: "신한은행", Number: "110-999-888777", Holder: "bankbook"}}, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := moved.Orders.RearmTimers(ctx, ids); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, warning) || !strings.Contains(out, `"orders":2`) ||
		!strings.Contains(out, `"order_ids":["o-1","o-2"]`) || !strings.Contains(out, `"their_accounts":["`+realCollect.Number+`"]`) ||
		!strings.Contains(out, `"collect_number":"110-999-888777"`) {
		t.Fatalf("no warning naming the two open orders and their account:\n%s", out)
	}
}

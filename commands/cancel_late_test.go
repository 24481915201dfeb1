package commands_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
)

// TestALateReservedCancelOnTwoInstancesBecomesFinal: instance A reserves
// the cancellation of an order whose cancel window is over (cancel_at in
// the past), so the timer it arms before its append falls due at once. The
// timers worker of instance B handles the firing before A's commit lands:
// it sees an order awaiting its deposit, does nothing, and acknowledges.
// A arms the timer again once its commit is stored, so the cancellation
// still becomes final.
func TestALateReservedCancelOnTwoInstancesBecomesFinal(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)}
	cfg := commands.Config{Now: clk.Now, FinaliseRetry: 50 * time.Millisecond}
	// A: its appends pause while slowAppend (a group commit's sync, a GC
	// pause, a slow disk).
	var slowAppend atomic.Bool
	slow := cfg
	slow.BeforeAppend = func(context.Context) error {
		if slowAppend.Load() {
			time.Sleep(time.Second) // the firing is B's meanwhile
		}
		return nil
	}
	s := newRealStack(t, slow)
	a, b, tm, marks := s.h, s.another(t, cfg), s.tm, s.marks

	if _, err := a.Orders.SubmitOrder(ctx, commands.Meta{Command: api.OrderSubmit.Subject},
		api.SubmitOrderRequest{OrderID: "o-late", BuyerID: "buyer-1", BuyerName: "김민수", Amount: 1000}); err != nil {
		t.Fatal(err)
	}
	// An hour later: the cancel window (5m) is long over, and the bank
	// scan covers now.
	clk.Set(time.Now().UTC().Truncate(time.Microsecond))
	if err := marks.Advance(ctx, realCollect.Number, clk.Now()); err != nil {
		t.Fatal(err)
	}
	// B runs the timers worker.
	loop, err := tm.Worker(ctx, func(ctx context.Context, d timers.Due) (time.Duration, error) {
		switch d.Kind {
		case commands.TimerFinaliseCancel:
			return b.Orders.FinaliseCancel(ctx, d.ID)
		case commands.TimerExpireOrder:
			return b.Orders.ExpireOrder(ctx, d.ID)
		}
		return 0, fmt.Errorf("kind %q", d.Kind)
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, loop.Run)

	slowAppend.Store(true)
	yes := true
	rep, err := a.Orders.CancelOrder(ctx, commands.Meta{Command: api.OrderCancel.Subject}, api.CancelOrderRequest{OrderID: "o-late", Deposited: &yes})
	slowAppend.Store(false)
	if err != nil || rep.Status != domain.StatusCancelReserved {
		t.Fatalf("cancel: %+v %v", rep, err)
	}
	t.Logf("cancel reserved, cancel_at %s (in the past), watermark %s", rep.CancelAt, clk.Now())

	// The scan covers cancel_at: the cancellation must become final.
	testenv.CheckFor(t, 10*time.Second, func() error {
		o, err := b.Orders.Get(ctx, "o-late")
		if err != nil {
			return err
		}
		if o.Status != domain.StatusCancelled {
			n, _ := tm.Armed(ctx)
			return fmt.Errorf("the order is %s, the scan past its cancel_at %s, %d timers armed: the reserved cancellation's timer fired before its commit and was not armed again",
				o.Status, o.CancelAt.Format(time.RFC3339), n)
		}
		return nil
	})
}

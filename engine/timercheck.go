package engine

import (
	"context"
	"time"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/supervisor"
)

// The part partTimerCheck arms again the timers the NATS server holds
// without firing them. nats-server fires a schedule once: when it cannot
// store the firing (JetStream refused the write: its storage, or the
// engine account's share of it, full), the schedule stays stored and does
// not fire until the server restarts or the stream's leader changes, so a
// reserved cancellation or an order's expiry would wait for ever while
// every part runs. Every Config.TimerCheck the part takes the open orders
// whose timer is that long overdue in the read models, and arms again each
// one whose schedule is still stored (commands.Orders.RearmStalled). An
// order that waits for the bank scan has no stored schedule (its timer
// fired and waits as a delivery), so it is not armed again.
const partTimerCheck = "timer-check"

// checkTimers is the timer-check part.
func (e *Engine) checkTimers(ctx context.Context, orders *commands.Orders) error {
	every := time.Duration(e.cfg.TimerCheck)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		before := time.Now().Add(-every)
		ids, err := e.Models.OverdueOpenOrders(before)
		if err == nil && len(ids) > 0 {
			_, err = orders.RearmStalled(ctx, ids, before)
		}
		if ctx.Err() != nil {
			return nil
		}
		supervisor.From(ctx).Report(err)
	}
}

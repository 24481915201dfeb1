package engine

import (
	"context"
	"errors"
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

// stalledPerCheck bounds how many overdue open orders one check asks the
// server about, two looks each (one per timer an open order may have):
// while the bank scan is down, every order whose timer fired waits for
// it, overdue, with no schedule left. The checks take the overdue orders
// in turns, so every one is looked at within a few intervals.
const stalledPerCheck = 1000

// timerCheckFailures is how many checks in a row must fail before the
// part reports itself failing (not ready): one slow answer of a busy
// server is a warning, not an outage.
const timerCheckFailures = 3

// checkTimers is the timer-check part.
func (e *Engine) checkTimers(ctx context.Context, orders *commands.Orders) error {
	every := time.Duration(e.cfg.TimerCheck)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var from, failedInARow int
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		before := time.Now().Add(-every)
		ids, err := e.Models.OverdueOpenOrders(before)
		if from >= len(ids) {
			from = 0
		}
		if n := min(len(ids)-from, stalledPerCheck); n > 0 {
			// A check ends within its interval: while the timers stream
			// has no leader every look waits out its timeout, and the
			// next check starts over.
			cctx, cancel := context.WithTimeout(ctx, every)
			_, rerr := orders.RearmStalled(cctx, ids[from:from+n], before)
			cancel()
			err = errors.Join(err, rerr)
			from += n
		}
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			failedInARow = 0
			supervisor.From(ctx).Report(nil)
			continue
		}
		failedInARow++
		e.log.Warn().Err(err).Int("checks_failed_in_a_row", failedInARow).Msg("timer check: some open orders' timers could not be checked")
		if failedInARow >= timerCheckFailures {
			supervisor.From(ctx).Report(err)
		}
	}
}

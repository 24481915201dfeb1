package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
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
		ids, err := e.overdueOrders(before)
		if err == nil && len(ids) > 0 {
			_, err = orders.RearmStalled(ctx, ids, before)
		}
		if ctx.Err() != nil {
			return nil
		}
		supervisor.From(ctx).Report(err)
	}
}

// overdueOrders returns the open orders of the read models whose timer (a
// reserved cancellation's, an expiry's) was due before before.
func (e *Engine) overdueOrders(before time.Time) ([]domain.OrderID, error) {
	ids, err := e.Models.OpenOrderIDs()
	if err != nil {
		return nil, fmt.Errorf("open orders: %w", err)
	}
	var overdue []domain.OrderID
	var errs []error
	for _, id := range ids {
		v, ok, err := e.Models.Order(string(id))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		due := v.ExpiresAt
		if v.Status == string(domain.StatusCancelReserved) {
			due = v.CancelAt
		}
		if !ok || due == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, due)
		if err == nil && at.Before(before) {
			overdue = append(overdue, id)
		}
	}
	return overdue, errors.Join(errs...)
}

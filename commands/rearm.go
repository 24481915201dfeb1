package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// RearmTimers arms again the timer each open order among ids needs, from
// the order's state in the event store: a cancel-reserved order its
// finalisation (TimerFinaliseCancel at its cancel_at), an order awaiting
// its deposit its expiry (TimerExpireOrder at its payment deadline). An
// order that is not open, or does not exist, needs none and is skipped, so
// ids may be a stale list (the read models' open orders). It returns how
// many timers it armed.
//
// It repairs a timers stream that was purged, deleted or lost: the timers
// live only there, while the orders that need them are in the event log.
// Run it at start, once the list covers every order stored before the
// start (the read models caught up); orders stored later armed their own
// timers. A timer time that has passed fires at once.
//
// It is idempotent: arming a (kind, order) again replaces its schedule
// (timers.Timers.Arm), so where the timers are all present it changes
// nothing but their schedules, which keep their times. A timer that
// already fell due and waits to be looked at again (for the bank scan)
// may fire once more; FinaliseCancel and ExpireOrder are idempotent.
//
// It goes on past an order it cannot load or arm (logged), and then
// returns an error counting them, wrapping the first; it stops at once
// when ctx ends.
//
// It also warns of open orders that quote another collection account than
// the configured one (see warnOtherAccount).
func (h *Orders) RearmTimers(ctx context.Context, ids []domain.OrderID) (int, error) {
	var (
		armed, failed int
		first         error
		other         []domain.Order
	)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return armed, fmt.Errorf("rearm timers: %d of %d orders done: %w", armed, len(ids), err)
		}
		o, ok, err := h.rearm(ctx, id)
		if ok && domain.NormalizeAccountNumber(o.CollectAccount.Number) != domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number) {
			other = append(other, o)
		}
		if err != nil {
			if ctx.Err() != nil {
				return armed, fmt.Errorf("rearm timers: %d of %d orders done: %w", armed, len(ids), err)
			}
			h.log.Warn().Err(err).Str("order_id", string(id)).Msg("re-arming the order's timer")
			failed++
			if first == nil {
				first = err
			}
			continue
		}
		if ok {
			armed++
		}
	}
	h.log.Info().Int("orders", len(ids)).Int("armed", armed).Int("failed", failed).Msg("timers of open orders re-armed")
	h.warnOtherAccount(other)
	if failed > 0 {
		return armed, fmt.Errorf("rearm timers: %d of %d orders failed, the first: %w", failed, len(ids), first)
	}
	return armed, nil
}

// rearm arms the timer order id needs, if any, and returns the order and
// whether it is open (it armed, or tried to arm, its timer).
func (h *Orders) rearm(ctx context.Context, id domain.OrderID) (domain.Order, bool, error) {
	o, _, err := h.orders.Get(ctx, string(id))
	if err != nil {
		return o, false, err
	}
	ok, err := h.armTimerOf(ctx, o)
	return o, ok, err
}

// maxOtherAccountLogged is how many orders warnOtherAccount names.
const maxOtherAccountLogged = 10

// warnOtherAccount warns of the open orders that quote another collection
// account than --collect-number: the collection account was changed while
// they were open. Their buyers pay as the order says, into an account the
// scanner no longer polls, so nothing pays them; they expire (or their
// reserved cancellation becomes final) on the new account's scan, and
// their money reaches the engine only from the old account's statements
// (deposit import: an unknown_account orphan, for an operator to assign).
func (h *Orders) warnOtherAccount(other []domain.Order) {
	if len(other) == 0 {
		return
	}
	ids := make([]string, 0, min(len(other), maxOtherAccountLogged))
	accounts := map[string]bool{}
	for i, o := range other {
		if i < maxOtherAccountLogged {
			ids = append(ids, string(o.ID))
		}
		accounts[o.CollectAccount.Number] = true
	}
	h.log.Warn().Int("orders", len(other)).Strs("order_ids", ids).Strs("their_accounts", slices.Sorted(maps.Keys(accounts))).
		Str("collect_number", h.cfg.CollectAccount.Number).
		Msg("open orders quote another collection account than --collect-number: the scanner does not poll it, so a transfer made as they say pays nothing; run with the old number until they close, or record its statements with 'deposit import' and assign the orphans")
}

// armTimerOf arms the timer order o needs, if any, and reports whether it
// armed one.
func (h *Orders) armTimerOf(ctx context.Context, o domain.Order) (bool, error) {
	kind, at, ok, err := h.timerOf(o)
	if !ok || err != nil {
		return false, err
	}
	return true, h.timers.Arm(ctx, kind, string(o.ID), at, nil)
}

// timerOf returns the timer order o needs, if any: its kind and time.
func (h *Orders) timerOf(o domain.Order) (kind string, at time.Time, ok bool, err error) {
	switch {
	case !o.Exists():
		return "", time.Time{}, false, nil
	case o.Status == domain.StatusCancelReserved:
		if o.CancelAt.IsZero() {
			return "", time.Time{}, false, errors.New("cancel-reserved order without a cancel time")
		}
		return TimerFinaliseCancel, o.CancelAt, true, nil
	case o.Status == domain.StatusAwaitingDeposit:
		return TimerExpireOrder, o.ExpiryTime(h.cfg.PaymentDeadline), true, nil
	}
	return "", time.Time{}, false, nil
}

// RearmStalled arms again the timer of each open order among ids whose
// schedule the NATS server still holds although it was due before before:
// the server did not fire it (timers.Timers.Stalled), and would not until
// it restarts. Arming it again fires it at once. The server is asked first,
// for either timer an open order has: a timer that fired (an order whose
// finalisation waits for the bank scan, say) has no schedule left, and
// costs that one look, not a load of the order. ids may be a stale list:
// an order with a stalled schedule is loaded from the event store, and one
// that is not open, or whose timer is not that one or not due before
// before, is skipped. It returns how many timers it armed again, logging
// each at warn; it goes on past an order it cannot look at or arm, and
// then returns an error counting them, wrapping the first.
func (h *Orders) RearmStalled(ctx context.Context, ids []domain.OrderID, before time.Time) (int, error) {
	var (
		armed, failed int
		first         error
	)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return armed, err
		}
		err := func() error {
			var stalled []string
			for _, kind := range []string{TimerFinaliseCancel, TimerExpireOrder} {
				held, err := h.timers.Stalled(ctx, kind, string(id), before)
				if err != nil {
					return err
				}
				if held {
					stalled = append(stalled, kind)
				}
			}
			if len(stalled) == 0 {
				return nil
			}
			o, _, err := h.orders.Get(ctx, string(id))
			if err != nil {
				return err
			}
			kind, at, ok, err := h.timerOf(o)
			if !ok || err != nil || !at.Before(before) || !slices.Contains(stalled, kind) {
				return err
			}
			if err := h.timers.Arm(ctx, kind, string(id), at, nil); err != nil {
				return err
			}
			armed++
			h.log.Warn().Str("order_id", string(id)).Str("timer", kind).Time("due", at).
				Msg("the NATS server held this timer past its time without firing it (a write it refused, such as a full JetStream storage): armed it again")
			return nil
		}()
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		return armed, fmt.Errorf("rearm stalled timers: %d of %d orders failed, the first: %w", failed, len(ids), first)
	}
	return armed, nil
}

package commands

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/reservations"
)

// Orders handles the commands on orders. It is safe for concurrent use.
type Orders struct {
	*Core
	orders  *Repository[domain.Order]
	wallets *Wallets // refunds of paid orders
	names   Names
	timers  Timers
	marks   Watermarks
}

// SubmitOrder creates an order awaiting a bank transfer, reserves its
// depositor name and arms its expiry. req.OrderID must be set (the caller
// generates one when the client did not).
//
// What a submit may refuse it refuses before it reserves anything: an
// order ID in use (order_exists), a buyer at the limit of unpaid orders
// (too_many_unpaid_orders), then depositor names all held among the
// Config.NameProbes it tries (depositor_names_exhausted); so a refused
// submit costs at most that many lookups and leaves no name behind.
func (h *Orders) SubmitOrder(ctx context.Context, meta Meta, req api.SubmitOrderRequest) (api.SubmitOrderReply, error) {
	if req.OrderID == "" {
		return api.SubmitOrderReply{}, domain.Invalid("order_id", "is required")
	}
	if err := req.Validate(); err != nil {
		return api.SubmitOrderReply{}, err
	}
	money, _ := domain.NewMoney(req.Amount, req.Currency)
	id := domain.OrderID(req.OrderID)
	buyer := domain.UserID(req.BuyerID)

	// Read the order first: an earlier attempt with this key may have
	// appended already (answer from its events), or the ID is in use by
	// another request (refuse it before reserving a name that would then
	// point at that order and pay it). An ID generated for this request
	// names nothing yet: no read.
	if !meta.FreshID {
		snap, prior, err := h.orders.catchUp(ctx, req.OrderID, snapshot[domain.Order]{}, meta)
		if err != nil || prior != nil {
			return submitReply(deref(prior)), err
		}
		if snap.state.Exists() {
			return api.SubmitOrderReply{}, domain.ErrOrderExists.With("", map[string]any{"order_id": req.OrderID})
		}
	}
	asked := meta
	meta.Resumed = false // read just now; execute still checks every later read

	if err := h.admit(ctx, buyer, id); err != nil {
		return api.SubmitOrderReply{}, err
	}
	// The expiry is armed before the order is stored, so every stored order
	// has one (an expiry without an order does nothing). It is armed while
	// the name is reserved, two writes waited for together, at the deadline
	// DecideSubmit gives the order (SubmitExpiry of the same now), and
	// armed again before the append if that failed.
	now := h.Now()
	expiry := domain.SubmitExpiry(now, h.cfg.PaymentDeadline)
	armed := make(chan error, 1)
	go func() { armed <- h.timers.Arm(ctx, TimerExpireOrder, req.OrderID, expiry, nil) }()
	name, err := h.reserveName(ctx, req.BuyerName, id)
	armErr := <-armed
	if err != nil {
		if meta.FreshID && errors.Is(err, domain.ErrDepositorNamesExhausted) {
			// Refused for good, and no other request arms an expiry for
			// an ID generated for this one (a keyed repeat takes the ID
			// over only once this attempt's lease, longer than its
			// deadline, has run out): disarm it. Another attempt at an
			// ID the client gave may have armed the same expiry. After a
			// failure that is not a refusal the expiry stays: a keyed
			// retry resumes with this ID, and without a key it finds no
			// order. So does the buyer's admission of the order: it
			// would count against the buyer's unpaid orders for
			// OrphanReservationAge.
			h.disarm(ctx, id)
			if err := h.names.Forget(ctx, buyer, id); err != nil {
				h.log.Warn().Err(err).Str("order_id", string(id)).Msg("dropping the admission of a refused submit")
			}
		} else if !meta.FreshID {
			// Another request may have stored an order under the
			// client's ID since it was read, and the expiry armed above
			// replaced that order's: arm the stored order's again.
			if _, _, err := h.rearm(ctx, id); err != nil {
				h.log.Warn().Err(err).Str("order_id", string(id)).Msg("arming again the timer of an order a failed submit may have raced with")
			}
		}
		return api.SubmitOrderReply{}, err
	}
	// A failure from here on leaves the reservation in place; it points at an
	// order that does not exist and is taken over after OrphanReservationAge.
	out, err := h.orders.Execute(ctx, meta, req.OrderID, func(o domain.Order) ([]domain.Event, error) {
		return domain.DecideSubmit(o, domain.SubmitOrder{
			OrderID:         id,
			BuyerID:         buyer,
			BuyerName:       req.BuyerName,
			Amount:          money,
			DepositorName:   name,
			CollectAccount:  h.cfg.CollectAccount,
			CancelWindow:    h.cfg.CancelWindow,
			PaymentDeadline: h.cfg.PaymentDeadline,
			Now:             now,
		})
	}, func(events []domain.Event) error {
		for _, e := range events {
			if s, ok := e.(domain.OrderSubmitted); ok && armErr != nil {
				return h.timers.Arm(ctx, TimerExpireOrder, string(s.OrderID), s.Expiry(), nil)
			}
		}
		return nil
	})
	if errors.Is(err, domain.ErrOrderExists) {
		// Another request submitted this ID since it was read: the name
		// reserved above names that order, and the expiry armed above
		// replaced that order's. If that request was an earlier attempt of
		// this one (the same key), its commit is the answer.
		h.lostRace(ctx, name, id)
		if asked.IdempotencyKey != "" {
			asked.Resumed = true // every commit, not a snapshot's
			_, prior, perr := h.orders.catchUp(ctx, req.OrderID, snapshot[domain.Order]{}, asked)
			if perr != nil {
				return api.SubmitOrderReply{}, perr // not order_exists, which is kept under the key
			}
			if prior != nil {
				return submitReply(*prior), nil
			}
		}
		return api.SubmitOrderReply{}, err
	}
	if err != nil {
		return api.SubmitOrderReply{}, err
	}
	if !out.State.ExpiryTime(h.cfg.PaymentDeadline).Equal(expiry) {
		// An earlier attempt under this key stored the order, which this
		// attempt found only when its append conflicted: the expiry armed
		// above replaced that order's timer.
		if _, _, err := h.rearm(ctx, id); err != nil {
			h.log.Warn().Err(err).Str("order_id", req.OrderID).Msg("arming again the timer of an order an earlier attempt stored")
		}
	}
	h.log.Info().Str("order_id", req.OrderID).Str("correlation_id", meta.CorrelationID).Uint64("seq", uint64(out.Seq)).Msg("order submitted")
	return submitReply(out), nil
}

func submitReply(out Outcome[domain.Order]) api.SubmitOrderReply {
	o := out.State
	return api.SubmitOrderReply{
		OrderID:        string(o.ID),
		Status:         domain.StatusAwaitingDeposit,
		DepositorName:  o.DepositorName,
		CollectAccount: o.CollectAccount,
		Amount:         o.Amount.Amount,
		Currency:       o.Amount.Currency,
		SubmittedAt:    domain.FormatTime(o.SubmittedAt),
		CancelWindowS:  int64(o.CancelWindow / time.Second),
		ExpiresAt:      formatOptional(o.ExpiresAt),
		Written:        written(out.Seq),
	}
}

// lostRace mends what a submit refused because order was stored meanwhile
// by another request did: it arms that order's timer again (this submit's
// expiry replaced it), and frees name, reserved for order
// by this submit, unless it is that order's depositor name (same buyer
// name, same first suffix). A failure is logged: the order then expires
// when this submit's expiry falls due (ExpireOrder waits for the
// deadline, so never early), or the reservation is stale (its order holds
// another name), a deposit under it is an orphan and the next submit that
// wants the name takes it over.
func (h *Orders) lostRace(ctx context.Context, name string, order domain.OrderID) {
	o, _, err := h.orders.Get(ctx, string(order))
	if err != nil {
		h.log.Warn().Err(err).Str("order_id", string(order)).Msg("reading the order a refused submit raced with: its expiry and the name stay as they are")
		return
	}
	if _, err := h.armTimerOf(ctx, o); err != nil {
		h.log.Warn().Err(err).Str("order_id", string(order)).Msg("arming again the timer of an order a refused submit raced with")
	}
	if o.Exists() && domain.SameName(o.DepositorName, name) {
		return
	}
	if err := h.names.Release(ctx, name, order); err != nil {
		h.log.Warn().Err(err).Str("order_id", string(order)).Msg("releasing the depositor name of a refused submit")
	}
}

// disarm removes the expiry a refused submit armed for order. A failure is
// logged: the expiry then finds no order when it falls due.
func (h *Orders) disarm(ctx context.Context, order domain.OrderID) {
	if err := h.timers.Disarm(ctx, TimerExpireOrder, string(order)); err != nil {
		h.log.Warn().Err(err).Str("order_id", string(order)).Msg("disarming the expiry of a refused submit")
	}
}

// formatOptional formats t, or returns "" for the zero time.
func formatOptional(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return domain.FormatTime(t)
}

// admit counts order against buyer's limit of unpaid orders. An order
// admitted whose submit then fails (names exhausted, a crash) never
// appears, and stops counting after Config.OrphanReservationAge.
func (h *Orders) admit(ctx context.Context, buyer domain.UserID, order domain.OrderID) error {
	err := h.names.Admit(ctx, buyer, order, h.cfg.MaxUnpaidOrders, func(ctx context.Context, u reservations.Unpaid) (bool, error) {
		o, _, err := h.orders.Get(ctx, string(u.OrderID))
		if err != nil {
			return false, err
		}
		now := h.cfg.Now()
		if !o.Exists() { // its submit is running, or died before appending
			return now.Sub(u.AdmittedAt) <= h.cfg.OrphanReservationAge, nil
		}
		return o.BuyerID == buyer && o.HoldsUnpaidName(now, h.cfg.NameGrace), nil
	})
	var le *reservations.LimitError
	if errors.As(err, &le) {
		ids := make([]string, len(le.Orders))
		for i, o := range le.Orders {
			ids[i] = string(o)
		}
		return domain.ErrTooManyUnpaidOrders.With("", map[string]any{"buyer_id": string(buyer), "limit": le.Limit, "order_ids": ids})
	}
	return err
}

// reserveName finds a free depositor name for buyerName and reserves it for
// order. Suffixes are tried in an order derived from the order ID, so a
// retried submit finds its own reservation first; at most
// Config.NameProbes of them.
func (h *Orders) reserveName(ctx context.Context, buyerName string, order domain.OrderID) (string, error) {
	for _, suffix := range domain.SuffixOrder(string(order), h.cfg.NameProbes) {
		name := domain.DepositorName(buyerName, suffix, h.cfg.DepositorNameMax)
		err := h.names.Reserve(ctx, name, order)
		if err == nil {
			return name, nil
		}
		var taken *reservations.TakenError
		if !errors.As(err, &taken) {
			return "", err
		}
		stale, err := h.staleHolder(ctx, name, taken.Holder)
		if err != nil {
			return "", err
		}
		if !stale {
			continue
		}
		switch err := h.names.TakeOver(ctx, name, order, taken.Revision); {
		case err == nil:
			h.log.Info().Str("order_id", string(order)).Str("previous_order_id", string(taken.Holder.OrderID)).Msg("took over a stale depositor-name reservation")
			return name, nil
		case !errors.Is(err, reservations.ErrTaken): // another submit won the takeover: next suffix
			return "", err
		}
	}
	return "", domain.ErrDepositorNamesExhausted.With("", map[string]any{"buyer_name": buyerName, "tried": h.cfg.NameProbes})
}

// staleHolder reports whether a reservation no longer protects anything: its
// order is closed or holds another name, or it never appeared.
func (h *Orders) staleHolder(ctx context.Context, name string, holder reservations.Holder) (bool, error) {
	o, _, err := h.orders.Get(ctx, string(holder.OrderID))
	if err != nil {
		return false, err
	}
	switch {
	case !o.Exists():
		return h.cfg.Now().Sub(holder.ReservedAt) > h.cfg.OrphanReservationAge, nil
	case !domain.SameName(o.DepositorName, name):
		return true, nil
	case o.Status == domain.StatusAwaitingDeposit && o.ExpiresAt.IsZero() && !h.cfg.Now().Before(o.ExpiryTime(h.cfg.PaymentDeadline)):
		// Submitted before orders expired, so no expiry was armed for it,
		// and overdue: arm it now (at once; it waits for the scan itself).
		if err := h.timers.Arm(ctx, TimerExpireOrder, string(o.ID), h.Now(), nil); err != nil {
			return false, err
		}
		return false, nil
	case o.Status.Open():
		return false, nil
	}
	// Closed: domain.Order.KeepsName (as releaseName waits). Within the
	// grace the scan need not be asked.
	now := h.cfg.Now()
	if o.KeepsName(now, endOfTime, h.cfg.NameGrace) {
		return false, nil
	}
	wm, err := h.marks.Watermark(ctx, h.cfg.CollectAccount.Number)
	if err != nil {
		return false, err
	}
	return !o.KeepsName(now, wm, h.cfg.NameGrace), nil
}

// endOfTime is a watermark past every time: a scan that covers all.
var endOfTime = time.Unix(1<<62, 0)

// NameKeeper returns the rule RestoreNames keeps names by: whether order o
// still needs its depositor name (domain.Order.KeepsName, as staleHolder
// and releaseName keep it) as of now and the bank scan's watermark, both
// read once.
func (h *Orders) NameKeeper(ctx context.Context) (func(o domain.Order) bool, error) {
	wm, err := h.marks.Watermark(ctx, h.cfg.CollectAccount.Number)
	if err != nil {
		return nil, err
	}
	now, grace := h.cfg.Now(), h.cfg.NameGrace
	return func(o domain.Order) bool { return o.KeepsName(now, wm, grace) }, nil
}

// RestoreNames reserves again the depositor name of every order of orders
// that still needs it, as staleHolder keeps a name: an open order's, and a
// closed order's through the name grace and until the bank scan has
// covered it; and counts the orders that hold an unpaid name against their
// buyers' limit of unpaid orders again. It is for a depositor-name bucket that lost its entries
// (engine start): reserving a name its own order holds only renews it. A
// name another order holds now is left to it, and returned in taken
// (order IDs, "holder/order"): that order was given the name while the
// bucket was empty, and a transfer under it may pay either. keeps is the
// rule (NameKeeper) the caller chose the orders by, so that both decide as
// of one clock reading.
func (h *Orders) RestoreNames(ctx context.Context, orders []domain.Order, keeps func(domain.Order) bool) (restored int, taken []string, err error) {
	now := h.cfg.Now()
	for _, o := range orders {
		if !keeps(o) {
			continue // no name, or released (or it would be taken over as stale)
		}
		if o.HoldsUnpaidName(now, h.cfg.NameGrace) {
			// Counted against its buyer's limit again; the next submit of
			// the buyer drops it once it no longer counts.
			if err := h.names.Admit(ctx, o.BuyerID, o.ID, math.MaxInt, func(context.Context, reservations.Unpaid) (bool, error) { return true, nil }); err != nil {
				return restored, taken, fmt.Errorf("restore order %s in its buyer's unpaid orders: %w", o.ID, err)
			}
		}
		err := h.names.Reserve(ctx, o.DepositorName, o.ID)
		var held *reservations.TakenError
		switch {
		case err == nil:
			restored++
		case errors.As(err, &held):
			h.log.Error().Str("order_id", string(o.ID)).Str("holder_order_id", string(held.Holder.OrderID)).Str("depositor_name", o.DepositorName).
				Msg("restoring depositor names: another order was given this order's name while the names were lost; a transfer under it may pay either: check both")
			taken = append(taken, string(held.Holder.OrderID)+"/"+string(o.ID))
		default:
			return restored, taken, fmt.Errorf("restore the depositor name of order %s: %w", o.ID, err)
		}
	}
	return restored, taken, nil
}

// Get returns order id as recorded (Version 0 if it never was).
func (h *Orders) Get(ctx context.Context, id domain.OrderID) (domain.Order, error) {
	o, _, err := h.orders.Get(ctx, string(id))
	return o, err
}

// CancelOrder cancels an order. Deposited false cancels an unpaid order at
// once. Deposited true reserves the cancellation: it becomes final at
// submitted_at + the cancel window, once the bank scan has covered that time,
// and a deposit that arrives meanwhile is refunded to the buyer's wallet. A
// paid order is cancelled and its paid amount refunded to the wallet.
func (h *Orders) CancelOrder(ctx context.Context, meta Meta, req api.CancelOrderRequest) (api.CancelOrderReply, error) {
	if err := req.Validate(); err != nil {
		return api.CancelOrderReply{}, err
	}
	now := h.Now()
	out, err := h.orders.Execute(ctx, meta, req.OrderID, func(o domain.Order) ([]domain.Event, error) {
		return domain.DecideCancel(o, domain.CancelOrder{OrderID: domain.OrderID(req.OrderID), Deposited: *req.Deposited, Reason: req.Reason, Now: now})
	}, func(events []domain.Event) error {
		// The timer is armed before the reservation is stored, so every
		// stored reservation has one (a timer without a reservation does nothing).
		for _, e := range events {
			if r, ok := e.(domain.OrderCancelReserved); ok {
				return h.timers.Arm(ctx, TimerFinaliseCancel, string(r.OrderID), r.CancelAt, nil)
			}
		}
		return nil
	})
	if err != nil {
		return api.CancelOrderReply{}, err
	}
	for _, e := range out.Events {
		// A cancel time already past when the reservation was stored (a
		// late cancel, or an append that took that long) let the timer
		// fire before it: on another instance, it found nothing reserved
		// and was done. Armed again now that the reservation is stored
		// (a firing too many finds nothing to do).
		if r, ok := e.(domain.OrderCancelReserved); ok && !r.CancelAt.After(h.Now()) {
			if err := h.timers.Arm(ctx, TimerFinaliseCancel, string(r.OrderID), r.CancelAt, nil); err != nil {
				h.log.Error().Err(err).Str("order_id", string(r.OrderID)).
					Msg("could not arm the reserved cancellation's timer again after storing it; the next engine start arms it")
			}
		}
	}
	o := out.State
	rep := api.CancelOrderReply{OrderID: string(o.ID), Status: o.Status, Written: written(out.Seq)}
	if o.Status == domain.StatusCancelReserved {
		rep.CancelAt = domain.FormatTime(o.CancelAt)
	}
	for _, e := range out.Events {
		if r, ok := e.(domain.OrderRefunded); ok {
			seq, err := h.wallets.SettleRefund(ctx, meta, r)
			if err != nil {
				return api.CancelOrderReply{}, err
			}
			rep.Seq = max(rep.Seq, api.Seq(seq))
			rep.Refund = &api.Refund{To: "wallet", Amount: r.Amount}
		}
	}
	h.log.Info().Str("order_id", req.OrderID).Str("status", string(o.Status)).Str("correlation_id", meta.CorrelationID).Uint64("seq", uint64(out.Seq)).Msg("order cancel")
	return rep, nil
}

// TimerFinaliseCancel is the timer kind of reserved cancellations.
const TimerFinaliseCancel = "order_cancel"

// FinaliseCancel is what a due cancellation timer runs. It cancels a
// cancel-reserved order once the bank scan is known complete up to its cancel
// time; before that it returns how long to wait before looking again. An order
// no longer cancel-reserved needs nothing. It is idempotent: timers fire at
// least once.
func (h *Orders) FinaliseCancel(ctx context.Context, orderID string) (time.Duration, error) {
	wm, err := h.marks.Watermark(ctx, h.cfg.CollectAccount.Number)
	if err != nil {
		return 0, err
	}
	now := h.Now()
	meta := Meta{Command: "timer." + TimerFinaliseCancel, CorrelationID: h.NewID(), Actor: domain.ActorTimer}
	out, err := h.orders.Execute(ctx, meta, orderID, func(o domain.Order) ([]domain.Event, error) {
		return domain.FinaliseCancel(o, wm, now)
	}, nil)
	if errors.Is(err, domain.ErrNotDue) {
		h.log.Debug().Str("order_id", orderID).Time("watermark", wm).Msg("cancellation waits for the bank scan")
		return h.cfg.FinaliseRetry, nil
	}
	if err != nil {
		return 0, err
	}
	if len(out.Events) > 0 {
		h.log.Info().Str("order_id", orderID).Uint64("seq", uint64(out.Seq)).Str("correlation_id", meta.CorrelationID).Msg("reserved cancellation final")
	}
	return 0, nil
}

// TimerExpireOrder is the timer kind of an order's own timer: its payment
// deadline, then, once it is closed, the end of its name grace.
const TimerExpireOrder = "order_expire"

// ExpireOrder is what an order's due timer runs. It expires an order still
// awaiting its deposit once its deadline has passed and the bank scan is
// known complete up to it; before that it returns how long to wait before
// looking again (until the deadline, or Config.FinaliseRetry for the
// scan). A closed order (paid, cancelled or expired, this time or before)
// has its depositor name released once the name grace has passed
// (releaseName), its timer armed again for then until it has; so is a
// cancel-reserved one, once its own timer has closed it. It is idempotent:
// timers fire at least once.
func (h *Orders) ExpireOrder(ctx context.Context, orderID string) (time.Duration, error) {
	wm, err := h.marks.Watermark(ctx, h.cfg.CollectAccount.Number)
	if err != nil {
		return 0, err
	}
	now := h.Now()
	meta := Meta{Command: "timer." + TimerExpireOrder, CorrelationID: h.NewID(), Actor: domain.ActorTimer}
	var at time.Time
	out, err := h.orders.Execute(ctx, meta, orderID, func(o domain.Order) ([]domain.Event, error) {
		at = o.ExpiryTime(h.cfg.PaymentDeadline)
		return domain.DecideExpire(o, domain.ExpiryCheck{Watermark: wm, Now: now, Deadline: h.cfg.PaymentDeadline})
	}, nil)
	if errors.Is(err, domain.ErrNotDue) {
		if now.Before(at) {
			return at.Sub(now), nil
		}
		h.log.Debug().Str("order_id", orderID).Time("watermark", wm).Msg("expiry waits for the bank scan")
		return h.cfg.FinaliseRetry, nil
	}
	if err != nil {
		return 0, err
	}
	if len(out.Events) > 0 {
		h.log.Info().Str("order_id", orderID).Uint64("seq", uint64(out.Seq)).Str("correlation_id", meta.CorrelationID).Msg("order expired unpaid")
	}
	return h.releaseName(ctx, out.State, wm, now)
}

// maxReleaseRetry bounds how long a closed order's timer waits before it
// looks at the scan again: a scan that catches up after an outage releases
// the name within it.
const maxReleaseRetry = time.Hour

// releaseName frees the depositor name of order o, if o is closed, once its
// name grace has passed and the bank scan is known complete up to the
// grace's end: a deposit under the name dated within the grace is then
// already recorded (refunded to the buyer's wallet), and the name's
// reservation protects nothing. Before the grace ends it arms the order's
// timer again for then, and while the scan lags for later.
// A cancel-reserved order is closed by its own timer: the order's timer
// looks again a grace after its cancel time. The release leaves a purge
// marker that expires (reservations.Release), so names used once do not
// accumulate in the bucket; the order leaves its buyer's unpaid orders too,
// and a buyer left with none leaves the bucket the same way
// (reservations.Store.Forget). A name another order took over (after the
// grace, reserveName) stays that order's.
func (h *Orders) releaseName(ctx context.Context, o domain.Order, wm, now time.Time) (time.Duration, error) {
	switch {
	case !o.Exists() || o.DepositorName == "":
		return 0, nil
	case o.Status == domain.StatusCancelReserved:
		at := o.CancelAt.Add(h.cfg.NameGrace)
		if floor := now.Add(h.cfg.FinaliseRetry); at.Before(floor) {
			at = floor
		}
		return 0, h.timers.Arm(ctx, TimerExpireOrder, string(o.ID), at, nil)
	case o.Status.Open():
		return 0, nil
	}
	due := o.ClosedAt.Add(h.cfg.NameGrace)
	if now.Before(due) {
		return 0, h.timers.Arm(ctx, TimerExpireOrder, string(o.ID), due, nil)
	}
	if !wm.After(due) { // a transfer dated at due may not be recorded yet: domain.Order.KeepsName
		// Looked at again by a new schedule, not by holding this firing:
		// where the scan lags long, or nothing reports it, every closed
		// order would hold an unacknowledged firing. After
		// Config.FinaliseRetry, or as long as the grace has been over (at
		// most maxReleaseRetry), whichever is longer.
		wait := min(max(h.cfg.FinaliseRetry, now.Sub(due)), maxReleaseRetry)
		h.log.Debug().Str("order_id", string(o.ID)).Time("watermark", wm).Dur("retry_in", wait).Msg("the release of a depositor name waits for the bank scan")
		return 0, h.timers.Arm(ctx, TimerExpireOrder, string(o.ID), now.Add(wait), nil)
	}
	if err := h.names.Release(ctx, o.DepositorName, o.ID); err != nil {
		return 0, err
	}
	// Nor does the order count against its buyer's unpaid orders any more.
	if err := h.names.Forget(ctx, o.BuyerID, o.ID); err != nil {
		return 0, err
	}
	h.log.Debug().Str("order_id", string(o.ID)).Msg("depositor name released after the name grace")
	return 0, nil
}

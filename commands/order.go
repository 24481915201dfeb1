package commands

import (
	"context"
	"errors"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/reservations"
)

// SubmitOrderRequest is the body of bankbook.cmd.order.submit.
type SubmitOrderRequest struct {
	BuyerID   string `json:"buyer_id"`
	BuyerName string `json:"buyer_name"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency,omitempty"`
	OrderID   string `json:"order_id,omitempty"`
}

// SubmitOrderReply is the reply of bankbook.cmd.order.submit.
type SubmitOrderReply struct {
	OrderID        string             `json:"order_id"`
	Status         domain.OrderStatus `json:"status"`
	DepositorName  string             `json:"depositor_name"`
	CollectAccount domain.BankAccount `json:"collect_account"`
	Amount         int64              `json:"amount"`
	Currency       domain.Currency    `json:"currency"`
	SubmittedAt    string             `json:"submitted_at"`
	CancelWindowS  int64              `json:"cancel_window_s"`
	// Seq is the stream sequence of the commit, for read-your-writes.
	Seq eventstore.Seq `json:"-"`
}

// Validate checks the request fields. OrderID may be empty here; the caller
// fills it in before SubmitOrder.
func (r SubmitOrderRequest) Validate() error {
	var errs []error
	if r.OrderID != "" {
		errs = append(errs, domain.ValidateID("order_id", r.OrderID))
	}
	errs = append(errs, domain.ValidateID("buyer_id", r.BuyerID), domain.ValidateBuyerName(r.BuyerName))
	if _, err := domain.NewMoney(r.Amount, r.Currency); err != nil {
		errs = append(errs, err)
	}
	for _, err := range errs {
		if err != nil {
			return err // the first problem, in field order
		}
	}
	return nil
}

// SubmitOrder creates an order awaiting a bank transfer and reserves its
// depositor name. req.OrderID must be set (the caller generates one when the
// client did not).
func (h *Handler) SubmitOrder(ctx context.Context, meta Meta, req SubmitOrderRequest) (SubmitOrderReply, error) {
	if req.OrderID == "" {
		return SubmitOrderReply{}, domain.Invalid("order_id", "is required")
	}
	if err := req.Validate(); err != nil {
		return SubmitOrderReply{}, err
	}
	money, _ := domain.NewMoney(req.Amount, req.Currency)
	id := domain.OrderID(req.OrderID)

	// An earlier attempt with this key may have appended already: answer
	// from its events without reserving anything.
	if meta.Resumed {
		snap, prior, err := h.orders.catchUp(ctx, h, req.OrderID, snapshot[domain.Order]{}, meta)
		if err != nil || prior != nil {
			return submitReply(deref(prior)), err
		}
		if snap.state.Exists() {
			return SubmitOrderReply{}, domain.ErrOrderExists.With("", map[string]any{"order_id": req.OrderID})
		}
		meta.Resumed = false // read just now; execute still checks every later read
	}
	name, err := h.reserveName(ctx, req.BuyerName, id)
	if err != nil {
		return SubmitOrderReply{}, err
	}
	// A failure from here on leaves the reservation in place; it points at an
	// order that does not exist and is taken over after OrphanReservationAge.
	out, err := execute(ctx, h, meta, h.orders, req.OrderID, func(o domain.Order) ([]domain.Event, error) {
		return domain.DecideSubmit(o, domain.SubmitOrder{
			OrderID:        id,
			BuyerID:        domain.UserID(req.BuyerID),
			BuyerName:      req.BuyerName,
			Amount:         money,
			DepositorName:  name,
			CollectAccount: h.cfg.CollectAccount,
			CancelWindow:   h.cfg.CancelWindow,
			Now:            h.cfg.Now().UTC().Truncate(time.Microsecond),
		})
	})
	if err != nil {
		return SubmitOrderReply{}, err
	}
	h.log.Info().Str("order_id", req.OrderID).Str("correlation_id", meta.CorrelationID).Uint64("seq", uint64(out.seq)).Msg("order submitted")
	return submitReply(out), nil
}

func submitReply(out outcome[domain.Order]) SubmitOrderReply {
	o := out.state
	return SubmitOrderReply{
		OrderID:        string(o.ID),
		Status:         domain.StatusAwaitingDeposit,
		DepositorName:  o.DepositorName,
		CollectAccount: o.CollectAccount,
		Amount:         o.Amount.Amount,
		Currency:       o.Amount.Currency,
		SubmittedAt:    domain.FormatTime(o.SubmittedAt),
		CancelWindowS:  int64(o.CancelWindow / time.Second),
		Seq:            out.seq,
	}
}

// reserveName finds a free depositor name for buyerName and reserves it for
// order. Suffixes are tried in an order derived from the order ID, so a
// retried submit finds its own reservation first.
func (h *Handler) reserveName(ctx context.Context, buyerName string, order domain.OrderID) (string, error) {
	for _, suffix := range domain.SuffixOrder(string(order)) {
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
	return "", domain.ErrDepositorNamesExhausted.With("", map[string]any{"buyer_name": buyerName})
}

// staleHolder reports whether a reservation no longer protects anything: its
// order is closed or holds another name, or it never appeared.
func (h *Handler) staleHolder(ctx context.Context, name string, holder reservations.Holder) (bool, error) {
	o, err := h.orders.current(ctx, h, string(holder.OrderID))
	if err != nil {
		return false, err
	}
	if !o.Exists() {
		return h.cfg.Now().Sub(holder.ReservedAt) > h.cfg.OrphanReservationAge, nil
	}
	return !o.Status.Open() || domain.NormalizeName(o.DepositorName) != domain.NormalizeName(name), nil
}

// CancelOrderRequest is the body of bankbook.cmd.order.cancel.
type CancelOrderRequest struct {
	OrderID   string `json:"order_id"`
	Deposited *bool  `json:"deposited"`
	Reason    string `json:"reason,omitempty"`
}

// Refund says where money went back to.
type Refund struct {
	To     string `json:"to"`
	Amount int64  `json:"amount"`
}

// CancelOrderReply is the reply of bankbook.cmd.order.cancel.
type CancelOrderReply struct {
	OrderID  string             `json:"order_id"`
	Status   domain.OrderStatus `json:"status"`
	CancelAt string             `json:"cancel_at,omitempty"`
	Refund   *Refund            `json:"refund,omitempty"`
	Seq      eventstore.Seq     `json:"-"`
}

// Validate checks the request fields.
func (r CancelOrderRequest) Validate() error {
	if err := domain.ValidateID("order_id", r.OrderID); err != nil {
		return err
	}
	if r.Deposited == nil {
		return domain.Invalid("deposited", "is required: say whether the buyer has already transferred the money")
	}
	return domain.ValidateReason(r.Reason)
}

// CancelOrder cancels an order. With Deposited false the order is cancelled
// at once and its depositor name released.
func (h *Handler) CancelOrder(ctx context.Context, meta Meta, req CancelOrderRequest) (CancelOrderReply, error) {
	if err := req.Validate(); err != nil {
		return CancelOrderReply{}, err
	}
	if *req.Deposited {
		return CancelOrderReply{}, ErrNotImplemented
	}
	out, err := execute(ctx, h, meta, h.orders, req.OrderID, func(o domain.Order) ([]domain.Event, error) {
		return domain.DecideCancel(o, domain.CancelOrder{OrderID: domain.OrderID(req.OrderID), Reason: req.Reason, Now: h.cfg.Now().UTC().Truncate(time.Microsecond)})
	})
	if err != nil {
		return CancelOrderReply{}, err
	}
	o := out.state
	if err := h.names.Release(ctx, o.DepositorName, o.ID); err != nil {
		// The reservation is taken over later by staleHolder; nothing is lost.
		h.log.Warn().Err(err).Str("order_id", req.OrderID).Msg("release depositor name")
	}
	h.log.Info().Str("order_id", req.OrderID).Str("correlation_id", meta.CorrelationID).Uint64("seq", uint64(out.seq)).Msg("order cancelled")
	return CancelOrderReply{OrderID: string(o.ID), Status: o.Status, Seq: out.seq}, nil
}

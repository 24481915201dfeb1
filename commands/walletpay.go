package commands

import (
	"context"
	"errors"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// PayFromWallet pays an order awaiting its payment with its buyer's wallet
// balance (DOMAIN.md §3: the wallet is spent on orders), in two steps on two
// aggregates: the wallet spends the amount on the order (wallet.spent, a
// compare-and-swap on the wallet, so it never goes below zero, also under
// concurrent payments and withdrawals), then the order takes it (order.paid
// from liabilities:wallet-payments:pending). An order that stopped awaiting
// its payment in between (paid by a transfer, cancelled, expired) does not
// take it, and the money goes back to the wallet (payment_reversal); the
// command then answers wrong_state. The money process manager completes
// the second step of every wallet.spent too (CompleteWalletPayment), so a
// command that died between the steps leaves nothing behind.
//
// It is idempotent per order: a wallet pays an order once, and paying an
// order paid from the wallet already answers as the first time.
func (h *Orders) PayFromWallet(ctx context.Context, meta Meta, req api.PayFromWalletRequest) (api.PayFromWalletReply, error) {
	if err := req.Validate(); err != nil {
		return api.PayFromWalletReply{}, err
	}
	o, _, err := h.orders.Get(ctx, req.OrderID)
	if err != nil {
		return api.PayFromWalletReply{}, err
	}
	// Refused before the wallet is touched: an order that does not await
	// its payment moves no money.
	if _, err := domain.DecidePayFromWallet(o, o.BuyerID, o.Amount.Amount, h.Now()); err != nil {
		return api.PayFromWalletReply{}, err
	}
	spend := domain.Spend{UserID: o.BuyerID, OrderID: o.ID, Amount: o.Amount.Amount, Now: h.Now()}
	out, err := h.wallets.wallets.Execute(ctx, meta, string(o.BuyerID), func(w domain.Wallet) ([]domain.Event, error) {
		return domain.DecideSpend(w, spend)
	}, nil)
	if err != nil {
		return api.PayFromWalletReply{}, err
	}
	// Spent on this order before, by another request (a request with this
	// key that spent it finds its own wallet.spent instead): an order paid
	// so and cancelled since is not paid any more, and is refused like any
	// cancelled order. Otherwise the reply has the wallet's balance after
	// the payment, or now for a payment made before.
	if len(out.Events) == 0 && o.PaidFromWallet() && o.Status != domain.StatusPaid {
		return api.PayFromWalletReply{}, domain.ErrWrongState.With("the order was paid from the wallet and is "+string(o.Status)+" since",
			map[string]any{"order_id": string(o.ID), "status": string(o.Status)})
	}
	balance := out.State.Balance
	seq, err := h.CompleteWalletPayment(ctx, meta, domain.WalletSpent{UserID: spend.UserID, Amount: spend.Amount, OrderID: spend.OrderID, SpentAt: spend.Now})
	if err != nil {
		return api.PayFromWalletReply{}, err
	}
	h.log.Info().Str("order_id", req.OrderID).Str("user_id", string(o.BuyerID)).Int64("amount", spend.Amount).Uint64("seq", uint64(seq)).Msg("order paid from the wallet")
	return api.PayFromWalletReply{OrderID: req.OrderID, Status: domain.StatusPaid, Amount: spend.Amount, WalletBalance: balance, Written: written(max(seq, out.Seq))}, nil
}

// CompleteWalletPayment carries out the second step of a wallet's payment
// of an order (wallet.spent): the order takes the money, or, if it no
// longer awaits its payment (or is not the wallet's user's, or is for
// another amount), the money goes back to the wallet, once
// (payment_reversal). It is idempotent; PayFromWallet runs it, and the
// money process manager runs it again for every wallet.spent. It returns
// the sequence of the commit that took the money, or, with the order's
// refusal, of the credit that returned it.
func (h *Orders) CompleteWalletPayment(ctx context.Context, meta Meta, e domain.WalletSpent) (eventstore.Seq, error) {
	out, err := h.orders.Execute(ctx, meta, string(e.OrderID), func(o domain.Order) ([]domain.Event, error) {
		return domain.DecidePayFromWallet(o, e.UserID, e.Amount, h.Now())
	}, nil)
	// Only the order's own refusal returns the money. An order that cannot
	// be read (a damaged commit in its history) has refused nothing: it may
	// have taken the payment already, and takes it once the commit is set
	// aside; the money waits in wallet payments meanwhile.
	var refused *domain.Error
	if err == nil || errors.Is(err, ErrAggregateDamaged) || !errors.As(err, &refused) || refused.Kind == domain.KindInvalid {
		return out.Seq, err
	}
	seq, cerr := h.wallets.Credit(ctx, meta, domain.CreditWallet{UserID: e.UserID, Amount: e.Amount, Kind: domain.CreditPaymentReversal,
		Ref: domain.PaymentReversalRef(e.OrderID), OrderID: e.OrderID, FromAccount: domain.AccountWalletPayments, Now: h.Now()})
	if cerr != nil {
		return 0, cerr
	}
	h.log.Info().Str("order_id", string(e.OrderID)).Str("user_id", string(e.UserID)).Int64("amount", e.Amount).Str("reason", refused.Code).
		Msg("the order did not take the wallet's payment: returned to the wallet")
	return seq, &PaymentReturnedError{Refusal: refused, Seq: seq}
}

// PaymentReturnedError is CompleteWalletPayment's answer when the order did
// not take the wallet's payment: the money is back in the wallet (at Seq).
// It wraps the order's refusal.
type PaymentReturnedError struct {
	Refusal *domain.Error
	Seq     eventstore.Seq
}

func (e *PaymentReturnedError) Error() string {
	return "the order did not take the wallet's payment (" + e.Refusal.Error() + "); it was returned to the wallet"
}

// Unwrap returns the order's refusal, so that the command answers with it.
func (e *PaymentReturnedError) Unwrap() error { return e.Refusal }

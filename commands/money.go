package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/firmbanking"
)

// Withdraw debits the wallet (never below zero, also under concurrent
// withdrawals: the debit is a compare-and-swap on the wallet) and hands the
// payout to the firm-banking provider. The provider's answer comes later:
// settled (the fee is the company's) or failed (the money returns to the
// wallet).
func (h *Handler) Withdraw(ctx context.Context, meta Meta, req api.WithdrawRequest) (api.WithdrawReply, error) {
	if err := req.Validate(); err != nil {
		return api.WithdrawReply{}, err
	}
	if err := domain.ValidateID("payout_id", req.PayoutID); err != nil {
		return api.WithdrawReply{}, err
	}
	now := h.cfg.Now().UTC().Truncate(time.Microsecond)
	out, err := execute(ctx, h, meta, h.wallets, req.UserID, func(w domain.Wallet) ([]domain.Event, error) {
		return domain.DecideWithdraw(w, domain.Withdraw{UserID: domain.UserID(req.UserID), Amount: req.Amount, PayoutID: domain.PayoutID(req.PayoutID), To: req.BankAccount, Now: now})
	}, nil)
	if err != nil {
		return api.WithdrawReply{}, err
	}
	h.log.Info().Str("user_id", req.UserID).Str("payout_id", req.PayoutID).Int64("amount", req.Amount).Uint64("seq", uint64(out.seq)).Msg("withdrawal requested")
	return api.WithdrawReply{PayoutID: req.PayoutID, Status: "requested", Written: written(out.seq)}, nil
}

// ResolveDeposit resolves an orphan deposit in one step: assign it to an
// order (which it pays, or, if that order no longer takes it, whose buyer's
// wallet it credits), refund it to a user's wallet, or refund it to the
// sender's bank account through firm banking. The resolution is recorded on
// the deposit first — an orphan is resolved once — and then carried out,
// here and, should this instance die, by the money reactor.
func (h *Handler) ResolveDeposit(ctx context.Context, meta Meta, req api.ResolveDepositRequest) (api.ResolveDepositReply, error) {
	if err := req.Validate(); err != nil {
		return api.ResolveDepositReply{}, err
	}
	d, err := h.deposits.current(ctx, h, req.DepositID)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	if !d.Exists() {
		return api.ResolveDepositReply{}, domain.ErrDepositNotFound.With("", map[string]any{"deposit_id": req.DepositID})
	}
	now := h.cfg.Now().UTC().Truncate(time.Microsecond)
	res := domain.DepositResolved{DepositID: d.ID, Action: req.Action, ResolvedAt: now}
	switch req.Action {
	case domain.ResolveAssignOrder:
		// Refuse up front what the order would refuse.
		o, err := h.orders.current(ctx, h, req.OrderID)
		if err != nil {
			return api.ResolveDepositReply{}, err
		}
		if _, _, err := domain.DecideDeposit(o, domain.ApplyDeposit{DepositID: d.ID, Amount: d.Amount, FromAccount: domain.AccountSuspense, DepositedAt: now, Now: now, NameGrace: h.cfg.NameGrace}); err != nil {
			return api.ResolveDepositReply{}, err
		}
		res.OrderID = domain.OrderID(req.OrderID)
	case domain.ResolveRefundToWallet:
		res.UserID = domain.UserID(req.UserID)
	case domain.ResolveRefundToBank:
		if err := domain.ValidateID("payout_id", req.PayoutID); err != nil {
			return api.ResolveDepositReply{}, err
		}
		res.PayoutID, res.To = domain.PayoutID(req.PayoutID), req.BankAccount
	}
	out, err := execute(ctx, h, meta, h.deposits, req.DepositID, func(d domain.Deposit) ([]domain.Event, error) {
		return domain.DecideResolve(d, res)
	}, nil)
	if err != nil {
		return api.ResolveDepositReply{}, err
	}
	d = out.state // the resolution as recorded
	rep := api.ResolveDepositReply{DepositID: req.DepositID, Outcome: d.Resolution, OrderID: string(d.OrderID), UserID: string(d.UserID), PayoutID: string(d.PayoutID), Written: written(out.seq)}
	for _, e := range out.events {
		if r, ok := e.(domain.DepositResolved); ok && r.Action != domain.ResolveRefundToBank {
			seq, err := h.carryOutResolution(ctx, meta, r)
			if err != nil {
				return api.ResolveDepositReply{}, err
			}
			rep.Seq = max(rep.Seq, api.Seq(seq))
		}
	}
	h.log.Info().Str("deposit_id", req.DepositID).Str("action", req.Action).Uint64("seq", uint64(out.seq)).Msg("orphan deposit resolved")
	return rep, nil
}

// carryOutResolution moves a resolved orphan's money out of suspense: to the
// order it was assigned to, or to a wallet. Idempotent.
func (h *Handler) carryOutResolution(ctx context.Context, meta Meta, r domain.DepositResolved) (eventstore.Seq, error) {
	now := h.cfg.Now().UTC().Truncate(time.Microsecond)
	if r.Action == domain.ResolveRefundToWallet {
		return h.settleCredit(ctx, meta, domain.CreditWallet{UserID: r.UserID, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: now})
	}
	var buyer domain.UserID
	out, err := execute(ctx, h, meta, h.orders, string(r.OrderID), func(o domain.Order) ([]domain.Event, error) {
		buyer = o.BuyerID
		events, _, err := domain.DecideDeposit(o, domain.ApplyDeposit{DepositID: r.DepositID, Amount: r.Amount, FromAccount: domain.AccountSuspense, DepositedAt: r.ResolvedAt, Now: now, NameGrace: h.cfg.NameGrace})
		return events, err
	}, nil)
	if errors.Is(err, domain.ErrOrderGone) || errors.Is(err, domain.ErrAmountMismatch) {
		// The order changed since the operator chose it: its buyer gets the money.
		return h.settleCredit(ctx, meta, domain.CreditWallet{UserID: buyer, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: now})
	}
	if err != nil {
		return 0, err
	}
	seq := out.seq
	for _, e := range out.events {
		if rf, ok := e.(domain.OrderRefunded); ok {
			s, err := h.settleRefund(ctx, meta, rf)
			if err != nil {
				return 0, err
			}
			seq = max(seq, s)
		}
	}
	return seq, nil
}

// Payouts is a firm-banking provider (firmbanking.Client).
type Payouts = firmbanking.Provider

// ReactToMoney carries out, for every wallet and deposit commit, what must
// follow for sure: withdrawals and refunds to the bank are sent through the
// provider and their result recorded (a failed one returns the money), and
// resolved orphans are paid out of suspense. It runs through a reactor
// shared by all instances; every step is idempotent.
func (h *Handler) ReactToMoney(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		meta := Meta{Command: "reactor.money", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
		switch e := ev.(type) {
		case domain.WalletDebited:
			err = h.processPayout(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: e.To, PayFrom: h.cfg.CollectAccount.Number,
				Source: domain.PayoutFromWallet, SourceID: string(e.UserID), FromAccount: domain.AccountWallet(e.UserID), RequestedAt: e.DebitAt})
		case domain.DepositResolved:
			if e.Action == domain.ResolveRefundToBank {
				// The money goes back from the account it arrived on.
				var d domain.Deposit
				if d, err = h.deposits.current(ctx, h, string(e.DepositID)); err == nil {
					err = h.processPayout(ctx, meta, domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: *e.To, PayFrom: d.AccountNumber,
						Source: domain.PayoutFromDeposit, SourceID: string(e.DepositID), FromAccount: domain.AccountSuspense, RequestedAt: e.ResolvedAt})
				}
			} else {
				_, err = h.carryOutResolution(ctx, meta, e)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// processPayout records the payout, has the provider send it (idempotent
// on the payout ID: a resend after a lost answer never sends twice), records
// the final result once, and returns the money of a failed payout to its
// source. A payout still pending at the provider returns an error, so the
// reactor tries again later.
func (h *Handler) processPayout(ctx context.Context, meta Meta, req domain.PayoutRequested) error {
	out, err := execute(ctx, h, meta, h.payoutAgg, string(req.PayoutID), func(p domain.Payout) ([]domain.Event, error) {
		return domain.DecideRequestPayout(p, req)
	}, nil)
	if err != nil {
		return err
	}
	p := out.state
	if p.Status == domain.PayoutRequestedStatus && h.payouts == nil {
		return fmt.Errorf("payout %s stays requested: no firm-banking provider is configured", p.ID)
	}
	if p.Status == domain.PayoutRequestedStatus {
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		res, err := firmbanking.Settle(sctx, h.payouts, firmbanking.Transfer{ID: string(p.ID), Amount: p.Amount, To: p.To, Memo: "bankbook"},
			firmbanking.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Factor: 2, Jitter: true})
		cancel()
		if err != nil {
			return fmt.Errorf("payout %s: %w", p.ID, err)
		}
		now := h.cfg.Now().UTC().Truncate(time.Microsecond)
		var result domain.Event = domain.PayoutSettled{PayoutID: p.ID, Amount: p.Amount, Fee: res.Fee, BankAccount: p.PayFrom, ProviderRef: res.ProviderRef, SettledAt: now}
		if res.Status == firmbanking.StatusFailed {
			result = domain.PayoutFailed{PayoutID: p.ID, Reason: res.Reason, FailedAt: now}
		}
		if out, err = execute(ctx, h, meta, h.payoutAgg, string(p.ID), func(p domain.Payout) ([]domain.Event, error) {
			return domain.DecidePayoutResult(p, result)
		}, nil); err != nil {
			return err
		}
		p = out.state
		h.log.Info().Str("payout_id", string(p.ID)).Str("status", string(p.Status)).Int64("fee", p.Fee).Msg("payout result")
	}
	if p.Status != domain.PayoutFailedStatus {
		return nil
	}
	now := h.cfg.Now().UTC().Truncate(time.Microsecond)
	switch p.Source {
	case domain.PayoutFromWallet:
		_, err = h.settleCredit(ctx, meta, domain.CreditWallet{UserID: domain.UserID(p.SourceID), Amount: p.Amount, Kind: domain.CreditPayoutReversal,
			Ref: "reversal:" + string(p.ID), FromAccount: domain.AccountPayoutsPending, Now: now})
	case domain.PayoutFromDeposit:
		_, err = execute(ctx, h, meta, h.deposits, p.SourceID, func(d domain.Deposit) ([]domain.Event, error) {
			return domain.DecideReopen(d, domain.DepositReopened{DepositID: domain.DepositID(p.SourceID), Amount: p.Amount, PayoutID: p.ID, Reason: p.Reason, ReopenedAt: now})
		}, nil)
	}
	return err
}

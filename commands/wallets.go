package commands

import (
	"context"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// Wallets handles the commands on users' wallets. It is safe for
// concurrent use.
type Wallets struct {
	*Core
	wallets *Repository[domain.Wallet]
}

// Withdraw debits the wallet (never below zero, also under concurrent
// withdrawals: the debit is a compare-and-swap on the wallet) and hands the
// payout to the firm-banking provider. The provider's answer comes later:
// settled (the fee is the company's) or failed (the money returns to the
// wallet).
func (h *Wallets) Withdraw(ctx context.Context, meta Meta, req api.WithdrawRequest) (api.WithdrawReply, error) {
	if err := req.Validate(); err != nil {
		return api.WithdrawReply{}, err
	}
	if err := domain.ValidateID("payout_id", req.PayoutID); err != nil {
		return api.WithdrawReply{}, err
	}
	now := h.Now()
	out, err := h.wallets.Execute(ctx, meta, req.UserID, func(w domain.Wallet) ([]domain.Event, error) {
		return domain.DecideWithdraw(w, domain.Withdraw{UserID: domain.UserID(req.UserID), Amount: req.Amount, PayoutID: domain.PayoutID(req.PayoutID), To: req.BankAccount, Now: now, Min: h.cfg.MinWithdrawal})
	}, nil)
	if err != nil {
		return api.WithdrawReply{}, err
	}
	h.log.Info().Str("user_id", req.UserID).Str("payout_id", req.PayoutID).Int64("amount", req.Amount).Uint64("seq", uint64(out.Seq)).Msg("withdrawal requested")
	return api.WithdrawReply{PayoutID: req.PayoutID, Status: "requested", Written: written(out.Seq)}, nil
}

// Get returns wallet user as recorded (Version 0 if it never was).
func (h *Wallets) Get(ctx context.Context, user domain.UserID) (domain.Wallet, error) {
	w, _, err := h.wallets.Get(ctx, string(user))
	return w, err
}

// Credit credits a wallet once per credit.Ref and returns the sequence of
// the wallet's commit. When the credit was already made (by the money
// process manager, say, while the command's first attempt was dying), a
// command with an Idempotency-Key gets the sequence of the commit that made
// it, so that its reply is the same whenever it is repeated; without a key,
// the wallet's last commit, which covers it too.
func (h *Wallets) Credit(ctx context.Context, meta Meta, credit domain.CreditWallet) (eventstore.Seq, error) {
	already := false
	out, err := h.wallets.Execute(ctx, meta, string(credit.UserID), func(w domain.Wallet) ([]domain.Event, error) {
		already = w.Credited(credit.Ref)
		return domain.DecideCredit(w, credit)
	}, nil)
	if err != nil {
		return 0, err
	}
	if len(out.Events) > 0 {
		h.log.Info().Str("user_id", string(credit.UserID)).Int64("amount", credit.Amount).Str("kind", credit.Kind).Str("ref", credit.Ref).Uint64("seq", uint64(out.Seq)).Msg("wallet credited")
		return out.Seq, nil
	}
	if !already || meta.IdempotencyKey == "" {
		return out.Seq, nil
	}
	var seq eventstore.Seq
	if err := h.wallets.walk(ctx, string(credit.UserID), func(c eventstore.Commit, events []domain.Event) bool {
		for _, e := range events {
			if wc, ok := e.(domain.WalletCredited); ok && wc.Ref == credit.Ref {
				seq = c.Seq
				return true
			}
		}
		return false
	}); err != nil {
		return 0, err
	}
	if seq == 0 {
		seq = out.Seq // not found (a damaged commit set aside): the last one covers it
	}
	return seq, nil
}

// SettleRefund credits the buyer's wallet with an order refund, once (the
// credit is idempotent on the refund's ref), and returns the sequence of
// the wallet's commit.
func (h *Wallets) SettleRefund(ctx context.Context, meta Meta, r domain.OrderRefunded) (eventstore.Seq, error) {
	return h.Credit(ctx, meta, r.WalletCredit(h.Now()))
}

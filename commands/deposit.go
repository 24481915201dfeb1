package commands

import (
	"context"
	"errors"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/reservations"
)

// RecordDeposit records a bank transaction exactly once and does what it
// means: pays the open order its depositor name belongs to; refunds it to the
// buyer's wallet if that order is cancel-reserved, already paid, or closed
// within the name grace; otherwise records it as an orphan with the reason.
//
// The steps touch three aggregates — the order, the wallet, the deposit —
// and each is idempotent on the deposit's ID, so a retry after a crash
// between them (the scanner repeats every transaction until it is recorded)
// completes what the first attempt began and never repeats it. The deposit
// is written last: once it exists, the transaction has been accounted for.
func (h *Handler) RecordDeposit(ctx context.Context, meta Meta, req api.RecordDepositRequest) (api.RecordDepositReply, error) {
	if err := req.Validate(); err != nil {
		return api.RecordDepositReply{}, err
	}
	id := domain.NewDepositID(req.AccountNumber, req.BankTxnID)
	if d, err := h.deposits.latest(ctx, h, string(id)); err != nil {
		return api.RecordDepositReply{}, err
	} else if d.state.Exists() {
		return duplicateReply(d.state, d.seq), nil
	}
	now := h.cfg.Now().UTC().Truncate(time.Microsecond)
	rec := domain.DepositRecorded{
		DepositID: id, BankTxnID: req.BankTxnID, AccountNumber: req.AccountNumber, DepositorName: req.DepositorName,
		Amount: req.Amount, DepositedAt: req.DepositedAt.UTC(), RecordedAt: now,
	}
	if err := h.matchDeposit(ctx, meta, &rec, now); err != nil {
		return api.RecordDepositReply{}, err
	}
	out, err := execute(ctx, h, meta, h.deposits, string(id), func(d domain.Deposit) ([]domain.Event, error) {
		return domain.DecideRecord(d, rec)
	}, nil)
	if err != nil {
		return api.RecordDepositReply{}, err
	}
	if len(out.events) == 0 { // another instance recorded it meanwhile
		return duplicateReply(out.state, out.seq), nil
	}
	h.log.Info().Str("deposit_id", string(id)).Str("bank_txn_id", req.BankTxnID).Str("outcome", string(rec.Outcome)).
		Str("order_id", string(rec.OrderID)).Str("reason", string(rec.Reason)).Uint64("seq", uint64(out.seq)).Msg("deposit recorded")
	return api.RecordDepositReply{DepositID: string(id), Outcome: rec.Outcome, OrderID: string(rec.OrderID), UserID: string(rec.UserID), Reason: rec.Reason, Written: written(out.seq)}, nil
}

func duplicateReply(d domain.Deposit, seq eventstore.Seq) api.RecordDepositReply {
	return api.RecordDepositReply{DepositID: string(d.ID), Outcome: domain.OutcomeDuplicate, OrderID: string(d.OrderID), UserID: string(d.UserID), Reason: d.Reason, Written: written(seq)}
}

// matchDeposit applies the deposit to the order its depositor name belongs
// to (and to the buyer's wallet for a refund), and sets rec's outcome.
func (h *Handler) matchDeposit(ctx context.Context, meta Meta, rec *domain.DepositRecorded, now time.Time) error {
	orphan := func(reason domain.OrphanReason) error {
		rec.Outcome, rec.Reason = domain.OutcomeOrphaned, reason
		return nil
	}
	if domain.NormalizeAccountNumber(rec.AccountNumber) != domain.NormalizeAccountNumber(h.cfg.CollectAccount.Number) {
		return orphan(domain.ReasonUnknownAccount)
	}
	holder, _, err := h.names.Holder(ctx, rec.DepositorName)
	if errors.Is(err, reservations.ErrFree) {
		return orphan(domain.ReasonNoSuchName)
	}
	if err != nil {
		return err
	}
	var outcome domain.DepositOutcome
	out, err := execute(ctx, h, meta, h.orders, string(holder.OrderID), func(o domain.Order) ([]domain.Event, error) {
		events, oc, err := domain.DecideDeposit(o, domain.ApplyDeposit{
			DepositID: rec.DepositID, Amount: rec.Amount, FromAccount: domain.AccountBank(rec.AccountNumber), DepositedAt: rec.DepositedAt, Now: now, NameGrace: h.cfg.NameGrace,
		})
		outcome = oc
		return events, err
	}, nil)
	switch {
	case errors.Is(err, domain.ErrAmountMismatch):
		rec.OrderID = holder.OrderID
		return orphan(domain.ReasonAmountMismatch)
	case errors.Is(err, domain.ErrOrderGone):
		rec.OrderID = holder.OrderID
		return orphan(domain.ReasonOrderGone)
	case err != nil:
		return err
	}
	rec.Outcome, rec.OrderID = outcome, holder.OrderID
	if outcome == domain.OutcomeRefundedToWallet {
		rec.UserID = out.state.BuyerID
		// Settle the refund now (on a repeat, the order appended nothing:
		// rebuild the refund from the deposit).
		_, err := h.settleRefund(ctx, meta, domain.OrderRefunded{
			OrderID: holder.OrderID, BuyerID: out.state.BuyerID, DepositID: rec.DepositID, Amount: rec.Amount,
			FromAccount: domain.AccountBank(rec.AccountNumber), RefundedAt: now,
		})
		return err
	}
	return nil
}

// settleRefund credits the buyer's wallet with an order refund, once (the
// credit is idempotent on the refund's ref), and returns the sequence of the
// wallet's commit.
func (h *Handler) settleRefund(ctx context.Context, meta Meta, r domain.OrderRefunded) (eventstore.Seq, error) {
	return h.settleCredit(ctx, meta, r.WalletCredit(h.cfg.Now().UTC().Truncate(time.Microsecond)))
}

// settleCredit credits a wallet once per credit.Ref and returns the
// sequence of the wallet's commit.
func (h *Handler) settleCredit(ctx context.Context, meta Meta, credit domain.CreditWallet) (eventstore.Seq, error) {
	out, err := execute(ctx, h, meta, h.wallets, string(credit.UserID), func(w domain.Wallet) ([]domain.Event, error) {
		return domain.DecideCredit(w, credit)
	}, nil)
	if err == nil && len(out.events) > 0 {
		h.log.Info().Str("user_id", string(credit.UserID)).Int64("amount", credit.Amount).Str("kind", credit.Kind).Str("ref", credit.Ref).Uint64("seq", uint64(out.seq)).Msg("wallet credited")
	}
	return out.seq, err
}

// ReactToOrder settles the refunds of an order commit. Commands settle them
// as they go; this runs for every order commit through a reactor shared by
// all instances, so that a refund is settled even when the command that
// wrote it died before it could (the credit is idempotent).
func (h *Handler) ReactToOrder(ctx context.Context, c eventstore.Commit) error {
	for _, env := range c.Events {
		ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
		if err != nil {
			return err
		}
		if r, ok := ev.(domain.OrderRefunded); ok {
			meta := Meta{Command: "reactor.order_refund", CorrelationID: env.CorrelationID, CausationID: env.EventID, Actor: "reactor"}
			if _, err := h.settleRefund(ctx, meta, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// ScanComplete advances the account's scan watermark, which reserved
// cancellations wait for. It never moves it backwards, nor past now (a
// feed cannot know the future).
func (h *Handler) ScanComplete(ctx context.Context, _ Meta, req api.ScanCompleteRequest) (api.ScanCompleteReply, error) {
	if err := req.Validate(); err != nil {
		return api.ScanCompleteReply{}, err
	}
	if now := h.cfg.Now(); req.CompleteUpTo.After(now) {
		return api.ScanCompleteReply{}, domain.Invalid("complete_up_to", "is in the future")
	}
	account := domain.NormalizeAccountNumber(req.AccountNumber)
	if err := h.marks.Advance(ctx, account, req.CompleteUpTo.UTC()); err != nil {
		return api.ScanCompleteReply{}, err
	}
	wm, err := h.marks.Watermark(ctx, account)
	if err != nil {
		return api.ScanCompleteReply{}, err
	}
	return api.ScanCompleteReply{AccountNumber: account, Watermark: domain.FormatTime(wm)}, nil
}

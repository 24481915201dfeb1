package commands

import (
	"context"

	"github.com/bankbook/bankbook/domain"
)

// Payouts handles the commands on payouts: money sent out through the
// firm-banking provider. The process managers (package process) issue
// them; no API request does. It is safe for concurrent use.
type Payouts struct {
	*Core
	payouts *Repository[domain.Payout]
}

// Request records a payout once (a repeat changes nothing) and returns the
// payout as recorded.
func (h *Payouts) Request(ctx context.Context, meta Meta, req domain.PayoutRequested) (domain.Payout, error) {
	out, err := h.payouts.Execute(ctx, meta, string(req.PayoutID), func(p domain.Payout) ([]domain.Event, error) {
		return domain.DecideRequestPayout(p, req)
	}, nil)
	return out.State, err
}

// RecordResult records the provider's final answer on payout id, a
// domain.PayoutSettled or domain.PayoutFailed, once: a payout already
// settled or failed keeps its result. It returns the payout as recorded.
func (h *Payouts) RecordResult(ctx context.Context, meta Meta, id domain.PayoutID, result domain.Event) (domain.Payout, error) {
	out, err := h.payouts.Execute(ctx, meta, string(id), func(p domain.Payout) ([]domain.Event, error) {
		return domain.DecidePayoutResult(p, result)
	}, nil)
	if err != nil {
		return domain.Payout{}, err
	}
	p := out.State
	h.log.Info().Str("payout_id", string(p.ID)).Str("status", string(p.Status)).Int64("fee", p.Fee).Msg("payout result")
	return p, nil
}

package commands

import (
	"context"
	"strings"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// Payouts handles the commands on payouts: money sent out through the
// firm-banking provider. The process managers (package process) issue
// them, and an operator records a result the process managers could not
// get (Resolve). It is safe for concurrent use.
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

// Get returns payout id as recorded (Version 0 if it never was).
func (h *Payouts) Get(ctx context.Context, id domain.PayoutID) (domain.Payout, error) {
	p, _, err := h.payouts.Get(ctx, string(id))
	return p, err
}

// Resolve records an operator's final result for a payout still requested
// (domain.DecideResolvePayout). A failed payout's money goes back to its
// source through the react-payouts part, as for a failure the provider
// reports.
func (h *Payouts) Resolve(ctx context.Context, meta Meta, req api.ResolvePayoutRequest) (api.ResolvePayoutReply, error) {
	if err := req.Validate(); err != nil {
		return api.ResolvePayoutReply{}, err
	}
	c := domain.ResolvePayout{Outcome: domain.PayoutStatus(req.Outcome), Fee: req.Fee, ProviderRef: req.ProviderRef, Reason: strings.TrimSpace(req.Reason), Forced: req.Force, Now: h.Now()}
	out, err := h.payouts.Execute(ctx, meta, req.PayoutID, func(p domain.Payout) ([]domain.Event, error) {
		return domain.DecideResolvePayout(p, c)
	}, nil)
	if err != nil {
		return api.ResolvePayoutReply{}, err
	}
	p := out.State
	if len(out.Events) > 0 {
		h.log.Warn().Str("payout_id", string(p.ID)).Str("status", string(p.Status)).Int64("amount", p.Amount).Int64("fee", p.Fee).
			Str("actor", meta.Actor).Str("reason", c.Reason).Bool("forced", c.Forced).Msg("payout result recorded by an operator")
	}
	return api.ResolvePayoutReply{PayoutID: string(p.ID), Status: string(p.Status), Written: written(out.Seq)}, nil
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
	if len(out.Events) > 0 { // a repeat (a webhook delivered again, the part and a webhook both) records nothing
		h.log.Info().Str("payout_id", string(p.ID)).Str("status", string(p.Status)).Int64("fee", p.Fee).Str("actor", meta.Actor).Msg("payout result")
	}
	return p, nil
}

package server

import (
	"context"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/eventstore"
)

// reconcileBank runs bankbook.cmd.reconcile.bank against the read models,
// once they have applied every commit the stream held after the run read
// the scan watermarks (so a deposit recorded before the run, or before a
// watermark it compares with, is never missing from it).
func (s *Server) reconcileBank() commandSpec[api.ReconcileBankRequest, api.ReconcileReply] {
	return commandSpec[api.ReconcileBankRequest, api.ReconcileReply]{
		exec: func(ctx context.Context, meta commands.Meta, req api.ReconcileBankRequest) (api.ReconcileReply, error) {
			return s.cfg.Deposits.ReconcileBank(ctx, meta, req, s.cfg.ReadModels, s.ledgerCaughtUp)
		},
	}
}

// reconcilePayouts runs bankbook.cmd.reconcile.payouts the same way.
func (s *Server) reconcilePayouts() commandSpec[api.ReconcilePayoutsRequest, api.ReconcileReply] {
	return commandSpec[api.ReconcilePayoutsRequest, api.ReconcileReply]{
		exec: func(ctx context.Context, meta commands.Meta, req api.ReconcilePayoutsRequest) (api.ReconcileReply, error) {
			asOf, err := s.ledgerCaughtUp(ctx)
			if err != nil {
				return api.ReconcileReply{}, err
			}
			return s.cfg.Deposits.ReconcilePayouts(ctx, meta, req, s.cfg.ReadModels, asOf)
		},
	}
}

// ReconcileBank runs a bank reconciliation as
// bankbook.cmd.reconcile.bank does, for the engine's own scheduled runs.
func (s *Server) ReconcileBank(ctx context.Context, meta commands.Meta, req api.ReconcileBankRequest) (api.ReconcileReply, error) {
	if err := req.Validate(); err != nil {
		return api.ReconcileReply{}, err
	}
	return s.reconcileBank().exec(ctx, meta, req)
}

// ReconcilePayouts runs a payouts reconciliation as
// bankbook.cmd.reconcile.payouts does, for the engine's own scheduled runs.
func (s *Server) ReconcilePayouts(ctx context.Context, meta commands.Meta, req api.ReconcilePayoutsRequest) (api.ReconcileReply, error) {
	if err := req.Validate(); err != nil {
		return api.ReconcileReply{}, err
	}
	return s.reconcilePayouts().exec(ctx, meta, req)
}

// ledgerCaughtUp waits until the read models have applied every commit the
// stream holds now, and returns the sequence they have applied.
func (s *Server) ledgerCaughtUp(ctx context.Context) (eventstore.Seq, error) {
	last, err := s.cfg.Events.LastSeq(ctx)
	if err != nil {
		return 0, err
	}
	if aerr := s.awaitReadModels(ctx, api.Seq(last)); aerr != nil {
		return 0, aerr
	}
	return s.cfg.Runner.Checkpoint(), nil
}

func (s *Server) getReconciliation(ctx context.Context, q api.ReconcileGetRequest) (api.ReconcileReply, error) {
	return s.cfg.Deposits.Reconciliation(ctx, q.RunID)
}

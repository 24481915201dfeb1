package server

import (
	"context"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/projections"
)

// The queries the operator's console reads through (issue 12), each over a
// read model: order search ("orders" projection), payout list ("payouts"),
// reconciliation runs ("reconciliations") and the series of the suspense
// and clearing accounts ("series").

func (s *Server) searchOrders(_ context.Context, q api.OrderSearchRequest) (api.OrderSearchReply, error) {
	orders, next, err := s.cfg.ReadModels.SearchOrders(projections.OrderSearch{
		OrderID: q.OrderID, DepositorName: q.DepositorName, BuyerName: q.BuyerName, Status: q.Status,
	}, q.PageLimit(), q.Cursor)
	return api.OrderSearchReply{Orders: orders, NextCursor: next}, err
}

func (s *Server) listPayouts(_ context.Context, q api.PayoutListRequest) (api.PayoutListReply, error) {
	payouts, next, err := s.cfg.ReadModels.Payouts(q.Status, q.PageLimit(), q.Cursor)
	return api.PayoutListReply{Payouts: payouts, NextCursor: next}, err
}

func (s *Server) listReconciliations(_ context.Context, q api.ReconcileListRequest) (api.ReconcileListReply, error) {
	runs, next, err := s.cfg.ReadModels.ReconcileRuns(q.PageLimit(), q.Cursor)
	return api.ReconcileListReply{Runs: runs, NextCursor: next}, err
}

func (s *Server) ledgerSeries(_ context.Context, q api.LedgerSeriesRequest) (api.LedgerSeriesReply, error) {
	return s.cfg.ReadModels.LedgerSeries(q.Account, q.PointLimit(), api.MaxSeriesOpenItems)
}

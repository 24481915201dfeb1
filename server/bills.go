package server

import (
	"context"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
)

// remindUnpaid reminds the distributor's stores whose current bill has an
// outstanding balance: the stores the request names, or else every store
// linked to it, from the read models (a store linked a moment ago may be
// missed until they apply it). Whether a store is reminded is decided on
// its link's own state.
func (s *Server) remindUnpaid() commandSpec[api.RemindUnpaidRequest, api.RemindUnpaidReply] {
	return commandSpec[api.RemindUnpaidRequest, api.RemindUnpaidReply]{exec: func(ctx context.Context, meta commands.Meta, req api.RemindUnpaidRequest) (api.RemindUnpaidReply, error) {
		dist := domain.DistributorID(req.DistributorID)
		if req.StoreIDs != nil {
			return s.cfg.Links.RemindUnpaid(ctx, meta, dist, req.StoreIDs, true)
		}
		stores, err := s.cfg.ReadModels.StoresOf(req.DistributorID)
		if err != nil {
			return api.RemindUnpaidReply{}, err
		}
		return s.cfg.Links.RemindUnpaid(ctx, meta, dist, stores, false)
	}}
}

func (s *Server) getStore(_ context.Context, q api.GetStoreRequest) (api.StoreView, error) {
	view, ok, err := s.cfg.ReadModels.StoreLink(q.DistributorID, q.StoreID)
	if err != nil || ok {
		return view, err
	}
	return view, domain.StoreNotLinked(q.DistributorID, q.StoreID)
}

func (s *Server) listStores(_ context.Context, q api.StoreListRequest) (api.StoreListReply, error) {
	return s.cfg.ReadModels.StoreLinks(q.DistributorID, q.PageLimit(), q.Cursor)
}

func (s *Server) getBill(_ context.Context, q api.GetBillRequest) (api.BillView, error) {
	view, ok, err := s.cfg.ReadModels.Bill(q.BillID)
	return found(view, ok, err, domain.ErrBillNotFound, "bill_id", q.BillID)
}

func (s *Server) activeBills(_ context.Context, q api.ActiveBillsRequest) (api.ActiveBillsReply, error) {
	return s.cfg.ReadModels.ActiveBills(q.DistributorID, q.WholeLimit(), q.Cursor)
}

func (s *Server) listBills(_ context.Context, q api.BillListRequest) (api.BillListReply, error) {
	rep, linked, err := s.cfg.ReadModels.StoreBills(q.DistributorID, q.StoreID, q.PageLimit(), q.Cursor)
	if err == nil && !linked {
		err = domain.StoreNotLinked(q.DistributorID, q.StoreID)
	}
	return rep, err
}

func (s *Server) paymentsByDistributor(_ context.Context, q api.PaymentsByDistributorRequest) (api.PaymentsReply, error) {
	return s.cfg.ReadModels.PaymentsByDistributor(q.DistributorID, q.From, q.To, q.WholeLimit(), q.Cursor)
}

func (s *Server) paymentsByStore(_ context.Context, q api.PaymentsByStoreRequest) (api.PaymentsReply, error) {
	return s.cfg.ReadModels.PaymentsByStore(q.StoreID, q.WholeLimit(), q.Cursor)
}

// expectedSettlements answers the settlements still to come: dates from
// today (Asia/Seoul) on. Each date's figures are the fees and dates the
// payments recorded.
func (s *Server) expectedSettlements(_ context.Context, q api.SettlementRequest) (api.SettlementReply, error) {
	rep, err := s.cfg.ReadModels.Settlements(q.DistributorID)
	if err != nil {
		return rep, err
	}
	today := time.Now().In(domain.Seoul()).Format(domain.DateLayout)
	kept := rep.Settlements[:0]
	for _, st := range rep.Settlements {
		if st.Date >= today {
			kept = append(kept, st)
		}
	}
	rep.Settlements = kept
	return rep, nil
}

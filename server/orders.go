package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// submitOrder plans the order ID, so that a repeat that takes over an
// unfinished attempt addresses the same order.
func (s *Server) submitOrder() commandSpec[api.SubmitOrderRequest, api.SubmitOrderReply] {
	type plan struct {
		OrderID string `json:"order_id"`
	}
	return commandSpec[api.SubmitOrderRequest, api.SubmitOrderReply]{
		plan: func(req *api.SubmitOrderRequest) (json.RawMessage, bool) {
			generated := req.OrderID == ""
			if generated {
				req.OrderID = s.cfg.Orders.NewID()
			}
			b, _ := json.Marshal(plan{OrderID: req.OrderID})
			return b, generated
		},
		resume: func(req *api.SubmitOrderRequest, raw json.RawMessage) error {
			var p plan
			if err := json.Unmarshal(raw, &p); err != nil || p.OrderID == "" {
				return errors.New("idempotency plan unreadable")
			}
			req.OrderID = p.OrderID
			return nil
		},
		exec: s.cfg.Orders.SubmitOrder,
	}
}

func (s *Server) getOrder(_ context.Context, q api.GetOrderRequest) (api.OrderView, error) {
	view, ok, err := s.cfg.ReadModels.Order(q.OrderID)
	return found(view, ok, err, domain.ErrOrderNotFound, "order_id", q.OrderID)
}

func (s *Server) projectionStatus(ctx context.Context, q api.ProjectionStatusRequest) (api.ProjectionStatusReply, error) {
	last, err := s.cfg.Events.LastSeq(ctx)
	if err != nil {
		return api.ProjectionStatusReply{}, err
	}
	cp := s.cfg.Runner.Checkpoint()
	rep := api.ProjectionStatusReply{Checkpoint: api.Seq(cp), StreamLastSeq: api.Seq(last), LockID: s.cfg.LockID,
		ProjectionVersions: s.cfg.ReadModels.Versions()}
	if last > cp {
		rep.Lag = uint64(last - cp)
	}
	if ce, ok := s.cfg.Runner.Blocked(); ok {
		rep.BlockedAt, rep.Blocked = api.Seq(ce.Seq), ce.Error()
	}
	if q.Hash && (q.LockID == "" || q.LockID == s.cfg.LockID) {
		var at eventstore.Seq
		if rep.Hash, at, err = s.cfg.ReadModels.Hash(); err != nil {
			return api.ProjectionStatusReply{}, err
		}
		rep.HashAtSeq = api.Seq(at)
	}
	return rep, nil
}

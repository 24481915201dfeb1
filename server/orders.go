package server

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

func (s *Server) submitOrder(ctx context.Context, r *request) reply {
	type plan struct {
		OrderID string `json:"order_id"`
	}
	return runCommand(s, ctx, r, commandSpec[commands.SubmitOrderRequest, commands.SubmitOrderReply]{
		subject: "bankbook.cmd.order.submit",
		plan: func(req *commands.SubmitOrderRequest) json.RawMessage {
			if req.OrderID == "" {
				req.OrderID = s.cfg.Commands.NewID()
			}
			b, _ := json.Marshal(plan{OrderID: req.OrderID})
			return b
		},
		resume: func(req *commands.SubmitOrderRequest, raw json.RawMessage) error {
			var p plan
			if err := json.Unmarshal(raw, &p); err != nil || p.OrderID == "" {
				return errors.New("idempotency plan unreadable")
			}
			req.OrderID = p.OrderID
			return nil
		},
		exec: func(ctx context.Context, meta commands.Meta, req commands.SubmitOrderRequest) (commands.SubmitOrderReply, eventstore.Seq, error) {
			rep, err := s.cfg.Commands.SubmitOrder(ctx, meta, req)
			return rep, rep.Seq, err
		},
	})
}

func (s *Server) cancelOrder(ctx context.Context, r *request) reply {
	return runCommand(s, ctx, r, commandSpec[commands.CancelOrderRequest, commands.CancelOrderReply]{
		subject: "bankbook.cmd.order.cancel",
		exec: func(ctx context.Context, meta commands.Meta, req commands.CancelOrderRequest) (commands.CancelOrderReply, eventstore.Seq, error) {
			rep, err := s.cfg.Commands.CancelOrder(ctx, meta, req)
			return rep, rep.Seq, err
		},
	})
}

// GetOrderRequest is the body of bankbook.q.order.get.
type GetOrderRequest struct {
	OrderID string `json:"order_id"`
}

// Validate checks the request.
func (q GetOrderRequest) Validate() error { return domain.ValidateID("order_id", q.OrderID) }

func (s *Server) getOrder(ctx context.Context, r *request) reply {
	var q GetOrderRequest
	if err := decodeStrict(r.data, &q); err != nil {
		return reply{err: toAPIError(err)}
	}
	if err := q.Validate(); err != nil {
		return reply{err: toAPIError(err)}
	}
	s.awaitOwnWrites(ctx)
	view, ok, err := s.cfg.ReadModels.Order(q.OrderID)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	if !ok {
		return reply{err: toAPIError(domain.ErrOrderNotFound.With("", map[string]any{"order_id": q.OrderID}))}
	}
	return okJSON(view)
}

// ProjectionStatusRequest is the body of bankbook.q.projection.status.
type ProjectionStatusRequest struct {
	// Hash asks for the read models' content hash (reads every record).
	Hash bool `json:"hash,omitempty"`
}

// ProjectionStatusReply is the reply of bankbook.q.projection.status.
type ProjectionStatusReply struct {
	Checkpoint    eventstore.Seq `json:"checkpoint"`
	StreamLastSeq eventstore.Seq `json:"stream_last_seq"`
	Lag           uint64         `json:"lag"`
	Hash          string         `json:"hash,omitempty"`
	HashAtSeq     eventstore.Seq `json:"hash_at_seq,omitempty"`
}

func (s *Server) projectionStatus(ctx context.Context, r *request) reply {
	var q ProjectionStatusRequest
	if len(r.data) > 0 {
		if err := decodeStrict(r.data, &q); err != nil {
			return reply{err: toAPIError(err)}
		}
	}
	last, err := s.cfg.Events.LastSeq(ctx)
	if err != nil {
		return reply{err: toAPIError(err)}
	}
	rep := ProjectionStatusReply{Checkpoint: s.cfg.Runner.Checkpoint(), StreamLastSeq: last}
	if last > rep.Checkpoint {
		rep.Lag = uint64(last - rep.Checkpoint)
	}
	if q.Hash {
		if rep.Hash, rep.HashAtSeq, err = s.cfg.ReadModels.Hash(); err != nil {
			return reply{err: toAPIError(err)}
		}
	}
	return okJSON(rep)
}

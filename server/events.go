package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/worker"
)

// setAsideEvent serves bankbook.cmd.event.set_aside: it records that a
// damaged message of the event stream is set aside (the event store refuses
// a valid commit, 409 not_damaged), then resolves every dead letter of that
// message, whichever part recorded it. A repeat finds the first record and
// resolves what is left, so a request that failed half-way is completed by
// sending it again.
func (s *Server) setAsideEvent() commandSpec[api.SetAsideRequest, api.SetAsideReply] {
	return commandSpec[api.SetAsideRequest, api.SetAsideReply]{
		exec: func(ctx context.Context, meta commands.Meta, req api.SetAsideRequest) (api.SetAsideReply, error) {
			seq := eventstore.Seq(req.Seq)
			rec, created, err := s.cfg.Events.SetAside(ctx, seq, req.Reason, meta.Actor)
			switch {
			case errors.Is(err, eventstore.ErrNoMessage):
				return api.SetAsideReply{}, &api.Error{Status: 404, Code: api.CodeEventNotFound,
					Message: "the event stream holds no message at this sequence", Details: map[string]any{"seq": req.Seq}}
			case errors.Is(err, eventstore.ErrNotDamaged):
				return api.SetAsideReply{}, &api.Error{Status: 409, Code: api.CodeNotDamaged,
					Message: "the message at this sequence is a commit this engine reads; only damaged commits may be set aside", Details: map[string]any{"seq": req.Seq}}
			case err != nil:
				return api.SetAsideReply{}, err
			}
			rep := api.SetAsideReply{SetAside: wireSetAside(rec), Status: api.StatusSetAside, ResolvedDeadLetters: []uint64{}}
			if !created {
				rep.Status = api.StatusAlreadySetAside
			}
			s.cfg.Log.Warn().Uint64("seq", uint64(rec.Seq)).Str("subject", rec.Subject).Str("problem", rec.Problem).
				Str("reason", rec.Reason).Str("actor", rec.Actor).Str("status", rep.Status).Msg("damaged commit set aside")
			resolved, err := s.resolveDeadLetters(worker.WithActor(ctx, rec.Actor), rec)
			rep.ResolvedDeadLetters = append(rep.ResolvedDeadLetters, resolved...)
			if err != nil {
				return api.SetAsideReply{}, fmt.Errorf("seq %d is set aside; resolving its dead letters failed (send the request again): %w", seq, err)
			}
			return rep, nil
		},
	}
}

// resolveDeadLetters discards, with the set-aside reason, every dead letter
// of the set-aside message, and returns their IDs.
func (s *Server) resolveDeadLetters(ctx context.Context, rec eventstore.SetAside) ([]uint64, error) {
	var ids []uint64
	for after := uint64(0); ; {
		list, next, err := s.cfg.DeadLetters.List(ctx, "", after, 1000)
		if err != nil {
			return ids, err
		}
		for _, dl := range list {
			if dl.Stream != rec.Stream || dl.Seq != uint64(rec.Seq) {
				continue
			}
			_, err := s.cfg.DeadLetters.Discard(ctx, dl.ID, "set aside: "+rec.Reason)
			if ae, ok := errors.AsType[*api.Error](err); ok && ae.Status == 404 {
				continue // resolved meanwhile (the read models resolve their own)
			}
			if err != nil {
				return ids, err
			}
			ids = append(ids, dl.ID)
		}
		if next == 0 {
			return ids, nil
		}
		after = next
	}
}

// setAsides serves bankbook.q.event.set_asides: every set-aside record.
func (s *Server) setAsides(ctx context.Context, _ api.SetAsidesRequest) (api.SetAsidesReply, error) {
	list, err := s.cfg.Events.SetAsides(ctx)
	if err != nil {
		return api.SetAsidesReply{}, err
	}
	rep := api.SetAsidesReply{SetAsides: make([]api.SetAside, len(list))}
	for i, rec := range list {
		rep.SetAsides[i] = wireSetAside(rec)
	}
	return rep, nil
}

func wireSetAside(r eventstore.SetAside) api.SetAside {
	return api.SetAside{
		Seq: api.Seq(r.Seq), Stream: r.Stream, Subject: r.Subject, AggregateType: r.AggregateType, AggregateID: r.AggregateID,
		PrevSeq: api.Seq(r.PrevSeq), Problem: r.Problem, Reason: r.Reason, Actor: r.Actor, At: domain.FormatTime(r.At),
	}
}

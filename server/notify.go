package server

import (
	"cmp"
	"context"
	"errors"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
)

// Limiter reports the shared notification limit (ratelimit.Limiter, as the
// engine adapts it): rate, burst and a pause in force.
type Limiter interface {
	State(ctx context.Context) (api.NotifyLimiterReply, error)
}

// ChatSim is the fake chat provider behind bankbook.sim.chat.messages.
type ChatSim interface {
	// Messages returns what it accepted for channel ("" for all), oldest
	// first, and how many requests it refused with 429.
	Messages(channel string) ([]api.SimChatMessage, int)
}

// errNoNotifications answers the notify endpoints of an engine that does
// not record notifications.
var errNoNotifications = &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "this engine does not dispatch notifications"}

// unavailable is the 503 of a dependency that cannot answer now.
func unavailable(err error) error {
	if _, ok := errors.AsType[*api.Error](err); ok {
		return err
	}
	return &api.Error{Status: 503, Code: api.CodeUnavailable, Message: "the rate limiter's state cannot be read now; retry"}
}

func (s *Server) notifications(_ context.Context, q api.NotifyListRequest) (api.NotifyListReply, error) {
	return s.cfg.ReadModels.Notifications(q.Status, q.Recipient, q.PageLimit(), q.Cursor)
}

func (s *Server) redriveNotification(ctx context.Context, meta commands.Meta, req api.NotifyRedriveRequest) (api.NotifyRedriveReply, error) {
	if s.cfg.Notifications == nil {
		return api.NotifyRedriveReply{}, unavailable(errNoNotifications)
	}
	return s.cfg.Notifications.Redrive(ctx, meta, req)
}

// notifyLimiter answers the shared limit and how many notifications wait
// (from the read models, as far as they have applied).
func (s *Server) notifyLimiter(ctx context.Context, _ api.EmptyRequest) (api.NotifyLimiterReply, error) {
	if s.cfg.Limiter == nil {
		return api.NotifyLimiterReply{}, unavailable(errNoNotifications)
	}
	rep, err := s.cfg.Limiter.State(ctx)
	if err != nil {
		return api.NotifyLimiterReply{}, unavailable(err)
	}
	counts, err := s.cfg.ReadModels.NotificationCounts()
	if err != nil {
		return api.NotifyLimiterReply{}, err
	}
	rep.Pending = counts[api.NotificationPending]
	return rep, nil
}

func (s *Server) simChatMessages(_ context.Context, q api.SimChatMessagesRequest) (api.SimChatMessagesReply, error) {
	msgs, refused := s.cfg.ChatSim.Messages(q.Channel)
	if msgs == nil {
		msgs = []api.SimChatMessage{}
	}
	total := len(msgs)
	switch {
	case q.From > 0:
		start := min(q.From-1, total)
		msgs = msgs[start : start+min(cmp.Or(q.Limit, api.MaxSimChatMessages), total-start)]
	case q.Limit > 0 && total > q.Limit:
		msgs = msgs[total-q.Limit:]
	}
	return api.SimChatMessagesReply{Messages: msgs, Total: total, Refused: refused}, nil
}

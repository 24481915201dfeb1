package commands

import (
	"context"
	"errors"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// Notifications handles the commands on notifications: messages to stores,
// distributors and buyers, recorded before anything is sent. The notify
// reactor creates them, the dispatchers record their attempts, and an
// operator redrives a dead one. It is safe for concurrent use.
type Notifications struct {
	*Core
	notifications *Repository[domain.Notification]
}

// Create records an intent as a notification, once: the first commit of its
// aggregate, appended with the expectation that the aggregate has none, so
// that two reactors (or a redelivery) create it once whatever the
// duplicate window. It returns the notification as recorded.
func (h *Notifications) Create(ctx context.Context, meta Meta, in domain.NotificationIntent) (domain.Notification, error) {
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, string(in.ID), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideCreateNotification(n, in, now)
	}, nil)
	return out.State, err
}

// Get returns a notification as of its last commit (the zero value, with an
// empty ID, when there is none).
func (h *Notifications) Get(ctx context.Context, id domain.NotificationID) (domain.Notification, error) {
	n, _, err := h.notifications.Get(ctx, string(id))
	return n, err
}

// Attempt records that a send of a pending notification starts, provided
// the notification still has the seen attempts it had when the dispatcher
// read it (domain.ErrAttemptTaken otherwise: another dispatcher is at it).
// Until its outcome is recorded, the attempt is in doubt (the process may
// die while the provider accepts it).
func (h *Notifications) Attempt(ctx context.Context, meta Meta, id domain.NotificationID, seen int) (domain.Notification, error) {
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, string(id), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideAttemptAfter(n, seen, now)
	}, nil)
	return out.State, err
}

// Sent records that the provider accepted the notification (confirmed: an
// in-doubt attempt was found delivered by asking the provider).
func (h *Notifications) Sent(ctx context.Context, meta Meta, id domain.NotificationID, ref string, confirmed bool) (domain.Notification, error) {
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, string(id), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotificationSent(n, ref, confirmed, now)
	}, nil)
	return out.State, err
}

// Failed records a failed send (domain.SendFailure): retried at its
// RetryAt, or dead-lettered when it was permanent or the failures since the
// last redrive reach its MaxAttempts. An unknown outcome (a timeout) leaves
// the attempt in doubt.
func (h *Notifications) Failed(ctx context.Context, meta Meta, id domain.NotificationID, f domain.SendFailure) (domain.Notification, error) {
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, string(id), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideSendFailure(n, f, now)
	}, nil)
	return out.State, err
}

// DoubtUnsettled dead-letters a notification whose in-doubt attempt the
// provider could not be asked about for too long
// (domain.DecideDoubtUnsettled); it records nothing when the notification
// is no longer at version seen, the one the caller judged on.
func (h *Notifications) DoubtUnsettled(ctx context.Context, meta Meta, id domain.NotificationID, seen int, reason string) (domain.Notification, error) {
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, string(id), func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideDoubtUnsettled(n, seen, reason, now)
	}, nil)
	return out.State, err
}

// Throttled records that the provider refused attempt for its rate (429):
// not a failure of the notification, which is tried again at retryAt.
func (h *Notifications) Throttled(ctx context.Context, meta Meta, id domain.NotificationID, attempt int, reason string, retryAt time.Time) (domain.Notification, error) {
	return h.Failed(ctx, meta, id, domain.SendFailure{Reason: reason, Attempt: attempt, Throttled: true, RetryAt: retryAt})
}

// Redrive brings a dead notification back (bankbook.cmd.notify.redrive):
// pending again, its attempts counted afresh.
func (h *Notifications) Redrive(ctx context.Context, meta Meta, req api.NotifyRedriveRequest) (api.NotifyRedriveReply, error) {
	if err := req.Validate(); err != nil {
		return api.NotifyRedriveReply{}, err
	}
	now := h.Now()
	out, err := h.notifications.Execute(ctx, meta, req.NotificationID, func(n domain.Notification) ([]domain.Event, error) {
		return domain.DecideRedrive(n, req.Reason, now)
	}, nil)
	if errors.Is(err, domain.ErrNotificationNotFound) {
		err = domain.ErrNotificationNotFound.With("", map[string]any{"notification_id": req.NotificationID})
	}
	if err != nil {
		return api.NotifyRedriveReply{}, err
	}
	return api.NotifyRedriveReply{NotificationID: req.NotificationID, Status: api.NotificationPending, Written: written(out.Seq)}, nil
}

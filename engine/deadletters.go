package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/projections"
	"github.com/bankbook/bankbook/worker"
)

// deadLetterDesk serves the dead-letter endpoints from the dead-letter
// stream and the worker loops that can handle each part's work again.
type deadLetterDesk struct {
	dead  *worker.DeadLetters
	loops map[string]*worker.Loop
}

func (d deadLetterDesk) List(ctx context.Context, part string, after uint64, limit int) ([]api.DeadLetter, uint64, error) {
	list, next, err := d.dead.List(ctx, worker.ListOptions{Part: part, After: after, Limit: limit})
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.DeadLetter, len(list))
	for i, dl := range list {
		out[i] = wireDeadLetter(dl)
	}
	return out, next, nil
}

func (d deadLetterDesk) Redrive(ctx context.Context, id uint64) (api.DeadLetter, error) {
	dl, err := d.get(ctx, id)
	if err != nil {
		return api.DeadLetter{}, err
	}
	if dl.Part == projections.DeadLetterPart {
		// The read models skipped a damaged commit: there is nothing to run
		// again until the commit is set aside, which resolves this.
		return wireDeadLetter(dl), &api.Error{Status: 409, Code: "redrive_failed",
			Message: fmt.Sprintf("seq %d is a damaged commit the read models skipped: set it aside (bankbook event set-aside --seq %d --reason ...), which resolves this dead letter", dl.Seq, dl.Seq)}
	}
	loop, ok := d.loops[dl.Part]
	if !ok {
		return wireDeadLetter(dl), &api.Error{Status: 409, Code: "part_not_running", Message: "no part named " + dl.Part + " runs on this engine"}
	}
	switch err := loop.Redrive(ctx, id); {
	case errors.Is(err, worker.ErrNotFound):
		return api.DeadLetter{}, notFound(id)
	case errors.Is(err, worker.ErrOriginalGone):
		return wireDeadLetter(dl), &api.Error{Status: 409, Code: "original_gone", Message: "the original message no longer exists; discard the dead letter with a reason"}
	case errors.Is(err, worker.ErrResolvedOtherwise):
		return wireDeadLetter(dl), resolvedOtherwise(err)
	case errors.Is(err, worker.ErrLeased):
		return wireDeadLetter(dl), deadLetterBusy(err)
	case errors.Is(err, worker.ErrNotRedriven):
		return wireDeadLetter(dl), &api.Error{Status: 503, Code: api.CodeUnavailable, Message: err.Error() + "; nothing ran: retry"}
	case err != nil:
		return wireDeadLetter(dl), &api.Error{Status: 409, Code: "redrive_failed", Message: "the part failed again: " + err.Error()}
	}
	return wireDeadLetter(dl), nil
}

func (d deadLetterDesk) Discard(ctx context.Context, id uint64, reason string) (api.DeadLetter, error) {
	dl, err := d.get(ctx, id)
	if err != nil {
		return api.DeadLetter{}, err
	}
	switch err := d.dead.Discard(ctx, id, reason); {
	case errors.Is(err, worker.ErrNotFound):
		return api.DeadLetter{}, notFound(id)
	case errors.Is(err, worker.ErrResolvedOtherwise):
		return wireDeadLetter(dl), resolvedOtherwise(err)
	case err != nil:
		return api.DeadLetter{}, err
	}
	return wireDeadLetter(dl), nil
}

func (d deadLetterDesk) Hold(ctx context.Context, id uint64, holder string, dur time.Duration) (time.Time, func(), error) {
	dl, err := d.get(ctx, id)
	if err != nil {
		return time.Time{}, nil, err
	}
	lease, err := d.dead.Lease(ctx, dl, holder, dur)
	if errors.Is(err, worker.ErrLeased) {
		return time.Time{}, nil, deadLetterBusy(err)
	}
	if err != nil {
		return time.Time{}, nil, err
	}
	release := func() { _ = d.dead.Release(context.WithoutCancel(ctx), dl, lease) }
	last, err := d.dead.LastRedrive(ctx, dl)
	if err != nil {
		release()
		return time.Time{}, nil, err
	}
	return last, release, nil
}

func (d deadLetterDesk) Uncertainty(ctx context.Context, part, key string) (worker.Uncertainty, error) {
	return d.dead.Uncertainty(ctx, part, key)
}

func (d deadLetterDesk) Decide(ctx context.Context, part, key string, u worker.Uncertainty, reason string) (string, error) {
	return d.dead.Decide(ctx, part, key, u, reason)
}

// deadLetterBusy answers a redrive of a dead letter another redrive, or an
// operator's decision about its work, holds.
func deadLetterBusy(err error) *api.Error {
	var le *worker.LeasedError
	details := map[string]any{}
	if errors.As(err, &le) {
		details["held_by"] = le.Lease.Holder
		details["retry_after_s"] = max(1, int(time.Until(le.Lease.Until).Seconds())+1)
	}
	return &api.Error{Status: 409, Code: api.CodeDeadLetterBusy, Message: "the dead letter is held: " + err.Error() + "; try again once it ends", Details: details}
}

// resolvedOtherwise answers a resolve that lost the race to another (a
// discard during a redrive, say): the first one's record stands.
func resolvedOtherwise(err error) *api.Error {
	return &api.Error{Status: 409, Code: "already_resolved", Message: "resolved otherwise meanwhile, by someone else: " + err.Error()}
}

func (d deadLetterDesk) Get(ctx context.Context, id uint64) (api.DeadLetter, error) {
	dl, err := d.get(ctx, id)
	return wireDeadLetter(dl), err
}

func (d deadLetterDesk) get(ctx context.Context, id uint64) (worker.DeadLetter, error) {
	dl, err := d.dead.Get(ctx, id)
	if errors.Is(err, worker.ErrNotFound) {
		return worker.DeadLetter{}, notFound(id)
	}
	return dl, err
}

func notFound(id uint64) error {
	return &api.Error{Status: 404, Code: "dead_letter_not_found", Message: "no such dead letter (redriven or discarded already?)", Details: map[string]any{"id": id}}
}

func wireDeadLetter(dl worker.DeadLetter) api.DeadLetter {
	return api.DeadLetter{
		ID: dl.ID, Part: dl.Part, Stream: dl.Stream, Seq: dl.Seq, Subject: dl.Subject,
		Attempts: dl.Attempts, Delivered: dl.Delivered, Error: dl.Error, Permanent: dl.Permanent, At: domain.FormatTime(dl.At),
	}
}

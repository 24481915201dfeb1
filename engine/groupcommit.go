package engine

import (
	"context"
	"errors"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/worker"
)

// syncFailedWait is how long a reaction waits, not failing, when group
// commit cannot make anything durable (a sync failed): until the engine is
// restarted, nothing is acknowledged, and nothing is dead-lettered for it.
const syncFailedWait = time.Minute

// durableFirst returns fn made to wait, under group commit, until the commit
// it is handed is durable: for the reactions that act outside the engine
// (a payout sent to the bank, a notification to the chat provider), which
// must never act on a commit that a crash could still take back. Reactions
// that only write to the engine need no such wait: each of their writes
// first waits for what was answered before it, the commit they react to
// included (groupcommit.Wrap).
func (e *Engine) durableFirst(fn func(context.Context, eventstore.Commit) error) func(context.Context, eventstore.Commit) error {
	if e.syncs == nil {
		return fn
	}
	return func(ctx context.Context, c eventstore.Commit) error {
		if err := e.syncs.Wait(ctx); err != nil {
			if errors.Is(err, groupcommit.ErrSyncFailed) {
				e.log.Error().Err(err).Uint64("seq", uint64(c.Seq)).Msg("group commit: cannot make writes durable; restart the engine")
				return worker.RetryAfter(syncFailedWait, nil)
			}
			return err
		}
		return fn(ctx, c)
	}
}

package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/eventstore"
)

// Backoff between attempts after Follow fails.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Runner keeps a Store current with the event stream and lets queries wait
// until it has reached a given sequence.
type Runner struct {
	es  *eventstore.Store
	st  *Store
	log zerolog.Logger

	mu       sync.Mutex
	cp       eventstore.Seq // the last checkpoint known to be committed
	advanced chan struct{}  // closed and replaced whenever cp grows

	// afterCommit, when set (by tests only), runs after each batch is
	// committed to bbolt and before Follow acknowledges it. An error is
	// returned to Follow in place of success, so the batch is not acked.
	afterCommit func(eventstore.Seq) error
}

// NewRunner returns a Runner that applies the commits of es to st.
func NewRunner(es *eventstore.Store, st *Store, log zerolog.Logger) *Runner {
	r := &Runner{es: es, st: st, log: log, advanced: make(chan struct{})}
	// An error here (a closed store) shows again, and is logged, in Run.
	cp, _ := st.Checkpoint()
	r.advance(cp)
	return r
}

// Durable returns the name of the Runner's durable consumer:
// "readmodels-" + the Store's instance ID.
func (r *Runner) Durable() string { return "readmodels-" + r.st.InstanceID() }

// Run follows the stream from the Store's checkpoint and applies every batch,
// until ctx ends; it then returns nil. When following fails (the server is
// away, a batch does not apply) Run logs the error and starts again from the
// checkpoint on disk after a backoff that doubles from 100ms to 5s and starts
// over once a batch has been applied.
func (r *Runner) Run(ctx context.Context) error {
	backoff := minBackoff
	for {
		after, err := r.st.Checkpoint()
		if err == nil {
			r.advance(after)
			err = r.es.Follow(ctx, eventstore.FollowOptions{Durable: r.Durable(), After: after}, r.handle)
			if err == nil {
				err = errors.New("follow ended without error")
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if r.Checkpoint() > after {
			backoff = minBackoff
		}
		r.log.Error().Err(err).Uint64("seq", uint64(r.Checkpoint())).Dur("retry_in", backoff).
			Msg("read models: following the event stream failed")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// handle is the Follow handler: it commits the batch and its checkpoint to
// bbolt; Follow acknowledges the batch only after handle returns nil.
func (r *Runner) handle(_ context.Context, batch []eventstore.Commit) error {
	if err := r.st.Apply(batch); err != nil {
		return err
	}
	last := batch[len(batch)-1].Seq
	r.advance(last)
	r.log.Debug().Uint64("seq", uint64(last)).Int("commits", len(batch)).Msg("read models: applied")
	if r.afterCommit != nil {
		return r.afterCommit(last)
	}
	return nil
}

// advance records that the Store's checkpoint is at least seq and wakes the
// waiters.
func (r *Runner) advance(seq eventstore.Seq) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.cp {
		r.cp = seq
		close(r.advanced)
		r.advanced = make(chan struct{})
	}
}

// Checkpoint returns the last sequence the Runner knows to be applied,
// without touching the file.
func (r *Runner) Checkpoint() eventstore.Seq {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp
}

// WaitFor returns nil once the read models have applied seq, or an error
// wrapping ctx.Err() if ctx ends first. A query that must see a write it just
// made passes the write's sequence.
func (r *Runner) WaitFor(ctx context.Context, seq eventstore.Seq) error {
	for {
		r.mu.Lock()
		cp, advanced := r.cp, r.advanced
		r.mu.Unlock()
		if cp >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("read models at seq %d, waiting for %d: %w", cp, seq, ctx.Err())
		case <-advanced:
		}
	}
}

package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// Repository loads, decides on and appends the aggregates of one type,
// declared by a domain.Aggregate value. It caches the latest state of each
// aggregate it has seen, with the sequence of the commit that state is at
// (at most Config.CacheSize of them). It is safe for concurrent use; share
// one per aggregate type between the handlers of an instance.
//
// With Config.Snapshots, it also stores an aggregate's state (as JSON, so S
// must round-trip through encoding/json) every Config.SnapshotEvery commits,
// and a cold load (an aggregate not in the cache) starts from the stored
// snapshot and reads only the commits after it. A snapshot is only an
// optimisation: one that is missing, unreadable, of another state type or
// that does not match the event stream is ignored, and the load reads every
// commit.
type Repository[S any] struct {
	core  *Core
	agg   domain.Aggregate[S]
	cache *lru[S]
	turns turns
	shape string // typeShape of S
}

// NewRepository returns a repository of the aggregate type agg.
func NewRepository[S any](core *Core, agg domain.Aggregate[S]) *Repository[S] {
	return &Repository[S]{core: core, agg: agg, cache: newLRU[S](core.cfg.CacheSize), shape: typeShape(reflect.TypeFor[S]())}
}

// Outcome is what a command did: the events it appended (or, for a repeat,
// the events its first attempt appended), the state after them, and the
// sequence of the commit that state is at. A command that appended nothing
// has no events, and Seq is the aggregate's last commit.
type Outcome[S any] struct {
	State  S
	Events []domain.Event
	Seq    eventstore.Seq
}

// Get returns the aggregate's state as of its last commit, with that
// commit's sequence (0: no commits, the zero state). It reads the commits
// the cache has not seen.
func (r *Repository[S]) Get(ctx context.Context, id string) (S, eventstore.Seq, error) {
	snap, _ := r.cache.get(id)
	snap, _, err := r.catchUp(ctx, id, snap, Meta{})
	return snap.state, snap.seq, err
}

// catchUp brings snap up to the aggregate's last commit, reading only the
// commits after snap.seq, and caches the result. From the empty state (a
// cold load) it starts at the aggregate's stored snapshot, if there is a
// usable one, unless meta.Resumed. If meta carries an idempotency key and
// one of the commits read was appended by an attempt of the same command
// with the same key, prior is that commit's outcome: the command already
// happened. (So a resumed command, whose first attempt may be older than
// any snapshot, reads every commit.)
func (r *Repository[S]) catchUp(ctx context.Context, id string, snap snapshot[S], meta Meta) (_ snapshot[S], prior *Outcome[S], _ error) {
	var commits []eventstore.Commit
	fromSnapshot := false
	if snap.seq == 0 && !meta.Resumed && r.core.cfg.Snapshots != nil {
		var saved snapshot[S]
		if saved, commits, fromSnapshot = r.fromSnapshot(ctx, id); fromSnapshot {
			snap = saved
		}
	}
	ref := eventstore.Ref{Type: r.agg.Type, ID: id}
	if !fromSnapshot {
		var err error
		if commits, err = r.core.events.Load(ctx, ref, snap.seq); err != nil {
			return snapshot[S]{}, nil, damaged(ref, err)
		}
	}
	for _, c := range commits {
		if c.Damaged != nil {
			// A damaged commit an operator set aside: not history. Its
			// sequence is the aggregate's last one the next append expects.
			snap.seq = c.Seq
			continue
		}
		events, err := r.decode(ref, c)
		if err != nil {
			return snapshot[S]{}, nil, err
		}
		for _, ev := range events {
			snap.state = r.agg.Apply(snap.state, ev)
			snap.version++
		}
		snap.seq, snap.commitID = c.Seq, c.CommitID
		snap.unsaved++
		if prior == nil && meta.earlierAttempt(c.Events[0]) {
			prior = &Outcome[S]{State: snap.state, Events: events, Seq: c.Seq}
			if meta.FoundEarlier != nil {
				meta.FoundEarlier.Store(true)
			}
		}
	}
	r.maybeSave(ctx, id, &snap)
	r.cache.put(id, snap)
	return snap, prior, nil
}

// Find reads aggregate id's whole history (no snapshot, no cache) and
// returns its first event that match accepts. It is for rare paths, such as
// a retry after a crash looking for what an earlier attempt did beyond
// what the state remembers.
func (r *Repository[S]) Find(ctx context.Context, id string, match func(domain.Event) bool) (found domain.Event, ok bool, err error) {
	err = r.walk(ctx, id, func(_ eventstore.Commit, events []domain.Event) bool {
		for _, ev := range events {
			if match(ev) {
				found, ok = ev, true
				return true
			}
		}
		return false
	})
	return found, ok, err
}

// walk reads aggregate id's whole history (no snapshot, no cache) and hands
// fn each readable commit with its events, oldest first, until fn says stop.
func (r *Repository[S]) walk(ctx context.Context, id string, fn func(c eventstore.Commit, events []domain.Event) (stop bool)) error {
	ref := eventstore.Ref{Type: r.agg.Type, ID: id}
	commits, err := r.core.events.Load(ctx, ref, 0)
	if err != nil {
		return damaged(ref, err)
	}
	for _, c := range commits {
		if c.Damaged != nil {
			continue
		}
		events, err := r.decode(ref, c)
		if err != nil {
			return err
		}
		if fn(c, events) {
			return nil
		}
	}
	return nil
}

// decode decodes the events of commit c of ref. A commit this engine
// cannot decode (an unknown event type) is a *DamagedError: the aggregate
// is refused, not half-loaded.
func (r *Repository[S]) decode(ref eventstore.Ref, c eventstore.Commit) ([]domain.Event, error) {
	events := make([]domain.Event, 0, len(c.Events))
	for _, env := range c.Events {
		ev, err := r.core.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
		if err != nil {
			return nil, &DamagedError{Ref: ref, Seq: c.Seq, Err: fmt.Errorf("load %s: event %s (%s): %w", ref, env.EventID, env.EventType, err)}
		}
		events = append(events, ev)
	}
	return events, nil
}

// Earlier reads aggregate id's whole history once and returns, by
// idempotency key, the commits that earlier attempts of meta's command
// (its Command and Actor) appended under keys that begin with prefix: a
// command of many commits on one aggregate (a bulk's lines) looks for all
// of them in one read, rather than each in a read of its own.
func (r *Repository[S]) Earlier(ctx context.Context, id string, meta Meta, prefix string) (map[string]Outcome[S], error) {
	var (
		state S
		found = map[string]Outcome[S]{}
	)
	err := r.walk(ctx, id, func(c eventstore.Commit, events []domain.Event) bool {
		for _, ev := range events {
			state = r.agg.Apply(state, ev)
		}
		first := c.Events[0]
		if strings.HasPrefix(first.IdempotencyKey, prefix) && meta.sameClaim(first) {
			if _, dup := found[first.IdempotencyKey]; !dup {
				found[first.IdempotencyKey] = Outcome[S]{State: state, Events: events, Seq: c.Seq}
			}
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	return found, nil
}

// Execute runs one command on aggregate id: decide returns the events for
// a state (or a domain error), and Execute appends them as one commit.
//
// The commands of this repository on one aggregate take turns (in arrival
// order; waiting ends with ctx), so they never conflict with each other: a
// burst of commands on one hot aggregate, say withdrawals from one wallet,
// is carried out one after the other.
//
// It decides and appends optimistically: on the cached state (or, for an
// aggregate this instance has not seen, on the empty state), with that
// state's sequence as the expectation, so a command on a known or new
// aggregate reads nothing before its append. If the state was stale (a
// command on another instance appended meanwhile) the append conflicts;
// Execute then catches up (reading only the newer commits) and decides
// again, pausing for a growing, jittered time between attempts, at most
// Config.ConflictRetries times, then fails with ErrContention. A refusal is
// never based on a state that was not just read: when decide refuses an
// unverified state, Execute catches up and decides once more.
//
// Whenever Execute reads, it looks for a commit that an earlier attempt of
// the same command with the same idempotency key appended among the commits
// it reads; if there is one, that is the outcome (a resumed attempt reads
// the whole aggregate first, never starting at a snapshot).
//
// A decision to append nothing (the command already took effect) is trusted
// only on a state just read, like a refusal. prepare, if not nil, runs after
// a decision to append and before the append (to arm a timer the events
// will need, say); it may run more than once.
func (r *Repository[S]) Execute(ctx context.Context, meta Meta, id string, decide func(S) ([]domain.Event, error), prepare func([]domain.Event) error) (Outcome[S], error) {
	ref := eventstore.Ref{Type: r.agg.Type, ID: id}
	release, err := r.turns.take(ctx, id)
	if err != nil {
		return Outcome[S]{}, err
	}
	defer release()
	snap, _ := r.cache.get(id)
	verified := false
	refresh := func() (*Outcome[S], error) {
		from := snap
		if meta.Resumed && !verified && !meta.EarlierRead {
			from = snapshot[S]{} // the earlier attempt's commit may be older than the cache
		}
		next, prior, err := r.catchUp(ctx, id, from, meta)
		if err != nil {
			return nil, err
		}
		snap, verified = next, true
		return prior, nil
	}
	if meta.Resumed && !meta.EarlierRead {
		if prior, err := refresh(); err != nil || prior != nil {
			return deref(prior), err
		}
	}
	for attempt := 1; ; {
		events, err := decide(snap.state)
		if err != nil || len(events) == 0 {
			if verified {
				return Outcome[S]{State: snap.state, Seq: snap.seq}, err
			}
			if prior, err := refresh(); err != nil || prior != nil {
				return deref(prior), err
			}
			continue
		}
		if prepare != nil {
			if err := prepare(events); err != nil {
				return Outcome[S]{}, err
			}
		}
		envs, err := r.core.envelopes(meta, events)
		if err != nil {
			return Outcome[S]{}, err
		}
		if wait := r.core.cfg.BeforeAppend; wait != nil {
			if err := wait(ctx); err != nil {
				return Outcome[S]{}, err
			}
		}
		c, err := r.core.events.Append(ctx, ref, snap.seq, snap.version, r.core.cfg.NewID(), envs)
		if err == nil {
			if meta.Appended != nil {
				meta.Appended.Store(true)
			}
			next := snapshot[S]{state: snap.state, seq: c.Seq, version: snap.version + len(events), commitID: c.CommitID, unsaved: snap.unsaved + 1}
			for _, e := range events {
				next.state = r.agg.Apply(next.state, e)
			}
			r.maybeSave(ctx, id, &next)
			r.cache.put(id, next)
			return Outcome[S]{State: next.state, Events: events, Seq: c.Seq}, nil
		}
		if !errors.Is(err, eventstore.ErrConflict) {
			return Outcome[S]{}, damaged(ref, err)
		}
		if attempt >= r.core.cfg.ConflictRetries {
			r.core.log.Warn().Str("aggregate", ref.String()).Int("attempts", attempt).Msg("giving up after conflicts")
			return Outcome[S]{}, ErrContention
		}
		if attempt > 1 {
			// The first retry only catches up with a stale cache; after
			// that, colliding writers spread out.
			select {
			case <-ctx.Done():
				return Outcome[S]{}, ctx.Err()
			case <-time.After(conflictBackoff(attempt)):
			}
		}
		attempt++
		if prior, err := refresh(); err != nil || prior != nil {
			return deref(prior), err
		}
	}
}

// conflictBackoff is the pause before attempt (2 or more) after a conflict:
// random ("full jitter") up to 1ms·2^(attempt-1), at most 100ms.
func conflictBackoff(attempt int) time.Duration {
	ceiling := min(time.Millisecond<<min(attempt-1, 20), 100*time.Millisecond)
	return rand.N(ceiling) + 1
}

func deref[S any](o *Outcome[S]) Outcome[S] {
	if o == nil {
		return Outcome[S]{}
	}
	return *o
}

package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/reservations"
)

// Meta is what a command knows about the request that carried it.
type Meta struct {
	// Command names the command (its API subject); it is stamped on the
	// events together with IdempotencyKey.
	Command string
	// Resumed says an earlier attempt with the same IdempotencyKey did not
	// finish: it may have appended already, so the command first looks for
	// its events.
	Resumed        bool
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	Actor          string
}

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	orders *repo[domain.Order]
	es     *eventstore.Store
	codec  *domain.Codec
	names  *reservations.Store
	cfg    Config
	log    zerolog.Logger
}

// New returns a Handler.
func New(es *eventstore.Store, codec *domain.Codec, names *reservations.Store, cfg Config, log zerolog.Logger) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	return &Handler{
		orders: newRepo(domain.AggregateOrder, domain.Order.Apply, cfg.CacheSize),
		es:     es, codec: codec, names: names, cfg: cfg, log: log,
	}, nil
}

// NewID returns a fresh time-ordered ID.
func (h *Handler) NewID() string { return h.cfg.NewID() }

// Config returns the handler's configuration with defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// repo rebuilds one aggregate type and caches the latest state of each
// aggregate it has seen, with the sequence of the commit that state is at.
type repo[S any] struct {
	typ   string
	apply func(S, domain.Event) S
	cache *lru[S]
}

func newRepo[S any](typ string, apply func(S, domain.Event) S, size int) *repo[S] {
	return &repo[S]{typ: typ, apply: apply, cache: newLRU[S](size)}
}

// catchUp brings snap up to the aggregate's last commit, reading only the
// commits after snap.seq, and caches the result. It also returns the commits
// it read.
func (r *repo[S]) catchUp(ctx context.Context, h *Handler, id string, snap snapshot[S]) (snapshot[S], []eventstore.Commit, error) {
	commits, err := h.es.Load(ctx, eventstore.Ref{Type: r.typ, ID: id}, snap.seq)
	if err != nil {
		return snapshot[S]{}, nil, err
	}
	for _, c := range commits {
		for _, env := range c.Events {
			ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return snapshot[S]{}, nil, fmt.Errorf("load %s/%s: %w", r.typ, id, err)
			}
			snap.state = r.apply(snap.state, ev)
			snap.version++
		}
		snap.seq = c.Seq
	}
	r.cache.put(id, snap)
	return snap, commits, nil
}

// current returns the aggregate's state as of its last commit.
func (r *repo[S]) current(ctx context.Context, h *Handler, id string) (S, error) {
	snap, _ := r.cache.get(id)
	snap, _, err := r.catchUp(ctx, h, id, snap)
	return snap.state, err
}

// outcome is what a command did: the events it appended (or, for a repeat,
// the events its first attempt appended) and the state after them.
type outcome[S any] struct {
	state  S
	events []domain.Event
	seq    eventstore.Seq
}

// execute decides and appends optimistically: it decides on the cached state
// (or, for an aggregate this instance has not seen, on the empty state) and
// appends with that state's sequence as the expectation, so a command on a
// known or new aggregate reads nothing before its append. If the state was
// stale the append conflicts; execute then catches up (reading only the newer
// commits) and decides again, at most ConflictRetries times. A refusal is
// never based on a state that was not just read: when decide refuses an
// unverified state, execute catches up and decides once more.
func execute[S any](ctx context.Context, h *Handler, meta Meta, r *repo[S], id string, decide func(S) ([]domain.Event, error)) (outcome[S], error) {
	ref := eventstore.Ref{Type: r.typ, ID: id}
	snap, _ := r.cache.get(id)
	verified := false
	if meta.Resumed {
		if prior, ok, err := resume(ctx, h, r, id, meta); err != nil || ok {
			return prior, err
		}
		snap, _ = r.cache.get(id) // resume read the whole aggregate
		verified = true
	}
	for attempt := 1; ; {
		events, err := decide(snap.state)
		if err != nil {
			if verified {
				return outcome[S]{}, err
			}
			if snap, _, err = r.catchUp(ctx, h, id, snap); err != nil {
				return outcome[S]{}, err
			}
			verified = true
			continue
		}
		envs, err := h.envelopes(meta, events)
		if err != nil {
			return outcome[S]{}, err
		}
		c, err := h.es.Append(ctx, ref, snap.seq, snap.version, h.cfg.NewID(), envs)
		if err == nil {
			next := snapshot[S]{state: snap.state, seq: c.Seq, version: snap.version + len(events)}
			for _, e := range events {
				next.state = r.apply(next.state, e)
			}
			r.cache.put(id, next)
			return outcome[S]{state: next.state, events: events, seq: c.Seq}, nil
		}
		if !errors.Is(err, eventstore.ErrConflict) {
			return outcome[S]{}, err
		}
		if attempt >= h.cfg.ConflictRetries {
			h.log.Warn().Str("aggregate", ref.String()).Int("attempts", attempt).Msg("giving up after conflicts")
			return outcome[S]{}, ErrContention
		}
		if attempt > 1 {
			// Jittered backoff so that colliding writers spread out.
			delay := time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond)))
			select {
			case <-ctx.Done():
				return outcome[S]{}, ctx.Err()
			case <-time.After(delay):
			}
		}
		attempt++
		if snap, _, err = r.catchUp(ctx, h, id, snap); err != nil {
			return outcome[S]{}, err
		}
		verified = true
	}
}

// resume looks for the commit that an earlier attempt of meta's command with
// meta's idempotency key appended, reading the whole aggregate.
func resume[S any](ctx context.Context, h *Handler, r *repo[S], id string, meta Meta) (outcome[S], bool, error) {
	if meta.IdempotencyKey == "" {
		return outcome[S]{}, false, nil
	}
	_, commits, err := r.catchUp(ctx, h, id, snapshot[S]{})
	if err != nil {
		return outcome[S]{}, false, err
	}
	return priorAttempt(h, r, commits, meta.Command, meta.IdempotencyKey)
}

// priorAttempt finds the commit an earlier attempt of the same command with
// the same idempotency key appended, and returns its events and the state
// right after it.
func priorAttempt[S any](h *Handler, r *repo[S], commits []eventstore.Commit, command, key string) (outcome[S], bool, error) {
	var st S
	for _, c := range commits {
		var events []domain.Event
		for _, env := range c.Events {
			ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return outcome[S]{}, false, err
			}
			st = r.apply(st, ev)
			events = append(events, ev)
		}
		if c.Events[0].IdempotencyKey == key && c.Events[0].Command == command {
			return outcome[S]{state: st, events: events, seq: c.Seq}, true, nil
		}
	}
	return outcome[S]{}, false, nil
}

func (h *Handler) envelopes(meta Meta, events []domain.Event) ([]eventstore.Envelope, error) {
	now := h.cfg.Now().UTC()
	envs := make([]eventstore.Envelope, len(events))
	for i, e := range events {
		typ, version, data, err := h.codec.Encode(e)
		if err != nil {
			return nil, err
		}
		envs[i] = eventstore.Envelope{
			EventID:        h.cfg.NewID(),
			EventType:      typ,
			SchemaVersion:  version,
			OccurredAt:     now,
			Command:        meta.Command,
			CorrelationID:  meta.CorrelationID,
			CausationID:    meta.CausationID,
			IdempotencyKey: meta.IdempotencyKey,
			Actor:          meta.Actor,
			Data:           data,
		}
	}
	return envs, nil
}

package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
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

// Timers arms delayed work (timers.Timers).
type Timers interface {
	Arm(ctx context.Context, kind, id string, at time.Time, payload []byte) error
}

// Watermarks tells how far the bank's data is known complete, per account
// (watermarks.Store).
type Watermarks interface {
	Watermark(ctx context.Context, account string) (time.Time, error)
	Advance(ctx context.Context, account string, upTo time.Time) error
}

// Deps are the stores a Handler works with.
type Deps struct {
	Events     *eventstore.Store
	Codec      *domain.Codec
	Names      *reservations.Store
	Timers     Timers
	Watermarks Watermarks
	// Payouts sends money out (withdrawals, refunds to the bank). Optional:
	// without it payouts stay requested.
	Payouts Payouts
}

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	orders    *repo[domain.Order]
	deposits  *repo[domain.Deposit]
	wallets   *repo[domain.Wallet]
	payoutAgg *repo[domain.Payout]
	payouts   Payouts
	es        *eventstore.Store
	codec     *domain.Codec
	names     *reservations.Store
	timers    Timers
	marks     Watermarks
	cfg       Config
	log       zerolog.Logger
}

// New returns a Handler.
func New(d Deps, cfg Config, log zerolog.Logger) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	if d.Events == nil || d.Codec == nil || d.Names == nil || d.Timers == nil || d.Watermarks == nil {
		return nil, errors.New("commands: every dependency is required")
	}
	return &Handler{
		orders:    newRepo(domain.AggregateOrder, domain.Order.Apply, cfg.CacheSize),
		deposits:  newRepo(domain.AggregateDeposit, domain.Deposit.Apply, cfg.CacheSize),
		wallets:   newRepo(domain.AggregateWallet, domain.Wallet.Apply, cfg.CacheSize),
		payoutAgg: newRepo(domain.AggregatePayout, domain.Payout.Apply, cfg.CacheSize),
		payouts:   d.Payouts,
		es:        d.Events, codec: d.Codec, names: d.Names, timers: d.Timers, marks: d.Watermarks,
		cfg: cfg, log: log,
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
// commits after snap.seq, and caches the result. If meta carries an
// idempotency key and one of the commits read was appended by an attempt of
// the same command with the same key, prior is that commit's outcome: the
// command already happened.
func (r *repo[S]) catchUp(ctx context.Context, h *Handler, id string, snap snapshot[S], meta Meta) (_ snapshot[S], prior *outcome[S], _ error) {
	commits, err := h.es.Load(ctx, eventstore.Ref{Type: r.typ, ID: id}, snap.seq)
	if err != nil {
		return snapshot[S]{}, nil, err
	}
	for _, c := range commits {
		events := make([]domain.Event, 0, len(c.Events))
		for _, env := range c.Events {
			ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return snapshot[S]{}, nil, fmt.Errorf("load %s/%s: %w", r.typ, id, err)
			}
			snap.state = r.apply(snap.state, ev)
			snap.version++
			events = append(events, ev)
		}
		snap.seq = c.Seq
		if prior == nil && meta.IdempotencyKey != "" && c.Events[0].IdempotencyKey == meta.IdempotencyKey && c.Events[0].Command == meta.Command {
			prior = &outcome[S]{state: snap.state, events: events, seq: c.Seq}
		}
	}
	r.cache.put(id, snap)
	return snap, prior, nil
}

// current returns the aggregate's state as of its last commit.
func (r *repo[S]) current(ctx context.Context, h *Handler, id string) (S, error) {
	snap, err := r.latest(ctx, h, id)
	return snap.state, err
}

// latest returns the aggregate's state as of its last commit, with that
// commit's sequence.
func (r *repo[S]) latest(ctx context.Context, h *Handler, id string) (snapshot[S], error) {
	snap, _ := r.cache.get(id)
	snap, _, err := r.catchUp(ctx, h, id, snap, Meta{})
	return snap, err
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
//
// Whenever execute reads, it looks for a commit that an earlier attempt of
// the same command with the same idempotency key appended; if there is one,
// that is the outcome (a resumed attempt reads the whole aggregate first).
//
// A decision to append nothing (the command already took effect) is trusted
// only on a state just read, like a refusal. prepare, if not nil, runs after a
// decision to append and before the append (to arm a timer the events will
// need, say); it may run more than once.
func execute[S any](ctx context.Context, h *Handler, meta Meta, r *repo[S], id string, decide func(S) ([]domain.Event, error), prepare func([]domain.Event) error) (outcome[S], error) {
	ref := eventstore.Ref{Type: r.typ, ID: id}
	snap, _ := r.cache.get(id)
	verified := false
	refresh := func() (*outcome[S], error) {
		from := snap
		if meta.Resumed && !verified {
			from = snapshot[S]{} // the earlier attempt's commit may be older than the cache
		}
		next, prior, err := r.catchUp(ctx, h, id, from, meta)
		if err != nil {
			return nil, err
		}
		snap, verified = next, true
		return prior, nil
	}
	if meta.Resumed {
		if prior, err := refresh(); err != nil || prior != nil {
			return deref(prior), err
		}
	}
	for attempt := 1; ; {
		events, err := decide(snap.state)
		if err != nil || len(events) == 0 {
			if verified {
				return outcome[S]{state: snap.state, seq: snap.seq}, err
			}
			if prior, err := refresh(); err != nil || prior != nil {
				return deref(prior), err
			}
			continue
		}
		if prepare != nil {
			if err := prepare(events); err != nil {
				return outcome[S]{}, err
			}
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
		if prior, err := refresh(); err != nil || prior != nil {
			return deref(prior), err
		}
	}
}

func deref[S any](o *outcome[S]) outcome[S] {
	if o == nil {
		return outcome[S]{}
	}
	return *o
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

// written is the consistency token of a reply: the commit at seq.
func written(seq eventstore.Seq) api.Written { return api.Written{Seq: api.Seq(seq)} }

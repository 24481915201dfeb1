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
	Command        string
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	Actor          string
}

// Handler executes commands. It is safe for concurrent use.
type Handler struct {
	es    *eventstore.Store
	codec *domain.Codec
	names *reservations.Store
	cfg   Config
	log   zerolog.Logger
}

// New returns a Handler.
func New(es *eventstore.Store, codec *domain.Codec, names *reservations.Store, cfg Config, log zerolog.Logger) (*Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	return &Handler{es: es, codec: codec, names: names, cfg: cfg, log: log}, nil
}

// NewID returns a fresh time-ordered ID.
func (h *Handler) NewID() string { return h.cfg.NewID() }

// Config returns the handler's configuration with defaults filled in.
func (h *Handler) Config() Config { return h.cfg }

// aggregate describes how to rebuild one aggregate type.
type aggregate[S any] struct {
	typ   string
	apply func(S, domain.Event) S
}

var orderAggregate = aggregate[domain.Order]{typ: domain.AggregateOrder, apply: domain.Order.Apply}

// loaded is an aggregate as of its last commit.
type loaded[S any] struct {
	state   S
	seq     eventstore.Seq // last commit's sequence; 0 when new
	version int            // events applied
	commits []eventstore.Commit
}

func load[S any](ctx context.Context, h *Handler, a aggregate[S], id string) (loaded[S], error) {
	commits, err := h.es.Load(ctx, eventstore.Ref{Type: a.typ, ID: id}, 0)
	if err != nil {
		return loaded[S]{}, err
	}
	l := loaded[S]{commits: commits}
	for _, c := range commits {
		for _, env := range c.Events {
			ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return loaded[S]{}, fmt.Errorf("load %s/%s: %w", a.typ, id, err)
			}
			l.state = a.apply(l.state, ev)
			l.version++
		}
		l.seq = c.Seq
	}
	return l, nil
}

// outcome is what a command did: the events it appended (or, for a repeat,
// the events its first attempt appended) and the state after them.
type outcome[S any] struct {
	state  S
	events []domain.Event
	seq    eventstore.Seq
}

// execute loads the aggregate, decides and appends, retrying on conflict.
func execute[S any](ctx context.Context, h *Handler, meta Meta, a aggregate[S], id string, decide func(S) ([]domain.Event, error)) (outcome[S], error) {
	ref := eventstore.Ref{Type: a.typ, ID: id}
	for attempt := 1; ; attempt++ {
		l, err := load(ctx, h, a, id)
		if err != nil {
			return outcome[S]{}, err
		}
		if prior, ok, err := priorAttempt(h, a, l, meta.Command, meta.IdempotencyKey); err != nil || ok {
			return prior, err
		}
		events, err := decide(l.state)
		if err != nil {
			return outcome[S]{}, err
		}
		envs, err := h.envelopes(meta, events)
		if err != nil {
			return outcome[S]{}, err
		}
		c, err := h.es.Append(ctx, ref, l.seq, l.version, h.cfg.NewID(), envs)
		if err == nil {
			st := l.state
			for _, e := range events {
				st = a.apply(st, e)
			}
			return outcome[S]{state: st, events: events, seq: c.Seq}, nil
		}
		if !errors.Is(err, eventstore.ErrConflict) {
			return outcome[S]{}, err
		}
		if attempt >= h.cfg.ConflictRetries {
			h.log.Warn().Str("aggregate", ref.String()).Int("attempts", attempt).Msg("giving up after conflicts")
			return outcome[S]{}, ErrContention
		}
		// Jittered backoff so that colliding writers spread out.
		delay := time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond)))
		select {
		case <-ctx.Done():
			return outcome[S]{}, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// priorAttempt finds the commit an earlier attempt with the same idempotency
// key appended, and returns its events and the state right after it.
func priorAttempt[S any](h *Handler, a aggregate[S], l loaded[S], command, key string) (outcome[S], bool, error) {
	if key == "" {
		return outcome[S]{}, false, nil
	}
	var st S
	for _, c := range l.commits {
		var events []domain.Event
		for _, env := range c.Events {
			ev, err := h.codec.Decode(env.EventType, env.SchemaVersion, env.Data)
			if err != nil {
				return outcome[S]{}, false, err
			}
			st = a.apply(st, ev)
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

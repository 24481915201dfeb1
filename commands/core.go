package commands

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// Meta is what a command knows about the request that carried it.
type Meta struct {
	// Command names the command (its API subject); it is stamped on the
	// events together with IdempotencyKey.
	Command string
	// Resumed says an earlier attempt with the same IdempotencyKey did not
	// finish: it may have appended already, so the command first looks for
	// its events.
	Resumed bool
	// ClaimedAt is when the IdempotencyKey's claim was first made (zero if
	// unknown). A commit whose events occurred well before it (keyUseSkew)
	// is not an earlier attempt's: the key's record had expired, and the
	// key was used again for another request.
	ClaimedAt time.Time
	// EarlierRead, with Resumed, says the caller has looked for the
	// earlier attempt's commit in the aggregate's whole history already
	// (Repository.Earlier) and found none: the command does not read it all
	// again, and still recognises such a commit among those it reads.
	EarlierRead bool
	// FreshID says the ID of the aggregate the command creates was
	// generated for this request just now (not the client's, not an
	// earlier attempt's): nothing can be recorded under it, so the command
	// need not read it before it decides. Its append still expects no
	// earlier commit.
	FreshID bool
	// FoundEarlier, if set, is set to true when the command finds a commit
	// an earlier attempt with the same Command, IdempotencyKey and Actor appended,
	// and answers from it: the command had already happened.
	FoundEarlier *atomic.Bool
	// Appended, if set, is set to true when the command appends a commit
	// of its own. A command of several commits that an earlier attempt
	// began may find some and append others: it is not a mere repeat.
	Appended       *atomic.Bool
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	Actor          string
}

// earlierAttempt reports whether env (a commit's first event) was written
// by an earlier attempt of this command: the same command, idempotency key
// and actor. Keys are per identity (the idempotency records are scoped by
// actor), so a commit another identity wrote under the same key on an
// aggregate both reach (a store link and its bills) is not this command's.
func (m Meta) earlierAttempt(env eventstore.Envelope) bool {
	return m.IdempotencyKey != "" && env.IdempotencyKey == m.IdempotencyKey && m.sameClaim(env)
}

// sameClaim reports whether env (a commit's first event) may be an
// attempt of this command's claim: the same command and actor, and not
// older than the claim (ClaimedAt, give or take keyUseSkew). It leaves the
// key to the caller (Repository.Earlier matches a prefix of it).
func (m Meta) sameClaim(env eventstore.Envelope) bool {
	return env.Command == m.Command && env.Actor == m.Actor &&
		(m.ClaimedAt.IsZero() || !env.OccurredAt.Before(m.ClaimedAt.Add(-keyUseSkew)))
}

// keyUseSkew is how much earlier than its key's claim (Meta.ClaimedAt) an
// earlier attempt's events may say they occurred: the two clocks may be
// two instances'. A key's record lives at least 7 days (the idempotency TTL),
// so an older use of the key is always much older than this.
const keyUseSkew = time.Hour

// Core is the plumbing every area's handler shares: the event store and
// codec, the configuration, IDs and the clock. Handlers embed it.
type Core struct {
	events EventStore
	codec  *domain.Codec
	cfg    Config
	log    zerolog.Logger
}

// NewCore checks cfg (filling in defaults) and returns a Core over events.
func NewCore(events EventStore, codec *domain.Codec, cfg Config, log zerolog.Logger) (*Core, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("commands config: %w", err)
	}
	if events == nil || codec == nil {
		return nil, errors.New("commands: an event store and a codec are required")
	}
	return &Core{events: events, codec: codec, cfg: cfg, log: log}, nil
}

// NewID returns a fresh time-ordered ID.
func (c *Core) NewID() string { return c.cfg.NewID() }

// Config returns the configuration with defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Now returns the clock's time as events record it: UTC, to the microsecond.
func (c *Core) Now() time.Time { return c.cfg.Now().UTC().Truncate(time.Microsecond) }

// envelopes encodes a command's events with its metadata.
func (c *Core) envelopes(meta Meta, events []domain.Event) ([]eventstore.Envelope, error) {
	now := c.cfg.Now().UTC()
	envs := make([]eventstore.Envelope, len(events))
	for i, e := range events {
		typ, version, data, err := c.codec.Encode(e)
		if err != nil {
			return nil, err
		}
		envs[i] = eventstore.Envelope{
			EventID:        c.cfg.NewID(),
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

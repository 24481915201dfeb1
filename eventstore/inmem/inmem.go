package inmem

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/bankbook/bankbook/eventstore"
)

// Config configures a Store. Zero values mean defaults.
type Config struct {
	// Upcaster, when set, is applied to every event read back.
	Upcaster eventstore.Upcaster
	// Now is the clock used for RecordedAt. Default time.Now.
	Now func() time.Time
}

// Store is an in-memory event store. It is safe for concurrent use.
type Store struct {
	cfg Config

	mu     sync.Mutex
	bodies [][]byte                            // stored commits by sequence - 1
	chains map[eventstore.Ref][]eventstore.Seq // each aggregate's commit sequences, oldest first
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{cfg: cfg, chains: map[eventstore.Ref][]eventstore.Seq{}}
}

// Append stores events as one commit on ref, provided the aggregate's last
// commit is still at sequence expected (0: the aggregate has no commits),
// with the semantics of eventstore.Store.Append.
func (s *Store) Append(ctx context.Context, ref eventstore.Ref, expected eventstore.Seq, prevVersion int, commitID string, events []eventstore.Envelope) (eventstore.Commit, error) {
	now := s.cfg.Now()
	if _, err := eventstore.NewCommit(ref, expected, eventstore.Hash{}, prevVersion, commitID, events, now); err != nil {
		return eventstore.Commit{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Commit{}, fmt.Errorf("append %s: %w", ref, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// PrevHash: the hash of the stored bytes at expected, as the
	// JetStream store records it.
	var prev eventstore.Hash
	if expected != 0 && int(expected) <= len(s.bodies) {
		prev = eventstore.HashOf(s.bodies[expected-1])
	}
	c, err := eventstore.NewCommit(ref, expected, prev, prevVersion, commitID, events, now)
	if err != nil {
		return eventstore.Commit{}, err
	}
	chain := s.chains[ref]
	var last eventstore.Seq
	if len(chain) > 0 {
		last = chain[len(chain)-1]
	}
	if last != expected {
		after, err := s.loadLocked(ref, expected)
		if err != nil {
			return eventstore.Commit{}, err
		}
		return eventstore.SettleConflict(c, after)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return eventstore.Commit{}, fmt.Errorf("encode commit: %w", err)
	}
	s.bodies = append(s.bodies, body)
	c.Seq = eventstore.Seq(len(s.bodies))
	c.Hash = eventstore.HashOf(body)
	s.chains[ref] = append(chain, c.Seq)
	return c, nil
}

// Load returns the aggregate's commits with sequence greater than after,
// oldest first; an aggregate with no commits loads as an empty slice. A ref
// that is not valid (eventstore.Ref.Validate) returns eventstore.ErrInvalid.
func (s *Store) Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %s: %w", ref, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(ref, after)
}

func (s *Store) loadLocked(ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	var out []eventstore.Commit
	for _, seq := range s.chains[ref] {
		if seq <= after {
			continue
		}
		c, err := eventstore.DecodeCommit(s.bodies[seq-1], seq, s.cfg.Upcaster)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// LastSeq returns the last sequence: everything appended so far.
func (s *Store) LastSeq(ctx context.Context) (eventstore.Seq, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return eventstore.Seq(len(s.bodies)), nil
}

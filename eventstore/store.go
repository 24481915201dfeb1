package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/streams"
	"github.com/bankbook/bankbook/internal/transient"
)

// Store appends commits to, and loads aggregates from, the event stream.
// It is safe for concurrent use.
type Store struct {
	js        jetstream.JetStream
	stream    jetstream.Stream
	cfg       Config
	setAsides *setAsides
	hashes    *hashCache // hashes of messages appended or read, for PrevHash
	head      seqMark    // the highest sequence seen to exist: KnownSeq
}

// StreamConfig returns the JetStream configuration of the event stream.
// Delete and purge are denied and nothing expires. Direct gets are allowed:
// they are how auditors read the stream (ADR 0006) and how a single-replica
// engine loads aggregates. On a replicated stream a follower may answer a
// direct get before it has caught up, and a command must not refuse on a
// stale read, so the engine reads from the leader there (leaderGet).
func (c Config) StreamConfig() jetstream.StreamConfig {
	c.setDefaults()
	return jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "bankbook events: one subject per aggregate, one message per commit",
		Subjects:    []string{c.SubjectPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardNew,
		MaxAge:      0,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		// Set, so that Open puts it back when it was lowered (Loss).
		MaxMsgsPerSubject: -1,
		Duplicates:        c.DuplicateWindow,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       true,
	}
}

// Open creates the event stream if it does not exist, or brings an existing
// one to the configured settings, and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("eventstore config: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, max(cfg.Timeout, 10*time.Second))
	defer cancel()
	stream, err := streams.Ensure(ctx, js, cfg.StreamConfig())
	if err != nil {
		return nil, fmt.Errorf("create event stream %s: %w", cfg.Stream, err)
	}
	s := &Store{js: js, stream: stream, cfg: cfg, hashes: &hashCache{}}
	if err := s.openSetAsides(ctx, true); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the store's configuration with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Subject returns the subject of an aggregate.
func (s *Store) Subject(ref Ref) string {
	return s.cfg.SubjectPrefix + "." + ref.Type + "." + ref.ID
}

func (s *Store) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// Append stores events as one commit on ref, provided the aggregate's last
// commit is still at sequence expected (0: the aggregate has no commits). The
// events' aggregate fields, versions and RecordedAt are filled in here;
// prevVersion is the aggregate version before this commit. It returns the
// stored commit with its sequence.
//
// The commit (format 2) records PrevHash, the hash of the stored bytes of
// the message at expected: remembered from an earlier append or read of
// this Store (a bounded cache), or else read by sequence.
//
// A stale expectation returns a *ConflictError and writes nothing.
func (s *Store) Append(ctx context.Context, ref Ref, expected Seq, prevVersion int, commitID string, events []Envelope) (Commit, error) {
	c, err := NewCommit(ref, expected, Hash{}, prevVersion, commitID, events, s.cfg.Now())
	if err != nil {
		return Commit{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	if expected != 0 {
		prev, err := s.hashAt(ctx, expected)
		if errors.Is(err, ErrNoMessage) {
			// Nothing at the expectation: a failed expectation.
			return s.settleConflict(ctx, ref, expected, c)
		}
		if err != nil {
			return Commit{}, fmt.Errorf("append %s: %w", ref, err)
		}
		c.PrevHash = prev.String()
	}
	body, err := json.Marshal(c)
	if err != nil {
		return Commit{}, fmt.Errorf("encode commit: %w", err)
	}
	c.Hash = HashOf(body)
	msg := nats.NewMsg(s.Subject(ref))
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, commitID)
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(uint64(expected), 10))

	for attempt := 1; ; attempt++ {
		// Each attempt has a timeout of its own (Config.AttemptTimeout), so
		// that a lost ack (a leader change, say) leaves time to publish the
		// same message again.
		actx, acancel := s.retry().Attempt(ctx)
		ack, err := s.js.PublishMsg(actx, msg)
		acancel()
		if err == nil {
			c.Seq = Seq(ack.Sequence)
			s.head.note(c.Seq)
			if ack.Duplicate {
				// An earlier publish stored it: its bytes are that
				// publish's, which another Append call with the same
				// commit ID may have built at another time.
				h, err := s.hashAt(ctx, c.Seq)
				if err != nil {
					return Commit{}, fmt.Errorf("append %s: %w: reading the stored commit at seq %d: %v", ref, ErrUnavailable, c.Seq, err)
				}
				c.Hash = h
				return c, nil
			}
			s.hashes.put(c.Seq, c.Hash)
			return c, nil
		}
		if kvcas.Conflict(err) {
			// The expectation failed. That is a conflict, unless this very
			// commit was stored by an earlier publish whose ack was lost (on a
			// single replica the sequence check runs before the dedup check):
			// the commit that followed our expectation is then ours, whatever
			// was appended on top of it since.
			return s.settleConflict(ctx, ref, expected, c)
		}
		// No ack, or the stream cannot take it now (no leader, the same
		// Nats-Msg-Id still being stored): the message may or may not be
		// stored. Publishing the same message again is safe: dedup or the
		// check above catches a repeat. Retry while the deadline allows.
		if transient.Retryable(err) && ctx.Err() == nil && s.retry().Wait(ctx, attempt) {
			continue
		}
		if transient.Is(err) {
			return Commit{}, fmt.Errorf("append %s: %w: %w", ref, ErrUnavailable, err)
		}
		return Commit{}, fmt.Errorf("append %s: %w", ref, err)
	}
}

// settleConflict decides what a failed expectation means for commit c.
func (s *Store) settleConflict(ctx context.Context, ref Ref, expected Seq, c Commit) (Commit, error) {
	after, err := s.Load(ctx, ref, expected)
	if errors.Is(err, ErrDamaged) {
		// A damaged message took the aggregate's subject: c was not stored,
		// and the aggregate is refused until the message is set aside.
		return Commit{}, fmt.Errorf("append %s: %w", ref, err)
	}
	if err != nil {
		// We cannot tell whether c was stored.
		return Commit{}, fmt.Errorf("append %s: %w: checking a failed expectation: %v", ref, ErrUnavailable, err)
	}
	settled, err := SettleConflict(c, after)
	if err == nil {
		// Found by reading, not by an ack: under group commit, durable
		// before it is relied on.
		if err := groupcommit.Settle(ctx, s.js); err != nil {
			return Commit{}, fmt.Errorf("append %s: %w: %v", ref, ErrUnavailable, err)
		}
		s.hashes.put(settled.Seq, settled.Hash)
		s.head.note(settled.Seq)
	}
	return settled, err
}

// hashAt returns the hash of the stored bytes of the message at seq, from
// the cache or read by sequence; ErrNoMessage when the stream holds none.
func (s *Store) hashAt(ctx context.Context, seq Seq) (Hash, error) {
	if h, ok := s.hashes.get(seq); ok {
		return h, nil
	}
	msg, err := s.getMsg(ctx, uint64(seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Hash{}, fmt.Errorf("%w: seq %d", ErrNoMessage, seq)
	}
	if err != nil {
		return Hash{}, fmt.Errorf("reading seq %d for its hash: %w", seq, unavailable(err))
	}
	h := HashOf(msg.Data)
	s.hashes.put(seq, h)
	return h, nil
}

// lastCommit returns the aggregate's last commit; a zero Commit when it has none.
func (s *Store) lastCommit(ctx context.Context, ref Ref) (Commit, error) {
	msg, err := s.getLastMsg(ctx, s.Subject(ref))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Commit{}, nil
	}
	if err != nil {
		return Commit{}, fmt.Errorf("load %s: %w", ref, unavailable(err))
	}
	return s.checked(ctx, ref, msg)
}

// Load returns the aggregate's commits with sequence greater than after, oldest
// first. After 0 loads the whole aggregate; a caller that holds the state as of
// some commit passes that commit's sequence and gets only what came since. An
// aggregate with no commits loads as an empty slice. A ref that is not valid
// (Ref.Validate) returns an error matching ErrInvalid.
//
// A message on the aggregate's subject that is not a commit this engine can
// read (see ErrDamaged) fails the load with a *DamagedError naming its
// sequence, until an operator sets it aside (SetAside). A set-aside message
// loads as a placeholder: a Commit with its sequence, no events and Damaged
// set, linked to the aggregate's message before it. Its sequence is what
// the next Append must expect when it is the aggregate's last message.
func (s *Store) Load(ctx context.Context, ref Ref, after Seq) ([]Commit, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	last, err := s.lastCommit(ctx, ref)
	if err != nil || last.Seq <= after {
		return nil, err
	}
	chain := []Commit{last}
	for c := last; c.PrevSeq > after; {
		msg, err := s.getMsg(ctx, uint64(c.PrevSeq))
		if err != nil {
			return nil, fmt.Errorf("load %s at seq %d: %w", ref, c.PrevSeq, unavailable(err))
		}
		prev, err := s.checked(ctx, ref, msg)
		if err != nil {
			return nil, err
		}
		if prev.Ref() != ref || prev.PrevSeq >= prev.Seq {
			return nil, fmt.Errorf("%w: %s: commit at seq %d links to %s at seq %d", ErrCorrupt, ref, c.Seq, prev.Ref(), prev.Seq)
		}
		chain = append(chain, prev)
		c = prev
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// LastSeq returns the stream's last sequence: everything appended so far.
func (s *Store) LastSeq(ctx context.Context) (Seq, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	info, err := s.streamInfo(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", unavailable(err))
	}
	s.head.note(Seq(info.State.LastSeq))
	return Seq(info.State.LastSeq), nil
}

// KnownSeq returns the highest stream sequence this Store has seen exist,
// without asking the server: its own appends' sequences (a retried commit's
// too), the commits it has followed, and LastSeq's answers. The stream's last sequence is at least
// this (nothing is ever deleted from the event stream); it may be higher,
// through other instances' appends this Store has not seen yet.
func (s *Store) KnownSeq() Seq { return s.head.get() }

// seqMark is a sequence that only moves up, safe for concurrent use.
type seqMark struct{ v atomic.Uint64 }

func (m *seqMark) get() Seq { return Seq(m.v.Load()) }

func (m *seqMark) note(q Seq) {
	for {
		cur := m.v.Load()
		if uint64(q) <= cur || m.v.CompareAndSwap(cur, uint64(q)) {
			return
		}
	}
}

// Bind returns a Store over an existing event stream without changing its
// settings (for tools such as replay that run beside a live engine).
func Bind(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	stream, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("event stream %s: %w", cfg.Stream, err)
	}
	s := &Store{js: js, stream: stream, cfg: cfg, hashes: &hashCache{}}
	_ = s.openSetAsides(ctx, false) // binds the bucket when first needed; never fails
	return s, nil
}

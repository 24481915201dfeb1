package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/transient"
)

// Hash is the SHA-256 of a message of the event stream exactly as stored:
// its JetStream message data, byte for byte. It identifies what a commit
// holds without any canonical form of its JSON; the audit API shows it as
// the commit hash (String: lowercase hex).
type Hash [sha256.Size]byte

// HashOf returns the hash of a message's stored data.
func HashOf(data []byte) Hash { return sha256.Sum256(data) }

// String returns the hash in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Recorded is one message of an aggregate's subject as History reads it.
type Recorded struct {
	// Commit is the commit as Load returns it: decoded, its events upcast
	// by Config.Upcaster. For a message this engine cannot read (see
	// ErrDamaged) it is a placeholder: Seq, the aggregate, no events, and
	// Damaged set, with the operator's SetAside record if it was set aside.
	Commit Commit
	// Hash is the hash of the message's data as stored (before upcasting).
	Hash Hash
	// StoredAt is when JetStream stored the message.
	StoredAt time.Time
}

// History returns the messages on ref's subject whose sequence is from or
// later (0 and 1 both mean from the start), oldest first, at most limit of
// them (limit ≥ 1): an aggregate's history, a page at a time, with the
// hash of each message's stored bytes. An aggregate without messages, or
// none from that sequence on, returns an empty slice.
//
// Unlike Load, History does not stop at a damaged message: every message
// on the subject is returned in its place, a damaged one (set aside or
// not) as a placeholder with Commit.Damaged set. It reads the subject
// forwards, one message per request, so a page costs O(limit) whatever the
// aggregate's length, and it does not check the chain of PrevSeq links
// (what the stream holds on the subject is what it returns). On a
// replicated stream it reads from the stream leader, so a commit that has
// been acknowledged is in it. A ref that is not valid (Ref.Validate) or a
// limit below 1 returns an error matching ErrInvalid.
func (s *Store) History(ctx context.Context, ref Ref, from Seq, limit int) ([]Recorded, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, fmt.Errorf("%w: history of %s: limit %d", ErrInvalid, ref, limit)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	subj := s.Subject(ref)
	var out []Recorded
	for next := max(from, 1); len(out) < limit; {
		msg, err := s.nextOn(ctx, subj, next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("history of %s from seq %d: %w", ref, next, unavailable(err))
		}
		if msg.Subject != subj || Seq(msg.Sequence) < next {
			return nil, fmt.Errorf("history of %s from seq %d: the stream answered seq %d on %s", ref, next, msg.Sequence, msg.Subject)
		}
		rec, err := s.recorded(ctx, ref, msg)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
		next = Seq(msg.Sequence) + 1
	}
	if out == nil {
		out = []Recorded{}
	}
	return out, nil
}

// recorded decodes msg, a message on ref's subject, as History returns it.
func (s *Store) recorded(ctx context.Context, ref Ref, msg *jetstream.RawStreamMsg) (Recorded, error) {
	seq := Seq(msg.Sequence)
	rec := Recorded{Hash: HashOf(msg.Data), StoredAt: msg.Time.UTC()}
	c, derr := s.read(msg.Subject, msg.Data, seq)
	if derr == nil {
		derr = s.known(c, msg.Subject)
	}
	if derr == nil {
		rec.Commit = c
		return rec, nil
	}
	sa, ok, err := s.SetAsideAt(ctx, seq)
	if err != nil {
		return Recorded{}, fmt.Errorf("history of %s: looking up whether the damaged message at seq %d is set aside: %w", ref, seq, err)
	}
	if ok {
		derr.SetAside = &sa
	}
	rec.Commit = Commit{Seq: seq, AggregateType: ref.Type, AggregateID: ref.ID, Damaged: derr}
	return rec, nil
}

// nextOn reads the first message on subj at sequence from or later,
// retrying transient failures; jetstream.ErrMsgNotFound when there is none.
// A replicated stream is read from its leader (see leaderGet).
func (s *Store) nextOn(ctx context.Context, subj string, from Seq) (*jetstream.RawStreamMsg, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		if s.cfg.Replicas > 1 {
			return s.leaderNext(ctx, subj, from)
		}
		return s.stream.GetMsg(ctx, uint64(from), jetstream.WithGetMsgSubject(subj))
	})
}

// leaderNext is leaderGet for the first message on subj from sequence
// from: JetStream's message get API with next_by_subj, which the stream
// leader answers.
func (s *Store) leaderNext(ctx context.Context, subj string, from Seq) (*jetstream.RawStreamMsg, error) {
	return s.leaderGet(ctx, msgGetRequest{Seq: uint64(from), NextFor: subj})
}

package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/subject"
)

// DamagedError says that the message at Seq is not a commit this engine can
// read. It matches ErrDamaged, and its cause (ErrCorrupt for a message that
// is not a commit, the decoding error of an event) through Unwrap.
type DamagedError struct {
	Seq     Seq
	Subject string
	// Ref is the aggregate the subject names; zero when it names none.
	Ref Ref
	// Err is what is wrong with the message.
	Err error
	// SetAside is the operator's record when the message was set aside;
	// nil until then.
	SetAside *SetAside
}

func (e *DamagedError) Error() string {
	msg := fmt.Sprintf("eventstore: damaged commit at seq %d on %s: %v", e.Seq, e.Subject, e.Err)
	if e.SetAside != nil {
		msg += " (set aside: " + e.SetAside.Reason + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// Unwrap returns the cause.
func (e *DamagedError) Unwrap() error { return e.Err }

// refOf returns the aggregate a subject of the stream names: the two tokens
// after the prefix. The zero Ref if the subject has another shape.
func (s *Store) refOf(subj string) Ref {
	rest, ok := strings.CutPrefix(subj, s.cfg.SubjectPrefix+".")
	if !ok {
		return Ref{}
	}
	typ, id, ok := strings.Cut(rest, ".")
	if !ok || !subject.Token(typ) || !subject.Token(id) {
		return Ref{}
	}
	return Ref{Type: typ, ID: id}
}

// read decodes the message at seq: a *DamagedError if it is not a commit
// (ErrCorrupt), is a commit of another aggregate than its subject names
// (ErrCorrupt), or its events cannot be upcast. It does not look at event
// types (see known).
func (s *Store) read(subj string, data []byte, seq Seq) (Commit, *DamagedError) {
	c, err := DecodeCommit(data, seq, s.cfg.Upcaster)
	if err == nil && c.Ref() != s.refOf(subj) {
		err = fmt.Errorf("%w: seq %d: a commit of %s on subject %s", ErrCorrupt, seq, c.Ref(), subj)
	}
	if err != nil {
		return Commit{}, &DamagedError{Seq: seq, Subject: subj, Ref: s.refOf(subj), Err: err}
	}
	return c, nil
}

// known reports a commit holding an event Config.Check refuses (an event
// this engine cannot decode) as damaged.
func (s *Store) known(c Commit, subj string) *DamagedError {
	if s.cfg.Check == nil {
		return nil
	}
	for _, e := range c.Events {
		if err := s.cfg.Check(e); err != nil {
			return &DamagedError{Seq: c.Seq, Subject: subj, Ref: c.Ref(), Err: fmt.Errorf("event %s (%s): %w", e.EventID, e.EventType, err)}
		}
	}
	return nil
}

// checked decodes msg, a message Load reached for aggregate ref. A message
// this engine cannot read is a *DamagedError, unless an operator set it
// aside: it then loads as a placeholder, a Commit with the message's
// sequence and hash, no events, Damaged set, and PrevSeq the aggregate's
// message before it, so that the load walks on past it.
func (s *Store) checked(ctx context.Context, ref Ref, msg *jetstream.RawStreamMsg) (Commit, error) {
	seq := Seq(msg.Sequence)
	c, derr := s.read(msg.Subject, msg.Data, seq)
	if derr == nil {
		derr = s.known(c, msg.Subject)
	}
	if derr == nil {
		s.hashes.put(seq, c.Hash)
		return c, nil
	}
	if msg.Subject != s.Subject(ref) {
		return Commit{}, fmt.Errorf("%w: %s: the chain leads to seq %d on %s: %v", ErrCorrupt, ref, seq, msg.Subject, derr)
	}
	sa, ok, err := s.SetAsideAt(ctx, seq)
	if err != nil {
		return Commit{}, fmt.Errorf("load %s: %w (looking up whether seq %d is set aside: %v)", ref, derr, seq, err)
	}
	if !ok {
		return Commit{}, derr
	}
	derr.SetAside = &sa
	h := HashOf(msg.Data)
	s.hashes.put(seq, h)
	return Commit{Seq: seq, AggregateType: ref.Type, AggregateID: ref.ID, PrevSeq: sa.PrevSeq, Hash: h, Damaged: derr}, nil
}

// Get returns the commit at seq, checked as Load checks the commits it
// reads: a message this engine cannot read is a *DamagedError (with its
// SetAside record, if an operator set it aside), and a sequence that holds
// no message (beyond the end, or not in the stream) is ErrNoMessage.
func (s *Store) Get(ctx context.Context, seq Seq) (Commit, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	msg, err := s.getMsg(ctx, uint64(seq))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Commit{}, fmt.Errorf("%w: seq %d", ErrNoMessage, seq)
	}
	if err != nil {
		return Commit{}, fmt.Errorf("get seq %d: %w", seq, unavailable(err))
	}
	c, derr := s.read(msg.Subject, msg.Data, seq)
	if derr == nil {
		derr = s.known(c, msg.Subject)
	}
	if derr == nil {
		return c, nil
	}
	sa, ok, err := s.SetAsideAt(ctx, seq)
	if err != nil {
		return Commit{}, err
	}
	if ok {
		derr.SetAside = &sa
	}
	return Commit{}, derr
}

// previousOn returns the sequence of the last message on subj before seq
// (0: none), whatever that message holds: a set-aside message's aggregate
// continues there, and a damaged message before it still refuses loads.
func (s *Store) previousOn(ctx context.Context, subj string, seq Seq) (Seq, error) {
	var prev Seq
	for from := uint64(1); from < uint64(seq); {
		msg, err := s.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("messages on %s before seq %d: %w", subj, seq, unavailable(err))
		}
		if msg.Sequence >= uint64(seq) {
			break
		}
		prev, from = Seq(msg.Sequence), msg.Sequence+1
	}
	return prev, nil
}

package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// RawMessage is one message of the event stream as a direct get returns it.
type RawMessage struct {
	Seq     Seq
	Subject string
	Data    []byte
}

// directBatch is how many messages one direct batch get asks for.
const directBatch = 500

// ReadDirect reads the stream's messages in order, from sequence 1 up to
// the last sequence when it starts, with direct batch gets only: no stream
// info, no consumer. That is all the auditor identity may do with the event
// stream (ADR 0006), so `bankbook replay` and audit tooling read this way.
// It returns the last sequence it read up to (0 for an empty stream).
func ReadDirect(ctx context.Context, js jetstream.JetStream, stream string, fn func(RawMessage) error) (Seq, error) {
	until, err := directLastSeq(ctx, js.Conn(), stream)
	if err != nil || until == 0 {
		return 0, err
	}
	if err := readDirect(ctx, js, stream, until, fn); err != nil {
		return 0, err
	}
	return until, nil
}

// readDirect hands fn the stream's messages 1..until (until ≥ 1, at most
// the last sequence) in order, with direct batch gets.
func readDirect(ctx context.Context, js jetstream.JetStream, stream string, until Seq, fn func(RawMessage) error) error {
	next := uint64(1)
	for next <= uint64(until) {
		msgs, err := jetstreamext.GetBatch(ctx, js, stream, directBatch, jetstreamext.GetBatchSeq(next))
		if err != nil {
			return fmt.Errorf("eventstore: direct get from %d: %w", next, err)
		}
		got := false
		for m, err := range msgs {
			if err != nil {
				return fmt.Errorf("eventstore: direct get from %d: %w", next, err)
			}
			if m.Sequence > uint64(until) {
				break
			}
			got = true
			if err := fn(RawMessage{Seq: Seq(m.Sequence), Subject: m.Subject, Data: m.Data}); err != nil {
				return err
			}
			next = m.Sequence + 1
		}
		if !got {
			return fmt.Errorf("eventstore: direct get from %d returned nothing before the last sequence %d", next, until)
		}
	}
	return nil
}

// Reader reads the event stream's commits with direct gets only: what the
// auditor identity may do (ADR 0006). It makes no request until Read.
type Reader struct {
	js  jetstream.JetStream
	cfg Config
}

// NewReader returns a Reader of the stream cfg names (defaults filled in).
func NewReader(js jetstream.JetStream, cfg Config) *Reader {
	cfg.setDefaults()
	return &Reader{js: js, cfg: cfg}
}

// Reader returns a Reader of the store's stream.
func (s *Store) Reader() *Reader { return &Reader{js: s.js, cfg: s.cfg} }

// Read hands fn the stream's commits in order, in batches, from sequence 1
// to the last sequence when it starts, and returns that sequence. A message
// that is not a readable commit is delivered as a Commit with Damaged set,
// as Follow with DeliverDamaged does, but without its set-aside record
// (the set-aside bucket is the engine's): projections skip a damaged commit
// either way.
func (r *Reader) Read(ctx context.Context, fn Handler) (Seq, error) {
	dec := &Store{cfg: r.cfg}
	batch := make([]Commit, 0, directBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := fn(ctx, batch)
		batch = make([]Commit, 0, directBatch)
		return err
	}
	last, err := ReadDirect(ctx, r.js, r.cfg.Stream, func(m RawMessage) error {
		c, derr := dec.read(m.Subject, m.Data, m.Seq)
		if derr != nil {
			c = Commit{Seq: m.Seq, AggregateType: derr.Ref.Type, AggregateID: derr.Ref.ID, Hash: HashOf(m.Data), Damaged: derr}
		}
		batch = append(batch, c)
		if len(batch) == directBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return last, flush()
}

// directLastSeq is the stream's last sequence, from a direct get of the last
// message on any subject.
func directLastSeq(ctx context.Context, nc *nats.Conn, stream string) (Seq, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": ">"})
	msg, err := nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+stream, req)
	if err != nil {
		return 0, fmt.Errorf("eventstore: last sequence of %s: %w", stream, err)
	}
	switch msg.Header.Get("Status") {
	case "":
	case "404":
		return 0, nil
	default:
		return 0, fmt.Errorf("eventstore: last sequence of %s: status %s %s", stream, msg.Header.Get("Status"), msg.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, errors.New("eventstore: a direct get reply without its sequence")
	}
	return Seq(seq), nil
}

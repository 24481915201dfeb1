package eventstore

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadType calls fn with every commit of the aggregates of one type, in
// stream order, up to the last one the stream held when ReadType began.
// It reads with an ordered consumer filtered on the type's subjects, so a
// type's commits are read without the rest of the stream. A commit that
// cannot be read (see ErrDamaged) reaches fn with Damaged set and no
// events. For rare whole-type scans, such as rebuilding state kept outside
// the stream from its history; the Store's timeout bounds each wait for
// the next commit, not the whole read.
func (s *Store) ReadType(ctx context.Context, aggType string, fn func(Commit) error) error {
	subj := s.cfg.SubjectPrefix + "." + aggType + ".>"
	last, found, err := directGetLast(ctx, s.js.Conn(), s.cfg.Stream, subj, s.cfg.Timeout)
	if err != nil {
		return fmt.Errorf("read %s commits: %w", aggType, unavailable(err))
	}
	if !found {
		return nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return fmt.Errorf("read %s commits: %w", aggType, unavailable(err))
	}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(s.cfg.Timeout))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read %s commits: %w", aggType, unavailable(err))
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read %s commits: %w", aggType, err)
		}
		seq := Seq(meta.Sequence.Stream)
		c, derr := s.read(msg.Subject(), msg.Data(), seq)
		if derr != nil {
			c = Commit{Seq: seq, AggregateType: derr.Ref.Type, AggregateID: derr.Ref.ID, Hash: HashOf(msg.Data()), Damaged: derr}
		}
		if err := fn(c); err != nil {
			return err
		}
		if seq >= last {
			return nil
		}
	}
}

package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReactOptions configures React.
type ReactOptions struct {
	// Durable names the consumer. Every engine instance that reacts with the
	// same name shares it: each commit is handled by one of them.
	Durable string
	// Types lists the aggregate types whose commits to react to.
	Types []string
	// Log receives handler failures (optional).
	Log func(err error, c Commit)
}

// React calls fn for every commit of the given aggregate types, in stream
// order, and acknowledges a commit only after fn returns nil. A failed commit
// is delivered again after a backoff (also after a crash or restart), by then
// possibly after later commits, so fn must be idempotent and must not rely on
// order: delivery is at least once. React
// starts from the beginning of the stream the first time a durable is
// created, so no commit is ever missed. It returns nil when ctx ends.
//
// React is for process managers: work that must follow an event for sure
// (credit the wallet an order refund names), where the command that wrote
// the event may have died before doing it.
func (s *Store) React(ctx context.Context, opts ReactOptions, fn func(context.Context, Commit) error) error {
	filters := make([]string, len(opts.Types))
	for i, t := range opts.Types {
		filters[i] = s.cfg.SubjectPrefix + "." + t + ".>"
	}
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        opts.Durable,
		Description:    "bankbook reactor, shared by every engine instance",
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		MaxAckPending:  1000,
	})
	if err != nil {
		return fmt.Errorf("reactor %s: %w", opts.Durable, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			_ = m.Nak()
			return
		}
		c, err := DecodeCommit(m.Data(), Seq(meta.Sequence.Stream), s.cfg.Upcaster)
		if err == nil {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			err = fn(hctx, c)
			cancel()
		}
		if err != nil {
			if opts.Log != nil {
				opts.Log(err, c)
			}
			_ = m.NakWithDelay(min(time.Duration(meta.NumDelivered)*time.Second, time.Minute))
			return
		}
		_ = m.Ack()
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("reactor %s: %w", opts.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

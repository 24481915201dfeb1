package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/worker"
)

// ReactOptions configures a reactor.
type ReactOptions struct {
	// Durable names the consumer and the part (in logs and dead letters); it
	// must be a subject token. Every engine instance that reacts with the
	// same name shares the consumer: each commit is handled by one of them.
	Durable string
	// Types lists the aggregate types whose commits to react to.
	Types []string
	// Log, when set, receives handler failures with their commit (not the
	// handler's waits: worker.RetryAfter with a nil error).
	Log func(err error, c Commit)
	// Logger receives the worker loop's log lines (part=<Durable>).
	Logger zerolog.Logger
	// Dead records the commits given up on. Nil opens the default
	// dead-letter stream (worker.DeadConfig defaults, the store's replicas).
	Dead *worker.DeadLetters
	// Concurrency is how many commits are handled at once. Default 1.
	Concurrency int
	// Prefetch is how many commits the client pulls ahead of the handlers
	// (worker.Config). Default 2×Concurrency, at least worker.MinPrefetch.
	Prefetch int
	// MaxAttempts is how many failures of one commit lead to a dead letter.
	// Default 20 (worker.Config); negative: never by count.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the delay before a failed commit is
	// handled again. Defaults 1s and 1m.
	MinBackoff, MaxBackoff time.Duration
	// HandlerTimeout bounds one call of the handler. Default 20s.
	HandlerTimeout time.Duration
	// UndecodableWait is how long a commit waits before it is delivered
	// again when this instance cannot upcast one of its events (a schema
	// version written by a newer engine, during a rolling upgrade): a wait,
	// not a failure, so a newer instance takes it and it is never
	// dead-lettered for being newer. Default 30s.
	UndecodableWait time.Duration
	// MaxAckPending is how many commits may be delivered and not yet
	// acknowledged at once, waits included (a commit told to wait stays
	// unacknowledged until it is done). Default 1000; a reactor whose work
	// waits long (payouts pending at a provider) needs more.
	MaxAckPending int
	// StartSeq, above 1, makes a new consumer start at that stream sequence
	// instead of the first: for a reactor added to a deployment with
	// history, which must not act on the past. It must stay the same for
	// the consumer's life (a recreated consumer starts there again).
	StartSeq Seq
	// AckWait is how long a delivered commit may go unacknowledged, with no
	// in-progress signal, before the server delivers it again (to another
	// instance, when this one died). Default 30s.
	AckWait time.Duration
}

// Reactor returns the worker loop that calls fn for every commit of the
// given aggregate types, in stream order, and acknowledges a commit only
// after fn returns nil. A failed commit is delivered again after a backoff
// (also after a crash or restart), by then possibly after later commits, so
// fn must be idempotent and must not rely on order: delivery is at least
// once. After MaxAttempts failures, or at once for a message that is not a
// well-formed commit, the commit is dead-lettered (a recorded fact, listed
// and redriven through the worker package) and the reactor moves on. A
// commit whose events this instance cannot upcast (written by a newer
// version) is not a failure: it is delivered again after UndecodableWait,
// for as long as it takes, and logged as a warning. A damaged message an
// operator set aside (Store.SetAside) is acknowledged without calling fn.
// fn may wait too, by returning worker.RetryAfter(d, nil). A panic in fn is
// recovered into a failure. The consumer is created at the start of the stream (or at
// StartSeq) the first time, so no commit is ever missed.
//
// Reactors are for process managers: work that must follow an event for
// sure (credit the wallet an order refund names), where the command that
// wrote the event may have died before doing it. Run the loop under a
// supervisor: its Run returns an error when the consumer vanishes, and the
// next Run creates it again.
func (s *Store) Reactor(ctx context.Context, opts ReactOptions, fn func(context.Context, Commit) error) (*worker.Loop, error) {
	if fn == nil || len(opts.Types) == 0 {
		return nil, fmt.Errorf("reactor %s: a handler and aggregate types are required", opts.Durable)
	}
	if opts.Dead == nil {
		var err error
		if opts.Dead, err = s.OpenDeadLetters(ctx); err != nil {
			return nil, fmt.Errorf("reactor %s: %w", opts.Durable, err)
		}
	}
	undecodableWait := cmp.Or(opts.UndecodableWait, 30*time.Second)
	filters := make([]string, len(opts.Types))
	for i, t := range opts.Types {
		filters[i] = s.cfg.SubjectPrefix + "." + t + ".>"
	}
	deliver, start := jetstream.DeliverAllPolicy, uint64(0)
	if opts.StartSeq > 1 {
		deliver, start = jetstream.DeliverByStartSequencePolicy, uint64(opts.StartSeq)
	}
	consumer := jetstream.ConsumerConfig{
		Durable:        opts.Durable,
		Description:    "bankbook reactor, shared by every engine instance",
		FilterSubjects: filters,
		DeliverPolicy:  deliver,
		OptStartSeq:    start,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cmp.Or(opts.AckWait, 30*time.Second),
		MaxDeliver:     -1,
		MaxAckPending:  cmp.Or(opts.MaxAckPending, 1000),
	}
	loop, err := worker.New(worker.Config{
		Name: opts.Durable,
		Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			ctx, cancel := s.withTimeout(ctx)
			defer cancel()
			return s.stream.CreateOrUpdateConsumer(ctx, consumer)
		},
		Handler: func(ctx context.Context, m worker.Msg) error {
			c, err := DecodeCommit(m.Data, Seq(m.Seq), s.cfg.Upcaster)
			if err != nil || s.known(c, m.Subject) != nil {
				// Damaged: skipped once an operator has set it aside.
				if sa, ok, lerr := s.SetAsideAt(ctx, Seq(m.Seq)); lerr == nil && ok {
					opts.Logger.Info().Str("part", opts.Durable).Str("subject", m.Subject).Uint64("seq", m.Seq).
						Str("reason", sa.Reason).Msg("damaged commit set aside by an operator; skipped")
					return nil
				}
			}
			if errors.Is(err, ErrCorrupt) {
				// Not a commit: no retry can help.
				return worker.Permanent(err)
			}
			if err != nil {
				// A commit whose events this instance cannot upcast: written
				// by a newer engine. Wait for a newer instance (or this one,
				// upgraded) to take it.
				opts.Logger.Warn().Err(err).Str("part", opts.Durable).Str("subject", m.Subject).Uint64("seq", m.Seq).
					Str("retry_in", undecodableWait.String()).Msg("commit this engine cannot decode (from a newer version?); waiting")
				return worker.RetryAfter(undecodableWait, nil)
			}
			err = fn(ctx, c)
			if err != nil && opts.Log != nil && !isWait(err) {
				opts.Log(err, c)
			}
			return err
		},
		Dead:           opts.Dead,
		Concurrency:    opts.Concurrency,
		Prefetch:       opts.Prefetch,
		MaxAttempts:    opts.MaxAttempts,
		MinBackoff:     opts.MinBackoff,
		MaxBackoff:     cmp.Or(opts.MaxBackoff, time.Minute),
		HandlerTimeout: cmp.Or(opts.HandlerTimeout, 20*time.Second),
		Log:            opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("reactor %s: %w", opts.Durable, err)
	}
	return loop, nil
}

// isWait reports whether err is a handler's wait (worker.RetryAfter with a
// nil error): no failure.
func isWait(err error) bool {
	ra, ok := errors.AsType[*worker.RetryAfterError](err)
	return ok && ra.Err == nil
}

// OpenDeadLetters opens the default dead-letter stream (worker.DeadConfig
// defaults) with the store's replicas, on the store's connection: where
// reactors and the projection runner record what they give up on when
// given no other.
func (s *Store) OpenDeadLetters(ctx context.Context) (*worker.DeadLetters, error) {
	return worker.OpenDeadLetters(ctx, s.js, worker.DeadConfig{Replicas: s.cfg.Replicas})
}

// Handled returns how far the reactor durable has got: every commit of its
// types at or before the returned stream sequence was handled and
// acknowledged (its consumer's acknowledgement floor).
func (s *Store) Handled(ctx context.Context, durable string) (Seq, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	c, err := s.stream.Consumer(ctx, durable)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", durable, unavailable(err))
	}
	return Seq(c.CachedInfo().AckFloor.Stream), nil
}

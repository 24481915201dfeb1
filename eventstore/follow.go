package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/worker"
)

// FollowOptions says where a Follow starts, stops and how it batches.
type FollowOptions struct {
	// Durable names a durable consumer that the server keeps between runs,
	// acknowledged only after the handler returns nil. Empty means an ordered
	// consumer, for one-off replays.
	Durable string
	// After is the last sequence the caller has already handled; delivery
	// starts at After+1.
	After Seq
	// Until makes Follow return nil once the commit at sequence Until has been
	// handled. 0 follows until ctx ends.
	Until Seq
	// MaxBatch caps the commits handed to one handler call. Default 512.
	MaxBatch int
	// DeliverDamaged hands a message that is not a commit this store can
	// read (not a commit, a commit on another aggregate's subject, an event
	// that cannot be upcast) to the handler in its place in the batch, as a
	// Commit with its sequence, the aggregate its subject names, no events
	// and Damaged set (with the SetAside record if an operator set it
	// aside). Without it, Follow fails with the *DamagedError.
	DeliverDamaged bool
	// Log receives the consumer's missed heartbeats
	// (worker.ConsumeOptions.Log). The zero Logger logs nothing.
	Log zerolog.Logger
	// OnHealth, when set, is told of a consumption problem that is not
	// (yet) the end, and of its end (nil), as worker.ConsumeOptions.OnHealth
	// says: heartbeats of a durable consumer missed again and again (pulls
	// the server dropped, a stall), a failed check of the consumer.
	OnHealth func(error)
}

// Handler handles commits in stream order. Commits arrive without gaps:
// each batch starts right after the previous one ends.
type Handler func(ctx context.Context, batch []Commit) error

// Follow calls fn with batches of commits in stream order, starting after
// opts.After, until ctx ends (it then returns ErrClosed), fn fails (Follow
// returns fn's error; nothing of that batch is acknowledged), the consumer
// vanishes (deleted, missing, or the connection closed: an error matching
// worker.ErrConsumerGone; following again recreates it), or opts.Until is
// reached (nil). Follow never waits on a consumer that is gone.
//
// With a durable consumer, a batch is acknowledged only after fn returns nil,
// so a crash between the handler's commit and the ack redelivers commits the
// handler has already seen: handlers skip sequences at or below their
// checkpoint. A durable consumer that is not exactly at opts.After (a crash
// left messages unacknowledged, or the caller's checkpoint went backwards) is
// recreated at opts.After+1, so nothing is skipped. A durable consumer that
// delivers past the next expected sequence (a replicated consumer's new
// leader goes on after deliveries its old leader dropped) is rewound in
// place to the first commit fn has not had, with a warning, and Follow goes
// on (clearing what opts.OnHealth was told before: the rewound consumer
// answered); a gap that comes back at the same sequence after maxGapResets
// rewinds is returned.
//
// A message that is not a commit this store can read fails Follow with a
// *DamagedError (ErrDamaged) naming its sequence, before the batch reaches
// fn; with opts.DeliverDamaged it is delivered in its place instead, so the
// handler can report it and go on.
func (s *Store) Follow(ctx context.Context, opts FollowOptions, fn Handler) error {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.Until != 0 && opts.Until <= opts.After {
		return nil
	}
	cons, err := s.consumer(ctx, opts)
	if err != nil {
		return err
	}
	next := opts.After + 1
	var resetAt Seq // next when the consumer was last reset; 0 none
	resets := 0     // resets in a row at the same next
	for {
		err := s.follow(ctx, cons, opts, &next, fn)
		var gap *gapError
		if opts.Durable == "" || !errors.As(err, &gap) {
			return err
		}
		// A replicated durable consumer that changed leaders can have
		// recorded as delivered messages its old leader never sent (it
		// drops the deliveries still waiting for quorum when it steps
		// down); the new leader sends the next ones and would redeliver the
		// lost ones only after AckWait. Rewind the consumer to next (its
		// ack floor + 1) and go on: nothing is skipped, since only next is
		// ever accepted. A gap that comes back at the same sequence is
		// not a lost delivery: Follow returns it.
		if next == resetAt {
			resets++
		} else {
			resetAt, resets = next, 1
		}
		if resets > maxGapResets {
			return err
		}
		opts.Log.Warn().Str("durable", opts.Durable).Uint64("expected_seq", uint64(gap.next)).Uint64("got_seq", uint64(gap.got)).
			Uint64("rewind_to_seq", uint64(next)).Int("rewinds_in_a_row", resets).
			Msg("follow: deliveries lost (a consumer leader change, or a gap in the stream): rewinding the consumer to the first commit not handled")
		if rerr := s.rewind(ctx, opts.Durable, next); rerr != nil {
			if ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("%w (rewinding the consumer: %w)", err, rerr)
		}
		// The consumer answered its rewind: it is there, as a check that
		// clears a report finds it. The subscription that reported trouble
		// is stopped and can no longer clear it; the next one reports
		// whatever trouble goes on.
		if opts.OnHealth != nil {
			opts.OnHealth(nil)
		}
	}
}

// followHeartbeat is Follow's pull heartbeat on a durable consumer. A
// consumer leader that steps down drops the pull requests waiting on it
// without a word, so the client pulls again only after missing two
// heartbeats: the read models stall that long (worker.DefaultHeartbeat
// would make it about 4 s).
const followHeartbeat = time.Second

// maxGapResets is how many times in a row Follow rewinds its durable
// consumer to the same sequence before it gives up and returns the gap.
const maxGapResets = 3

// gapError is a delivery past the next expected sequence.
type gapError struct{ next, got Seq }

func (e *gapError) Error() string {
	return fmt.Sprintf("follow: expected seq %d, got %d: a delivery was lost, or the stream has a gap", e.next, e.got)
}

// rewind makes the durable consumer deliver from seq next on (the
// JetStream consumer reset API, answered by the consumer's leader once its
// peers agree), retrying transient failures (no leader yet) within the
// store's budget.
func (s *Store) rewind(ctx context.Context, durable string, next Seq) error {
	err := transient.Run(ctx, s.retry(), func(ctx context.Context) error {
		// The consumer itself answers its reset: a request to one that is
		// gone goes unanswered and would be retried as a timeout until the
		// budget ran out. Its info says at once.
		if _, err := s.stream.Consumer(ctx, durable); err != nil {
			return err
		}
		_, err := s.stream.ResetConsumerToSequence(ctx, durable, uint64(next))
		return err
	})
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		// Deleted meanwhile: gone, as if it had vanished while delivering.
		return fmt.Errorf("%w: %w", worker.ErrConsumerGone, err)
	}
	return err
}

// follow consumes cons from *next on, calling fn, until an error (a
// *gapError when a delivery is past the next expected sequence), ctx ends,
// or opts.Until is reached. On a gap it leaves *next at the first commit
// not handed to fn.
func (s *Store) follow(ctx context.Context, cons jetstream.Consumer, opts FollowOptions, nextp *Seq, fn Handler) error {
	heartbeat := followHeartbeat
	if opts.Durable == "" {
		heartbeat = 0 // the default: an ordered consumer recreates itself after missed heartbeats, so a slow batch must not look like one
	}
	// done ends the delivery callback when follow returns for any reason.
	done := make(chan struct{})
	msgs := make(chan jetstream.Msg, 2*opts.MaxBatch)
	sub, err := worker.Consume(cons, func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-done:
		}
	}, worker.ConsumeOptions{MaxMessages: 2 * opts.MaxBatch, Heartbeat: heartbeat, Ordered: opts.Durable == "", OnHealth: opts.OnHealth, Log: opts.Log})
	if err != nil {
		close(done)
		return fmt.Errorf("consume %s: %w", s.cfg.Stream, err)
	}
	defer func() {
		close(done) // first release a callback blocked on msgs, then stop
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		sub.Stop(ctx)
		cancel()
	}()

	next := *nextp
	defer func() { *nextp = next }()
	batch := make([]Commit, 0, opts.MaxBatch)
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return ErrClosed
		case <-sub.Done():
			return fmt.Errorf("follow %s: %w", cmp.Or(opts.Durable, "(ordered)"), sub.Err())
		case first = <-msgs:
		}
		raw := []jetstream.Msg{first}
	drain:
		for len(raw) < opts.MaxBatch {
			select {
			case m := <-msgs:
				raw = append(raw, m)
			default:
				break drain
			}
		}
		batch = batch[:0]
		var last jetstream.Msg // the last message handled or skipped: what the ack covers
		for _, m := range raw {
			last = m
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("follow: %w", err)
			}
			seq := Seq(meta.Sequence.Stream)
			if seq < next {
				continue // redelivered, already handled
			}
			if seq > next {
				// A delivery lost (a consumer leader change, a connection
				// the server closed) or a gap in the stream. Follow rewinds
				// a durable consumer to the first commit fn has not had,
				// which may be before next: the commits of this batch read
				// before the skip are read again. An ordered consumer's
				// caller starts again from its checkpoint.
				gap := &gapError{next: next, got: seq}
				if len(batch) > 0 {
					next = batch[0].Seq
				}
				return gap
			}
			s.head.note(seq)
			c, err := s.followed(ctx, m.Subject(), m.Data(), seq, opts.DeliverDamaged)
			if err != nil {
				return err
			}
			batch = append(batch, c)
			next++
			if opts.Until != 0 && seq >= opts.Until {
				break
			}
		}
		if len(batch) > 0 {
			if err := fn(ctx, batch); err != nil {
				return err
			}
		}
		if opts.Durable != "" {
			if err := last.Ack(); err != nil {
				return fmt.Errorf("follow ack: %w", err)
			}
		}
		if opts.Until != 0 && next > opts.Until {
			return nil
		}
	}
}

// consumer returns the consumer Follow reads, retrying transient failures
// (a consumer or meta leader being elected) within the store's budget.
func (s *Store) consumer(ctx context.Context, opts FollowOptions) (jetstream.Consumer, error) {
	return transient.Do(ctx, s.retry(), func(ctx context.Context) (jetstream.Consumer, error) {
		return s.consumerOnce(ctx, opts)
	})
}

func (s *Store) consumerOnce(ctx context.Context, opts FollowOptions) (jetstream.Consumer, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	deliver, start := jetstream.DeliverAllPolicy, uint64(0)
	if opts.After > 0 {
		deliver, start = jetstream.DeliverByStartSequencePolicy, uint64(opts.After)+1
	}
	if opts.Durable == "" {
		c, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: deliver, OptStartSeq: start})
		if err != nil {
			return nil, fmt.Errorf("ordered consumer on %s: %w", s.cfg.Stream, err)
		}
		return c, nil
	}
	if c, err := s.stream.Consumer(ctx, opts.Durable); err == nil {
		info, err := c.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", opts.Durable, err)
		}
		if Seq(info.AckFloor.Stream) == opts.After && Seq(info.Delivered.Stream) == opts.After {
			return c, nil
		}
		if err := s.stream.DeleteConsumer(ctx, opts.Durable); err != nil {
			return nil, fmt.Errorf("reset consumer %s: %w", opts.Durable, err)
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", opts.Durable, err)
	}
	c, err := s.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:           opts.Durable,
		Description:       "bankbook read models of one engine instance",
		DeliverPolicy:     deliver,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckAllPolicy,
		AckWait:           time.Minute,
		MaxDeliver:        -1,
		MaxAckPending:     -1,
		InactiveThreshold: 7 * 24 * time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", opts.Durable, err)
	}
	return c, nil
}

// followed decodes a message Follow delivers; see FollowOptions.DeliverDamaged.
func (s *Store) followed(ctx context.Context, subj string, data []byte, seq Seq, deliverDamaged bool) (Commit, error) {
	c, derr := s.read(subj, data, seq)
	if derr == nil {
		return c, nil
	}
	if !deliverDamaged {
		return Commit{}, derr
	}
	sa, ok, err := s.SetAsideAt(ctx, seq)
	if err != nil {
		return Commit{}, fmt.Errorf("follow: %w (looking up whether it is set aside: %v)", derr, err)
	}
	if ok {
		derr.SetAside = &sa
	}
	return Commit{Seq: seq, AggregateType: derr.Ref.Type, AggregateID: derr.Ref.ID, PrevSeq: sa.PrevSeq, Hash: HashOf(data), Damaged: derr}, nil
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ConsumeOptions configures Consume.
type ConsumeOptions struct {
	// MaxMessages is how many messages the client pulls ahead. Default 16.
	MaxMessages int
	// Expiry of each pull request. Default 30s (Loop's Config requires at
	// least 1s).
	Expiry time.Duration
	// Heartbeat is how often the server tells a pull request that waits
	// for messages that it is still there. Two missed in a row make the
	// client pull again and Consume check that the consumer still exists.
	// It is also how the client gets out of a stall of its own: nats.go
	// (1.55) skips its next pull when the last message it asked for arrives
	// while it is still sending a pull, and then has nothing asked for
	// until heartbeats are missed (docs/performance.md, "A pull the client
	// skips"; with any PullMaxMessages, more often the smaller it is).
	// Default DefaultHeartbeat, or Expiry/2 if that is shorter; nats.go
	// refuses less than 500ms.
	Heartbeat time.Duration
	// Ordered says the consumer is an ordered consumer, which the client
	// recreates by itself when it is deleted or stalls: only a closed
	// connection ends it.
	Ordered bool
	// OnHealth, when set, is called with a consumption problem that is not
	// (yet) the end (heartbeats missed ReportMisses times in a row with no
	// message in between, and every ReportEvery misses after that; the
	// server away; a failed check), and with nil once a check finds the
	// consumer there again.
	OnHealth func(error)
	// Log receives each missed heartbeat (the client pulls again): warn when
	// it is reported through OnHealth, info otherwise. The zero Logger logs
	// nothing.
	Log zerolog.Logger
}

// DefaultHeartbeat is ConsumeOptions.Heartbeat's default: a stalled pull
// costs about twice that.
const DefaultHeartbeat = 2 * time.Second

// ReportMisses is how many times in a row heartbeats must be missed, with
// no message in between, before Consume reports them through OnHealth:
// once is a hiccup the client recovers from by pulling again. Misses that
// go on are reported again every ReportEvery (about a minute).
const (
	ReportMisses = 3
	ReportEvery  = 15
)

// Subscription is a running jetstream Consume whose end is noticed: Done is
// closed when delivery stopped for good (the consumer was deleted or is
// missing, the connection closed), and Err says why. Every pull-consumer
// loop in bankbook (worker loops and eventstore.Follow) consumes through it,
// so none waits forever on a consumer that is gone.
type Subscription struct {
	cc     jetstream.ConsumeContext
	cons   jetstream.Consumer
	opts   ConsumeOptions
	closed <-chan struct{} // cc.Closed()
	errs   chan error      // from the consume error handler
	stop   chan struct{}   // closed by Stop
	done   chan struct{}   // closed when delivery ended for good, or by Stop

	mu       sync.Mutex
	err      error
	stopOnce sync.Once
	doneOnce sync.Once
	checking bool

	misses   atomic.Int32 // heartbeats missed in a row, with no message in between
	lastMiss time.Time    // when the last was missed; only watch uses it
}

// Consume starts cons.Consume(handler) and watches it. Stop it with Stop.
func Consume(cons jetstream.Consumer, handler jetstream.MessageHandler, opts ConsumeOptions) (*Subscription, error) {
	if opts.MaxMessages <= 0 {
		opts.MaxMessages = 16
	}
	if opts.Expiry == 0 {
		opts.Expiry = 30 * time.Second
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = min(DefaultHeartbeat, opts.Expiry/2)
	}
	s := &Subscription{
		cons: cons,
		opts: opts,
		errs: make(chan error, 16),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		s.delivered()
		handler(m)
	},
		jetstream.PullMaxMessages(opts.MaxMessages),
		jetstream.PullExpiry(opts.Expiry),
		jetstream.PullHeartbeat(opts.Heartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// Called with the client's locks held: never block here.
			select {
			case s.errs <- err:
			default:
			}
		}))
	if err != nil {
		return nil, err
	}
	s.cc = cc
	s.closed = cc.Closed()
	go s.watch()
	if opts.OnHealth != nil && !opts.Ordered {
		go s.watchPaused()
	}
	return s, nil
}

// pausedEvery is how often Consume asks whether its consumer was paused.
const pausedEvery = 5 * time.Second

// watchPaused reports a paused consumer through OnHealth, and clears the
// report once it is resumed. The server goes on answering the pulls of a
// paused consumer with heartbeats, so no miss ever shows the stall; only
// the consumer's information does. An unanswered question reports nothing:
// check and the missed heartbeats cover a server or consumer away.
func (s *Subscription) watchPaused() {
	t := time.NewTicker(pausedEvery)
	defer t.Stop()
	paused := false
	for {
		select {
		case <-s.stop:
			return
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := s.cons.Info(ctx)
		cancel()
		switch {
		case err != nil:
		case info.Paused:
			paused = true
			until := "further notice"
			if info.Config.PauseUntil != nil {
				until = info.Config.PauseUntil.UTC().Format(time.RFC3339)
			}
			s.opts.OnHealth(fmt.Errorf("consumer %s paused until %s: nothing is delivered (%d messages waiting); resume it", info.Name, until, info.NumPending))
		case paused:
			paused = false
			s.opts.OnHealth(nil)
		}
	}
}

// Done is closed when delivery has ended for good, or Stop was called.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why delivery ended (matching ErrConsumerGone), or nil while it
// goes on or after Stop.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop stops delivery and waits until the client has let go of the
// subscription, at most until ctx ends. Stop is idempotent.
func (s *Subscription) Stop(ctx context.Context) {
	s.stopOnce.Do(func() {
		close(s.stop)
		// Drain, not Stop: messages the client library has pulled but not
		// yet handed over still reach the callback, which hands them back
		// (Nak) instead of leaving them to AckWait.
		s.cc.Drain()
	})
	s.doneOnce.Do(func() { close(s.done) })
	select {
	case <-s.closed:
	case <-ctx.Done():
	}
}

// end records why delivery ended and closes Done.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	stopped := false
	select {
	case <-s.stop:
		stopped = true
	default:
	}
	if s.err == nil && !stopped {
		s.err = fmt.Errorf("%w: %w", ErrConsumerGone, err)
	}
	s.mu.Unlock()
	s.cc.Stop()
	s.doneOnce.Do(func() { close(s.done) })
}

func (s *Subscription) watch() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.closed:
			select {
			case <-s.stop:
				return
			default:
			}
			// Ended by itself: take the reason the client gave, if any.
			reason := errors.New("consumption closed by the client")
			for len(s.errs) > 0 {
				if err := <-s.errs; terminal(err, s.opts.Ordered) {
					reason = err
				}
			}
			s.end(reason)
			return
		case err := <-s.errs:
			if terminal(err, s.opts.Ordered) {
				s.end(err)
				return
			}
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				n := s.missed(time.Now())
				report := reported(n)
				ev := s.opts.Log.Info()
				if report {
					ev = s.opts.Log.Warn()
				}
				ev.Int32("in_a_row", n).Dur("heartbeat", s.opts.Heartbeat).Msg("missed heartbeats: pulled again")
				if !report {
					if !s.opts.Ordered {
						s.check()
					}
					continue
				}
			}
			if s.opts.OnHealth != nil {
				s.opts.OnHealth(err)
			}
			if !s.opts.Ordered {
				s.check()
			}
		}
	}
}

// terminal reports whether err means the consumer will deliver no more.
func terminal(err error, ordered bool) bool {
	if errors.Is(err, jetstream.ErrConnectionClosed) {
		return true
	}
	return !ordered && (errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrBadRequest) || missing(err) || refusedPull(err))
}

// refusedPull reports whether err is the server's refusal of every pull of
// this subscription, because the consumer's configuration no longer takes
// them (changed behind the part's back: a MaxRequestBatch, MaxRequestExpires
// or MaxRequestMaxBytes below what it asks, or a push consumer under its
// name). Pulling again gets the same 409, so the subscription ends and the
// part's next start puts the consumer's configuration back. nats.go has no
// error value for these; they come as the server's description.
func refusedPull(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "exceeded maxrequest") || strings.Contains(msg, "consumer is push based")
}

// missing reports whether err says the consumer or its stream does not exist.
func missing(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
}

// delivered starts the count of missed heartbeats again: a message came.
func (s *Subscription) delivered() {
	if s.misses.Load() != 0 {
		s.misses.Store(0)
	}
}

// missed counts a missed heartbeat at now and returns how many were missed
// in a row. Misses in a row come 2×Heartbeat apart (the client pulls again
// at each and waits as long for the next heartbeat); a miss that comes much
// later than the one before starts the count again, since heartbeats came
// in between (they never reach the handler, so they cannot reset it).
// Only watch calls it.
func (s *Subscription) missed(now time.Time) int32 {
	if s.lastMiss.IsZero() || now.Sub(s.lastMiss) > 3*2*s.opts.Heartbeat {
		s.misses.Store(0)
	}
	s.lastMiss = now
	return s.misses.Add(1)
}

// reported reports whether the n-th missed heartbeat in a row goes to
// OnHealth.
func reported(n int32) bool {
	return n >= ReportMisses && (n-ReportMisses)%ReportEvery == 0
}

// checkEvery is the pause between consumer checks while the server does not answer.
const checkEvery = 2 * time.Second

// check asks the server, in the background, whether the consumer still
// exists, until it answers: missing ends the subscription; present clears
// the health report.
func (s *Subscription) check() {
	s.mu.Lock()
	if s.checking {
		s.mu.Unlock()
		return
	}
	s.checking = true
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			s.checking = false
			s.mu.Unlock()
		}()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := s.cons.Info(ctx)
			cancel()
			switch {
			case err == nil:
				if s.opts.OnHealth != nil {
					s.opts.OnHealth(nil)
				}
				return
			case missing(err):
				s.end(err)
				return
			}
			select {
			case <-s.done: // stopped meanwhile: the error is the stop's
				return
			default:
			}
			if s.opts.OnHealth != nil {
				s.opts.OnHealth(fmt.Errorf("checking consumer: %w", err))
			}
			t := time.NewTimer(checkEvery)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/supervisor"
)

// Loop is one background part served by a JetStream pull consumer: it hands
// each message to the Handler, N at a time, and settles it with the
// outcome the Handler chose. It is safe for concurrent use; Run may be
// called again after it returned (the supervisor's restart).
type Loop struct {
	cfg Config

	cons atomic.Pointer[jetstream.Consumer] // the consumer of the latest Run

	processed, retried, deferred, deadLettered, panics atomic.Uint64
	inFlight                                           atomic.Int64

	mu       sync.Mutex
	failures map[uint64]failure // failed handlings by stream sequence
}

type failure struct {
	n    int
	last time.Time
}

// Stats are a Loop's counters since it was created.
type Stats struct {
	// Processed counts messages handled and acknowledged.
	Processed uint64
	// Retried counts failed handlings that were delivered again.
	Retried uint64
	// Deferred counts messages not due yet (RetryAfter with a nil error).
	Deferred uint64
	// DeadLettered counts messages recorded as dead letters.
	DeadLettered uint64
	// Panics counts handler panics (also counted in Retried or DeadLettered).
	Panics uint64
	// InFlight is the number of messages held now (handled or waiting).
	InFlight int64
}

// New returns a Loop. It does not touch the server until Run.
func New(cfg Config) (*Loop, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("worker %s config: %w", cfg.Name, err)
	}
	return &Loop{cfg: cfg, failures: make(map[uint64]failure)}, nil
}

// Name returns the part's name.
func (l *Loop) Name() string { return l.cfg.Name }

// Stats returns the Loop's counters.
func (l *Loop) Stats() Stats {
	return Stats{
		Processed:    l.processed.Load(),
		Retried:      l.retried.Load(),
		Deferred:     l.deferred.Load(),
		DeadLettered: l.deadLettered.Load(),
		Panics:       l.panics.Load(),
		InFlight:     l.inFlight.Load(),
	}
}

// Pending returns the consumer's num_pending: messages in the stream not yet
// delivered to it (for bankbook_consumer_pending). ErrNotRunning before the
// first Run has created the consumer.
func (l *Loop) Pending(ctx context.Context) (uint64, error) {
	c := l.cons.Load()
	if c == nil {
		return 0, ErrNotRunning
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	info, err := (*c).Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s pending: %w", l.cfg.Name, err)
	}
	return info.NumPending, nil
}

// Run creates (or looks up) the consumer and handles its messages until ctx
// ends, then lets the handlers in flight finish (each bounded by
// HandlerTimeout), hands back the messages it held but did not start, and
// returns nil. It returns an error matching ErrConsumerGone as soon as the
// consumer is deleted or missing, so that a supervisor starts it again and
// the consumer is created again. Under a supervisor, Run reports
// consumption trouble through the part's Handle.
func (l *Loop) Run(ctx context.Context) error {
	h := supervisor.From(ctx)
	cons, err := l.cfg.Consumer(ctx)
	if ctx.Err() != nil {
		return nil // stopped while setting up: not a failure
	}
	if err != nil {
		return fmt.Errorf("%s: consumer: %w", l.cfg.Name, err)
	}
	l.cons.Store(&cons)
	every := l.cfg.InProgressEvery
	if every == 0 {
		ackWait := cons.CachedInfo().Config.AckWait
		if ackWait <= 0 {
			ackWait = 30 * time.Second
		}
		every = max(ackWait/3, 100*time.Millisecond)
	}

	r := &run{l: l, h: h, held: make(map[jetstream.Msg]time.Time), jobs: make(chan jetstream.Msg, l.cfg.Prefetch), stop: make(chan struct{}),
		ackSlots: make(chan struct{}, acksInFlight)}
	sub, err := Consume(cons, r.receive, ConsumeOptions{
		MaxMessages: l.cfg.Prefetch,
		Expiry:      l.cfg.Expiry,
		Log:         l.cfg.Log.With().Str("part", l.cfg.Name).Logger(),
		OnHealth: func(err error) {
			if err != nil {
				l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Msg("consumer trouble")
			}
			h.ReportFrom(sourceConsumer, err)
		},
	})
	if err != nil {
		return fmt.Errorf("%s: consume: %w", l.cfg.Name, err)
	}
	h.SetReady(true, "")

	var wg sync.WaitGroup
	for range l.cfg.Concurrency {
		wg.Go(func() { r.work(ctx) })
	}
	wg.Go(func() { r.keepAlive(every) })

	var result error
	select {
	case <-ctx.Done():
	case <-sub.Done():
		result = fmt.Errorf("%s: %w", l.cfg.Name, sub.Err())
	}
	close(r.stop)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	sub.Stop(sctx)
	cancel()
	wg.Wait()
	r.acks.Wait()
	// Hand back what was pulled but not started: another instance, or the
	// next Run, takes it at once.
	for {
		select {
		case m := <-r.jobs:
			r.release(m)
			_ = m.Nak()
			continue
		default:
		}
		break
	}
	if result != nil {
		l.cfg.Log.Error().Err(result).Str("part", l.cfg.Name).Msg("consumer gone; the part must create it again")
	}
	return result
}

// The sources of trouble a Run reports apart (supervisor.Handle.ReportFrom),
// so that one's recovery does not hide another's failure.
const (
	sourceConsumer    = "consumer"     // Consume's OnHealth: heartbeats, the consumer's checks
	sourceDeadLetters = "dead letters" // recording dead letters
	sourceLookups     = "dead-letter lookups"
	sourceHandlers    = "handlers"    // a handler running past its timeout (keepAlive)
	sourceAckPending  = "ack pending" // every ack-pending slot held (keepAlive)
)

// run is the state of one Run.
type run struct {
	l    *Loop
	h    *supervisor.Handle
	jobs chan jetstream.Msg
	stop chan struct{}

	mu sync.Mutex
	// held are the messages pulled and not yet settled, with when their
	// handler started (zero while they wait for one).
	held map[jetstream.Msg]time.Time

	// acks are the acknowledgements on their way (ack); ackSlots bounds
	// them.
	acks     sync.WaitGroup
	ackSlots chan struct{}

	lookupFailing atomic.Bool // the last dead-letter lookup failed (deadAlready)
}

// receive is the consume callback: it queues m for the handlers.
func (r *run) receive(m jetstream.Msg) {
	r.hold(m)
	select {
	case r.jobs <- m:
	case <-r.stop:
		r.release(m)
		_ = m.Nak()
	}
}

func (r *run) hold(m jetstream.Msg) {
	r.mu.Lock()
	r.held[m] = time.Time{}
	r.mu.Unlock()
	r.l.inFlight.Add(1)
}

func (r *run) release(m jetstream.Msg) {
	r.mu.Lock()
	_, ok := r.held[m]
	delete(r.held, m)
	r.mu.Unlock()
	if ok {
		r.l.inFlight.Add(-1)
	}
}

// ackPendingEvery is how often keepAlive asks the server whether every
// ack-pending slot of the consumer is held.
const ackPendingEvery = 5 * time.Second

// keepAlive tells the server, every interval, that the messages held are
// still being worked on, so their AckWait does not redeliver them. It
// also reports the two ways a part can stall while its consumer is fine:
// a handler that has not returned long after its HandlerTimeout (one that
// ignores its context), which keeps its message from every other
// instance; and waits (RetryAfter) or failures that hold every
// ack-pending slot, after which the server delivers nothing new.
func (r *run) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastAckCheck time.Time
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		r.mu.Lock()
		held := make([]jetstream.Msg, 0, len(r.held))
		var stuck jetstream.Msg // the longest past its handler's timeout
		var since time.Time
		for m, at := range r.held {
			held = append(held, m)
			if !at.IsZero() && now.Sub(at) > r.l.cfg.HandlerTimeout+settleBudget && (stuck == nil || at.Before(since)) {
				stuck, since = m, at
			}
		}
		r.mu.Unlock()
		for _, m := range held {
			_ = m.InProgress()
		}
		r.h.ReportFrom(sourceHandlers, r.stuckError(stuck, now.Sub(since)))
		if now.Sub(lastAckCheck) >= ackPendingEvery {
			lastAckCheck = now
			r.h.ReportFrom(sourceAckPending, r.ackPendingFull())
		}
	}
}

// settleBudget bounds settling a message once its handler has returned.
const settleBudget = 5 * time.Second

// stuckError describes the handler of m, running for d past its timeout;
// nil for no m.
func (r *run) stuckError(m jetstream.Msg, d time.Duration) error {
	if m == nil {
		return nil
	}
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	return fmt.Errorf("%s: the handler of seq %d has run for %s, past its timeout of %s: it holds its message from every instance",
		r.l.cfg.Name, seq, d.Round(time.Second), r.l.cfg.HandlerTimeout)
}

// ackPendingFull returns an error when the consumer's ack-pending slots
// are all held, not all by messages this run is working on, while
// messages wait to be delivered; nil otherwise, and when the server does
// not answer (the consumer's own checks report that).
func (r *run) ackPendingFull() error {
	c := r.l.cons.Load()
	if c == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := (*c).Info(ctx)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	busy := len(r.held) // slots this run holds while it works: not a stall
	r.mu.Unlock()
	if limit := info.Config.MaxAckPending; limit > 0 && info.NumAckPending >= limit && busy < limit && info.NumPending > 0 {
		return fmt.Errorf("%s: all %d ack-pending slots are held (waits and retries) and %d messages wait behind them: nothing new is delivered until one is settled",
			r.l.cfg.Name, limit, info.NumPending)
	}
	return nil
}

// work handles queued messages until the run stops. It watches ctx as well
// as r.stop: Run closes r.stop only after it saw ctx end, and in between no
// new message may be started.
func (r *run) work(ctx context.Context) {
	for {
		if r.stopping(ctx) {
			return
		}
		select {
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		case m := <-r.jobs:
			if r.stopping(ctx) { // both were ready: no new work once stopping
				r.release(m)
				_ = m.Nak()
				return
			}
			if !r.handle(ctx, m) {
				r.release(m)
			}
		}
	}
}

// stopping reports whether the run is stopping: its context ended or Run
// closed r.stop.
func (r *run) stopping(ctx context.Context) bool {
	select {
	case <-r.stop:
		return true
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

// handle calls the handler for m and settles m with its outcome. It
// reports whether m is still held, by an acknowledgement on its way that
// releases it (ack).
func (r *run) handle(ctx context.Context, m jetstream.Msg) (acking bool) {
	l := r.l
	meta, err := m.Metadata()
	if err != nil {
		l.cfg.Log.Error().Err(err).Str("part", l.cfg.Name).Str("subject", m.Subject()).Msg("message without JetStream metadata; terminated")
		_ = m.Term()
		return false
	}
	msg := Msg{
		Subject:   m.Subject(),
		Data:      m.Data(),
		Header:    m.Headers(),
		Stream:    meta.Stream,
		Seq:       meta.Sequence.Stream,
		Published: meta.Timestamp,
		Delivered: meta.NumDelivered,
		Attempt:   l.failed(meta.Sequence.Stream) + 1,
	}
	if msg.Delivered > 1 && r.deadAlready(ctx, m, msg) {
		return false
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.HandlerTimeout)
	r.mu.Lock()
	r.held[m] = time.Now() // from here until settled (release)
	r.mu.Unlock()
	err = l.call(hctx, msg)
	cancel()
	if kind, _ := classify(err); kind == ack {
		r.ack(ctx, m, msg)
		return true
	}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), settleBudget)
	defer acancel()
	r.settle(actx, m, msg, err)
	return false
}

// acksInFlight bounds the acknowledgements a run waits for at once (ack),
// well under the consumers' ack-pending limits.
const acksInFlight = 256

// ack acknowledges m, handled, and confirms it with the server (double
// ack) without holding up the next message: under load an ack's round trip
// took longer than most handlers, and a part handling one message at a
// time worked through a burst at the pace of its round trips. m stays held
// (InFlight, kept in progress) until the server has answered; Run waits
// for every ack on its way before it returns. Messages are still handled
// in order; only their acks overlap.
func (r *run) ack(ctx context.Context, m jetstream.Msg, msg Msg) {
	l := r.l
	l.forget(msg.Seq)
	r.ackSlots <- struct{}{}
	r.acks.Go(func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleBudget)
		err := m.DoubleAck(actx)
		cancel()
		// Released before it is counted: whoever sees it processed
		// (Stats) sees it no longer in flight.
		r.release(m)
		<-r.ackSlots
		if err != nil {
			l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Uint64("seq", msg.Seq).Msg("ack failed; the message will be delivered again")
			return
		}
		l.processed.Add(1)
	})
}

// call runs the handler, recovering a panic into a *PanicError.
func (l *Loop) call(ctx context.Context, msg Msg) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			l.panics.Add(1)
			l.cfg.Log.Error().Str("part", l.cfg.Name).Str("subject", msg.Subject).Uint64("seq", msg.Seq).
				Str("panic", fmt.Sprint(v)).Str("stack", string(pe.Stack)).Msg("handler panicked")
			err = pe
		}
	}()
	return l.cfg.Handler(ctx, msg)
}

// settle redelivers or dead-letters m, whose handler failed or asked to wait
// (a handled m is acknowledged by ack).
func (r *run) settle(ctx context.Context, m jetstream.Msg, msg Msg, err error) {
	l := r.l
	kind, delay := classify(err)
	switch kind {
	case deferred:
		l.deferred.Add(1)
		_ = m.NakWithDelay(delay)
	case retry:
		n := l.fail(msg.Seq)
		if l.cfg.MaxAttempts > 0 && n >= l.cfg.MaxAttempts {
			r.deadLetter(ctx, m, msg, n, err, false)
			return
		}
		if delay <= 0 {
			delay = l.backoff(n)
		}
		l.retried.Add(1)
		l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Str("subject", msg.Subject).Uint64("seq", msg.Seq).
			Int("attempt", n).Str("retry_in", delay.String()).Msg("handler failed; will retry")
		_ = m.NakWithDelay(delay)
	case deadNow:
		r.deadLetter(ctx, m, msg, l.fail(msg.Seq), err, true)
	}
}

// deadLetter records m as a dead letter and terminates it. If recording
// fails, m is delivered again later instead: nothing is dropped unrecorded.
func (r *run) deadLetter(ctx context.Context, m jetstream.Msg, msg Msg, attempts int, cause error, permanent bool) {
	l := r.l
	dl, err := l.cfg.Dead.Record(ctx, DeadLetter{
		Part: l.cfg.Name, Stream: msg.Stream, Seq: msg.Seq, Subject: msg.Subject,
		Attempts: attempts, Delivered: msg.Delivered, Error: cause.Error(), Permanent: permanent,
	})
	if err != nil {
		delay := l.backoff(attempts)
		l.retried.Add(1)
		l.cfg.Log.Error().Err(err).Str("part", l.cfg.Name).Uint64("seq", msg.Seq).Str("retry_in", delay.String()).
			Msg("could not record a dead letter; will retry the message")
		r.h.ReportFrom(sourceDeadLetters, fmt.Errorf("recording a dead letter: %w", err))
		_ = m.NakWithDelay(delay)
		return
	}
	r.h.ReportFrom(sourceDeadLetters, nil)
	l.forget(msg.Seq)
	l.deadLettered.Add(1)
	l.cfg.Log.Error().Err(cause).Str("part", l.cfg.Name).Str("subject", msg.Subject).Str("stream", msg.Stream).
		Uint64("seq", msg.Seq).Int("attempts", attempts).Bool("permanent", permanent).Uint64("dead_letter", dl.ID).
		Msg("dead-lettered")
	// The mark has a budget of its own: Record may have used ctx's.
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer mcancel()
	if err := l.cfg.Dead.mark(mctx, dl, msg); err != nil {
		l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Uint64("seq", msg.Seq).
			Msg("could not mark the message dead-lettered: should its term be lost, it is handled again")
	}
	r.term(m, msg, dl.ID)
}

// deadAlready terminates m without handling it if it was dead-lettered
// before (deadmark.go): only a redrive runs that work again. It reports
// whether it settled m. A lookup that fails hands m back for
// lookupRetry and reports the part failing until a lookup succeeds.
func (r *run) deadAlready(ctx context.Context, m jetstream.Msg, msg Msg) bool {
	l := r.l
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
	defer cancel()
	id, ok, err := l.cfg.Dead.marked(ctx, l.cfg.Name, msg)
	if err != nil {
		l.retried.Add(1)
		l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Uint64("seq", msg.Seq).Str("retry_in", lookupRetry.String()).
			Msg("could not tell whether the message was dead-lettered; will retry it")
		r.lookupFailing.Store(true)
		r.h.ReportFrom(sourceLookups, fmt.Errorf("looking up dead-lettered messages: %w", err))
		_ = m.NakWithDelay(lookupRetry)
		return true
	}
	if r.lookupFailing.CompareAndSwap(true, false) {
		r.h.ReportFrom(sourceLookups, nil)
	}
	if !ok {
		return false
	}
	l.cfg.Log.Warn().Str("part", l.cfg.Name).Str("stream", msg.Stream).Uint64("seq", msg.Seq).Uint64("dead_letter", id).
		Msg("delivered again after it was dead-lettered: terminated, not handled (only a redrive of its dead letter runs it)")
	r.term(m, msg, id)
	return true
}

// Looking up whether a message delivered again was dead-lettered: the
// lookup's time limit, and when a message whose lookup failed comes back.
const (
	lookupTimeout = 2 * time.Second
	lookupRetry   = 10 * time.Second
)

// term terminates m, dead-lettered as dead letter id.
func (r *run) term(m jetstream.Msg, msg Msg, id uint64) {
	if err := m.TermWithReason(fmt.Sprintf("dead letter %d", id)); err != nil {
		r.l.cfg.Log.Warn().Err(err).Str("part", r.l.cfg.Name).Uint64("seq", msg.Seq).
			Msg("term failed; should the message be delivered again, it is terminated then")
	}
}

// backoff returns the delay after the n-th failure: MinBackoff doubled n-1
// times, at most MaxBackoff.
func (l *Loop) backoff(n int) time.Duration {
	d := l.cfg.MinBackoff
	for i := 1; i < n && d < l.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, l.cfg.MaxBackoff)
}

// failed returns how often the message at seq failed so far.
func (l *Loop) failed(seq uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures[seq].n
}

// fail counts a failure of the message at seq and returns the count.
func (l *Loop) fail(seq uint64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if len(l.failures) >= maxTracked {
		// Forget messages not seen for long: settled by another instance.
		for s, f := range l.failures {
			if now.Sub(f.last) > 2*l.cfg.MaxBackoff+time.Hour {
				delete(l.failures, s)
			}
		}
	}
	f := l.failures[seq]
	f.n++
	f.last = now
	l.failures[seq] = f
	return f.n
}

func (l *Loop) forget(seq uint64) {
	l.mu.Lock()
	delete(l.failures, seq)
	l.mu.Unlock()
}

// maxTracked is the number of failing messages above which old ones are forgotten.
const maxTracked = 4096

// redriveLeaseGrace is how long a redrive's lease outlasts its handler's
// timeout.
const redriveLeaseGrace = 10 * time.Second

// Redrive hands the original of dead letter id to the Handler again (with
// Msg.Redrive set), in the caller's goroutine, holding a lease on the dead
// letter meanwhile (a *LeasedError if another holder has one; ErrNotRedriven
// if the lease could not be taken). When the Handler succeeds the
// dead letter is removed and a "redriven" Resolution is recorded; otherwise
// the dead letter stays and Redrive returns the Handler's error (a
// RetryAfter(d, nil) answer too: redrive again later). It returns
// ErrWrongPart for another part's dead letter and ErrOriginalGone when the
// original no longer exists. Redrive does not need Run.
func (l *Loop) Redrive(ctx context.Context, id uint64) error {
	dl, err := l.cfg.Dead.Get(ctx, id)
	if err != nil {
		return err
	}
	if dl.Part != l.cfg.Name {
		return fmt.Errorf("%w: dead letter %d is %s's, not %s's", ErrWrongPart, id, dl.Part, l.cfg.Name)
	}
	raw, err := l.cfg.Dead.original(ctx, dl)
	if err != nil {
		return err
	}
	msg := Msg{
		Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: dl.Stream, Seq: dl.Seq,
		Published: raw.Time, Delivered: dl.Delivered + 1, Attempt: 1, Redrive: id,
	}
	// Held while the handler runs, and a little longer (what it started
	// may still complete): a decision about the same work waits for it.
	lease, err := l.cfg.Dead.Lease(ctx, dl, HolderRedrive, l.cfg.HandlerTimeout+redriveLeaseGrace)
	if errors.Is(err, ErrLeased) {
		return fmt.Errorf("redrive dead letter %d: %w", id, err)
	}
	if err != nil {
		return fmt.Errorf("redrive dead letter %d: %w: %w", id, ErrNotRedriven, err)
	}
	hctx, cancel := context.WithTimeout(ctx, l.cfg.HandlerTimeout)
	err = l.call(hctx, msg)
	cancel()
	if rerr := l.cfg.Dead.Release(context.WithoutCancel(ctx), dl, lease); rerr != nil {
		// It ends by itself: a decision waits until then.
		l.cfg.Log.Warn().Err(rerr).Uint64("dead_letter", id).Msg("ending the redrive's lease")
	}
	if err != nil {
		l.cfg.Log.Warn().Err(err).Str("part", l.cfg.Name).Uint64("dead_letter", id).Msg("redrive failed; the dead letter stays")
		return fmt.Errorf("redrive dead letter %d: %w", id, err)
	}
	if err := l.cfg.Dead.resolve(ctx, dl, "redriven", ""); err != nil {
		return err
	}
	l.processed.Add(1)
	l.cfg.Log.Info().Str("part", l.cfg.Name).Uint64("dead_letter", id).Str("stream", dl.Stream).Uint64("seq", dl.Seq).Msg("dead letter redriven")
	return nil
}

// Package timers runs bankbook's delayed work on JetStream message schedules.
//
// Arm stores a schedule message (Nats-Schedule: @at <time>) on
// <prefix>.sched.<kind>.<id>; at that time the server stores a copy on
// <prefix>.due.<kind>.<id>. Schedules are stored messages: they survive
// restarts, and one that fell due while the server was down fires when it
// comes back. Arming the same (kind, id) again replaces the earlier schedule.
//
// Worker returns the worker.Loop that consumes due timers through one durable
// consumer that every engine instance shares, so each firing is handled by
// one instance at a time and redelivered if that instance dies before
// acknowledging it. A handler that asks to wait (the work is not due yet)
// gets the message redelivered after that delay (NakWithDelay), which also
// survives restarts and never counts as a failure. A firing that keeps
// failing is dead-lettered: recorded in the dead-letter stream, listable and
// redrivable. Handlers must be idempotent: delivery is at least once.
//
// TakeTurn lets the handlers of one timer's firings take turns across
// instances (a turn on <prefix>.turn.<kind>.<id>), where a work arms its
// next firing before it is done and the two must not run at once.
package timers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/streams"
	"github.com/bankbook/bankbook/internal/subject"
	"github.com/bankbook/bankbook/internal/transient"
	"github.com/bankbook/bankbook/worker"
)

// Config configures Timers. Zero values mean defaults.
type Config struct {
	// Stream is the timers stream. Default "BANKBOOK_TIMERS".
	Stream string
	// Prefix of the timer subjects. Default "bankbook.timer".
	Prefix string
	// Durable is the consumer shared by every instance. Default "timers".
	Durable string
	// MaxAge bounds how long a timer may wait. Default 90 days.
	MaxAge time.Duration
	// Replicas of the stream. Default 1.
	Replicas int
	// Log receives handler failures.
	Log zerolog.Logger
	// Dead records the firings given up on. Nil opens the default
	// dead-letter stream (worker.DeadConfig defaults, Replicas).
	Dead *worker.DeadLetters
	// Concurrency is how many firings are handled at once. Default 1.
	Concurrency int
	// MaxAttempts is how many failures (not waits) of one firing lead to a
	// dead letter. Default 20 (worker.Config); negative: never by count.
	MaxAttempts int
}

func (c *Config) setDefaults() {
	if c.Stream == "" {
		c.Stream = "BANKBOOK_TIMERS"
	}
	if c.Prefix == "" {
		c.Prefix = "bankbook.timer"
	}
	if c.Durable == "" {
		c.Durable = "timers"
	}
	if c.MaxAge == 0 {
		c.MaxAge = 90 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Timers arms timers and runs their worker loop. It is safe for concurrent
// use.
type Timers struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config

	mu    sync.Mutex
	armed jetstream.Consumer // counts the schedules (Armed); nil until first asked
}

// Open creates or updates the timers stream.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Timers, error) {
	cfg.setDefaults()
	stream, err := streams.Ensure(ctx, js, jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "bankbook timers: schedules and their firings",
		Subjects:          []string{cfg.Prefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxAge:            cfg.MaxAge,
		AllowMsgSchedules: true,
	})
	if err != nil {
		return nil, fmt.Errorf("timers stream %s: %w", cfg.Stream, err)
	}
	return &Timers{js: js, stream: stream, cfg: cfg}, nil
}

// scheduleAt formats t for Nats-Schedule. Nanoseconds are kept: nats.go's
// WithScheduleAt formats whole seconds, which fires up to a second early.
func scheduleAt(t time.Time) string { return "@at " + t.UTC().Format(time.RFC3339Nano) }

// Arm schedules (kind, id) to fall due at at with payload, replacing any
// schedule for the same (kind, id). kind and id must be subject tokens.
func (t *Timers) Arm(ctx context.Context, kind, id string, at time.Time, payload []byte) error {
	if !subject.Token(kind) || !subject.Token(id) {
		return fmt.Errorf("timers: kind %q and id %q must be subject tokens", kind, id)
	}
	// Each attempt is bounded and a lost ack (a leader election) tried
	// again: a schedule replaces the one before it on its subject, so a
	// repeat arms the same timer.
	err := transient.Run(ctx, transient.Policy{}, func(ctx context.Context) error {
		msg := nats.NewMsg(t.cfg.Prefix + ".sched." + kind + "." + id)
		msg.Data = payload
		msg.Header.Set(jetstream.ScheduleHeader, scheduleAt(at))
		msg.Header.Set(jetstream.ScheduleTargetHeader, t.cfg.Prefix+".due."+kind+"."+id)
		_, err := t.js.PublishMsg(ctx, msg)
		return err
	})
	if err != nil {
		return fmt.Errorf("arm timer %s/%s: %w", kind, id, err)
	}
	return nil
}

// Disarm removes the schedule of (kind, id), if there is one, so that it
// does not fall due. A firing already due is not withdrawn: its handler
// still runs. kind and id must be subject tokens.
func (t *Timers) Disarm(ctx context.Context, kind, id string) error {
	if !subject.Token(kind) || !subject.Token(id) {
		return fmt.Errorf("timers: kind %q and id %q must be subject tokens", kind, id)
	}
	err := transient.Run(ctx, transient.Policy{}, func(ctx context.Context) error { // a purge repeats harmlessly
		return t.stream.Purge(ctx, jetstream.WithPurgeSubject(t.cfg.Prefix+".sched."+kind+"."+id))
	})
	if err != nil {
		return fmt.Errorf("disarm timer %s/%s: %w", kind, id, err)
	}
	return nil
}

// Stalled reports whether the schedule of (kind, id) is still stored
// although it was due before before. nats-server fires a schedule once:
// when it cannot store the firing (JetStream refused the write, its
// storage or the account's full), the schedule stays stored and does not
// fire again until the server restarts or the stream's leader changes.
// Arming it again (Arm) makes it fire. A schedule that fired is gone, so a
// timer that fell due and waits to be handled again is not stalled.
func (t *Timers) Stalled(ctx context.Context, kind, id string, before time.Time) (bool, error) {
	at, _, armed, err := t.Schedule(ctx, kind, id)
	return armed && at.Before(before), err
}

// Schedule returns the schedule of (kind, id), if one is stored (armed and
// not fired yet, or stalled, see Stalled): the time it falls due at and the
// payload it was armed with.
func (t *Timers) Schedule(ctx context.Context, kind, id string) (at time.Time, payload []byte, armed bool, err error) {
	if !subject.Token(kind) || !subject.Token(id) {
		return time.Time{}, nil, false, fmt.Errorf("timers: kind %q and id %q must be subject tokens", kind, id)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := t.stream.GetLastMsgForSubject(ctx, t.cfg.Prefix+".sched."+kind+"."+id)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil, false, nil
	}
	if err != nil {
		return time.Time{}, nil, false, fmt.Errorf("timer %s/%s: %w", kind, id, err)
	}
	at, err = time.Parse(time.RFC3339Nano, strings.TrimPrefix(m.Header.Get(jetstream.ScheduleHeader), "@at "))
	if err != nil {
		return time.Time{}, nil, false, fmt.Errorf("timer %s/%s: schedule %q: %w", kind, id, m.Header.Get(jetstream.ScheduleHeader), err)
	}
	return at, m.Data, true, nil
}

// Due is a timer that fell due.
type Due struct {
	Kind, ID  string
	Payload   []byte
	Delivered uint64 // how often this firing has been delivered, 1 the first time
}

// Handler handles a due timer. It returns 0 and nil when the work is done
// (the firing is acknowledged), a positive wait to be called again after it,
// or an error (logged; called again after a backoff, dead-lettered after
// Config.MaxAttempts failures). An error matching worker.Permanent is
// dead-lettered at once.
type Handler func(ctx context.Context, d Due) (wait time.Duration, err error)

// Worker returns the worker loop that handles due timers with handle: a
// positive wait redelivers the firing after it (not a failure); an error
// redelivers it after a backoff, and after Config.MaxAttempts failures the
// firing is dead-lettered (recorded, listable, redrivable through the
// worker package); a firing on a subject that is not a timer is
// dead-lettered at once. A panic in handle is recovered into a failure. Run
// the loop under a supervisor: its Run returns an error when the consumer
// vanishes, and the next Run creates it again.
func (t *Timers) Worker(ctx context.Context, handle Handler) (*worker.Loop, error) {
	if handle == nil {
		return nil, errors.New("timers: a handler is required")
	}
	dead := t.cfg.Dead
	if dead == nil {
		var err error
		if dead, err = worker.OpenDeadLetters(ctx, t.js, worker.DeadConfig{Replicas: t.cfg.Replicas}); err != nil {
			return nil, fmt.Errorf("timers: %w", err)
		}
	}
	consumer := jetstream.ConsumerConfig{
		Durable:       t.cfg.Durable,
		Description:   "due bankbook timers, shared by every engine instance",
		FilterSubject: t.cfg.Prefix + ".due.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10_000,
	}
	loop, err := worker.New(worker.Config{
		Name: t.cfg.Durable,
		Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return t.stream.CreateOrUpdateConsumer(ctx, consumer)
		},
		Handler:        func(ctx context.Context, m worker.Msg) error { return t.handle(ctx, m, handle) },
		Dead:           dead,
		Concurrency:    t.cfg.Concurrency,
		MaxAttempts:    t.cfg.MaxAttempts,
		MaxBackoff:     time.Minute,
		HandlerTimeout: 20 * time.Second,
		Log:            t.cfg.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("timers: %w", err)
	}
	return loop, nil
}

func (t *Timers) handle(ctx context.Context, m worker.Msg, handle Handler) error {
	rest, ok := strings.CutPrefix(m.Subject, t.cfg.Prefix+".due.")
	kind, id, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return worker.Permanent(fmt.Errorf("timers: unexpected subject %q", m.Subject))
	}
	wait, err := handle(ctx, Due{Kind: kind, ID: id, Payload: m.Data, Delivered: m.Delivered})
	switch {
	case err != nil:
		return fmt.Errorf("timer %s/%s: %w", kind, id, err)
	case wait > 0:
		return worker.RetryAfter(wait, nil)
	}
	t.forget(ctx, m)
	return nil
}

// forget removes a handled firing from the stream: under limits retention
// it would otherwise stay for MaxAge (about two per order for 90 days,
// millions of messages and subjects the server keeps in memory), though
// nothing reads it again. A work that armed the same timer again stored a
// new schedule, which fires as a new message. A firing that cannot be
// removed now ages out; it is not a failure of the work, which is done.
func (t *Timers) forget(ctx context.Context, m worker.Msg) {
	if m.Stream != t.cfg.Stream || m.Seq == 0 {
		return
	}
	if err := t.stream.DeleteMsg(ctx, m.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.cfg.Log.Debug().Err(err).Uint64("seq", m.Seq).Str("subject", m.Subject).Msg("a handled timer firing was not removed; it ages out")
	}
}

// Armed returns how many timers are armed and not yet due (their schedules
// in the stream), for the bankbook_timers_pending metric. Timers that fell
// due and wait to be handled are the worker loop's Pending.
//
// It asks the server for the num_pending of a durable consumer on the
// schedules (<Durable>-armed, created on first use and shared by every
// instance) that is never pulled: the server keeps that count current as
// schedules are stored, replaced and fired, so a scrape costs one small
// request however many timers are armed.
func (t *Timers) Armed(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for attempt := 0; ; attempt++ {
		cons, err := t.armedConsumer(ctx)
		if err != nil {
			return 0, fmt.Errorf("timers armed: %w", err)
		}
		info, err := cons.Info(ctx)
		if errors.Is(err, jetstream.ErrConsumerNotFound) && attempt == 0 {
			t.mu.Lock()
			t.armed = nil // deleted: create it again
			t.mu.Unlock()
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("timers armed: %w", err)
		}
		return info.NumPending, nil
	}
}

// armedConsumer returns the consumer whose num_pending counts the schedules.
func (t *Timers) armedConsumer(ctx context.Context) (jetstream.Consumer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.armed != nil {
		return t.armed, nil
	}
	cons, err := t.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       t.cfg.Durable + "-armed",
		Description:   "counts armed bankbook timers (num_pending); never consumed",
		FilterSubject: t.cfg.Prefix + ".sched.>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckNonePolicy,
	})
	if err != nil {
		return nil, err
	}
	t.armed = cons
	return cons, nil
}

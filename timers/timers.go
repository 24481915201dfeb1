// Package timers runs bankbook's delayed work on JetStream message schedules.
//
// Arm stores a schedule message (Nats-Schedule: @at <time>) on
// <prefix>.sched.<kind>.<id>; at that time the server stores a copy on
// <prefix>.due.<kind>.<id>. Schedules are stored messages: they survive
// restarts, and one that fell due while the server was down fires when it
// comes back. Arming the same (kind, id) again replaces the earlier schedule.
//
// Run consumes due timers through one durable consumer that every engine
// instance shares, so each firing is handled by one instance at a time and
// redelivered if that instance dies before acknowledging it. A handler that
// asks to wait (the work is not due yet) gets the message redelivered after
// that delay (NakWithDelay), which also survives restarts. Handlers must be
// idempotent: delivery is at least once.
package timers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
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

// Timers arms and runs timers.
type Timers struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
}

// Open creates or updates the timers stream.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Timers, error) {
	cfg.setDefaults()
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
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
	if !token(kind) || !token(id) {
		return fmt.Errorf("timers: kind %q and id %q must be subject tokens", kind, id)
	}
	msg := nats.NewMsg(t.cfg.Prefix + ".sched." + kind + "." + id)
	msg.Data = payload
	msg.Header.Set(jetstream.ScheduleHeader, scheduleAt(at))
	msg.Header.Set(jetstream.ScheduleTargetHeader, t.cfg.Prefix+".due."+kind+"."+id)
	if _, err := t.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("arm timer %s/%s: %w", kind, id, err)
	}
	return nil
}

func token(s string) bool { return s != "" && !strings.ContainsAny(s, ". *>\t\r\n") }

// Due is a timer that fell due.
type Due struct {
	Kind, ID  string
	Payload   []byte
	Delivered uint64 // how often this firing has been delivered, 1 the first time
}

// Handler handles a due timer. It returns 0 and nil when the work is done
// (the firing is acknowledged), a positive wait to be called again after it,
// or an error (logged; called again after a backoff).
type Handler func(ctx context.Context, d Due) (wait time.Duration, err error)

// Run handles due timers until ctx ends; it then returns nil.
func (t *Timers) Run(ctx context.Context, handle Handler) error {
	cons, err := t.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       t.cfg.Durable,
		Description:   "due bankbook timers, shared by every engine instance",
		FilterSubject: t.cfg.Prefix + ".due.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 10_000,
	})
	if err != nil {
		return fmt.Errorf("timers consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { t.handle(ctx, m, handle) }, jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("timers consume: %w", err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (t *Timers) handle(ctx context.Context, m jetstream.Msg, handle Handler) {
	rest, ok := strings.CutPrefix(m.Subject(), t.cfg.Prefix+".due.")
	kind, id, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		t.cfg.Log.Error().Str("subject", m.Subject()).Msg("timers: unexpected subject; dropped")
		_ = m.Term()
		return
	}
	d := Due{Kind: kind, ID: id, Payload: m.Data()}
	if meta, err := m.Metadata(); err == nil {
		d.Delivered = meta.NumDelivered
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	wait, err := handle(hctx, d)
	switch {
	case err != nil:
		backoff := min(time.Duration(d.Delivered)*time.Second, time.Minute)
		t.cfg.Log.Warn().Err(err).Str("timer", kind+"/"+id).Uint64("delivered", d.Delivered).Dur("retry_in", backoff).Msg("timer handler failed")
		_ = m.NakWithDelay(backoff)
	case wait > 0:
		_ = m.NakWithDelay(wait)
	default:
		if err := m.DoubleAck(hctx); err != nil && !errors.Is(err, context.Canceled) {
			t.cfg.Log.Warn().Err(err).Str("timer", kind+"/"+id).Msg("timer ack failed; it will be delivered again")
		}
	}
}

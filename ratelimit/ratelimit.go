package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/transient"
)

// DefaultBucket is Config.Bucket's default.
const DefaultBucket = "bankbook_limits"

// DefaultMaxConflicts is Config.MaxConflicts's default.
const DefaultMaxConflicts = 256

// DefaultMargin is Limit.Margin's default.
const DefaultMargin = 0.05

// Config configures a Store. The zero value means the defaults.
type Config struct {
	// Bucket is the KV bucket holding one key per limiter scope. Default
	// DefaultBucket ("bankbook_limits").
	Bucket string
	// Replicas of the bucket. Default 1.
	Replicas int
	// AttemptTimeout bounds one KV read or write (see internal/kvcas: a
	// read is made again, a write whose answer is lost is checked by
	// reading). Default 1s.
	AttemptTimeout time.Duration
	// Timeout bounds a call, all attempts together, when its context has
	// no deadline. Default 5s.
	Timeout time.Duration
	// MaxConflicts bounds the compare-and-set writes one call may lose to
	// other writers before it gives up with ErrContended. Default
	// DefaultMaxConflicts (256): a conflict means another reservation
	// succeeded, so this bound is rarely reached; the Timeout is.
	MaxConflicts int
	// Log receives warnings (the server's clock going back). Default: none.
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Timeout == 0 {
		c.Timeout = transient.DefaultBudget
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = min(transient.DefaultAttemptTimeout, c.Timeout)
	}
	if c.MaxConflicts == 0 {
		c.MaxConflicts = DefaultMaxConflicts
	}
}

// Validate reports every problem with c (after defaults); each matches
// ErrInvalidConfig.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1 to 5, not %d", c.Replicas))
	}
	if c.MaxConflicts < 1 {
		errs = append(errs, fmt.Errorf("max conflicts must be at least 1, not %d", c.MaxConflicts))
	}
	if err := c.retry().Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

func (c Config) retry() transient.Policy {
	return transient.Policy{AttemptTimeout: c.AttemptTimeout, Budget: c.Timeout}
}

// Limit is one limiter's rate.
type Limit struct {
	// Rate is the number of slots per second, > 0. With Burst 1 and an
	// integer Rate, no rolling second ever holds more than Rate slots.
	Rate float64
	// Burst is how many slots may come back to back after a quiet time,
	// >= 1; 0 means 1. A Burst above 1 breaks a strict rolling window: a
	// second can then hold up to Burst−1 slots more than Rate.
	Burst int
	// Margin widens the emission interval to (1s/Rate)·(1+Margin), so that
	// a provider enforcing "at most Rate in any rolling second" tolerates
	// Margin·1s of lateness between a slot and the request it admits
	// (network, scheduling, clock estimate). It is also how late a
	// Reservation is still Valid. 0 means DefaultMargin (0.05: 50ms, at
	// the cost of 5% of the rate); it must be below 1.
	Margin float64
}

func (l Limit) withDefaults() Limit {
	if l.Burst == 0 {
		l.Burst = 1
	}
	if l.Margin == 0 {
		l.Margin = DefaultMargin
	}
	return l
}

// Validate reports every problem with l (after defaults); each matches
// ErrInvalidConfig.
func (l Limit) Validate() error {
	l = l.withDefaults()
	var errs []error
	if math.IsNaN(l.Rate) || l.Rate < 1e-3 || l.Rate > 1e9 {
		errs = append(errs, fmt.Errorf("rate must be between 0.001 and 1e9 per second, not %v", l.Rate))
	}
	if l.Burst < 1 || l.Burst > 1_000_000 {
		errs = append(errs, fmt.Errorf("burst must be between 1 and 1000000, not %d", l.Burst))
	}
	if math.IsNaN(l.Margin) || l.Margin < 0 || l.Margin >= 1 {
		errs = append(errs, fmt.Errorf("margin must be at least 0 and below 1, not %v", l.Margin))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// Interval is the emission interval, (1s/Rate)·(1+Margin) after defaults:
// with Burst 1, consecutive slots are exactly this far apart when the
// limiter is saturated, and never closer.
func (l Limit) Interval() time.Duration { return time.Duration(newParams(l).interval) }

// Store is a bucket of limiters, shared by every process that opens it on
// the same NATS. It is safe for concurrent use.
type Store struct {
	kv    jetstream.KeyValue
	js    jetstream.JetStream
	kvCfg jetstream.KeyValueConfig
	// revivedAt is when a call last looked for a lost bucket (revive).
	revivedAt atomic.Int64
	cfg       Config
	retry     transient.Policy
	clock     *clock
	id        string // names this Store in the values it writes
	calls     atomic.Uint64
	mu        sync.Mutex
	turns     map[string]chan struct{} // per scope: one compare-and-set at a time
	stats     struct {
		reserved, notYet, pauses, conflicts, failures, calibrations, restarts, revived atomic.Uint64
	}
}

// Open creates or binds the bucket.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	return open(ctx, js, cfg, time.Now)
}

// open is Open with the process's clock (tests give a skewed one).
func open(ctx context.Context, js jetstream.JetStream, cfg Config, local func() time.Time) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kvCfg := jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "bankbook shared rate limits: one GCRA schedule per provider scope",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvCfg)
	if err != nil {
		return nil, fmt.Errorf("ratelimit bucket %s: %w", cfg.Bucket, transient.Mark(err))
	}
	var id [6]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	return &Store{
		kv:    kv,
		js:    js,
		kvCfg: kvCfg,
		cfg:   cfg,
		retry: cfg.retry(),
		clock: newClock(local, cfg.Log),
		id:    hex.EncodeToString(id[:]),
		turns: map[string]chan struct{}{},
	}, nil
}

// scopeRe is what a scope may be: a KV key token not starting with '_'
// (keys starting with '_' are the Store's own).
var scopeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Limiter returns the limiter of scope (its KV key, e.g. "chat"). Every
// process limiting the same scope must use the same Limit: the schedule is
// shared, the emission interval is each writer's own.
func (s *Store) Limiter(scope string, l Limit) (*Limiter, error) {
	if !scopeRe.MatchString(scope) {
		return nil, fmt.Errorf("%w: scope %q must be 1 to 64 letters, digits, '-' or '_', not starting with '_' or '-'", ErrInvalidConfig, scope)
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("limiter %s: %w", scope, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	turn, ok := s.turns[scope]
	if !ok {
		turn = make(chan struct{}, 1)
		s.turns[scope] = turn
	}
	return &Limiter{s: s, scope: scope, p: newParams(l), turn: turn}, nil
}

// revive creates the bucket again when err says no stream answered and the
// bucket is indeed gone (deleted by hand, or lost with its stream), at
// most once a second: without it every limiter would fail closed until
// the process started again. A new bucket is a new schedule: see
// docs/notifications.md, "Failure modes".
func (s *Store) revive(err error) {
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return
	}
	now := time.Now().UnixNano()
	if last := s.revivedAt.Load(); now-last < int64(time.Second) || !s.revivedAt.CompareAndSwap(last, now) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.js.KeyValue(ctx, s.kvCfg.Bucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		return // there, or not known now: nothing to create
	}
	if _, err := s.js.CreateKeyValue(ctx, s.kvCfg); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		s.cfg.Log.Warn().Err(err).Str("bucket", s.kvCfg.Bucket).Msg("ratelimit: the bucket is gone and could not be created again")
		return
	}
	s.stats.revived.Add(1)
	s.cfg.Log.Warn().Str("bucket", s.kvCfg.Bucket).Msg("ratelimit: the bucket was gone: created again (a new schedule)")
}

// nonce names one call of this Store.
func (s *Store) nonce() string {
	return s.id + "-" + strconv.FormatUint(s.calls.Add(1), 10)
}

// ensureClock calibrates the server-time estimate if it is not fresh.
func (s *Store) ensureClock(ctx context.Context) error {
	return s.clock.calibrate(ctx, s.kv, s.retry, s.id, &s.stats.calibrations)
}

// serverNow is the estimate of the server's time.
func (s *Store) serverNow() int64 {
	ns, _ := s.clock.now()
	return ns
}

// Stats counts what a Store's limiters did since Open, for metrics.
type Stats struct {
	Reserved     uint64 // slots claimed
	NotYet       uint64 // reservations answered with a *WaitError
	Pauses       uint64 // pauses written
	Conflicts    uint64 // compare-and-set writes lost to another writer
	Failures     uint64 // calls that failed (unavailable, contended, corrupt)
	Calibrations uint64 // clock round trips (a write and a read of the clock key)
	ClockResets  uint64 // times the server's clock was found behind the estimate
	// Restarts counts schedules found further ahead than any pause could
	// have put them, and restarted (params.trusted).
	Restarts uint64
	// Revived counts the times the bucket was found gone and created again.
	Revived uint64
}

// Counts returns Stats by name, for bankbook_ratelimit_total.
func (st Stats) Counts() map[string]uint64 {
	return map[string]uint64{
		"reserved": st.Reserved, "not_yet": st.NotYet, "pauses": st.Pauses, "conflicts": st.Conflicts, "failures": st.Failures,
		"calibrations": st.Calibrations, "clock_resets": st.ClockResets, "restarts": st.Restarts, "revived": st.Revived,
	}
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.clock.mu.Lock()
	resets := s.clock.resets
	s.clock.mu.Unlock()
	return Stats{
		Reserved:     s.stats.reserved.Load(),
		NotYet:       s.stats.notYet.Load(),
		Pauses:       s.stats.pauses.Load(),
		Conflicts:    s.stats.conflicts.Load(),
		Failures:     s.stats.failures.Load(),
		Calibrations: s.stats.calibrations.Load(),
		ClockResets:  resets,
		Restarts:     s.stats.restarts.Load(),
		Revived:      s.stats.revived.Load(),
	}
}

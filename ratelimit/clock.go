package ratelimit

import (
	"bytes"
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

const (
	// clockRefresh is how long an offset estimate is trusted without a
	// tight sample; after that, the next call measures it again first.
	clockRefresh = time.Second
	// tightWidth: a sample whose interval is at most this wide confirms
	// the estimate (its error is below the width).
	tightWidth = 20 * time.Millisecond
	// calibrationTries bounds the round trips of one calibration looking
	// for a tight sample; the last one is accepted whatever its width.
	calibrationTries = 3
	// clockKey is the bucket key calibrations write. Scopes cannot start
	// with '_', so no limiter uses it.
	clockKey = "_clock"
)

// clock estimates the JetStream server's time from this process's
// monotonic clock and the server's timestamps on KV entries.
//
// offset = server time − local time, local time being nanoseconds of the
// monotonic clock since base (so steps of this machine's wall clock do not
// matter). Every entry read gives a lower bound: its stamp s was taken
// before the answer arrived at local t1, so offset ≥ s − t1. An entry
// written by this process, or written after one of its writes (a higher
// revision of the same stream), also gives an upper bound: it was stamped
// after that write was sent at local t0, so offset ≤ s − t0. The estimate
// is the highest lower bound seen; "now" on the server is then
// underestimated by at most the width of the best recent sample. An upper
// bound below the estimate proves the estimate wrong (the server's clock
// went back, or the two clocks drifted apart): the estimate is reset to
// that sample's lower bound.
type clock struct {
	local func() time.Time
	base  time.Time
	log   zerolog.Logger

	mu      sync.Mutex
	have    bool  // lo is set
	lo      int64 // lower bound of the offset, ns
	tightAt int64 // local time of the last sample at most tightWidth wide
	w       write // the latest write of this process that succeeded
	resets  uint64

	calibrating chan struct{} // a token: one calibration at a time
}

// write is a successful KV write: its revision, its value (every value
// written is unique: a nonce or a time is in it), and local send and answer
// times.
type write struct {
	rev    uint64
	value  []byte
	t0, t1 int64
}

func newClock(local func() time.Time, log zerolog.Logger) *clock {
	return &clock{local: local, base: local(), log: log, tightAt: math.MinInt64 / 2, calibrating: make(chan struct{}, 1)}
}

// since is local time: nanoseconds from base to t.
func (c *clock) since(t time.Time) int64 { return int64(t.Sub(c.base)) }

// now is the estimate of the server's time, Unix ns. ok is false before
// the first sample.
func (c *clock) now() (ns int64, ok bool) {
	l := c.since(c.local())
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lo + l, c.have
}

// fresh reports whether the estimate was confirmed by a tight sample
// within clockRefresh.
func (c *clock) fresh() bool {
	l := c.since(c.local())
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.have && l-c.tightAt <= int64(clockRefresh)
}

// wrote records a successful write of value at revision rev, sent at t0
// and answered at t1. A write sent after the latest one was answered gets
// a higher revision on the same stream: a lower one means the bucket was
// deleted and made again (Store.revive), whose revisions start over.
func (c *clock) wrote(rev uint64, value []byte, t0, t1 time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev > c.w.rev || c.since(t0) >= c.w.t1 {
		c.w = write{rev: rev, value: bytes.Clone(value), t0: c.since(t0), t1: c.since(t1)}
	}
}

// observe takes the sample an entry read gives: revision rev holding
// value, stamped s by the server, answered at local t1. It is this
// process's own write only if the value is the one written: after the
// bucket was made again, another process's entry may come to bear the
// revision of a write of this process to the old bucket.
func (c *clock) observe(s time.Time, rev uint64, value []byte, t1 time.Time) {
	sn, r1 := s.UnixNano(), c.since(t1)
	c.mu.Lock()
	defer c.mu.Unlock()
	lo, hi, width := sn-r1, int64(math.MaxInt64), int64(math.MaxInt64)
	switch {
	case c.w.rev == 0:
	case rev == c.w.rev && bytes.Equal(value, c.w.value): // this process's own write: stamped between t0 and t1
		lo, hi, width = max(lo, sn-c.w.t1), sn-c.w.t0, c.w.t1-c.w.t0
	case rev == c.w.rev: // another bucket's entry: no upper bound
	case rev > c.w.rev: // stored after this process's write was sent
		hi, width = sn-c.w.t0, r1-c.w.t0
	}
	switch {
	case !c.have:
		c.lo, c.have = lo, true
	case hi < c.lo:
		c.resets++
		c.log.Warn().Int64("behind_ns", c.lo-hi).Uint64("revision", rev).
			Msg("ratelimit: the server's clock is behind this process's estimate of it (it went back, or the clocks drift); estimating again")
		c.lo = lo
	case lo > c.lo:
		c.lo = lo
	}
	if width <= int64(tightWidth) {
		c.tightAt = max(c.tightAt, r1)
	}
}

// trust marks the estimate as confirmed now, after a calibration that
// found no tight sample (the best there is).
func (c *clock) trust() {
	l := c.since(c.local())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tightAt = l
}

// calibrate makes sure the estimate is fresh: if it is not, it writes the
// clock key and reads it back, up to calibrationTries times, until a
// sample is tight. One calibration runs at a time; callers that find one
// running wait for it.
func (c *clock) calibrate(ctx context.Context, kv jetstream.KeyValue, retry transient.Policy, id string, n *atomic.Uint64) error {
	if c.fresh() {
		return nil
	}
	select {
	case c.calibrating <- struct{}{}:
	case <-ctx.Done():
		return transient.Mark(ctx.Err())
	}
	defer func() { <-c.calibrating }()
	ctx, cancel := retry.Bound(ctx)
	defer cancel()
	for try := 1; !c.fresh(); try++ {
		n.Add(1)
		t0 := c.local()
		value := []byte(id + " " + strconv.FormatInt(t0.UnixNano(), 10))
		rev, err := transient.Do(ctx, retry, func(ctx context.Context) (uint64, error) {
			return kv.Put(ctx, clockKey, value)
		})
		if err != nil {
			return err
		}
		c.wrote(rev, value, t0, c.local())
		e, err := transient.Do(ctx, retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
			return kv.Get(ctx, clockKey)
		})
		if err != nil {
			return err
		}
		c.observe(e.Created(), e.Revision(), e.Value(), c.local())
		if try >= calibrationTries && !c.fresh() {
			c.log.Debug().Msg("ratelimit: no tight clock sample; using the best one")
			c.trust()
		}
	}
	return nil
}

// observed is the limiter's bucket as kvcas sees it: every read and write
// also feeds the clock, and the last read and write are kept, so that the
// caller can tell which value kvcas's answer refers to.
type observed struct {
	kv        jetstream.KeyValue
	c         *clock
	conflicts uint64 // writes that lost to another writer

	read  kvcas.Entry
	wrote kvcas.Entry
}

var _ kvcas.KV = (*observed)(nil)

// Settle forwards to the bucket (groupcommit.Settler).
func (o *observed) Settle(ctx context.Context) error { return groupcommit.Settle(ctx, o.kv) }

func (o *observed) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := o.kv.Get(ctx, key)
	if err == nil {
		o.c.observe(e.Created(), e.Revision(), e.Value(), o.c.local())
		o.read = kvcas.Entry{Value: e.Value(), Revision: e.Revision()}
	}
	return e, err
}

func (o *observed) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	return o.write(value, func() (uint64, error) { return o.kv.Create(ctx, key, value, opts...) })
}

func (o *observed) Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error) {
	return o.write(value, func() (uint64, error) { return o.kv.Update(ctx, key, value, revision) })
}

// Purge forwards to the bucket (the limiter never removes an entry).
func (o *observed) Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	return o.kv.Purge(ctx, key, opts...)
}

func (o *observed) write(value []byte, do func() (uint64, error)) (uint64, error) {
	t0 := o.c.local()
	rev, err := do()
	switch {
	case err == nil:
		o.c.wrote(rev, value, t0, o.c.local())
		o.wrote = kvcas.Entry{Value: value, Revision: rev}
	case kvcas.Conflict(err):
		o.conflicts++
	}
	return rev, err
}

// stored returns the value kvcas reported as written at rev: the last
// write's, or (when kvcas found a write whose answer was lost) the last
// read's.
func (o *observed) stored(rev uint64) ([]byte, bool) {
	switch rev {
	case 0:
		return nil, false
	case o.wrote.Revision:
		return o.wrote.Value, true
	case o.read.Revision:
		return o.read.Value, true
	}
	return nil, false
}

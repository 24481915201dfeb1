package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
)

// fakeLocal is a process clock a test moves by hand.
type fakeLocal struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeLocal) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeLocal) advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}

// newFakeClock returns a clock whose process time starts at 100s and a
// server whose time is the process's plus offset.
func newFakeClock(offset time.Duration) (*clock, *fakeLocal, func(local time.Time) time.Time) {
	f := &fakeLocal{t: time.Unix(100, 0)}
	c := newClock(f.now, zerolog.Nop())
	return c, f, func(local time.Time) time.Time { return local.Add(offset) }
}

func estimate(t *testing.T, c *clock) time.Time {
	t.Helper()
	ns, ok := c.now()
	if !ok {
		t.Fatal("no estimate")
	}
	return time.Unix(0, ns)
}

// TestClockLowerBounds: an entry read gives a lower bound of the server's
// time; a lower one does not move the estimate back, a higher one moves it
// forward; a read alone does not make the estimate fresh.
func TestClockLowerBounds(t *testing.T) {
	c, f, server := newFakeClock(time.Hour)
	if _, ok := c.now(); ok || c.fresh() {
		t.Fatal("estimate before any sample")
	}
	stamp := server(f.now())                            // entry stamped now,
	c.observe(stamp, 1, val(1), f.advance(time.Second)) // seen a second later
	if got, want := estimate(t, c), server(f.now()).Add(-time.Second); !got.Equal(want) {
		t.Fatalf("estimate %v, want %v (the stamp, a second old: a lower bound)", got, want)
	}
	if c.fresh() {
		t.Fatal("fresh after a read of an entry of unknown age")
	}
	c.observe(stamp.Add(-time.Minute), 1, val(1), f.now()) // an older entry
	if got, want := estimate(t, c), server(f.now()).Add(-time.Second); !got.Equal(want) {
		t.Fatalf("estimate moved back to %v by an older entry, want %v", got, want)
	}
	c.observe(server(f.now()), 2, val(2), f.now()) // an entry stamped just now
	if got, want := estimate(t, c), server(f.now()); !got.Equal(want) {
		t.Fatalf("estimate %v, want %v", got, want)
	}
}

// TestClockOwnWritesAreTight: an entry written by this process, or after
// one of its writes, bounds the offset from both sides; a narrow enough
// interval makes the estimate fresh for clockRefresh.
func TestClockOwnWritesAreTight(t *testing.T) {
	c, f, server := newFakeClock(-time.Hour)
	t0 := f.now()
	stamp := server(f.advance(time.Millisecond))
	t1 := f.advance(time.Millisecond)
	c.wrote(7, val(7), t0, t1)
	c.observe(stamp, 7, val(7), f.advance(500*time.Millisecond)) // read back later
	if got, want := estimate(t, c), server(f.now()).Add(-time.Millisecond); !got.Equal(want) {
		t.Fatalf("estimate %v, want %v (within the write's round trip)", got, want)
	}
	if !c.fresh() {
		t.Fatal("not fresh after a tight sample")
	}
	f.advance(clockRefresh + time.Millisecond)
	if c.fresh() {
		t.Fatal("still fresh after clockRefresh without a sample")
	}
	// A later revision, read soon after the write was sent, is tight too.
	t0 = f.now()
	c.wrote(8, val(8), t0, f.advance(time.Millisecond))
	c.observe(server(f.advance(2*time.Millisecond)), 9, val(9), f.advance(tightWidth-3*time.Millisecond))
	if !c.fresh() {
		t.Fatal("not fresh after a later revision read within tightWidth of the write")
	}
	// ...but not when read long after.
	f.advance(clockRefresh + time.Millisecond)
	c.observe(server(f.now()), 10, val(10), f.advance(time.Millisecond))
	if c.fresh() {
		t.Fatal("fresh after a later revision read long after this process's write")
	}
}

// TestClockServerGoesBack: when the server's clock steps back, the next
// own write proves the estimate too high, and it is reset.
func TestClockServerGoesBack(t *testing.T) {
	c, f, server := newFakeClock(0)
	t0 := f.now()
	c.wrote(1, val(1), t0, f.advance(time.Millisecond))
	c.observe(server(t0), 1, val(1), f.now())
	back := func(local time.Time) time.Time { return server(local).Add(-10 * time.Second) }
	t0 = f.advance(time.Second)
	stamp := back(f.advance(time.Millisecond))
	c.wrote(2, val(2), t0, f.advance(time.Millisecond))
	c.observe(stamp, 2, val(2), f.now())
	if got := estimate(t, c); got.After(back(f.now())) || back(f.now()).Sub(got) > 2*time.Millisecond {
		t.Fatalf("estimate %v after the server went back, want just below %v", got, back(f.now()))
	}
	if c.resets != 1 {
		t.Fatalf("%d resets, want 1", c.resets)
	}
}

// TestClockEstimateNeverAheadOfTheServer is a property test: whatever the
// offset and the latencies, and whoever wrote the entries read, the
// estimate is never ahead of the server's time, and after a fresh sample
// it is behind by at most tightWidth.
func TestClockEstimateNeverAheadOfTheServer(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for range 200 {
		offset := time.Duration(rnd.Int64N(int64(48*time.Hour))) - 24*time.Hour
		c, f, server := newFakeClock(offset)
		lat := func() time.Duration { return time.Duration(rnd.Int64N(int64(8 * time.Millisecond))) }
		var rev, gen uint64 // gen: how often the bucket was made again
		var last time.Time  // the newest entry's stamp
		value := func() []byte { return fmt.Appendf(nil, "%d/%d", gen, rev) }
		for range 50 {
			switch rnd.IntN(7) {
			case 0, 1: // this process writes
				t0 := f.now()
				last = server(f.advance(lat()))
				rev++
				c.wrote(rev, value(), t0, f.advance(lat()))
			case 2, 3: // another process writes
				last = server(f.advance(lat()))
				rev++
			case 4, 5: // this process reads the newest entry
				f.advance(lat())
				if rev > 0 {
					c.observe(last, rev, value(), f.advance(lat()))
				}
			case 6: // the bucket is deleted and made again: revisions start over
				f.advance(time.Duration(rnd.Int64N(int64(10 * time.Second))))
				rev, gen = 0, gen+1
			}
			ns, ok := c.now()
			if !ok {
				continue
			}
			truth := server(f.now()).UnixNano()
			if ns > truth {
				t.Fatalf("offset %v: estimate %d ahead of the server's %d", offset, ns, truth)
			}
			if c.fresh() && truth-ns > int64(tightWidth)+int64(clockRefresh) {
				t.Fatalf("offset %v: fresh estimate %v behind", offset, time.Duration(truth-ns))
			}
		}
	}
}

// TestOffsetEstimateAgainstTheServer: with a real server (whose clock is
// this machine's), the estimate is a lower bound of the server's time and
// close to it, whatever this process's own clock says.
func TestOffsetEstimateAgainstTheServer(t *testing.T) {
	srv := testenv.Start(t, "")
	for _, skew := range []time.Duration{-time.Hour, 0, 90 * time.Minute} {
		_, js := srv.Connect(t)
		s, err := open(t.Context(), js, Config{}, func() time.Time { return time.Now().Add(skew) })
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Limiter("chat", Limit{Rate: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Reserve(t.Context(), time.Second); err != nil {
			t.Fatal(err)
		}
		est, _ := s.clock.now()
		truth := time.Now().UnixNano()
		if est > truth || time.Duration(truth-est) > time.Second {
			t.Fatalf("skew %v: estimate %v from the server's time, want at most 0 and not far", skew, time.Duration(est-truth))
		}
		if st := s.Stats(); st.Calibrations < 1 {
			t.Fatalf("skew %v: stats %+v, want a calibration", skew, st)
		}
		t.Logf("skew %v: estimate %v behind the server", skew, time.Duration(truth-est))
	}
}

// TestSkewedProcessesShareOneSchedule: processes whose clocks disagree by
// hours still share one schedule: no rolling second holds more than Rate
// slots, every process gets slots, and nobody acts before its slot.
func TestSkewedProcessesShareOneSchedule(t *testing.T) {
	srv := testenv.Start(t, "")
	const rate = 20
	type use struct{ at, acted int64 }
	var (
		mu   sync.Mutex
		uses []use
		per  = map[time.Duration]int{}
	)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for _, skew := range []time.Duration{-time.Hour, 0, 3 * time.Hour} {
		_, js := srv.Connect(t)
		local := func() time.Time { return time.Now().Add(skew) }
		s, err := open(t.Context(), js, Config{}, local)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Limiter("chat", Limit{Rate: rate})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			wg.Go(func() {
				for ctx.Err() == nil {
					r, err := l.Reserve(ctx, time.Second)
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("skew %v: %v", skew, err)
						}
						return
					}
					time.Sleep(r.Delay)
					acted := time.Now().UnixNano()
					if !r.Valid(local()) {
						continue // stalled past the slot (a slow test machine): not used
					}
					mu.Lock()
					uses = append(uses, use{r.At.UnixNano(), acted})
					per[skew]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	var slots []int64
	for _, u := range uses {
		if u.acted < u.at {
			t.Errorf("acted %v before the slot", time.Duration(u.at-u.acted))
		}
		slots = append(slots, u.at)
	}
	slices.Sort(slots)
	if got := maxInWindow(slots, int64(time.Second)); got > rate {
		t.Fatalf("%d slots in a rolling second, limit %d", got, rate)
	}
	for skew, n := range per {
		if n == 0 {
			t.Errorf("the process with skew %v got no slot", skew)
		}
	}
	t.Logf("slots per process (by skew): %v", per)
}

// val is the value of a write at revision rev, in the tests that need not
// tell buckets apart.
func val(rev uint64) []byte { return []byte(strconv.FormatUint(rev, 10)) }

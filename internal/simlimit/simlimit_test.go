package simlimit_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/simlimit"
)

var t0 = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

type step struct {
	at        time.Duration // after t0
	ok        bool
	wantAfter time.Duration // when refused
}

func run(t *testing.T, l *simlimit.Limiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		ok, after := l.Allow(t0.Add(s.at))
		if ok != s.ok || (!ok && after != s.wantAfter) || (ok && after != 0) {
			t.Fatalf("request %d at +%v: Allow = %v, %v; want %v, %v", i, s.at, ok, after, s.ok, s.wantAfter)
		}
	}
}

func TestAllow(t *testing.T) {
	ms := time.Millisecond
	fixed, rolling := simlimit.NewFixed, simlimit.NewRolling
	tests := []struct {
		name  string
		new   func(limit int, window time.Duration) *simlimit.Limiter
		limit int
		steps []step
	}{
		{"fixed: limit per aligned second", fixed, 2, []step{
			{0, true, 0}, {100 * ms, true, 0}, {300 * ms, false, 700 * ms}, {999 * ms, false, ms},
			{time.Second, true, 0}, {1500 * ms, true, 0}, {1600 * ms, false, 400 * ms},
		}},
		{"fixed: a new second forgets the last", fixed, 1, []step{
			{900 * ms, true, 0}, {950 * ms, false, 50 * ms}, {1000 * ms, true, 0},
		}},
		{"rolling: at most N in any second, across the clock's seconds", rolling, 2, []step{
			{900 * ms, true, 0}, {950 * ms, true, 0},
			{1000 * ms, false, 900 * ms}, // a fixed window would turn here
			{1900 * ms, true, 0},         // the 0.9s request has left
			{1920 * ms, false, 30 * ms},  // the 0.95s one leaves at 1.95s
			{1950 * ms, true, 0},
		}},
		{"rolling: refused requests do not count", rolling, 1, []step{
			{0, true, 0}, {500 * ms, false, 500 * ms}, {999 * ms, false, ms}, {time.Second, true, 0},
		}},
		{"rolling: the clock stepping back", rolling, 1, []step{
			{time.Second, true, 0}, {500 * ms, false, 1500 * ms},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run(t, tc.new(tc.limit, time.Second), tc.steps)
		})
	}
}

// TestRollingNeverExceedsTheLimit drives a rolling limiter with random
// arrivals (seed printed) and checks every one-second interval of what it
// served, and that a refused request's wait is exact.
func TestRollingNeverExceedsTheLimit(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	const limit = 5
	l := simlimit.NewRolling(limit, time.Second)
	var served []time.Time
	now := t0
	for range 5000 {
		now = now.Add(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
		ok, after := l.Allow(now)
		if !ok {
			if after <= 0 {
				t.Fatalf("refused at %v with wait %v", now.Sub(t0), after)
			}
			// Exactly when the oldest of the last `limit` served leaves.
			if want := served[len(served)-limit].Add(time.Second).Sub(now); after != want {
				t.Fatalf("refused at %v with wait %v, want %v", now.Sub(t0), after, want)
			}
			continue
		}
		served = append(served, now)
		if n := len(served); n > limit && now.Sub(served[n-1-limit]) < time.Second {
			t.Fatalf("served %d requests within one second ending at %v", limit+1, now.Sub(t0))
		}
	}
}

func TestNoLimit(t *testing.T) {
	for _, l := range []*simlimit.Limiter{nil, simlimit.NewFixed(0, time.Second), simlimit.NewRolling(-1, 0)} {
		for range 100 {
			if ok, _ := l.Allow(t0); !ok {
				t.Fatalf("a limiter without a limit refused a request")
			}
		}
		if l.Limit() > 0 {
			t.Fatalf("Limit = %d, want none", l.Limit())
		}
	}
}

func TestConcurrentAllowAdmitsTheLimit(t *testing.T) {
	for _, l := range []*simlimit.Limiter{simlimit.NewFixed(10, time.Second), simlimit.NewRolling(10, time.Second)} {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			ok int
		)
		for range 50 {
			wg.Go(func() {
				if a, _ := l.Allow(t0); a {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 10 {
			t.Fatalf("admitted %d of 50 at once, want 10", ok)
		}
	}
}

package ratelimit_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ratelimit"
)

// openStores starts a server and opens n Stores on it, each on a
// connection of its own (as n processes would).
func openStores(t *testing.T, n int, cfg ratelimit.Config) (*testenv.Server, []*ratelimit.Store) {
	t.Helper()
	srv := testenv.Start(t, "")
	var stores []*ratelimit.Store
	for range n {
		_, js := srv.Connect(t)
		s, err := ratelimit.Open(t.Context(), js, cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		stores = append(stores, s)
	}
	return srv, stores
}

// limiters returns scope's limiter in each store.
func limiters(t *testing.T, stores []*ratelimit.Store, scope string, l ratelimit.Limit) []*ratelimit.Limiter {
	t.Helper()
	var out []*ratelimit.Limiter
	for _, s := range stores {
		lim, err := s.Limiter(scope, l)
		if err != nil {
			t.Fatalf("Limiter: %v", err)
		}
		out = append(out, lim)
	}
	return out
}

// use is a slot that an acquirer used: the slot (server time) and when it
// acted (this machine's clock, which is also the embedded server's).
type use struct{ at, acted time.Time }

// acquire says how acquirers run.
type acquire struct {
	per     int           // goroutines per limiter
	maxWait time.Duration // how far ahead a slot may be reserved
	// onErr gets errors other than ctx's; nil: the test fails on one.
	onErr func(error)
	// onReserve is told when a reservation succeeded, if set.
	onReserve func(time.Time)
	// used counts the slots used, if set.
	used *atomic.Int64
}

// acquirers runs a.per goroutines on each limiter until ctx ends, each
// reserving a slot up to a.maxWait ahead, sleeping until it and, if the
// reservation is still valid, using it. It returns the uses, by slot, and
// how many reservations had gone stale.
func acquirers(t *testing.T, ctx context.Context, ls []*ratelimit.Limiter, a acquire) (uses []use, stale int) {
	t.Helper()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, l := range ls {
		for range a.per {
			wg.Go(func() {
				for ctx.Err() == nil {
					r, err := l.Reserve(ctx, a.maxWait)
					if err != nil {
						switch {
						case ctx.Err() != nil:
						case a.onErr != nil:
							a.onErr(err)
							sleep(ctx, 10*time.Millisecond)
						default:
							t.Errorf("Reserve: %v", err)
							return
						}
						continue
					}
					if a.onReserve != nil {
						a.onReserve(time.Now())
					}
					sleep(context.Background(), r.Delay) // a slot claimed is used even as ctx ends
					acted := time.Now()
					mu.Lock()
					if r.Valid(acted) {
						uses = append(uses, use{r.At, acted})
						if a.used != nil {
							a.used.Add(1)
						}
					} else {
						stale++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(uses, func(a, b use) int { return a.at.Compare(b.at) })
	return uses, stale
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// maxInWindow is the most of ts (in any order) in any half-open window of
// length w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// checkBudget fails the test if uses break the limit: slots closer than
// the emission interval, more than budget slots or uses in a rolling
// second, or a use before its slot.
func checkBudget(t *testing.T, uses []use, l ratelimit.Limit, budget int) {
	t.Helper()
	var slots, acts []time.Time
	for i, u := range uses {
		if i > 0 && u.at.Sub(uses[i-1].at) < l.Interval() {
			t.Errorf("slots %v and %v are %v apart, less than the interval %v", uses[i-1].at, u.at, u.at.Sub(uses[i-1].at), l.Interval())
		}
		if u.acted.Before(u.at) {
			t.Errorf("used %v before its slot", u.at.Sub(u.acted))
		}
		slots, acts = append(slots, u.at), append(acts, u.acted)
	}
	if n := maxInWindow(slots, time.Second); n > budget {
		t.Errorf("%d slots in a rolling second, budget %d", n, budget)
	}
	if n := maxInWindow(acts, time.Second); n > budget {
		t.Errorf("%d uses in a rolling second, budget %d", n, budget)
	}
}

// rawKV is the store's bucket, for tests that look at or damage it.
func rawKV(t *testing.T, srv *testenv.Server) jetstream.KeyValue {
	t.Helper()
	_, js := srv.Connect(t)
	kv, err := js.KeyValue(t.Context(), ratelimit.DefaultBucket)
	if err != nil {
		t.Fatalf("bucket: %v", err)
	}
	return kv
}

// Package benchkit drives benchmark operations over a pool of workers and
// summarises their latencies, for bankbook's benchmarks (which report every
// figure beside a baseline run the same way).
package benchkit

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Run is the outcome of driving n operations over a pool of workers.
type Run struct {
	N       int
	Elapsed time.Duration
	Lat     []time.Duration // sorted
}

// PerSec is operations per second of wall time.
func (r Run) PerSec() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// NsPerOp is wall time over operations, including the last in-flight ones
// (which the b.Loop timer, stopped when the last one is handed out, misses).
func (r Run) NsPerOp() float64 { return float64(r.Elapsed.Nanoseconds()) / float64(r.N) }

// Pct returns the p-quantile latency in microseconds.
func (r Run) Pct(p float64) float64 {
	if len(r.Lat) == 0 {
		return 0
	}
	i := min(int(float64(len(r.Lat))*p), len(r.Lat)-1)
	return float64(r.Lat[i]) / float64(time.Microsecond)
}

// Drive runs op on a fixed pool of workers goroutines, one call for
// every true from next (b.Loop for the measured side, a counter for the
// baseline). op gets its worker number and a unique operation index. The
// first error stops the run.
func Drive(workers int, next func() bool, op func(w, i int) error) (Run, error) {
	jobs := make(chan int)
	lats := make([][]time.Duration, workers)
	var (
		wg       sync.WaitGroup
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for i := range jobs {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("op %d: %w", i, err) })
					failed.Store(true)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	start := time.Now()
	n := 0
	for !failed.Load() && next() {
		jobs <- n
		n++
	}
	close(jobs)
	wg.Wait()
	r := Run{N: n, Elapsed: time.Since(start)}
	for _, l := range lats {
		r.Lat = append(r.Lat, l...)
	}
	slices.Sort(r.Lat)
	return r, firstErr
}

// Count returns a next func that is true n times.
func Count(n int) func() bool {
	i := 0
	return func() bool { i++; return i <= n }
}

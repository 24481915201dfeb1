package loadgen

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/bankbook/bankbook/internal/benchkit"
)

// Visibility is the command-to-query figure of a profile: keyed submits at
// a fixed rate, each followed by bankbook.q.order.get with min_seq = the
// reply's seq; the latency is from the submit's reply to the query's.
type Visibility struct {
	Profile    string  `json:"profile"`
	Clients    int     `json:"clients"`
	TargetRate float64 `json:"target_per_sec"` // half the sustained keyed submit rate
	Rate       float64 `json:"per_sec"`        // what the run did
	Ops        int     `json:"ops"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us"`
	SubmitP50  float64 `json:"submit_p50_us"`
	SubmitP99  float64 `json:"submit_p99_us"`
	// Batches is how the engine's projection runner applied the phase's
	// commits (bankbook_projection_batch_seconds, scraped before and
	// after); nil from an engine without that histogram.
	Batches *Batches `json:"runner_batches,omitempty"`
}

// Batches sums the projection runner's batches over a phase.
type Batches struct {
	Count   float64 `json:"count"`
	Commits float64 `json:"commits"`
	MeanUs  float64 `json:"mean_us"`
	// P50leUs and P99leUs are the upper bounds of the histogram buckets
	// the median and the 99th percentile batch fell in.
	P50leUs float64 `json:"p50_le_us"`
	P99leUs float64 `json:"p99_le_us"`
}

// visibility runs submits paced at rate per second (open loop: a late
// client does not delay the next arrival) on clients connections for d.
func (h *harness) visibility(ctx context.Context, rate float64, clients int, d time.Duration) (Visibility, error) {
	v := Visibility{Profile: h.profile, Clients: clients, TargetRate: rate}
	h.settle(ctx)
	before, err := h.metrics(ctx)
	if err != nil {
		return v, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	arrivals := make(chan struct{}, 100_000)
	var (
		mu       sync.Mutex
		vis, sub []time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	for w := range clients {
		wg.Go(func() {
			for range arrivals {
				t0 := time.Now()
				rep, err := h.submit(ctx, w, true)
				t1 := time.Now()
				if err == nil {
					err = h.getOrder(ctx, w, rep.OrderID, rep.Seq)
				}
				t2 := time.Now()
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				} else {
					sub = append(sub, t1.Sub(t0))
					vis = append(vis, t2.Sub(t1))
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	n := 0
	for ctx.Err() == nil {
		due := start.Add(time.Duration(n) * interval)
		if due.Sub(start) >= d {
			break
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case arrivals <- struct{}{}:
			n++
		default: // the clients are 100,000 arrivals behind: this one is dropped
			n++
		}
	}
	close(arrivals)
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return v, firstErr
	}
	slices.Sort(vis)
	slices.Sort(sub)
	v.Ops = len(vis)
	v.Rate = float64(len(vis)) / elapsed.Seconds()
	v.P50us, v.P99us = benchkit.Run{Lat: vis}.Pct(0.50), benchkit.Run{Lat: vis}.Pct(0.99)
	if len(vis) > 0 {
		v.MaxUs = float64(vis[len(vis)-1].Microseconds())
	}
	v.SubmitP50, v.SubmitP99 = benchkit.Run{Lat: sub}.Pct(0.50), benchkit.Run{Lat: sub}.Pct(0.99)
	h.settle(context.WithoutCancel(ctx))
	after, err := h.metrics(context.WithoutCancel(ctx))
	if err != nil {
		return v, err
	}
	v.Batches = batchesBetween(before, after)
	return v, nil
}

// batchesBetween is what the projection runner's batch histogram
// (bankbook_projection_batch_seconds) gained from one scrape to the next;
// nil if either lacks it.
func batchesBetween(before, after scrape) *Batches {
	const name = "bankbook_projection_batch_seconds"
	m0, m1 := before.metric(name, nil), after.metric(name, nil)
	if m0 == nil || m1 == nil {
		return nil
	}
	h0, h1 := m0.GetHistogram(), m1.GetHistogram()
	count := float64(h1.GetSampleCount() - h0.GetSampleCount())
	out := &Batches{Count: count}
	if c0, c1 := before.metric("bankbook_projection_batch_commits_total", nil), after.metric("bankbook_projection_batch_commits_total", nil); c0 != nil && c1 != nil {
		out.Commits = c1.GetCounter().GetValue() - c0.GetCounter().GetValue()
	}
	if count <= 0 {
		return out
	}
	out.MeanUs = (h1.GetSampleSum() - h0.GetSampleSum()) / count * 1e6
	// Buckets are cumulative and in increasing order: the first whose gain
	// reaches a share of the batches holds that percentile.
	b0 := h0.GetBucket()
	for i, b := range h1.GetBucket() {
		gained := float64(b.GetCumulativeCount())
		if i < len(b0) {
			gained -= float64(b0[i].GetCumulativeCount())
		}
		if out.P50leUs == 0 && gained >= 0.50*count {
			out.P50leUs = b.GetUpperBound() * 1e6
		}
		if out.P99leUs == 0 && gained >= 0.99*count {
			out.P99leUs = b.GetUpperBound() * 1e6
		}
	}
	return out
}

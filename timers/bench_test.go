package timers_test

// BenchmarkTimerPrecision of docs/performance.md:
//
//	go test -run '^$' -bench TimerPrecision -benchtime 1x -timeout 30m ./timers/
//
// How late 1000 timers fire (handler call time − due time) with 0 and with
// BANKBOOK_BENCH_TIMERS (default 100000) other timers pending on the same
// stream. The 0-pending run is the baseline.

import (
	"context"
	"encoding/binary"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
)

func BenchmarkTimerPrecision(b *testing.B) {
	pending := 100_000
	if n, err := strconv.Atoi(os.Getenv("BANKBOOK_BENCH_TIMERS")); err == nil && n >= 0 {
		pending = n
	}
	var p50At0, p99At0 float64
	for _, p := range []int{0, pending} {
		b.Run("pending="+strconv.Itoa(p), func(b *testing.B) {
			for range b.N {
				p50, p99 := timerPrecision(b, p)
				b.ReportMetric(p50, "p50_ms")
				b.ReportMetric(p99, "p99_ms")
				if p == 0 {
					p50At0, p99At0 = p50, p99
				} else if p50At0 > 0 {
					b.ReportMetric(p50/p50At0, "p50_x_idle")
					b.ReportMetric(p99/p99At0, "p99_x_idle")
				}
			}
		})
	}
}

func timerPrecision(b *testing.B, pending int) (p50, p99 float64) {
	b.StopTimer()
	srv := testenv.Start(b, "")
	_, js := srv.Connect(b)
	ctx := context.Background()
	tm, err := timers.Open(ctx, js, timers.Config{Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	far := time.Now().Add(time.Hour)
	for i := range pending {
		if err := tm.Arm(ctx, "far", "p"+strconv.Itoa(i), far, nil); err != nil {
			b.Fatal(err)
		}
	}
	const measured = 1000
	var mu sync.Mutex
	var late []time.Duration
	done := make(chan struct{})
	loop, err := tm.Worker(ctx, func(_ context.Context, d timers.Due) (time.Duration, error) {
		due := time.Unix(0, int64(binary.BigEndian.Uint64(d.Payload)))
		mu.Lock()
		late = append(late, time.Since(due))
		if len(late) == measured {
			close(done)
		}
		mu.Unlock()
		return 0, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	go func() { _ = loop.Run(rctx) }()
	defer cancel()
	start := time.Now().Add(2 * time.Second)
	b.StartTimer()
	for i := range measured {
		due := start.Add(time.Duration(i) * 2 * time.Millisecond)
		payload := binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano()))
		if err := tm.Arm(ctx, "bench", "m"+strconv.Itoa(i), due, payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		b.Fatal("timers did not fire")
	}
	b.StopTimer()
	slices.Sort(late)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	if late[0] < 0 {
		b.Errorf("a timer fired %v early", -late[0])
	}
	return ms(late[len(late)/2]), ms(late[len(late)*99/100])
}

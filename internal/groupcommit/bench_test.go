package groupcommit_test

// BenchmarkWrap (docs/performance.md conventions): durable publishes through
// group commit beside raw publishes to a server that syncs every write, at
// the same concurrency, in the same run, on the same disk:
//
//	go test -run '^$' -bench BenchmarkWrap -benchtime 4000x ./internal/groupcommit/
//
// Both servers are real embedded nats-servers with file storage. Nothing is
// timed in tests.

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/embedded"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/internal/testenv"
)

// BenchmarkWrap publishes 900-byte messages, each to a subject of its own,
// through Wrap on a server that does not sync per write (every publish
// returns once a shared syncfs covered it), and, as the baseline, the same
// number to a server under sync_always. Metrics: ops/s and base_ops/s,
// x_baseline (group commit ÷ sync_always), p50_us/p99_us and their base_
// counterparts, and syncs/op (syncs run per publish: below 1 when shared).
func BenchmarkWrap(b *testing.B) {
	for _, workers := range []int{1, 16, 64} {
		b.Run("c="+strconv.Itoa(workers), func(b *testing.B) {
			ctx := context.Background()
			payload := make([]byte, 900)
			grouped := testenv.StartWith(b, "", embedded.Fast)
			_, raw := grouped.Connect(b)
			syncs, err := groupcommit.Open(grouped.Dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = syncs.Close() })
			js := groupcommit.Wrap(raw, syncs)
			safe := testenv.StartWith(b, "", embedded.Safe)
			_, base := safe.Connect(b)
			for _, j := range []jetstream.JetStream{js, base} {
				if _, err := j.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
					b.Fatal(err)
				}
			}
			before := syncs.Stats().Syncs
			got, err := benchkit.Drive(workers, b.Loop, func(_, i int) error {
				_, err := js.Publish(ctx, "s."+strconv.Itoa(i), payload)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			ran := syncs.Stats().Syncs - before
			baseline, err := benchkit.Drive(workers, benchkit.Count(got.N), func(_, i int) error {
				_, err := base.Publish(ctx, "s."+strconv.Itoa(i), payload)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(got.PerSec(), "ops/s")
			b.ReportMetric(baseline.PerSec(), "base_ops/s")
			b.ReportMetric(got.PerSec()/baseline.PerSec(), "x_baseline")
			b.ReportMetric(got.Pct(0.5), "p50_us")
			b.ReportMetric(got.Pct(0.99), "p99_us")
			b.ReportMetric(baseline.Pct(0.5), "base_p50_us")
			b.ReportMetric(baseline.Pct(0.99), "base_p99_us")
			b.ReportMetric(float64(ran)/float64(got.N), "syncs/op")
		})
	}
}

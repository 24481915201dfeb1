package projections_test

// BenchmarkApplyBatch (docs/performance.md, "What a batch of the read models
// costs"): what one read-model transaction costs per commit as its batch
// grows, the live Runner's path (Store.applyBatch, the read models'
// checkpoints in the same transaction, an unsynced file as under "fast"):
//
//	go test -run '^$' -bench BenchmarkApplyBatch -benchtime 1x ./projections/
//
// Nothing is timed in tests.

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchstream"
	"github.com/bankbook/bankbook/projections"
)

// BenchmarkApplyBatch applies the same stream (BANKBOOK_BATCH_EVENTS, default
// 20000, of BenchmarkReplay's shape) to a fresh read-model file in batches of
// 1 to 512 commits, one transaction each. Metrics per batch size:
// cpu_us/commit (the process's CPU, decoding included), pages/commit and
// pages/tx (bbolt pages written: a transaction rewrites every page it
// touched and the path above it), us/commit (wall).
func BenchmarkApplyBatch(b *testing.B) {
	events := benchstream.Size(b, "BANKBOOK_BATCH_EVENTS", 20_000)
	js, _ := benchstream.Prefill(b, events)
	codec := domain.Events()
	var commits []eventstore.Commit
	if _, err := eventstore.NewReader(js, eventstore.Config{Upcaster: codec}).Read(context.Background(), func(_ context.Context, batch []eventstore.Commit) error {
		commits = append(commits, batch...)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1, 2, 8, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			var (
				cpu, wall time.Duration
				pages     int64
				applied   int
			)
			for b.Loop() {
				b.StopTimer()
				st, err := projections.Open(filepath.Join(b.TempDir(), "readmodels.db"), &projections.Options{Codec: codec, Unsynced: true})
				if err != nil {
					b.Fatal(err)
				}
				p0 := projections.PagesWritten(st)
				b.StartTimer()
				start, cpu0 := time.Now(), benchstream.CPUTime()
				for i := 0; i < len(commits); i += size {
					if err := projections.ApplyBatch(st, commits[i:min(i+size, len(commits))]); err != nil {
						b.Fatal(err)
					}
				}
				wall += time.Since(start)
				cpu += benchstream.CPUTime() - cpu0
				b.StopTimer()
				pages += projections.PagesWritten(st) - p0
				applied += len(commits)
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			txs := float64(applied) / float64(size)
			b.ReportMetric(float64(cpu.Microseconds())/float64(applied), "cpu_us/commit")
			b.ReportMetric(float64(wall.Microseconds())/float64(applied), "us/commit")
			b.ReportMetric(float64(pages)/float64(applied), "pages/commit")
			b.ReportMetric(float64(pages)/txs, "pages/tx")
		})
	}
}

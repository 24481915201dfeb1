package server_test

// BenchmarkMatchScan of docs/performance.md (one run is one whole scenario):
//
//	go test -run '^$' -bench MatchScan -benchtime 1x -timeout 30m ./server/
//
// BANKBOOK_BENCH_ORDERS open orders (default 100000), then a simulated bank
// holding one exact transfer for each, ingested by one scan of the real
// scanner into the engine's deposit recording (name lookup, order payment,
// deposit record). The baseline, in the same run, is synchronous raw
// JetStream publishes from one worker (the scanner records one transaction
// at a time), for as many messages. BANKBOOK_BENCH_SCAN_CPUPROFILE=FILE
// writes a CPU profile of the scan alone (the process's, embedded server
// included) to FILE.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/benchstream"
	"github.com/bankbook/bankbook/internal/engineproc"
	"github.com/bankbook/bankbook/watermarks"
)

type countingRecorder struct {
	h       *commands.Deposits
	matched atomic.Int64
}

func (r *countingRecorder) Record(ctx context.Context, t bankfeed.Transaction) (bool, error) {
	rep, err := r.h.RecordDeposit(ctx, commands.Meta{Command: "bench", Actor: "scanner"}, api.RecordDepositRequest{
		BankTxnID: t.BankTxnID, AccountNumber: t.AccountNumber, DepositorName: t.DepositorName, Amount: t.Amount, DepositedAt: t.DepositedAt})
	if err == nil && rep.Outcome == "matched" {
		r.matched.Add(1)
	}
	return err == nil && rep.Outcome != domain.OutcomeDuplicate, err
}

func benchOrders() int {
	if n, err := strconv.Atoi(os.Getenv("BANKBOOK_BENCH_ORDERS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// rssMB is this process's resident memory in MiB (0 if unknown).
func rssMB() float64 {
	m, err := engineproc.ProcessMemory(os.Getpid())
	if err != nil {
		return 0
	}
	return float64(m.RSS) / (1 << 20)
}

func BenchmarkMatchScan(b *testing.B) {
	n := benchOrders()
	for range b.N {
		benchMatchScan(b, n)
	}
}

func benchMatchScan(b *testing.B, n int) {
	b.StopTimer()
	e := startEngine(b, func(c *engine.Config) { c.Durability = "fast" })
	ctx := context.Background()

	// n open orders, submitted in-process by 16 workers (not measured).
	names := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				rep, err := e.Commands.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{
					OrderID: fmt.Sprintf("o%07d", i), BuyerID: "u" + strconv.Itoa(i), BuyerName: benchBuyer(i), Amount: int64(1000 + i)})
				if err != nil {
					b.Errorf("submit %d: %v", i, err)
					return
				}
				names[i] = rep.DepositorName
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d open orders submitted in %v", n, time.Since(start).Round(time.Millisecond))

	bank, err := bankfeed.NewSimBank(bankfeed.SimOptions{Overlap: -1})
	if err != nil {
		b.Fatal(err)
	}
	for i, name := range names {
		if _, err := bank.Transfer(name, int64(1000+i), e.cfg.CollectNumber); err != nil {
			b.Fatal(err)
		}
	}
	js, _ := jetstream.New(dial(b, e.ClientURL(), e.SeedFile(auth.Engine), "bench-scanner"))
	marks, err := watermarks.Open(ctx, js, "bench_watermarks", 1)
	if err != nil {
		b.Fatal(err)
	}
	rec := &countingRecorder{h: e.Commands.Deposits}
	sc := &bankfeed.Scanner{Source: bank.Source(e.cfg.CollectNumber), Account: e.cfg.CollectNumber, Recorder: rec, Watermarks: marks, Overlap: -1}

	runtime.GC()
	stopProfile := benchstream.CPUProfile(b, "BANKBOOK_BENCH_SCAN_CPUPROFILE")
	b.StartTimer()
	t0 := time.Now()
	stats, err := sc.ScanOnce(ctx)
	elapsed := time.Since(t0)
	b.StopTimer()
	stopProfile()
	if err != nil {
		b.Fatal(err)
	}
	if stats.Recorded != n || rec.matched.Load() != int64(n) {
		b.Fatalf("recorded %d, matched %d, want %d", stats.Recorded, rec.matched.Load(), n)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssMB()

	// Baseline: as many raw synchronous publishes, from as many workers as
	// the scanner records with at once.
	scratch := eventstore.Config{Stream: "BENCH_MATCH_SCRATCH", SubjectPrefix: "scratchm"}.StreamConfig()
	if _, err := js.CreateStream(ctx, scratch); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 900)
	base, err := benchkit.Drive(bankfeed.DefaultScanConcurrency, benchkit.Count(n), func(_, i int) error {
		_, err := js.Publish(ctx, "scratchm.x."+strconv.Itoa(i), body)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	perSec := float64(n) / elapsed.Seconds()
	b.ReportMetric(perSec, "deposits/s")
	b.ReportMetric(base.PerSec(), "base_ops/s")
	b.ReportMetric(perSec/base.PerSec(), "x_baseline")
	b.ReportMetric(rss, "rss_MB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_MB")
	b.Logf("scan of %d transactions against %d open orders: %v (%.0f deposits/s); raw publish %.0f/s; RSS %.0f MB, Go heap %.0f MB",
		n, n, elapsed.Round(time.Millisecond), perSec, base.PerSec(), rss, float64(ms.HeapAlloc)/(1<<20))
}

package server_test

// The bill benchmarks of docs/performance.md ("Bills"):
//
//	go test -run '^$' -bench BillIssueBulk -benchtime 20x -timeout 30m ./server/
//	go test -run '^$' -bench StorePaymentScan -benchtime 1x -timeout 30m ./server/
//
// BenchmarkBillIssueBulk sends bankbook.cmd.bill.issue_bulk requests of
// 1,000 lines over TCP, as the app identity, to a real engine whose 1,000
// stores were linked first. The engine issues a request's lines 16 at a
// time (commands.bulkConcurrency), each one append on its store's link, over
// its one connection to JetStream; so the baseline, in the same run, is
// 1,000 synchronous JetStream publishes per operation from 16 goroutines
// sharing one TCP connection, of the size of an issue's commit, to a scratch
// stream with the event stream's settings.
//
// BenchmarkStorePaymentScan is one scan, by the real scanner, of the
// collection account with its dedicated sub-accounts, holding
// BANKBOOK_BENCH_TRANSFERS transfers (default 100,000; 10,000 with -short)
// to BANKBOOK_BENCH_STORES linked stores (default 10,000; 1,000 with
// -short), each with a bill, recorded by the engine's deposit handler. The
// baseline is as many synchronous raw publishes of a payment's link commit
// from one worker (the scanner records one transaction at a time).
//
// Nothing is timed in tests.

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/watermarks"
)

const (
	benchDistributor = "d-bench"
	// benchBulkLines is the lines of one bill.issue_bulk request, one per
	// store: the most a request may carry.
	benchBulkLines = api.MaxBulkBills
	// benchBulkPublishers is the concurrency of the bulk baseline: the
	// engine's lines in flight per request (commands.bulkConcurrency).
	benchBulkPublishers = 16
)

func benchStoreID(i int) string { return fmt.Sprintf("s-%06d", i) }

// benchLinkStores links stores 0…n-1 to benchDistributor in-process, from
// 16 workers (setup, not measured), and returns their dedicated account
// numbers.
func benchLinkStores(b *testing.B, e *testEngine, n int) []string {
	b.Helper()
	ctx := context.Background()
	numbers := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				rep, err := e.Commands.Links.LinkStore(ctx, commands.Meta{}, api.LinkStoreRequest{
					DistributorID: benchDistributor, StoreID: benchStoreID(i), StoreName: "가게 " + strconv.Itoa(i)})
				if err != nil {
					b.Errorf("link store %d: %v", i, err)
					return
				}
				numbers[i] = rep.DedicatedAccount.Number
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	b.Logf("%d stores linked in %v", n, time.Since(start).Round(time.Millisecond))
	return numbers
}

// benchBulkRequest is a bill.issue_bulk of one bill for each of stores
// from…from+lines-1, of amount.
func benchBulkRequest(from, lines int, amount int64) api.IssueBulkRequest {
	req := api.IssueBulkRequest{DistributorID: benchDistributor, Bills: make([]api.BillLine, lines)}
	for i := range lines {
		req.Bills[i] = api.BillLine{StoreID: benchStoreID(from + i), Amount: amount, Memo: "2026년 12월분 납품 대금"}
	}
	return req
}

// linkCommitBytes is the size of the last commit on store i's link.
func linkCommitBytes(b *testing.B, e *testEngine, js jetstream.JetStream, store int) int {
	b.Helper()
	ctx := context.Background()
	events, err := js.Stream(ctx, e.Events.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	id := domain.LinkID(benchDistributor, domain.StoreID(benchStoreID(store)))
	msg, err := events.GetLastMsgForSubject(ctx, e.Events.Subject(eventstore.Ref{Type: domain.AggregateLink, ID: id}))
	if err != nil {
		b.Fatal(err)
	}
	return len(msg.Data)
}

// BenchmarkBillIssueBulk issues 1,000 bills per operation (one
// bill.issue_bulk with an Idempotency-Key, each line superseding its
// store's bill of the previous operation) under the "safe" (the engine
// default) and "fast" durability profiles. bills/s over the baseline's
// publishes/s is x_baseline; p50/p99 are per request (per batch of 1,000
// publishes for the baseline).
func BenchmarkBillIssueBulk(b *testing.B) {
	for _, profile := range []string{"safe", "fast"} {
		b.Run(profile, func(b *testing.B) { benchIssueBulk(b, profile) })
	}
}

func benchIssueBulk(b *testing.B, profile string) {
	e := startEngine(b, func(c *engine.Config) { c.Durability = profile })
	ctx := context.Background()
	benchLinkStores(b, e, benchBulkLines)

	erp := client.New(dial(b, e.ClientURL(), e.SeedFile(auth.App), "bench-erp"))
	js, err := jetstream.New(dial(b, e.ClientURL(), e.SeedFile(auth.Engine), "bench-baseline"))
	if err != nil {
		b.Fatal(err)
	}
	scratch := eventstore.Config{Stream: "BENCH_BILLS_SCRATCH", SubjectPrefix: "scratchb"}.StreamConfig()
	if _, err := js.CreateStream(ctx, scratch); err != nil {
		b.Fatal(err)
	}

	var op atomic.Int64 // request numbers, unique across warm-up and runs
	bulk := func() error {
		n := op.Add(1)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		rep, _, err := client.Do(cctx, erp, api.BillIssueBulk, benchBulkRequest(0, benchBulkLines, 10_000+n),
			client.WithIdempotencyKey(fmt.Sprintf("bench-bulk-%d", n)))
		if err == nil && (rep.Issued != benchBulkLines || rep.Failed != 0) {
			err = fmt.Errorf("issued %d, failed %d of %d lines", rep.Issued, rep.Failed, benchBulkLines)
		}
		return err
	}
	// Warm-up: every store gets its first bill, so each measured line
	// supersedes one (a commit of bill.expired and bill.issued).
	testenv.CheckFor(b, 10*time.Second, func() error { return bulk() })

	got, err := benchkit.Drive(1, b.Loop, func(int, int) error { return bulk() })
	if err != nil {
		b.Fatal(err)
	}

	body := make([]byte, linkCommitBytes(b, e, js, 0))
	publish := func(k, i int) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: fmt.Sprintf("scratchb.link.%d_%d", k, i), Data: body})
		return err
	}
	if err := publish(-1, 0); err != nil {
		b.Fatalf("warm-up publish: %v", err)
	}
	base, err := benchkit.Drive(1, benchkit.Count(got.N), func(_, k int) error {
		_, err := benchkit.Drive(benchBulkPublishers, benchkit.Count(benchBulkLines), func(_, i int) error { return publish(k, i) })
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	bills, published := got.PerSec()*benchBulkLines, base.PerSec()*benchBulkLines
	b.ReportMetric(got.NsPerOp(), "ns/op")
	b.ReportMetric(bills, "bills/s")
	b.ReportMetric(got.Pct(0.50), "p50_us")
	b.ReportMetric(got.Pct(0.99), "p99_us")
	b.ReportMetric(published, "base_publishes/s")
	b.ReportMetric(base.Pct(0.50), "base_p50_us")
	b.ReportMetric(base.Pct(0.99), "base_p99_us")
	b.ReportMetric(bills/published, "x_baseline")
	b.ReportMetric(float64(len(body)), "msg_bytes")
}

// storePayments counts the deposits the engine records as store payments.
type storePayments struct {
	h        *commands.Deposits
	payments atomic.Int64
}

func (r *storePayments) Record(ctx context.Context, t bankfeed.Transaction) (bool, error) {
	rep, err := r.h.RecordDeposit(ctx, commands.Meta{Command: "bench", Actor: "scanner"}, api.RecordDepositRequest{
		BankTxnID: t.BankTxnID, AccountNumber: t.AccountNumber, DepositorName: t.DepositorName, Amount: t.Amount, DepositedAt: t.DepositedAt})
	if err == nil && rep.Outcome == domain.OutcomeStorePayment && rep.BillID != "" {
		r.payments.Add(1)
	}
	return err == nil && rep.Outcome != domain.OutcomeDuplicate, err
}

// benchSize is the positive integer in environment variable name, or def
// (short with -short).
func benchSize(name string, def, short int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return short
	}
	return def
}

// BenchmarkStorePaymentScan: one scan of the collection account with its
// sub-accounts records every transfer to a dedicated account as a store
// payment (payments/s), beside as many raw publishes from one worker.
func BenchmarkStorePaymentScan(b *testing.B) {
	stores := benchSize("BANKBOOK_BENCH_STORES", 10_000, 1_000)
	transfers := benchSize("BANKBOOK_BENCH_TRANSFERS", 100_000, 10_000)
	for range b.N {
		benchStorePaymentScan(b, stores, transfers)
	}
}

func benchStorePaymentScan(b *testing.B, stores, transfers int) {
	b.StopTimer()
	e := startEngine(b, func(c *engine.Config) { c.Durability = "fast" })
	ctx := context.Background()

	// Setup, not measured: the stores linked, each with a bill of 50,000.
	numbers := benchLinkStores(b, e, stores)
	start := time.Now()
	for from := 0; from < stores; from += benchBulkLines {
		rep, err := e.Commands.Links.IssueBulk(ctx, commands.Meta{}, benchBulkRequest(from, min(benchBulkLines, stores-from), 50_000))
		if err != nil || rep.Failed != 0 {
			b.Fatalf("issue bills from store %d: %v (%d lines failed)", from, err, rep.Failed)
		}
	}
	b.Logf("%d bills issued in %v", stores, time.Since(start).Round(time.Millisecond))

	// Transfer j is 10,000 to store j mod stores: a store's payments make
	// its bill partially paid, then paid, then overpaid.
	bank, err := bankfeed.NewSimBank(bankfeed.SimOptions{Overlap: -1})
	if err != nil {
		b.Fatal(err)
	}
	for j := range transfers {
		if _, err := bank.Transfer("가게"+strconv.Itoa(j%stores), 10_000, numbers[j%stores]); err != nil {
			b.Fatal(err)
		}
	}
	js, err := jetstream.New(dial(b, e.ClientURL(), e.SeedFile(auth.Engine), "bench-scanner"))
	if err != nil {
		b.Fatal(err)
	}
	marks, err := watermarks.Open(ctx, js, "bench_watermarks", 1)
	if err != nil {
		b.Fatal(err)
	}
	collect := e.cfg.CollectNumber
	rec := &storePayments{h: e.Commands.Deposits}
	sc := &bankfeed.Scanner{Source: bank.SourceWith(collect, e.Accounts.InRange), Account: collect, IsSubAccount: e.Accounts.InRange,
		Recorder: rec, Watermarks: marks, Overlap: -1}

	runtime.GC()
	b.StartTimer()
	t0 := time.Now()
	stats, err := sc.ScanOnce(ctx)
	elapsed := time.Since(t0)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if stats.Recorded != transfers || stats.SubAccounts != transfers || rec.payments.Load() != int64(transfers) {
		b.Fatalf("recorded %d (%d on sub-accounts), %d billed store payments; want %d", stats.Recorded, stats.SubAccounts, rec.payments.Load(), transfers)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := rssMB()

	// Baseline: as many raw synchronous publishes, from one worker, of a
	// payment's link commit.
	body := make([]byte, linkCommitBytes(b, e, js, 0))
	scratch := eventstore.Config{Stream: "BENCH_PAY_SCRATCH", SubjectPrefix: "scratchp"}.StreamConfig()
	if _, err := js.CreateStream(ctx, scratch); err != nil {
		b.Fatal(err)
	}
	base, err := benchkit.Drive(1, benchkit.Count(transfers), func(_, i int) error {
		_, err := js.Publish(ctx, "scratchp.x."+strconv.Itoa(i), body)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	perSec := float64(transfers) / elapsed.Seconds()
	b.ReportMetric(perSec, "payments/s")
	b.ReportMetric(base.PerSec(), "base_ops/s")
	b.ReportMetric(perSec/base.PerSec(), "x_baseline")
	b.ReportMetric(float64(len(body)), "msg_bytes")
	b.ReportMetric(rss, "rss_MB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_MB")
	b.Logf("scan of %d transfers to %d dedicated accounts: %v (%.0f payments/s); raw publish %.0f/s; RSS %.0f MB, Go heap %.0f MB",
		transfers, stores, elapsed.Round(time.Millisecond), perSec, base.PerSec(), rss, float64(ms.HeapAlloc)/(1<<20))
}

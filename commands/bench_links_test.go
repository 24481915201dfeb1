package commands_test

// BenchmarkLinkLoad of docs/performance.md ("Bills"):
//
//	go test -run '^$' -bench LinkLoad -benchtime 3s -count 3 ./commands/
//
// A cold load (a repository that has not seen the link: what another
// instance, or this one after a restart or a cache eviction, does first) of
// a store link with 10 payments and of one with 10,000, on a real embedded
// JetStream: from the link's stored snapshot and from every commit. x_10 is
// ns per load of the 10,000-payment link over the same for the 10-payment
// link, measured earlier in the same process. The baseline is one raw direct
// get of the link's last commit (x_get). Nothing is timed in tests.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/snapshots"
)

// linkRepo is a fresh repository of links (an empty cache) over es.
func linkRepo(b *testing.B, es commands.EventStore, snaps commands.Snapshots) *commands.Repository[domain.Link] {
	b.Helper()
	core, err := commands.NewCore(es, domain.Events(), commands.Config{CollectAccount: collect, Snapshots: snaps, SnapshotEvery: 100}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	return commands.NewRepository(core, domain.LinkAggregate)
}

// benchLink is a link's history: linked, then payments of 10,000 each,
// with a bill of 50,000 issued before every 10th payment until bills are
// issued (so its bills go partially paid, paid, then overpaid).
type benchLink struct {
	store    domain.StoreID
	payments int
	bills    int
}

func (l benchLink) id() string { return domain.LinkID("d-bench", l.store) }

func (l benchLink) commits() int { return 1 + l.bills + l.payments }

// steps are the link's commands, one commit each, in order.
func (l benchLink) steps() []func(domain.Link) ([]domain.Event, error) {
	steps := []func(domain.Link) ([]domain.Event, error){func(s domain.Link) ([]domain.Event, error) {
		return domain.DecideLink(s, domain.LinkStore{LinkID: l.id(), DistributorID: "d-bench", StoreID: l.store, StoreName: "한울식당",
			Account: domain.BankAccount{Bank: collect.Bank, Number: "5001000042", Holder: collect.Holder}, Now: t0})
	}}
	bills := 0
	for i := range l.payments {
		if i%10 == 0 && bills < l.bills {
			bills++
			steps = append(steps, func(s domain.Link) ([]domain.Event, error) {
				return domain.DecideIssueBill(s, domain.IssueBill{Amount: 50_000, Memo: "납품 대금", Now: t0})
			})
		}
		steps = append(steps, func(s domain.Link) ([]domain.Event, error) {
			return domain.DecideStorePayment(s, domain.StorePayment{DepositID: domain.DepositID(fmt.Sprintf("dep_%s_%d", l.store, i)), Amount: 10_000,
				CollectAccount: "100200", FeeBps: 30, SettlementDays: 1, Now: t0.Add(time.Duration(i) * time.Second)})
		})
	}
	return steps
}

// writeLinks appends the histories of a filler link (so that no measured
// link starts at the stream's first message: see BenchmarkLinkLoad), then
// of small and big, through r (which stores a snapshot of each link every
// 100 of its commits), the commits of small spread evenly among those of
// big, as the commits of two links paid over the same months are.
func writeLinks(b *testing.B, r *commands.Repository[domain.Link], small, big benchLink) {
	b.Helper()
	exec := func(l benchLink, decide func(domain.Link) ([]domain.Event, error)) {
		if _, err := r.Execute(context.Background(), commands.Meta{Command: "bench"}, l.id(), decide, nil); err != nil {
			b.Fatalf("link %s: %v", l.store, err)
		}
	}
	filler := benchLink{store: "s-filler"}
	exec(filler, filler.steps()[0])
	ss, bs := small.steps(), big.steps()
	next := 0
	for k, step := range bs {
		for next < len(ss) && next*len(bs) <= k*len(ss) {
			exec(small, ss[next])
			next++
		}
		exec(big, step)
	}
	for ; next < len(ss); next++ {
		exec(small, ss[next])
	}
}

// BenchmarkLinkLoad: a link with 10 payments (12 commits, no snapshot)
// and one with 10,000 (998 bills: 10,999 commits, whose last snapshot is
// 99 commits back, the most a load from a snapshot reads with
// SnapshotEvery 100).
//
// No measured link's first commit is the stream's first message: the
// server's file store drops a block's cache when a backward walk reads the
// block's first message (it takes it for the end of a linear scan), once
// the block has had no write for 10 s; a link starting there would reload
// the whole 8 MB block on every load, about 3 ms here.
func BenchmarkLinkLoad(b *testing.B) {
	srv := testenv.Start(b, "")
	_, js := srv.Connect(b)
	ctx := context.Background()
	es, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: domain.Events()})
	if err != nil {
		b.Fatal(err)
	}
	snaps, err := snapshots.Open(ctx, js, snapshots.Config{})
	if err != nil {
		b.Fatal(err)
	}
	stream, err := js.Stream(ctx, es.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	links := []benchLink{{store: "s-10", payments: 10, bills: 1}, {store: "s-10000", payments: 10_000, bills: 998}}
	start := time.Now()
	writeLinks(b, linkRepo(b, es, snaps), links[0], links[1])
	b.Logf("links written in %v", time.Since(start).Round(time.Millisecond))

	at10 := map[string]float64{} // ns per load of the 10-payment link, by mode
	for _, l := range links {
		for _, mode := range []string{"snapshot", "every-commit"} {
			b.Run(fmt.Sprintf("payments=%d/%s", l.payments, mode), func(b *testing.B) {
				var from commands.Snapshots
				if mode == "snapshot" {
					from = snaps
				}
				reads := &counting{EventStore: es}
				load := func() error {
					got, _, err := linkRepo(b, reads, from).Get(ctx, l.id())
					if err == nil && (got.Payments != l.payments || got.BillsIssued != l.bills || got.Version != l.commits()+l.bills-1) {
						err = fmt.Errorf("loaded %d payments, %d bills, version %d", got.Payments, got.BillsIssued, got.Version)
					}
					return err
				}
				if err := load(); err != nil { // untimed: check it, and count the commits a load reads
					b.Fatal(err)
				}
				perLoad := reads.read.Load()
				// Loads one after the other on this goroutine, so that b.Loop
				// times each one and a time-based -benchtime works (the
				// 10,000-commit load takes about 0.5 s).
				var got benchkit.Run
				began := time.Now()
				for b.Loop() {
					t := time.Now()
					if err := load(); err != nil {
						b.Fatal(err)
					}
					got.Lat = append(got.Lat, time.Since(t))
				}
				got.N, got.Elapsed = len(got.Lat), time.Since(began)
				slices.Sort(got.Lat)
				subject := es.Subject(eventstore.Ref{Type: domain.AggregateLink, ID: l.id()})
				base, err := benchkit.Drive(1, benchkit.Count(got.N), func(int, int) error {
					_, err := stream.GetLastMsgForSubject(ctx, subject)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				loadNs, getNs := got.NsPerOp(), base.NsPerOp()
				b.ReportMetric(loadNs, "ns/op")
				b.ReportMetric(loadNs, "ns/load")
				b.ReportMetric(got.Pct(0.50), "p50_us")
				b.ReportMetric(got.Pct(0.99), "p99_us")
				b.ReportMetric(float64(perLoad), "commits/load")
				b.ReportMetric(getNs, "base_ns/get")
				b.ReportMetric(loadNs/getNs, "x_get")
				if l.payments == 10 {
					at10[mode] = loadNs
				} else if at10[mode] > 0 {
					b.ReportMetric(loadNs/at10[mode], "x_10")
				}
			})
		}
	}
}

package audit_test

// BenchmarkAuditVerify (docs/performance.md conventions): audit.Verify of a
// whole stream, with the live read models to compare, beside a raw
// JetStream ordered-consumer read of the same stream in the same run, on the
// same embedded server:
//
//	go test -run '^$' -bench BenchmarkAuditVerify -benchtime 1x ./audit/
//	BANKBOOK_VERIFY_EVENTS=1000000 go test -run '^$' -bench BenchmarkAuditVerify -benchtime 1x -timeout 60m ./audit/
//
// The server is a real embedded nats-server (testenv.Start: durability
// "fast", file storage). Nothing is timed in tests. The prefill is the one
// of projections/bench_replay_test.go (test files cannot share it).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/projections"
)

// benchEvents is the stream size from env (default def).
func benchEvents(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 4 {
		b.Fatalf("%s=%q: want a number of events, 4 or more", env, v)
	}
	return n
}

// benchPrefill writes about events events (a multiple of 4) to a fresh
// embedded event stream, as the command handlers would: per cycle k, an
// order.submitted on order o-k, a deposit.recorded (orphaned) and its
// deposit.resolved (refund to wallet) on deposit d-k, and the
// wallet.credited of the refund on wallet u-k (clean for audit.Verify).
// Several workers append concurrently to disjoint aggregates.
func benchPrefill(b *testing.B, events int) (jetstream.JetStream, *eventstore.Store) {
	b.Helper()
	srv := testenv.Start(b, "")
	_, js := srv.Connect(b)
	codec := domain.Events()
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{Upcaster: codec})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	env := func(id string, ev domain.Event, at time.Time) (eventstore.Envelope, error) {
		typ, v, data, err := codec.Encode(ev)
		if err != nil {
			return eventstore.Envelope{}, err
		}
		return eventstore.Envelope{EventID: id, EventType: typ, SchemaVersion: v, OccurredAt: at, Data: data}, nil
	}
	cycle := func(k int) error {
		at := t0.Add(time.Duration(k) * time.Millisecond)
		order := fmt.Sprintf("o-%08d", k)
		dep := fmt.Sprintf("d-%08d", k)
		user := domain.UserID(fmt.Sprintf("u-%08d", k))
		amount := int64(10_000 + k%50_000)
		steps := []struct {
			typ, id   string
			prev      eventstore.Seq
			prevVer   int
			ev        domain.Event
			prevIndex int // the step whose commit is prev (-1: none)
		}{
			{typ: domain.AggregateOrder, id: order, prevIndex: -1, ev: domain.OrderSubmitted{
				OrderID: domain.OrderID(order), BuyerID: user, BuyerName: "김민수",
				Amount:         domain.Money{Amount: amount, Currency: domain.KRW},
				DepositorName:  fmt.Sprintf("김민수%03d", k%domain.DepositorSuffixes),
				CollectAccount: domain.BankAccount{Bank: "KB국민은행", Number: "123401-04-567890", Holder: "(주)뱅크북"},
				CancelWindowS:  300, SubmittedAt: at}},
			{typ: domain.AggregateDeposit, id: dep, prevIndex: -1, ev: domain.DepositRecorded{
				DepositID: domain.DepositID(dep), BankTxnID: "X" + dep, AccountNumber: "123401-04-567890",
				DepositorName: "누군가", Amount: amount, DepositedAt: at,
				Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName}},
			{typ: domain.AggregateDeposit, id: dep, prevIndex: 1, prevVer: 1, ev: domain.DepositResolved{
				DepositID: domain.DepositID(dep), Action: domain.ResolveRefundToWallet, Amount: amount, UserID: user, ResolvedAt: at}},
			{typ: domain.AggregateWallet, id: string(user), prevIndex: -1, ev: domain.WalletCredited{
				UserID: user, Amount: amount, Kind: domain.CreditOrphanRefund, Ref: dep,
				FromAccount: domain.AccountSuspense, CreditedAt: at}},
		}
		seqs := make([]eventstore.Seq, len(steps))
		for i, s := range steps {
			e, err := env(fmt.Sprintf("e-%d-%d", k, i), s.ev, at)
			if err != nil {
				return err
			}
			var prev eventstore.Seq
			if s.prevIndex >= 0 {
				prev = seqs[s.prevIndex]
			}
			c, err := es.Append(ctx, eventstore.Ref{Type: s.typ, ID: s.id}, prev, s.prevVer, fmt.Sprintf("c-%d-%d", k, i), []eventstore.Envelope{e})
			if err != nil {
				return fmt.Errorf("cycle %d step %d: %w", k, i, err)
			}
			seqs[i] = c.Seq
		}
		return nil
	}

	start := time.Now()
	cycles := events / 4
	const workers = 16
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < cycles; k += workers {
				if err := cycle(k); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("prefill: %v", firstErr)
	}
	stream, err := js.Stream(ctx, es.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.State.Msgs != uint64(4*cycles) {
		b.Fatalf("prefill: %d messages, want %d", info.State.Msgs, 4*cycles)
	}
	b.Logf("prefill: %d events, %d subjects, %d MB in %v", info.State.Msgs, info.State.NumSubjects, info.State.Bytes>>20, time.Since(start).Round(time.Millisecond))
	return js, es
}

// benchRawRead reads the whole stream with an ordered consumer, as fast as
// JetStream delivers it, and returns the messages and bytes read.
func benchRawRead(b *testing.B, js jetstream.JetStream, streamName string) (msgs int, bytes int64, elapsed time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		b.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	want := int(info.State.Msgs)
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		b.Fatal(err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for msgs < want {
		m, err := it.Next()
		if err != nil {
			b.Fatalf("raw read after %d of %d: %v", msgs, want, err)
		}
		msgs++
		bytes += int64(len(m.Data()))
	}
	return msgs, bytes, time.Since(start)
}

// BenchmarkAuditVerify times audit.Verify of the whole stream (the fold of
// every check, the fresh replay into TempDir and its comparison with the
// live read models, a file built by projections.Replay before the timer
// starts), beside a raw ordered-consumer read of the same stream. Metrics:
// verify_s (seconds per verification), events/s, base_events/s and
// base_MB/s (raw read), x_raw = verify events/s ÷ raw events/s, live_replay_s
// (the setup's replay, for scale) and findings (0 on this clean stream).
// BANKBOOK_VERIFY_EVENTS sets the stream size (default 100000).
func BenchmarkAuditVerify(b *testing.B) {
	events := benchEvents(b, "BANKBOOK_VERIFY_EVENTS", 100_000)
	js, es := benchPrefill(b, events)
	codec := domain.Events()
	ctx := context.Background()
	reader := func() *eventstore.Reader { return eventstore.NewReader(js, eventstore.Config{Upcaster: codec}) }

	livePath := filepath.Join(b.TempDir(), "readmodels.db")
	liveStart := time.Now()
	if _, _, err := projections.Replay(ctx, reader(), livePath, &projections.Options{Codec: codec}); err != nil {
		b.Fatalf("live read models: %v", err)
	}
	liveDur := time.Since(liveStart)

	var (
		verifyDur, rawDur time.Duration
		verified, rawMsgs int
		rawBytes          int64
		findings          int
	)
	for b.Loop() {
		b.StopTimer()
		n, by, d := benchRawRead(b, js, es.Config().Stream)
		rawMsgs, rawBytes, rawDur = rawMsgs+n, rawBytes+by, rawDur+d
		tmp := b.TempDir()
		b.StartTimer()

		start := time.Now()
		rep, err := audit.Verify(ctx, audit.Options{Reader: reader(), Codec: codec, ReadModels: livePath, TempDir: tmp})
		if err != nil {
			b.Fatal(err)
		}
		verifyDur += time.Since(start)
		verified += rep.Checked.Events
		findings += len(rep.Findings)
		if rep.Checked.ReadModels != "file" {
			b.Fatalf("read models not compared: %q", rep.Checked.ReadModels)
		}
	}
	if verified != rawMsgs {
		b.Fatalf("verify checked %d events, the raw read got %d messages", verified, rawMsgs)
	}
	iters := float64(b.N)
	rate := float64(verified) / verifyDur.Seconds()
	base := float64(rawMsgs) / rawDur.Seconds()
	b.ReportMetric(verifyDur.Seconds()/iters, "verify_s")
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(base, "base_events/s")
	b.ReportMetric(float64(rawBytes)/(1<<20)/rawDur.Seconds(), "base_MB/s")
	b.ReportMetric(rate/base, "x_raw")
	b.ReportMetric(liveDur.Seconds(), "live_replay_s")
	b.ReportMetric(float64(findings)/iters, "findings")
}

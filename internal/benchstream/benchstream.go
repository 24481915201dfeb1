// Package benchstream is what the benchmarks that read a whole event stream
// share: a prefilled stream of realistic commits on a real embedded
// nats-server, and the baseline they are measured against, a raw JetStream
// ordered-consumer read of the same stream (docs/performance.md).
package benchstream

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Size is the stream size a benchmark asks for in env (default def).
func Size(b testing.TB, env string, def int) int {
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

// Prefill writes about events events (a multiple of 4) to a fresh
// embedded event stream, as the command handlers would: per cycle k, an
// order.submitted on order o-k, a deposit.recorded (orphaned) and its
// deposit.resolved (refund to wallet) on deposit d-k, and the
// wallet.credited of the refund on wallet u-k (clean for audit.Verify).
// Several workers append concurrently to disjoint aggregates.
func Prefill(b testing.TB, events int) (jetstream.JetStream, *eventstore.Store) {
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
		txn := fmt.Sprintf("Xd-%08d", k)
		dep := string(domain.NewDepositID("123401-04-567890", txn))
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
				DepositID: domain.DepositID(dep), BankTxnID: txn, AccountNumber: "123401-04-567890",
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

// RawRead reads the whole stream with an ordered consumer, as fast as
// JetStream delivers it, and returns the messages and bytes read.
func RawRead(b testing.TB, js jetstream.JetStream, streamName string) (msgs int, bytes int64, elapsed time.Duration) {
	msgs, bytes, elapsed, _ = RawReadCPU(b, js, streamName)
	return msgs, bytes, elapsed
}

// RawReadCPU is RawRead that also returns the CPU time the read took (see
// CPUTime), the server's included.
func RawReadCPU(b testing.TB, js jetstream.JetStream, streamName string) (msgs int, bytes int64, elapsed, cpu time.Duration) {
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
	start, cpu0 := time.Now(), CPUTime()
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
	return msgs, bytes, time.Since(start), CPUTime() - cpu0
}

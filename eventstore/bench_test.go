package eventstore_test

// Benchmarks of docs/performance.md. Each one measures the store beside a
// baseline taken in the same run, at the same concurrency, on the same
// embedded server, and reports both and their ratio:
//
//	go test -run '^$' -bench . -benchtime 2000x ./eventstore/
//
// The servers are real embedded nats-servers (testenv.Start: durability
// profile "fast", file storage, one replica). Nothing is timed in tests.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/testenv"
)

// benchReport reports a measured run and its baseline: throughput in unit,
// p50/p99 latency, and x_baseline = measured throughput / baseline throughput.
func benchReport(b *testing.B, unit string, got, base benchkit.Run) {
	b.ReportMetric(got.NsPerOp(), "ns/op")
	b.ReportMetric(got.PerSec(), unit)
	b.ReportMetric(got.Pct(0.50), "p50_us")
	b.ReportMetric(got.Pct(0.99), "p99_us")
	b.ReportMetric(base.PerSec(), "base_"+unit)
	b.ReportMetric(base.Pct(0.50), "base_p50_us")
	b.ReportMetric(base.Pct(0.99), "base_p99_us")
	b.ReportMetric(got.PerSec()/base.PerSec(), "x_baseline")
}

// benchOpen opens a Store on a fresh embedded server and returns it with a
// JetStream context on the same in-process connection.
func benchOpen(b *testing.B, cfg eventstore.Config, jsOpts ...jetstream.JetStreamOpt) (*eventstore.Store, jetstream.JetStream) {
	b.Helper()
	srv := testenv.Start(b, "")
	nc, err := srv.Server.Connect()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jsOpts...)
	if err != nil {
		b.Fatal(err)
	}
	s, err := eventstore.Open(context.Background(), js, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return s, js
}

// benchStream creates a scratch stream with the event stream's settings
// (file storage, one replica, deny delete/purge, direct gets) under another
// name and subject prefix. atomic turns AllowAtomicPublish on.
func benchStream(b *testing.B, js jetstream.JetStream, name, prefix string, atomic bool) jetstream.Stream {
	b.Helper()
	cfg := eventstore.Config{Stream: name, SubjectPrefix: prefix}.StreamConfig()
	cfg.AllowAtomicPublish = atomic
	st, err := js.CreateStream(context.Background(), cfg)
	if err != nil {
		b.Fatalf("create stream %s: %v", name, err)
	}
	return st
}

// benchOrderID is a UUIDv7-shaped ID, unique per i.
func benchOrderID(i int) string {
	return fmt.Sprintf("0196a1b2-c3d4-7e5f-8%03x-%012x", i%4096, i)
}

// benchSubmitted is an order.submitted-like payload of about 300 bytes.
func benchSubmitted(orderID string, i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"order_id":%q,"buyer_id":"u-%08d","buyer_name":"김민수","amount":{"amount":39000,"currency":"KRW"},`+
		`"depositor_name":"김민수%03d","collect_account":{"bank":"KB국민은행","number":"123401-04-567890","holder":"(주)뱅크북"},`+
		`"cancel_window_s":300,"submitted_at":"2026-05-06T10:11:12.123456Z"}`, orderID, i, i%1000))
}

// benchEnvelope is an event as the command layer hands it to Append.
func benchEnvelope(typ, orderID string, i int) eventstore.Envelope {
	return eventstore.Envelope{
		EventID:       fmt.Sprintf("0196a1b2-c3d4-7e5f-9%03x-%012x", i%4096, i),
		EventType:     typ,
		SchemaVersion: 1,
		OccurredAt:    time.Date(2026, 5, 6, 10, 11, 12, 123456000, time.UTC),
		Command:       "bankbook.cmd.order.submit",
		CorrelationID: fmt.Sprintf("0196a1b2-c3d4-7e5f-a%03x-%012x", i%4096, i),
		Data:          benchSubmitted(orderID, i),
	}
}

// benchCommitBody is the body Append stores for events on order id after
// prevVersion events (the same encoding: a Commit as JSON).
func benchCommitBody(b *testing.B, id, commitID string, prev eventstore.Seq, prevVersion int, events ...eventstore.Envelope) []byte {
	c := eventstore.Commit{Format: 1, CommitID: commitID, AggregateType: "order", AggregateID: id, PrevSeq: prev, Events: events}
	for i := range c.Events {
		c.Events[i].AggregateType, c.Events[i].AggregateID = "order", id
		c.Events[i].Version = prevVersion + i + 1
		c.Events[i].RecordedAt = c.Events[i].OccurredAt
	}
	body, err := json.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

var benchConcurrency = []int{1, 64}

// BenchmarkAppend appends a one-event commit (an order.submitted of about
// 300 bytes) to a fresh aggregate, beside a raw js.PublishMsg of the same
// commit bytes to a fresh subject of another stream with the same settings.
func BenchmarkAppend(b *testing.B) {
	for _, workers := range benchConcurrency {
		b.Run("c="+strconv.Itoa(workers), func(b *testing.B) {
			s, js := benchOpen(b, eventstore.Config{})
			benchStream(b, js, "RAW", "raw", false)
			ctx := context.Background()
			template := benchEnvelope("order.submitted", benchOrderID(0), 0)
			body := benchCommitBody(b, benchOrderID(0), benchOrderID(0), 0, 0, template)

			got, err := benchkit.Drive(workers, b.Loop, func(_, i int) error {
				id := benchOrderID(i)
				_, err := s.Append(ctx, eventstore.Ref{Type: "order", ID: id}, 0, 0, id, []eventstore.Envelope{template})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			base, err := benchkit.Drive(workers, benchkit.Count(got.N), func(_, i int) error {
				_, err := js.PublishMsg(ctx, &nats.Msg{Subject: "raw.order." + benchOrderID(i), Data: body})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			benchReport(b, "ops/s", got, base)
			b.ReportMetric(float64(len(body)), "commit_bytes")
		})
	}
}

// BenchmarkCommit compares the two ways to make a 3-event command atomic on a
// file-storage, single-replica stream: one message carrying all three events
// (Store.Append), and a JetStream atomic batch of three messages (orbit
// jetstreamext.PublishMsgBatch) with the aggregate expectation and the
// Nats-Msg-Id on message 1. The baseline is the batch; x_baseline is
// one-message commits/s over batch commits/s.
func BenchmarkCommit(b *testing.B) {
	for _, workers := range []int{1, 16} {
		b.Run("c="+strconv.Itoa(workers), func(b *testing.B) {
			s, js := benchOpen(b, eventstore.Config{})
			benchStream(b, js, "BATCH", "batch", true)
			ctx := context.Background()
			events := func(id string, i int) []eventstore.Envelope {
				return []eventstore.Envelope{
					benchEnvelope("order.submitted", id, 3*i),
					benchEnvelope("deposit.matched", id, 3*i+1),
					benchEnvelope("order.paid", id, 3*i+2),
				}
			}
			// The same three events, each encoded as it would be stored alone.
			var batchBytes, oneBytes int
			batch := func(id string, i int) []*nats.Msg {
				msgs := make([]*nats.Msg, 3)
				for k, e := range events(id, i) {
					e.AggregateType, e.AggregateID, e.Version, e.RecordedAt = "order", id, k+1, e.OccurredAt
					data, _ := json.Marshal(e)
					msgs[k] = nats.NewMsg("batch.order." + id)
					msgs[k].Data = data
				}
				msgs[0].Header.Set(jetstream.MsgIDHeader, id)
				msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
				return msgs
			}
			for _, m := range batch(benchOrderID(0), 0) {
				batchBytes += len(m.Data)
			}
			oneBytes = len(benchCommitBody(b, benchOrderID(0), benchOrderID(0), 0, 0, events(benchOrderID(0), 0)...))

			got, err := benchkit.Drive(workers, b.Loop, func(_, i int) error {
				id := benchOrderID(i)
				_, err := s.Append(ctx, eventstore.Ref{Type: "order", ID: id}, 0, 0, id, events(id, i))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			base, err := benchkit.Drive(workers, benchkit.Count(got.N), func(_, i int) error {
				ack, err := jetstreamext.PublishMsgBatch(ctx, js, batch(benchOrderID(i), i))
				if err == nil && ack.BatchSize != 3 {
					err = fmt.Errorf("batch ack %+v", ack)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			benchReport(b, "commits/s", got, base)
			b.ReportMetric(float64(oneBytes), "commit_bytes")
			b.ReportMetric(float64(batchBytes), "batch_bytes")
		})
	}
}

// loadAggregates is how many order-like aggregates BenchmarkLoad loads. Each
// has 3 commits spread evenly over the whole stream.
const loadAggregates = 300

// loadNsAt10k, getNsAt10k and cachedNsAt10k are the last figures measured at 10k
// events, for the 1M case's ratios.
var loadNsAt10k, getNsAt10k, cachedNsAt10k float64

// BenchmarkLoad measures Store.Load of an order-like aggregate (3 commits,
// spread over the stream) when the stream holds 10k and 1M events, beside one
// raw direct get (GetLastMsgForSubject) of the same aggregate's subject.
// x_get is ns/load over ns/get; at 1M, x_10k is ns/load at 1M over ns/load at
// 10k measured in the same process (target: at most 1.5), get_x_10k the same
// for the direct get. The 1M case (about 900 MB of stream, a prefill of about
// 12 s on 2 vCPUs) is skipped with -short.
func BenchmarkLoad(b *testing.B) {
	for _, size := range []struct {
		name   string
		events int
	}{{"events=10k", 10_000}, {"events=1M", 1_000_000}} {
		b.Run(size.name, func(b *testing.B) {
			if size.events > 100_000 && testing.Short() {
				b.Skip("1M-event prefill skipped with -short")
			}
			benchLoad(b, size.events)
		})
	}
}

func benchLoad(b *testing.B, events int) {
	var asyncErrs atomic.Int64
	s, js := benchOpen(b, eventstore.Config{},
		jetstream.WithPublishAsyncMaxPending(4000),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { asyncErrs.Add(1) }))
	ctx := context.Background()
	subjectPrefix := s.Config().SubjectPrefix + ".order."

	// Stream position (0-based; sequence = position+1, as this is the only
	// writer and publishes in order on one connection) of commit c of
	// measured aggregate j: the 3*loadAggregates commits are evenly spaced,
	// so an aggregate's three commits are a third of the stream apart.
	measured := make(map[int][2]int, 3*loadAggregates) // position -> {j, c}
	pos := func(j, c int) int { return (c*loadAggregates + j) * events / (3 * loadAggregates) }
	for j := range loadAggregates {
		for c := range 3 {
			measured[pos(j, c)] = [2]int{j, c}
		}
	}
	measuredID := func(j int) string { return fmt.Sprintf("m-%06d", j) }

	start := time.Now()
	for p := range events {
		var subj string
		var body []byte
		if jc, ok := measured[p]; ok {
			j, c := jc[0], jc[1]
			var prev eventstore.Seq
			if c > 0 {
				prev = eventstore.Seq(pos(j, c-1) + 1)
			}
			e := benchEnvelope([]string{"order.submitted", "deposit.matched", "order.paid"}[c], measuredID(j), p)
			body = benchCommitBody(b, measuredID(j), fmt.Sprintf("%s-%d", measuredID(j), c), prev, c, e)
			subj = subjectPrefix + measuredID(j)
		} else {
			// Filler: other orders, three consecutive commits each.
			id := benchOrderID(p / 3)
			body = benchCommitBody(b, id, fmt.Sprintf("f-%d", p), 0, 0, benchEnvelope("order.submitted", id, p))
			subj = subjectPrefix + id
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: body}, jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatalf("prefill publish %d: %v", p, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("prefill: acks did not arrive")
	}
	if n := asyncErrs.Load(); n > 0 {
		b.Fatalf("prefill: %d publishes failed", n)
	}
	stream, err := js.Stream(ctx, s.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.State.LastSeq != uint64(events) {
		b.Fatalf("prefill: last seq %d, want %d", info.State.LastSeq, events)
	}
	b.Logf("prefill: %d events, %d subjects, %d MB in %v", info.State.Msgs, info.State.NumSubjects, info.State.Bytes>>20, time.Since(start).Round(time.Millisecond))

	// First pass: check every chain, and time it (the blocks of the older
	// commits may not be in the server's block cache yet).
	load := func(i int) error {
		j := i % loadAggregates
		commits, err := s.Load(ctx, eventstore.Ref{Type: "order", ID: measuredID(j)}, 0)
		if err != nil {
			return err
		}
		if len(commits) != 3 || commits[2].CommitID != measuredID(j)+"-2" || commits[0].PrevSeq != 0 {
			return errors.New("wrong chain loaded for " + measuredID(j))
		}
		return nil
	}
	first, err := benchkit.Drive(1, benchkit.Count(loadAggregates), func(_, i int) error { return load(i) })
	if err != nil {
		b.Fatal(err)
	}

	got, err := benchkit.Drive(1, b.Loop, func(_, i int) error { return load(i) })
	if err != nil {
		b.Fatal(err)
	}
	base, err := benchkit.Drive(1, benchkit.Count(got.N), func(_, i int) error {
		_, err := stream.GetLastMsgForSubject(ctx, subjectPrefix+measuredID(i%loadAggregates))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	// Catch-up load, as the command layer's aggregate cache does it: only the
	// commits after the cached state's sequence (here: none new).
	lastSeq := func(j int) eventstore.Seq { return eventstore.Seq(pos(j, 2) + 1) }
	cached, err := benchkit.Drive(1, benchkit.Count(got.N), func(_, i int) error {
		j := i % loadAggregates
		commits, err := s.Load(ctx, eventstore.Ref{Type: "order", ID: measuredID(j)}, lastSeq(j))
		if err == nil && len(commits) != 0 {
			err = errors.New("catch-up from the last commit returned commits")
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	cachedNs := float64(cached.Elapsed.Nanoseconds()) / float64(cached.N)
	b.ReportMetric(cachedNs, "cached_ns/load")
	b.ReportMetric(cached.Pct(0.50), "cached_p50_us")
	b.ReportMetric(cached.Pct(0.99), "cached_p99_us")

	loadNs := float64(got.Elapsed.Nanoseconds()) / float64(got.N)
	getNs := float64(base.Elapsed.Nanoseconds()) / float64(base.N)
	b.ReportMetric(loadNs, "ns/op")
	b.ReportMetric(loadNs, "ns/load")
	b.ReportMetric(got.Pct(0.50), "p50_us")
	b.ReportMetric(got.Pct(0.99), "p99_us")
	b.ReportMetric(got.Pct(1), "max_us")
	b.ReportMetric(getNs, "base_ns/get")
	b.ReportMetric(base.Pct(0.50), "base_p50_us")
	b.ReportMetric(base.Pct(0.99), "base_p99_us")
	b.ReportMetric(loadNs/getNs, "x_get")
	b.ReportMetric(float64(first.Elapsed.Microseconds())/float64(first.N), "first_pass_us")
	switch {
	case events == 10_000:
		loadNsAt10k, getNsAt10k, cachedNsAt10k = loadNs, getNs, cachedNs
	case loadNsAt10k > 0:
		b.ReportMetric(loadNs/loadNsAt10k, "x_10k")
		b.ReportMetric(getNs/getNsAt10k, "get_x_10k")
		b.ReportMetric(cachedNs/cachedNsAt10k, "cached_x_10k")
	}
}

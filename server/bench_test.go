package server_test

// BenchmarkSubmit of docs/performance.md:
//
//	go test -run '^$' -bench Submit -benchtime 2000x ./server/
//
// A real engine (engine.Start: embedded nats-server, bbolt read models and
// projection runner, in a temp dir) listening on 127.0.0.1:0, driven over TCP
// by 1 or 64 clients, each on its own connection. The baseline, in the same
// run and at the same concurrency, is a synchronous JetStream publish of a
// message the size of the submit's commit, over TCP to the same server, to a
// scratch stream with the event stream's settings. Nothing is timed in tests.

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/benchkit"
	"github.com/bankbook/bankbook/internal/testenv"
)

const benchSubmitSubject = "bankbook.cmd.order.submit"

// benchBuyer is a buyer name whose first 7 characters (what a depositor name
// keeps before its 3-digit suffix) differ for every i, so no two orders of a
// run compete for a depositor name.
func benchBuyer(i int) string {
	s := strconv.FormatInt(int64(i), 36)
	return "b" + strings.Repeat("0", max(0, 6-len(s))) + s
}

// BenchmarkSubmit submits orders (bankbook.cmd.order.submit, no idempotency
// key) under the "safe" (fsync every write; the engine default) and "fast"
// durability profiles. x_baseline is submits/s over raw publishes/s.
func BenchmarkSubmit(b *testing.B) {
	for _, profile := range []string{"safe", "fast"} {
		for _, clients := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", profile, clients), func(b *testing.B) {
				benchSubmit(b, profile, clients)
			})
		}
	}
}

func benchSubmit(b *testing.B, profile string, clients int) {
	e := startEngine(b, func(c *engine.Config) { c.Durability = profile })
	ctx := context.Background()

	// One TCP connection per client, for the engine and for the baseline.
	conns := make([]*client.Client, clients)
	pubs := make([]jetstream.JetStream, clients)
	for w := range clients {
		// Clients are the app; the baseline publishes to JetStream itself,
		// which only the engine identity may.
		nc := dial(b, e.ClientURL(), e.SeedFile(auth.App), fmt.Sprintf("bench-client-%d", w))
		conns[w] = client.New(nc)
		var err error
		if pubs[w], err = jetstream.New(dial(b, e.ClientURL(), e.SeedFile(auth.Engine), fmt.Sprintf("bench-baseline-%d", w))); err != nil {
			b.Fatal(err)
		}
	}
	js, err := jetstream.New(e.engineConn(b))
	if err != nil {
		b.Fatal(err)
	}
	scratchCfg := eventstore.Config{Stream: "BENCH_SCRATCH", SubjectPrefix: "scratch"}.StreamConfig()
	if _, err := js.CreateStream(ctx, scratchCfg); err != nil {
		b.Fatal(err)
	}

	var next atomic.Int64 // operation numbers, unique across warm-up and runs
	submit := func(w int) (api.SubmitOrderReply, error) {
		i := int(next.Add(1))
		req := map[string]any{"buyer_id": "u-" + strconv.Itoa(i), "buyer_name": benchBuyer(i), "amount": 39000}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var rep api.SubmitOrderReply
		_, err := conns[w].Call(cctx, benchSubmitSubject, req, &rep, nil)
		if err == nil && rep.DepositorName == "" {
			err = fmt.Errorf("reply without a depositor name: %+v", rep)
		}
		return rep, err
	}

	// Warm up every connection, and size the baseline message after the
	// commit a submit stores.
	var orderID string
	for w := range clients {
		testenv.CheckFor(b, 5*time.Second, func() error {
			rep, err := submit(w)
			if err != nil {
				return fmt.Errorf("warm-up submit: %w", err)
			}
			orderID = rep.OrderID
			return nil
		})
	}
	events, err := js.Stream(ctx, e.Events.Config().Stream)
	if err != nil {
		b.Fatal(err)
	}
	stored, err := events.GetLastMsgForSubject(ctx, e.Events.Subject(eventstore.Ref{Type: domain.AggregateOrder, ID: orderID}))
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, len(stored.Data))
	copy(body, stored.Data)
	raw := func(w, i int) error {
		_, err := pubs[w].PublishMsg(ctx, &nats.Msg{Subject: fmt.Sprintf("scratch.order.%d", i), Data: body})
		return err
	}
	for w := range clients {
		if err := raw(w, -1-w); err != nil {
			b.Fatalf("warm-up publish: %v", err)
		}
	}

	got, err := benchkit.Drive(clients, b.Loop, func(w, _ int) error {
		_, err := submit(w)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	base, err := benchkit.Drive(clients, func() bool { n++; return n <= got.N }, raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(got.NsPerOp(), "ns/op")
	b.ReportMetric(got.PerSec(), "ops/s")
	b.ReportMetric(got.Pct(0.50), "p50_us")
	b.ReportMetric(got.Pct(0.99), "p99_us")
	b.ReportMetric(base.PerSec(), "base_ops/s")
	b.ReportMetric(base.Pct(0.50), "base_p50_us")
	b.ReportMetric(base.Pct(0.99), "base_p99_us")
	b.ReportMetric(got.PerSec()/base.PerSec(), "x_baseline")
	b.ReportMetric(float64(len(body)), "msg_bytes")
}

// dial opens a TCP connection with the seed file's identity, closed when
// the benchmark ends.
func dial(b *testing.B, url, seed, name string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url, nats.Name(name), testenv.NKey(b, seed))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

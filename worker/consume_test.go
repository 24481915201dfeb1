package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/worker"
)

// TestConsumeAsksForShortHeartbeats reads Consume's pull requests off the
// wire. The heartbeat is how the client gets out of a stall of its own:
// nats.go 1.55 skips the pull it owes when the last message it asked for
// arrives while it is still sending another pull, and then asks for nothing
// until two heartbeats are missed. With the client's default (half the
// expiry: 15 s) a reactor pulling two messages at a time stood still for
// 30 s in most runs of 40,000 messages; with DefaultHeartbeat, about 4 s.
func TestConsumeAsksForShortHeartbeats(t *testing.T) {
	nc, cons := workConsumer(t, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		opts   worker.ConsumeOptions
		expiry time.Duration
		hb     time.Duration
	}{
		{"defaults", worker.ConsumeOptions{}, 30 * time.Second, worker.DefaultHeartbeat},
		{"short expiry", worker.ConsumeOptions{Expiry: 3 * time.Second}, 3 * time.Second, 1500 * time.Millisecond},
		{"given", worker.ConsumeOptions{Expiry: 10 * time.Second, Heartbeat: time.Second}, 10 * time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, err := nc.SubscribeSync("$JS.API.CONSUMER.MSG.NEXT.WORK.c")
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = reqs.Unsubscribe() }()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			sub, err := worker.Consume(cons, func(m jetstream.Msg) { _ = m.Ack() }, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop(ctx)
			m, err := reqs.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var req struct {
				Expires   time.Duration `json:"expires"`
				Heartbeat time.Duration `json:"idle_heartbeat"`
			}
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Fatal(err)
			}
			if req.Expires != tc.expiry || req.Heartbeat != tc.hb {
				t.Fatalf("pull request asks for expiry %v and heartbeat %v, want %v and %v (%s)", req.Expires, req.Heartbeat, tc.expiry, tc.hb, m.Data)
			}
		})
	}
}

// TestConsumeReportsOnlyRepeatedMisses makes the server drop every pull
// request Consume sends (a consumer that lets one request wait, and another
// client's request waiting), so that no heartbeat ever comes. The first
// misses are logged at info; the ReportMisses-th is logged at warn and
// reaches OnHealth, and the next ones are logged at info again.
func TestConsumeReportsOnlyRepeatedMisses(t *testing.T) {
	nc, cons := workConsumer(t, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxWaiting: 1})
	ctx := context.Background()
	// Another client's request takes the one place, for a minute.
	other, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.WORK.c", other.Subject, []byte(`{"batch":1,"expires":60000000000}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	logs := &testenv.SyncBuffer{}
	var (
		mu     sync.Mutex
		events []string // "info" and "warn" from the log, "report" from OnHealth
	)
	health := func(err error) {
		if err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			t.Errorf("OnHealth(%v), want only missed heartbeats", err)
		}
		events = append(events, "report")
	}
	log := zerolog.New(writerFunc(func(p []byte) (int, error) {
		if line := string(p); strings.Contains(line, "missed heartbeats: pulled again") {
			level := "info"
			if strings.Contains(line, `"level":"warn"`) {
				level = "warn"
			}
			mu.Lock()
			events = append(events, level)
			mu.Unlock()
		}
		return logs.Write(p)
	}))
	sub, err := worker.Consume(cons, func(m jetstream.Msg) { _ = m.Ack() },
		worker.ConsumeOptions{Expiry: time.Second, Heartbeat: 500 * time.Millisecond, OnHealth: health, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		got := strings.Join(events, " ")
		mu.Unlock()
		if n >= worker.ReportMisses+3 {
			want := strings.Repeat("info ", worker.ReportMisses-1) + "warn report info info"
			if got != want {
				t.Fatalf("events %q, want %q; log:\n%s", got, want, logs.String())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q after 30 s; log:\n%s", got, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workConsumer returns a connection to a new env's server and the
// consumer cfg on its work stream.
func workConsumer(t *testing.T, cfg jetstream.ConsumerConfig) (*nats.Conn, jetstream.Consumer) {
	t.Helper()
	e := newEnv(t)
	cons, err := e.stream.CreateOrUpdateConsumer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e.js.Conn(), cons
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestLoopPullsAtLeastMinPrefetch reads a Loop's first pull request off
// the wire: nats.go stalls more often the fewer messages it asks for at a
// time (worker.MinPrefetch), so a part pulls at least that many by default.
func TestLoopPullsAtLeastMinPrefetch(t *testing.T) {
	e := newEnv(t)
	nc := e.js.Conn()
	for _, tc := range []struct {
		name                  string
		concurrency, prefetch int
		batch                 int
	}{
		{"one at a time", 1, 0, worker.MinPrefetch},
		{"many at a time", worker.MinPrefetch, 0, 2 * worker.MinPrefetch},
		{"given", 1, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			reqs, err := nc.SubscribeSync("$JS.API.CONSUMER.MSG.NEXT.WORK." + name)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = reqs.Unsubscribe() }()
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			e.run(e.loop(name, func(context.Context, worker.Msg) error { return nil },
				worker.Config{Concurrency: tc.concurrency, Prefetch: tc.prefetch}))
			m, err := reqs.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var req struct {
				Batch int `json:"batch"`
			}
			if err := json.Unmarshal(m.Data, &req); err != nil {
				t.Fatal(err)
			}
			if req.Batch != tc.batch {
				t.Fatalf("the loop pulls %d messages at a time, want %d (%s)", req.Batch, tc.batch, m.Data)
			}
		})
	}
}

// TestConsumeReportsAPausedConsumer pauses the consumer behind a running
// Consume (a privileged client can: $JS.API.CONSUMER.PAUSE). The server
// goes on sending heartbeats to the pulls of a paused consumer, so no miss
// is ever counted, yet nothing is delivered: a part (the projection runner,
// a reactor) would stand still while /readyz shows it running and ready.
// OnHealth must say so, and clear once the consumer is resumed.
func TestConsumeReportsAPausedConsumer(t *testing.T) {
	nc, cons := workConsumer(t, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PauseConsumer(ctx, "WORK", "c", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		reports []error
	)
	got := make(chan struct{}, 1)
	sub, err := worker.Consume(cons, func(m jetstream.Msg) {
		_ = m.Ack()
		select {
		case got <- struct{}{}:
		default:
		}
	}, worker.ConsumeOptions{OnHealth: func(err error) {
		mu.Lock()
		reports = append(reports, err)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	if _, err := js.Publish(ctx, "work.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	last := func() (n int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(reports) == 0 {
			return 0, nil
		}
		return len(reports), reports[len(reports)-1]
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n, err := last(); n > 0 && err != nil {
			if !strings.Contains(err.Error(), "paused") {
				t.Fatalf("OnHealth(%v), want the pause named", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer paused with a message waiting: no report through OnHealth after 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := js.ResumeConsumer(ctx, "WORK", "c"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(15 * time.Second):
		t.Fatal("no delivery after the consumer was resumed")
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		if _, err := last(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			_, err := last()
			t.Fatalf("still reported after the consumer was resumed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

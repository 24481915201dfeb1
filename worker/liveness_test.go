package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/worker"
)

// failingWith waits until part name of sup is failing with an error that
// holds want.
func failingWith(t *testing.T, sup *supervisor.Supervisor, name, want string) {
	t.Helper()
	testenv.CheckFor(t, 30*time.Second, func() error {
		st, _ := sup.Status(name)
		if st.OK() || !strings.Contains(fmt.Sprint(st.LastError), want) {
			return fmt.Errorf("status %+v, want failing with %q", st, want)
		}
		return nil
	})
}

// TestRefusedPullsRestartThePart: the consumer's configuration was changed
// behind the part's back so that the server refuses every pull it makes
// (MaxRequestBatch below its prefetch). The consumer exists, so the part
// used to look healthy while it received nothing; the refusal now ends the
// run, and the next run puts the configuration back.
func TestRefusedPullsRestartThePart(t *testing.T) {
	e := newEnv(t)
	var c calls
	var runs atomic.Int32
	l := e.loop("refused", func(_ context.Context, m worker.Msg) error { c.add(m); return nil },
		worker.Config{Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			cfg := jetstream.ConsumerConfig{Durable: "refused", AckPolicy: jetstream.AckExplicitPolicy}
			if runs.Add(1) == 1 {
				cfg.MaxRequestBatch = 1 // as an operator's edit left it
			}
			return e.stream.CreateOrUpdateConsumer(ctx, cfg)
		}})
	sup := supervise(t, l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 30*time.Second, "x handled once the part restarted", func() bool { return c.count("x") == 1 })
	if st, _ := sup.Status("refused"); st.Restarts < 1 {
		t.Errorf("status %+v: handled without a restart", st)
	}
}

// TestAStuckHandlerIsReported: a handler that ignores its context keeps
// its message in progress past HandlerTimeout, and with it the part; the
// part says so until the handler returns.
func TestAStuckHandlerIsReported(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var c calls
	l := e.loop("stuck", func(_ context.Context, m worker.Msg) error {
		if c.add(m) == 1 {
			<-release // ignores its context
		}
		return nil
	}, worker.Config{HandlerTimeout: time.Second, Consumer: e.consumer("stuck", 2*time.Second)})
	sup := supervise(t, l)
	e.publish("work.x", "x")
	failingWith(t, sup, "stuck", "past its timeout")
	close(release)
	testenv.Eventually(t, 30*time.Second, "the part running again once the handler returned", func() bool {
		st, _ := sup.Status("stuck")
		return st.OK()
	})
}

// TestWaitsHoldingEveryAckSlotAreReported: messages told to wait hold the
// consumer's ack-pending slots; once all are held the server delivers
// nothing new, and the part says so.
func TestWaitsHoldingEveryAckSlotAreReported(t *testing.T) {
	e := newEnv(t)
	var c calls
	l := e.loop("waits", func(_ context.Context, m worker.Msg) error {
		c.add(m)
		if string(m.Data) == "wait" {
			return worker.RetryAfter(time.Hour, nil)
		}
		return nil
	}, worker.Config{Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
		return e.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "waits", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 3 * time.Second, MaxAckPending: 3})
	}})
	sup := supervise(t, l)
	for range 3 {
		e.publish("work.w", "wait")
	}
	testenv.Eventually(t, 10*time.Second, "the waits handled", func() bool { return c.count("wait") == 3 })
	e.publish("work.n", "new")
	failingWith(t, sup, "waits", "ack-pending slots are held")
	if n := c.count("new"); n != 0 {
		t.Fatalf("the new message was handled %d times: the slots were not all held", n)
	}
}

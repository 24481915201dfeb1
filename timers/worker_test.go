package timers_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/worker"
)

func TestFailingTimerIsDeadLetteredAndRedriven(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := timers.Open(ctx, js, timers.Config{Log: zerolog.Nop(), Dead: dead, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	broken.Store(true)
	rec := &recorder{}
	h := rec.handler(nil)
	loop, err := tm.Worker(ctx, func(ctx context.Context, d timers.Due) (time.Duration, error) {
		_, _ = h(ctx, d)
		if d.Delivered <= 3 {
			return 20 * time.Millisecond, nil // waits are no failures
		}
		if broken.Load() {
			return 0, errors.New("watermark store away")
		}
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, loop.Run)
	if err := tm.Arm(ctx, "order", "o1", time.Now(), []byte("p")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "dead-lettered", func() bool { return loop.Stats().DeadLettered == 1 })
	letters, _, err := dead.List(ctx, worker.ListOptions{Part: "timers"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
	dl := letters[0]
	if dl.Attempts != 2 || dl.Delivered != 5 || dl.Subject != "bankbook.timer.due.order.o1" || !strings.Contains(dl.Error, "timer order/o1: watermark store away") {
		t.Fatalf("dead letter %+v", dl)
	}
	broken.Store(false)
	if err := loop.Redrive(ctx, dl.ID); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	all := rec.all()
	if last := all[len(all)-1].d; last.ID != "o1" || string(last.Payload) != "p" || last.Delivered != 6 {
		t.Fatalf("redriven firing %+v", last)
	}
	if n, _ := dead.Count(ctx); n["timers"] != 0 {
		t.Fatalf("count after redrive %v", n)
	}
}

func TestWorkerRunReturnsWhenItsConsumerIsDeleted(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	tm := open(t, srv)
	ctx := context.Background()
	rec := &recorder{}
	loop, err := tm.Worker(ctx, rec.handler(nil))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- loop.Run(ctx) }()
	if err := tm.Arm(ctx, "order", "o1", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "fired", func() bool { return len(rec.all()) == 1 })
	stream, err := js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctx, "timers"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, worker.ErrConsumerGone) {
			t.Fatalf("Run returned %v, want ErrConsumerGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still blocked 10s after its consumer was deleted")
	}
}

func TestArmedCountsSchedulesNotYetDue(t *testing.T) {
	srv := testenv.Start(t, "")
	tm := open(t, srv)
	ctx := context.Background()
	armed := func(want uint64) func() bool {
		return func() bool {
			n, err := tm.Armed(ctx)
			return err == nil && n == want
		}
	}
	testenv.Eventually(t, 10*time.Second, "nothing armed", armed(0))
	for _, id := range []string{"later1", "later2"} {
		if err := tm.Arm(ctx, "order", id, time.Now().Add(time.Hour), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tm.Arm(ctx, "order", "soon", time.Now().Add(3*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	// Re-arming replaces: still one schedule for later1.
	if err := tm.Arm(ctx, "order", "later1", time.Now().Add(2*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "three armed", armed(3))
	testenv.Eventually(t, 10*time.Second, "the soon timer no longer armed", armed(2))
	// A disarmed timer is no longer counted, and never falls due;
	// disarming one that is not armed does nothing.
	if err := tm.Disarm(ctx, "order", "later2"); err != nil {
		t.Fatal(err)
	}
	if err := tm.Disarm(ctx, "order", "never-armed"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "later2 disarmed", armed(1))
	if err := tm.Arm(ctx, "order", "later2", time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "later2 armed again", armed(2))
	// Another instance (its own Timers) counts the same.
	other := open(t, srv)
	if n, err := other.Armed(ctx); err != nil || n != 2 {
		t.Fatalf("another instance counts %d, %v; want 2", n, err)
	}
	// The counting consumer, deleted, is created again.
	_, js := srv.Connect(t)
	stream, err := js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteConsumer(ctx, "timers-armed"); err != nil {
		t.Fatal(err)
	}
	if n, err := tm.Armed(ctx); err != nil || n != 2 {
		t.Fatalf("after the counting consumer was deleted: %d, %v; want 2", n, err)
	}
}

package worker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/worker"
)

// A redrive holds its dead letter while the handler runs: another holder
// (an operator deciding about the same work, on any instance: here a second
// DeadLetters over the same stream, whose clock is a minute ahead) is
// refused meanwhile, and takes it once the redrive has ended, learning when
// it ended by the server's clock; a second redrive is refused while the
// decision holds it, and runs once that is released.
func TestRedriveHoldsTheDeadLetterWhileItsHandlerRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inHandler, proceed := make(chan struct{}), make(chan struct{})
	var redriving bool
	l := e.loop("payouts", func(context.Context, worker.Msg) error {
		if !redriving {
			return worker.Permanent(errors.New("provider refuses"))
		}
		inHandler <- struct{}{}
		<-proceed
		return errors.New("still refused") // the dead letter stays
	}, worker.Config{HandlerTimeout: time.Minute})
	e.run(l)
	e.publish("work.pay", "p-1")
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	letters, _, err := e.dead.List(ctx, worker.ListOptions{Part: "payouts"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters: %+v %v", letters, err)
	}
	dl := letters[0]
	other, err := worker.OpenDeadLetters(ctx, e.js, worker.DeadConfig{Now: func() time.Time { return time.Now().Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := other.LastRedrive(ctx, dl); err != nil || !ended.IsZero() {
		t.Fatalf("before any redrive: ended %v, %v", ended, err)
	}

	redriving = true
	redriven := make(chan error, 1)
	go func() { redriven <- l.Redrive(ctx, dl.ID) }()
	<-inHandler
	var le *worker.LeasedError
	if _, err := other.Lease(ctx, dl, "payout.resolve", 30*time.Second); !errors.Is(err, worker.ErrLeased) || !errors.As(err, &le) || le.Lease.Holder != worker.HolderRedrive {
		t.Fatalf("a lease while the redrive's handler runs: %v, want ErrLeased by the redrive", err)
	}
	if ended, err := other.LastRedrive(ctx, dl); err != nil || time.Until(ended) < 30*time.Second {
		t.Fatalf("while the redrive runs its end is its lease's: %v (%v from now), %v", ended, time.Until(ended), err)
	}
	close(proceed)
	if err := <-redriven; err == nil {
		t.Fatal("the redrive succeeded")
	}
	endedAt := time.Now()
	lease, err := other.Lease(ctx, dl, "payout.resolve", 30*time.Second)
	if err != nil {
		t.Fatalf("a lease once the redrive ended: %v", err)
	}
	if ended, err := other.LastRedrive(ctx, dl); err != nil || ended.After(endedAt) || endedAt.Sub(ended) > 5*time.Second {
		t.Fatalf("last redrive %v (%v), want its end (about %v)", ended, err, endedAt)
	}
	// The record is kept far longer than a day, and the stream keeps it as
	// long: an operator resolving a permanent dead letter weeks later must
	// know that a redrive may have run its work (a payout sent).
	leases, err := e.js.Stream(ctx, "BANKBOOK_DEAD_LEASES")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := leases.GetLastMsgForSubject(ctx, fmt.Sprintf("bankbook.deadlease.payouts.redrive.%d", dl.ID))
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := time.ParseDuration(rec.Header.Get("Nats-TTL"))
	if err != nil || ttl < 90*24*time.Hour || leases.CachedInfo().Config.MaxAge < ttl {
		t.Fatalf("the redrive record's TTL %q (%v), the stream's age %v: want at least 90 days, kept as long", rec.Header.Get("Nats-TTL"), err, leases.CachedInfo().Config.MaxAge)
	}
	// While the decision holds it, a redrive is refused, and nothing runs.
	if err := l.Redrive(ctx, dl.ID); !errors.Is(err, worker.ErrLeased) {
		t.Fatalf("a redrive during the decision: %v, want ErrLeased", err)
	}
	if err := other.Release(ctx, dl, lease); err != nil {
		t.Fatal(err)
	}
	redriving = false // the handler now fails at once, not blocking
	if err := l.Redrive(ctx, dl.ID); errors.Is(err, worker.ErrLeased) || err == nil {
		t.Fatalf("a redrive after the decision: %v, want the handler's failure", err)
	}
}

// A lease ends when its time runs out by the NATS server's clock, whatever
// the clocks of the instances: one an hour behind cannot hold it longer,
// one an hour ahead cannot take it sooner.
func TestLeaseEndsByTheServersClock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dl := e.deadLetterOne()
	skewed := func(d time.Duration) *worker.DeadLetters {
		s, err := worker.OpenDeadLetters(ctx, e.js, worker.DeadConfig{Now: func() time.Time { return time.Now().Add(d) }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	behind, ahead := skewed(-time.Hour), skewed(time.Hour)
	first, err := behind.Lease(ctx, dl, "a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ahead.Lease(ctx, dl, "b", time.Second); !errors.Is(err, worker.ErrLeased) {
		t.Fatalf("a lease taken from a clock an hour ahead while another runs: %v", err)
	}
	testenv.Eventually(t, 10*time.Second, "the lease ends after its second", func() bool {
		_, err := ahead.Lease(ctx, dl, "b", time.Minute)
		return err == nil
	})
	// Releasing the lease that ran out is no error, and leaves b's alone.
	if err := behind.Release(ctx, dl, first); err != nil {
		t.Fatalf("release of a lease that ran out: %v", err)
	}
	if _, err := e.dead.Lease(ctx, dl, "c", time.Second); !errors.Is(err, worker.ErrLeased) {
		t.Fatalf("b's lease after a's late release: %v, want still held", err)
	}
}

// Two holders taking a lease at the same moment: one gets it.
func TestLeaseIsTakenOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dl := e.deadLetterOne()
	const n = 8
	got := make(chan error, n)
	for range n {
		go func() {
			d, err := worker.OpenDeadLetters(ctx, e.js, worker.DeadConfig{})
			if err == nil {
				_, err = d.Lease(ctx, dl, "x", time.Minute)
			}
			got <- err
		}()
	}
	var won int
	for range n {
		switch err := <-got; {
		case err == nil:
			won++
		case !errors.Is(err, worker.ErrLeased):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d holders got the lease, want 1", won)
	}
}

// deadLetterOne has a part give up on one message at once and returns its
// dead letter.
func (e *env) deadLetterOne() worker.DeadLetter {
	e.t.Helper()
	l := e.loop("payouts", func(context.Context, worker.Msg) error { return worker.Permanent(errors.New("no")) }, worker.Config{})
	e.run(l)
	e.publish("work.pay", "p-1")
	testenv.Eventually(e.t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	letters, _, err := e.dead.List(context.Background(), worker.ListOptions{Part: "payouts"})
	if err != nil || len(letters) != 1 {
		e.t.Fatalf("dead letters: %+v %v", letters, err)
	}
	return letters[0]
}

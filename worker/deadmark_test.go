package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/worker"
)

// TestDeadLetteredMessageDeliveredAgainIsNotHandled: an instance recorded
// a dead letter and marked its message, then died before its Term reached
// the server. The consumer delivers the message again after its AckWait;
// the loop that gets it terminates it instead of running the work outside
// the dead letter's lease, and removes the mark. A message delivered again
// with no mark is handled.
func TestDeadLetteredMessageDeliveredAgainIsNotHandled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seq := e.publish("work.pay", "poison")
	e.publish("work.pay", "retried")
	newCons := e.consumer("payouts", time.Second)
	cons, err := newCons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The instance that dies: it holds both messages, dead-letters the
	// first and marks it, and settles neither.
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++
	}
	if n != 2 {
		t.Fatalf("fetched %d messages, want 2 (%v)", n, batch.Error())
	}
	dl, err := e.dead.Record(ctx, worker.DeadLetter{Part: "payouts", Stream: "WORK", Seq: seq, Subject: "work.pay", Attempts: 20, Delivered: 20, Error: "provider refuses"})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Mark(e.dead, ctx, dl); err != nil {
		t.Fatal(err)
	}

	var c calls
	l := e.loop("payouts", func(_ context.Context, m worker.Msg) error {
		c.add(m)
		return nil
	}, worker.Config{Consumer: newCons})
	e.run(l)
	testenv.Eventually(t, 15*time.Second, "both settled", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream == seq+1
	})
	if n := c.count("poison"); n != 0 {
		t.Fatalf("the dead-lettered message was handled %d times; want it terminated (calls %s)", n, &c)
	}
	if n := c.count("retried"); n != 1 {
		t.Fatalf("the other message was handled %d times, want 1 (calls %s)", n, &c)
	}
	if _, ok, err := worker.Marked(e.dead, ctx, "payouts", "WORK", seq); ok || err != nil {
		t.Fatalf("the mark is still there (%v) after the term", err)
	}
	// The dead letter stays, for a redrive.
	if _, err := e.dead.Get(ctx, dl.ID); err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if err := l.Redrive(ctx, dl.ID); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if n := c.count("poison"); n != 1 {
		t.Fatalf("handled %d times after the redrive, want 1", n)
	}
}

// TestDeadLetteringMarksUntilTheTermIsConfirmed: a loop that dead-letters
// a message marks it, and removes the mark once the server confirmed the
// Term.
func TestDeadLetteringMarksUntilTheTermIsConfirmed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.loop("decode", func(context.Context, worker.Msg) error {
		return worker.Permanent(errors.New("not a commit"))
	}, worker.Config{})
	e.run(l)
	seq := e.publish("work.bad", "garbage")
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	leases, err := e.js.Stream(ctx, "BANKBOOK_DEAD_LEASES")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "mark written and removed", func() bool {
		info, err := leases.Info(ctx)
		if err != nil || info.State.LastSeq == 0 {
			return false
		}
		_, ok, err := worker.Marked(e.dead, ctx, "decode", "WORK", seq)
		return err == nil && !ok
	})
	info, _ := leases.Info(ctx)
	if info.State.LastSeq != 1 || info.State.Msgs != 0 {
		t.Fatalf("lease stream %+v: want one mark, removed", info.State)
	}
}

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
	var fetched []jetstream.Msg
	for m := range batch.Messages() {
		fetched = append(fetched, m)
	}
	if len(fetched) != 2 {
		t.Fatalf("fetched %d messages, want 2 (%v)", len(fetched), batch.Error())
	}
	poison := msgOf(t, fetched[0])
	dl, err := e.dead.Record(ctx, worker.DeadLetter{Part: "payouts", Stream: "WORK", Seq: seq, Subject: "work.pay", Attempts: 20, Delivered: 20, Error: "provider refuses"})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Mark(e.dead, ctx, dl, poison); err != nil {
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

// TestDeadLetteringMarks: a loop that dead-letters a message marks it; the
// mark is that message's, not another's at the same sequence (a stream
// created again).
func TestDeadLetteringMarks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.loop("decode", func(context.Context, worker.Msg) error {
		return worker.Permanent(errors.New("not a commit"))
	}, worker.Config{})
	e.run(l)
	seq := e.publish("work.bad", "garbage")
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	raw, err := e.stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	msg := worker.Msg{Stream: "WORK", Seq: seq, Subject: raw.Subject, Published: raw.Time}
	// The mark follows the dead letter's record.
	testenv.Eventually(t, 5*time.Second, "marked as the dead letter", func() bool {
		id, ok, err := worker.Marked(e.dead, ctx, "decode", msg)
		letters, _, _ := e.dead.List(ctx, worker.ListOptions{})
		return err == nil && ok && len(letters) == 1 && id == letters[0].ID
	})
	other := msg
	other.Published = msg.Published.Add(time.Millisecond)
	if _, ok, err := worker.Marked(e.dead, ctx, "decode", other); ok || err != nil {
		t.Fatalf("another message at the same sequence is marked (%v)", err)
	}
	if _, ok, err := worker.Marked(e.dead, ctx, "other-part", msg); ok || err != nil {
		t.Fatalf("marked for another part (%v)", err)
	}
}

// TestFailedLookupHandlesNothing: while the loop cannot tell whether a
// message delivered again was dead-lettered (the lease stream is gone), it
// does not handle it; once it can, it does.
func TestFailedLookupHandlesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var c calls
	l := e.loop("react", func(_ context.Context, m worker.Msg) error {
		if c.add(m) == 1 {
			return worker.RetryAfter(time.Second, nil) // delivered again in a second
		}
		return nil
	}, worker.Config{})
	if err := e.js.DeleteStream(ctx, "BANKBOOK_DEAD_LEASES"); err != nil {
		t.Fatal(err)
	}
	e.run(l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 10*time.Second, "a lookup failed", func() bool { return l.Stats().Retried >= 1 })
	if n := c.count("x"); n != 1 {
		t.Fatalf("handled %d times while lookups fail, want 1 (the first delivery)", n)
	}
	if _, err := worker.OpenDeadLetters(ctx, e.js, worker.DeadConfig{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "handled once the lookup works", func() bool { return c.count("x") == 2 })
}

// msgOf is the worker.Msg of a fetched message.
func msgOf(t *testing.T, m jetstream.Msg) worker.Msg {
	t.Helper()
	meta, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return worker.Msg{Subject: m.Subject(), Stream: meta.Stream, Seq: meta.Sequence.Stream, Published: meta.Timestamp, Delivered: meta.NumDelivered}
}

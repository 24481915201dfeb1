package worker_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/supervisor"
	"github.com/bankbook/bankbook/worker"
)

func TestHandledMessagesAreAcked(t *testing.T) {
	e := newEnv(t)
	var c calls
	l := e.loop("acks", func(_ context.Context, m worker.Msg) error { c.add(m); return nil }, worker.Config{})
	if _, err := l.Pending(context.Background()); !errors.Is(err, worker.ErrNotRunning) {
		t.Fatalf("pending before run: %v, want ErrNotRunning", err)
	}
	e.run(l)
	for _, d := range []string{"a", "b", "c"} {
		e.publish("work."+d, d)
	}
	testenv.Eventually(t, 10*time.Second, "3 processed", func() bool { return l.Stats().Processed == 3 })
	msgs, _ := c.all()
	for i, m := range msgs {
		if m.Stream != "WORK" || m.Seq != uint64(i+1) || m.Delivered != 1 || m.Attempt != 1 || m.Subject != "work."+string(m.Data) {
			t.Errorf("msg %d = %+v", i, m)
		}
	}
	pending, err := l.Pending(context.Background())
	if err != nil || pending != 0 {
		t.Fatalf("pending = %d, %v", pending, err)
	}
	cons, err := e.stream.Consumer(context.Background(), "acks")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "nothing awaiting ack", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumAckPending == 0 && info.AckFloor.Stream == 3
	})
	if logs := e.logs.String(); logs != "" {
		t.Fatalf("a healthy loop logged:\n%s", logs)
	}
}

func TestRetryAfterDelaysRedelivery(t *testing.T) {
	e := newEnv(t)
	var c calls
	const delay = 400 * time.Millisecond
	l := e.loop("later", func(_ context.Context, m worker.Msg) error {
		if c.add(m) == 1 {
			return worker.RetryAfter(delay, errors.New("provider busy"))
		}
		return nil
	}, worker.Config{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	e.run(l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 10*time.Second, "handled on retry", func() bool { return l.Stats().Processed == 1 })
	msgs, at := c.all()
	if len(msgs) != 2 {
		t.Fatalf("calls: %s", &c)
	}
	if gap := at[1].Sub(at[0]); gap < delay {
		t.Fatalf("redelivered after %v, want at least %v", gap, delay)
	}
	if msgs[1].Attempt != 2 || msgs[1].Delivered != 2 {
		t.Fatalf("second call %+v, want attempt 2, delivered 2", msgs[1])
	}
	if s := l.Stats(); s.Retried != 1 || s.DeadLettered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNotDueYetIsNoFailure(t *testing.T) {
	e := newEnv(t)
	var c calls
	l := e.loop("notdue", func(_ context.Context, m worker.Msg) error {
		if c.add(m) <= 4 {
			return worker.RetryAfter(20*time.Millisecond, nil)
		}
		return nil
	}, worker.Config{MaxAttempts: 2})
	e.run(l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 10*time.Second, "handled once due", func() bool { return l.Stats().Processed == 1 })
	msgs, _ := c.all()
	for _, m := range msgs {
		if m.Attempt != 1 {
			t.Fatalf("a deferral counted as a failure: %s", &c)
		}
	}
	if s := l.Stats(); s.Deferred != 4 || s.DeadLettered != 0 || s.Retried != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFailingMessageIsDeadLetteredListedAndRedriven(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var c calls
	var broken atomic.Bool
	broken.Store(true)
	l := e.loop("payouts", func(_ context.Context, m worker.Msg) error {
		c.add(m)
		if string(m.Data) == "poison" && broken.Load() {
			return errors.New("provider refuses")
		}
		return nil
	}, worker.Config{MaxAttempts: 3})
	e.run(l)
	seq := e.publish("work.pay", "poison")
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	if n := c.count("poison"); n != 3 {
		t.Fatalf("poison handled %d times, want 3 (MaxAttempts)", n)
	}
	// The loop moves on.
	e.publish("work.pay", "fine")
	testenv.Eventually(t, 10*time.Second, "later message handled", func() bool { return c.count("fine") == 1 })

	letters, next, err := e.dead.List(ctx, worker.ListOptions{Part: "payouts"})
	if err != nil || len(letters) != 1 || next != 0 {
		t.Fatalf("list = %+v, next %d, %v", letters, next, err)
	}
	dl := letters[0]
	if dl.Part != "payouts" || dl.Stream != "WORK" || dl.Seq != seq || dl.Subject != "work.pay" || dl.Attempts != 3 ||
		dl.Delivered != 3 || !strings.Contains(dl.Error, "provider refuses") || dl.Permanent || dl.At.IsZero() || dl.ID == 0 {
		t.Fatalf("dead letter %+v", dl)
	}
	counts, err := e.dead.Count(ctx)
	if err != nil || counts["payouts"] != 1 || len(counts) != 1 {
		t.Fatalf("count = %v, %v", counts, err)
	}
	// The consumer does not deliver it again: it was terminated.
	cons, _ := e.stream.Consumer(ctx, "payouts")
	testenv.Eventually(t, 5*time.Second, "nothing awaiting ack", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumRedelivered == 0
	})

	// Redrive while still broken: the dead letter stays.
	if err := l.Redrive(ctx, dl.ID); err == nil || !strings.Contains(err.Error(), "provider refuses") {
		t.Fatalf("redrive while broken: %v", err)
	}
	if _, err := e.dead.Get(ctx, dl.ID); err != nil {
		t.Fatalf("dead letter gone after a failed redrive: %v", err)
	}
	// Another part cannot redrive it.
	other := e.loop("other", func(context.Context, worker.Msg) error { return nil }, worker.Config{})
	if err := other.Redrive(ctx, dl.ID); !errors.Is(err, worker.ErrWrongPart) {
		t.Fatalf("redrive through another part: %v", err)
	}

	broken.Store(false)
	if err := l.Redrive(ctx, dl.ID); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	msgs, _ := c.all()
	last := msgs[len(msgs)-1]
	if string(last.Data) != "poison" || last.Redrive != dl.ID || last.Seq != seq || last.Subject != "work.pay" {
		t.Fatalf("redriven call %+v", last)
	}
	if _, err := e.dead.Get(ctx, dl.ID); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("get after redrive: %v, want ErrNotFound", err)
	}
	if letters, _, _ := e.dead.List(ctx, worker.ListOptions{}); len(letters) != 0 {
		t.Fatalf("still listed: %+v", letters)
	}
	if counts, _ := e.dead.Count(ctx); len(counts) != 0 {
		t.Fatalf("count after redrive %v", counts)
	}
	if err := l.Redrive(ctx, dl.ID); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("second redrive: %v, want ErrNotFound", err)
	}
	// The redrive is itself a recorded fact.
	dstream, _ := e.js.Stream(ctx, "BANKBOOK_DEAD")
	raw, err := dstream.GetLastMsgForSubject(ctx, "bankbook.dead.payouts.redriven")
	if err != nil || !strings.Contains(string(raw.Data), `"action":"redriven"`) {
		t.Fatalf("resolution record: %v %s", err, raw.Data)
	}
}

func TestPermanentIsDeadLetteredAtOnce(t *testing.T) {
	e := newEnv(t)
	var c calls
	l := e.loop("decode", func(_ context.Context, m worker.Msg) error {
		c.add(m)
		return worker.Permanent(errors.New("not a commit"))
	}, worker.Config{})
	e.run(l)
	e.publish("work.bad", "garbage")
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })
	letters, _, err := e.dead.List(context.Background(), worker.ListOptions{})
	if err != nil || len(letters) != 1 || !letters[0].Permanent || letters[0].Attempts != 1 || c.count("garbage") != 1 {
		t.Fatalf("letters %+v, %v; calls %s", letters, err, &c)
	}
}

func TestPanicIsRecoveredIntoARetry(t *testing.T) {
	e := newEnv(t)
	var c calls
	l := e.loop("panicky", func(_ context.Context, m worker.Msg) error {
		if c.add(m) == 1 {
			var p *struct{ x int }
			_ = p.x // nil dereference, as a reactor bug would
		}
		return nil
	}, worker.Config{})
	e.run(l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 10*time.Second, "handled after the panic", func() bool { return l.Stats().Processed == 1 })
	if s := l.Stats(); s.Panics != 1 || s.Retried != 1 {
		t.Fatalf("stats %+v", s)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"stack":"goroutine`) || !strings.Contains(logs, "nil pointer dereference") {
		t.Fatalf("panic not logged with its stack:\n%s", logs)
	}
}

func TestConcurrencyHandlesNAtOnce(t *testing.T) {
	e := newEnv(t)
	const n = 4
	var running, peak atomic.Int32
	release := make(chan struct{})
	l := e.loop("parallel", func(ctx context.Context, m worker.Msg) error {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, worker.Config{Concurrency: n})
	e.run(l)
	for range 2 * n {
		e.publish("work.x", "x")
	}
	testenv.Eventually(t, 10*time.Second, "n handlers in flight", func() bool { return running.Load() == n })
	close(release)
	testenv.Eventually(t, 10*time.Second, "all processed", func() bool { return l.Stats().Processed == 2*n })
	if p := peak.Load(); p != n {
		t.Fatalf("peak concurrency %d, want %d", p, n)
	}
}

// TestLongWorkIsKeptInProgress: work twice as long as the consumer's AckWait
// is handled once, because the loop tells the server it is in progress
// (every AckWait/3 by default). Without that, the server would redeliver the
// message after AckWait and the second handler would take it.
func TestLongWorkIsKeptInProgress(t *testing.T) {
	e := newEnv(t)
	var c calls
	const ackWait = 3 * time.Second
	l := e.loop("slow", func(_ context.Context, m worker.Msg) error {
		c.add(m)
		time.Sleep(2 * ackWait)
		return nil
	}, worker.Config{Concurrency: 2, Consumer: e.consumer("slow", ackWait), HandlerTimeout: time.Minute})
	e.run(l)
	e.publish("work.x", "x")
	testenv.Eventually(t, 30*time.Second, "processed", func() bool { return l.Stats().Processed == 1 })
	if n := c.count("x"); n != 1 {
		t.Fatalf("long work handled %d times, want once: %s", n, &c)
	}
}

func TestDeletedConsumerEndsRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := e.loop("doomed", func(context.Context, worker.Msg) error { return nil }, worker.Config{})
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	e.publish("work.x", "x")
	testenv.Eventually(t, 10*time.Second, "running", func() bool { return l.Stats().Processed == 1 })
	if err := e.stream.DeleteConsumer(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, worker.ErrConsumerGone) {
			t.Fatalf("run returned %v, want ErrConsumerGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still blocked 10s after its consumer was deleted")
	}
}

func TestSupervisorRecreatesDeletedConsumer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var c calls
	l := e.loop("phoenix", func(_ context.Context, m worker.Msg) error { c.add(m); return nil }, worker.Config{})
	sup := supervise(t, l)
	e.publish("work.x", "first")
	testenv.Eventually(t, 10*time.Second, "first handled", func() bool { return c.count("first") == 1 })
	if err := e.stream.DeleteConsumer(ctx, "phoenix"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "restarted", func() bool {
		st, _ := sup.Status("phoenix")
		return st.Restarts == 1 && st.State == supervisor.Running
	})
	e.publish("work.x", "second")
	testenv.Eventually(t, 10*time.Second, "second handled by the recreated consumer", func() bool { return c.count("second") == 1 })
	st, _ := sup.Status("phoenix")
	if !strings.Contains(st.LastError, "consumer gone") || !st.OK() {
		t.Fatalf("status %+v", st)
	}
	if _, err := e.stream.Consumer(ctx, "phoenix"); err != nil {
		t.Fatalf("consumer not recreated: %v", err)
	}
}

func TestStopNaksMessagesNotStarted(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	l := e.loop("stopping", func(context.Context, worker.Msg) error {
		started <- struct{}{}
		<-release
		return nil
	}, worker.Config{Prefetch: 4})
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for range 4 {
		e.publish("work.x", "x")
	}
	<-started
	testenv.Eventually(t, 10*time.Second, "messages held", func() bool { return l.Stats().InFlight >= 2 })
	cancel()
	close(release) // the message in flight finishes
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if s := l.Stats(); s.Processed != 1 || s.InFlight != 0 {
		t.Fatalf("stats after stop %+v", s)
	}
	// What was held but not started is handed back at once, not after AckWait.
	cons, _ := e.stream.Consumer(context.Background(), "stopping")
	var got atomic.Int32
	mc, err := cons.Consume(func(m jetstream.Msg) { got.Add(1); _ = m.Ack() })
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Stop()
	testenv.Eventually(t, 5*time.Second, "unstarted messages redelivered", func() bool { return got.Load() == 3 })
}

func TestListPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		part := "a"
		if i%2 == 1 {
			part = "b"
		}
		if _, err := e.dead.Record(ctx, worker.DeadLetter{Part: part, Stream: "WORK", Seq: uint64(i + 1), Error: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	// Pages of 2 and of 3 (the last page full): no page is empty, and the
	// last one hands out no cursor.
	for _, limit := range []int{2, 3} {
		var seqs []uint64
		var after uint64
		pages := 0
		for {
			page, next, err := e.dead.List(ctx, worker.ListOptions{Part: "a", After: after, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page) == 0 {
				t.Fatalf("limit %d: page %d is empty (after %d)", limit, pages, after)
			}
			for _, dl := range page {
				seqs = append(seqs, dl.Seq)
			}
			if next == 0 {
				break
			}
			after = next
		}
		if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 3 || seqs[2] != 5 {
			t.Fatalf("limit %d: part a pages gave seqs %v", limit, seqs)
		}
	}
	all, _, err := e.dead.List(ctx, worker.ListOptions{})
	if err != nil || len(all) != 5 {
		t.Fatalf("all: %d, %v", len(all), err)
	}
	counts, err := e.dead.Count(ctx)
	if err != nil || counts["a"] != 3 || counts["b"] != 2 {
		t.Fatalf("counts %v, %v", counts, err)
	}
	if err := e.dead.Discard(ctx, all[0].ID, ""); err == nil {
		t.Fatal("discard without a reason accepted")
	}
	if err := e.dead.Discard(ctx, all[0].ID, "operator: duplicate of a settled payout"); err != nil {
		t.Fatal(err)
	}
	if counts, _ := e.dead.Count(ctx); counts["a"] != 2 {
		t.Fatalf("counts after discard %v", counts)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := worker.New(worker.Config{Name: "bad.name", Concurrency: -1})
	for _, want := range []string{"subject token", "consumer", "handler", "dead letters", "concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

// Two operators resolving one dead letter at once both read it before
// either removes it. The second removal then finds nothing to remove: it
// is the outcome both wanted, not an error.
func TestResolveOfARemovedDeadLetter(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	dl, err := e.dead.Record(ctx, worker.DeadLetter{Part: "a", Stream: "WORK", Seq: 1, Error: "x"})
	if err != nil {
		t.Fatal(err)
	}
	read, err := e.dead.Get(ctx, dl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dead.Discard(ctx, dl.ID, "operator one"); err != nil {
		t.Fatal(err)
	}
	if err := worker.Resolve(e.dead, ctx, read, "discarded", "operator two"); err != nil {
		t.Fatalf("second resolve of a removed dead letter: %v", err)
	}
	if _, err := e.dead.Get(ctx, dl.ID); !errors.Is(err, worker.ErrNotFound) {
		t.Fatalf("dead letter after both resolves: %v", err)
	}
	// A redrive that lost the race to the discard is told so: the record
	// says discarded, and the redrive must not report success.
	if err := worker.Resolve(e.dead, ctx, read, "redriven", ""); !errors.Is(err, worker.ErrResolvedOtherwise) {
		t.Fatalf("redrive after a discard: %v, want ErrResolvedOtherwise", err)
	}
}

// slowAcks is a consumer whose messages' acks wait until gate closes.
type slowAcks struct {
	jetstream.Consumer
	gate  chan struct{}
	acked atomic.Int64 // acks the server confirmed
}

func (c *slowAcks) Consume(h jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return c.Consumer.Consume(func(m jetstream.Msg) { h(&slowAck{Msg: m, c: c}) }, opts...)
}

type slowAck struct {
	jetstream.Msg
	c *slowAcks
}

func (m *slowAck) DoubleAck(ctx context.Context) error {
	select {
	case <-m.c.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := m.Msg.DoubleAck(ctx)
	if err == nil {
		m.c.acked.Add(1)
	}
	return err
}

// A part that handles one message at a time does not wait for one
// message's ack before it handles the next: the acks overlap, and each
// message stays held (in flight) until its ack is confirmed.
func TestAcksDoNotHoldUpTheNextMessage(t *testing.T) {
	e := newEnv(t)
	slow := &slowAcks{gate: make(chan struct{})}
	var c calls
	l := e.loop("overlap", func(_ context.Context, m worker.Msg) error { c.add(m); return nil }, worker.Config{
		Concurrency: 1,
		Consumer: func(ctx context.Context) (jetstream.Consumer, error) {
			cons, err := e.consumer("overlap", 30*time.Second)(ctx)
			slow.Consumer = cons
			return slow, err
		},
	})
	e.run(l)
	for _, d := range []string{"a", "b", "c"} {
		e.publish("work."+d, d)
	}
	testenv.Eventually(t, 5*time.Second, "3 handled while the first ack waits", func() bool {
		msgs, _ := c.all()
		return len(msgs) == 3
	})
	if s := l.Stats(); s.Processed != 0 || s.InFlight != 3 {
		t.Fatalf("stats %+v while the acks wait; want none processed and 3 in flight", s)
	}
	close(slow.gate)
	testenv.Eventually(t, 10*time.Second, "3 processed", func() bool { return l.Stats().Processed == 3 })
	if s := l.Stats(); s.InFlight != 0 || slow.acked.Load() != 3 {
		t.Fatalf("stats %+v, %d acks confirmed; want nothing in flight and 3", s, slow.acked.Load())
	}
	msgs, _ := c.all()
	for i, m := range msgs {
		if m.Seq != uint64(i+1) || m.Delivered != 1 {
			t.Errorf("msg %d = %+v; want seq %d, delivered once", i, m, i+1)
		}
	}
}

package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/worker"
)

// seen records the commits a reactor handled.
type seen struct {
	mu  sync.Mutex
	ids []string
}

func (s *seen) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = append(s.ids, id)
}

func (s *seen) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.ids {
		if x == id {
			return true
		}
	}
	return false
}

func TestReactorDeadLettersAnUndecodableCommitAndMovesOn(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	l, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "react-orders", Types: []string{"order"}, Dead: dead},
		func(_ context.Context, c eventstore.Commit) error { got.add(c.CommitID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, l.Run)

	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "A"}, "before", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	// Something that is not a commit lands on an order subject.
	bad, err := js.Publish(ctx, "bankbook.evt.order.B", []byte("{not a commit"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "C"}, "after", storetest.Event("t", 2)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "later commits handled", func() bool { return got.has("before") && got.has("after") })
	testenv.Eventually(t, 10*time.Second, "dead-lettered", func() bool { return l.Stats().DeadLettered == 1 })

	letters, _, err := dead.List(ctx, worker.ListOptions{Part: "react-orders"})
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
	dl := letters[0]
	if dl.Stream != "BANKBOOK_EVENTS" || dl.Seq != bad.Sequence || dl.Subject != "bankbook.evt.order.B" || !dl.Permanent ||
		!strings.Contains(dl.Error, "corrupt commit") || dl.Attempts != 1 {
		t.Fatalf("dead letter %+v", dl)
	}
	if counts, err := dead.Count(ctx); err != nil || counts["react-orders"] != 1 {
		t.Fatalf("count %v, %v", counts, err)
	}
	// Still not a commit: redriving fails and the dead letter stays.
	if err := l.Redrive(ctx, dl.ID); err == nil {
		t.Fatal("redrive of garbage succeeded")
	}
	if _, err := dead.Get(ctx, dl.ID); err != nil {
		t.Fatalf("dead letter gone: %v", err)
	}
}

func TestReactorRecoversAPanicAndRedrivesAfterAFix(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	var mu sync.Mutex
	fixed := false
	var got seen
	l, err := s.Reactor(ctx, eventstore.ReactOptions{
		Durable: "react-money", Types: []string{"wallet"}, MaxAttempts: 2, MinBackoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	}, func(_ context.Context, c eventstore.Commit) error {
		mu.Lock()
		defer mu.Unlock()
		if c.CommitID == "bug" && !fixed {
			var to *string
			_ = *to // the nil dereference of a reactor bug
		}
		got.add(c.CommitID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, l.Run)
	for _, id := range []string{"bug", "ok"} {
		if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "wallet", ID: id}, id, storetest.Event("t", 1)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "panicking commit dead-lettered, the next handled", func() bool {
		return l.Stats().DeadLettered == 1 && got.has("ok")
	})
	if st := l.Stats(); st.Panics != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The default dead-letter stream was opened for us.
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	letters, _, err := dead.List(ctx, worker.ListOptions{Part: "react-money"})
	if err != nil || len(letters) != 1 || !strings.Contains(letters[0].Error, "nil pointer") {
		t.Fatalf("dead letters %+v, %v", letters, err)
	}
	mu.Lock()
	fixed = true
	mu.Unlock()
	if err := l.Redrive(ctx, letters[0].ID); err != nil {
		t.Fatalf("redrive: %v", err)
	}
	if !got.has("bug") {
		t.Fatal("redriven commit not handled")
	}
	if n, _ := dead.Count(ctx); n["react-money"] != 0 {
		t.Fatalf("count after redrive %v", n)
	}
}

// waitErr waits for a result that must come: a loop that blocks forever on a
// vanished consumer fails here instead of hanging the test.
func waitErr(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still blocked 10s after its consumer was deleted", what)
		return nil
	}
}

func TestReactorRunReturnsWhenItsConsumerIsDeleted(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	var got seen
	l, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "react-doomed", Types: []string{"order"}},
		func(_ context.Context, c eventstore.Commit) error { got.add(c.CommitID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "A"}, "c1", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "reacting", func() bool { return got.has("c1") })
	stream, _ := js.Stream(ctx, "BANKBOOK_EVENTS")
	if err := stream.DeleteConsumer(ctx, "react-doomed"); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done, "the reactor"); !errors.Is(err, worker.ErrConsumerGone) {
		t.Fatalf("Run returned %v, want ErrConsumerGone", err)
	}
}

// codecAt returns a codec that knows test.renamed up to schema version v.
func codecAt(v int) *domain.Codec {
	c := domain.NewCodec()
	domain.Register[renamed](c, v)
	for from := 1; from < v; from++ {
		c.AddUpcaster("test.renamed", from, func(data json.RawMessage) (json.RawMessage, error) { return data, nil })
	}
	return c
}

// TestReactorWaitsOnACommitFromANewerVersion: during a rolling upgrade an
// old instance sees a commit with an event schema it cannot upcast. It waits
// (no failure, never dead-lettered however often it comes back, logged as a
// warning) and goes on with later commits; a newer instance sharing the
// consumer takes it.
func TestReactorWaitsOnACommitFromANewerVersion(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	dead, err := worker.OpenDeadLetters(ctx, js, worker.DeadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The newer engine writes test.renamed at schema version 2.
	newer := open(t, js, eventstore.Config{Upcaster: codecAt(2)})
	e := storetest.Event("test.renamed", map[string]string{"full_name": "김민수"})
	e.SchemaVersion = 2
	if _, err := newer.Append(ctx, eventstore.Ref{Type: "order", ID: "new"}, 0, 0, "from-newer", []eventstore.Envelope{e}); err != nil {
		t.Fatal(err)
	}

	old := open(t, js, eventstore.Config{Upcaster: codecAt(1)})
	logs := &testenv.SyncBuffer{}
	var oldSeen seen
	opts := eventstore.ReactOptions{Durable: "react-orders", Types: []string{"order"}, Dead: dead, MaxAttempts: 1,
		UndecodableWait: 20 * time.Millisecond, Logger: zerolog.New(logs)}
	oldLoop, err := old.Reactor(ctx, opts, func(_ context.Context, c eventstore.Commit) error { oldSeen.add(c.CommitID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, oldLoop.Run)
	if _, err := storetest.AppendOne(ctx, old, eventstore.Ref{Type: "order", ID: "B"}, "later", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	// With MaxAttempts 1, one counted failure would dead-letter it.
	testenv.Eventually(t, 10*time.Second, "the old instance waited several times and handled the later commit", func() bool {
		return oldLoop.Stats().Deferred >= 5 && oldSeen.has("later")
	})
	if st := oldLoop.Stats(); st.DeadLettered != 0 || st.Retried != 0 || oldSeen.has("from-newer") {
		t.Fatalf("old instance stats %+v, handled %v", st, oldSeen.ids)
	}
	if n, err := dead.Count(ctx); err != nil || len(n) != 0 {
		t.Fatalf("dead letters %v, %v", n, err)
	}
	if out := logs.String(); !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "newer than this engine") ||
		!strings.Contains(out, `"part":"react-orders"`) || strings.Contains(out, `"level":"error"`) {
		t.Fatalf("logs:\n%s", out)
	}

	// A newer instance shares the consumer and takes the commit.
	var newSeen seen
	newLoop, err := newer.Reactor(ctx, opts, func(_ context.Context, c eventstore.Commit) error { newSeen.add(c.CommitID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, newLoop.Run)
	testenv.Eventually(t, 10*time.Second, "the newer instance handled it", func() bool { return newSeen.has("from-newer") })
	if st := oldLoop.Stats(); st.DeadLettered != 0 || oldSeen.has("from-newer") {
		t.Fatalf("old instance stats %+v, handled %v", st, oldSeen.ids)
	}
}

func TestFollowReturnsWhenItsConsumerIsDeleted(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "A"}, "c1", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	batches := make(chan []eventstore.Commit, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, eventstore.FollowOptions{Durable: "readmodels-x"}, func(_ context.Context, b []eventstore.Commit) error {
			batches <- b
			return nil
		})
	}()
	select {
	case <-batches:
	case err := <-done:
		t.Fatalf("follow: %v", err)
	}
	stream, _ := js.Stream(ctx, "BANKBOOK_EVENTS")
	testenv.Eventually(t, 10*time.Second, "batch acknowledged", func() bool {
		c, err := stream.Consumer(ctx, "readmodels-x")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream == 1
	})
	if err := stream.DeleteConsumer(ctx, "readmodels-x"); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, done, "Follow"); !errors.Is(err, worker.ErrConsumerGone) {
		t.Fatalf("Follow returned %v, want ErrConsumerGone", err)
	}
	// Following again from the checkpoint recreates the consumer and goes on.
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "A"}, "c2", storetest.Event("t", 2)); err != nil {
		t.Fatal(err)
	}
	var again []eventstore.Commit
	err := s.Follow(ctx, eventstore.FollowOptions{Durable: "readmodels-x", After: 1, Until: 2}, func(_ context.Context, b []eventstore.Commit) error {
		again = append(again, b...)
		return nil
	})
	if err != nil || len(again) != 1 || again[0].CommitID != "c2" {
		t.Fatalf("follow again: %v, %+v", err, again)
	}
}

func TestReactorConsumerSettings(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	l, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "react-cfg", Types: []string{"order", "wallet"}, MaxAckPending: 5000},
		func(context.Context, eventstore.Commit) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, l.Run)
	stream, _ := js.Stream(ctx, "BANKBOOK_EVENTS")
	var info *jetstream.ConsumerInfo
	testenv.Eventually(t, 10*time.Second, "consumer created", func() bool {
		c, err := stream.Consumer(ctx, "react-cfg")
		if err != nil {
			return false
		}
		info, err = c.Info(ctx)
		return err == nil
	})
	if info.Config.AckPolicy != jetstream.AckExplicitPolicy || info.Config.DeliverPolicy != jetstream.DeliverAllPolicy ||
		strings.Join(info.Config.FilterSubjects, ",") != "bankbook.evt.order.>,bankbook.evt.wallet.>" || info.Config.MaxAckPending != 5000 {
		t.Fatalf("consumer config %+v", info.Config)
	}
	if _, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "bad.name", Types: []string{"order"}},
		func(context.Context, eventstore.Commit) error { return nil }); err == nil {
		t.Fatal("a durable that is not a subject token was accepted")
	}
}

// TestReactorStartSeqLeavesThePastAlone: a reactor added to a stream with
// history, told to start at the stream's end, handles only what comes
// after, also once its consumer is deleted and created again.
func TestReactorStartSeqLeavesThePastAlone(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "old"}, "c-old", storetest.Event("t", 1)); err != nil {
		t.Fatal(err)
	}
	last, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	l, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "react-new", Types: []string{"order"}, StartSeq: last + 1},
		func(_ context.Context, c eventstore.Commit) error { got.add(c.CommitID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, l.Run)
	if _, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: "new"}, "c-new", storetest.Event("t", 2)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the new commit handled", func() bool { return got.has("c-new") })
	if got.has("c-old") {
		t.Fatal("the reactor handled a commit from before its start")
	}
}

// Handled is how far a reactor got: every commit of its types up to it
// handled. A commit that waits holds it back, even behind later commits
// handled already.
func TestHandledIsWhereEveryCommitBeforeWasHandled(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx := context.Background()
	var hold atomic.Bool
	hold.Store(true)
	l, err := s.Reactor(ctx, eventstore.ReactOptions{Durable: "react-handled", Types: []string{"order"}, Concurrency: 2},
		func(_ context.Context, c eventstore.Commit) error {
			if c.Ref().ID == "first" && hold.Load() {
				return worker.RetryAfter(50*time.Millisecond, nil)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, l.Run)
	var seqs []eventstore.Seq
	for _, id := range []string{"first", "second"} {
		c, err := storetest.AppendOne(ctx, s, eventstore.Ref{Type: "order", ID: id}, "c-"+id, storetest.Event("t", 1))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, c.Seq)
	}
	handled := func() eventstore.Seq {
		t.Helper()
		h, err := s.Handled(ctx, "react-handled")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	time.Sleep(300 * time.Millisecond) // the second is handled meanwhile, the first waits
	if h := handled(); h >= seqs[0] {
		t.Fatalf("handled up to %d while the commit at %d waits", h, seqs[0])
	}
	hold.Store(false)
	testenv.Eventually(t, 10*time.Second, "both commits handled", func() bool { return handled() >= seqs[1] })
}

// TestOpenLeavesAnUnchangedStreamAlone: a second Open (another instance
// starting) sends the server no stream update when nothing changed.
func TestOpenLeavesAnUnchangedStreamAlone(t *testing.T) {
	srv := testenv.Start(t, "")
	nc, js := srv.Connect(t)
	open(t, js, eventstore.Config{})
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.BANKBOOK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	open(t, js, eventstore.Config{})
	if msg, err := updates.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("reopening updated the unchanged stream: %s", msg.Data)
	}
}

// TestFollowReportsMissedHeartbeats: a durable consumer whose pulls the
// server drops (its one waiting place taken by another client's pull)
// sends no heartbeat; Follow tells OnHealth once they were missed
// worker.ReportMisses times in a row, rather than wait in silence.
func TestFollowReportsMissedHeartbeats(t *testing.T) {
	srv := testenv.Start(t, "")
	nc, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := js.Stream(ctx, "BANKBOOK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "readmodels-hb", AckPolicy: jetstream.AckAllPolicy, MaxWaiting: 1}); err != nil {
		t.Fatal(err)
	}
	other, err := nc.SubscribeSync(nats.NewInbox())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.BANKBOOK_EVENTS.readmodels-hb", other.Subject, []byte(`{"batch":1,"expires":60000000000}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	reports := make(chan error, 10)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, eventstore.FollowOptions{Durable: "readmodels-hb", OnHealth: func(err error) {
			if err != nil {
				reports <- err
			}
		}}, func(context.Context, []eventstore.Commit) error { return nil })
	}()
	select {
	case err := <-reports:
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			t.Fatalf("OnHealth(%v), want missed heartbeats", err)
		}
	case err := <-done:
		t.Fatalf("Follow returned %v before reporting", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no report of missed heartbeats in 30 s")
	}
}

package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/worker"
)

// A durable consumer that skips ahead (as a replicated consumer does when
// its old leader dropped deliveries that were recorded as delivered) is
// rewound by Follow itself: every commit still reaches the handler once,
// in order, and Follow goes on.
func TestFollowRewindsAConsumerThatSkipped(t *testing.T) {
	ctx, s, stream := followStream(t, false)
	appendCommits(ctx, t, s, 1, 3)
	var got []eventstore.Seq
	handled := make(chan eventstore.Seq, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, eventstore.FollowOptions{Durable: "readmodels-x", Until: 8}, func(_ context.Context, b []eventstore.Commit) error {
			for _, c := range b {
				got = append(got, c.Seq)
				handled <- c.Seq
			}
			return nil
		})
	}()
	for seq := eventstore.Seq(0); seq < 3; {
		select {
		case seq = <-handled:
		case err := <-done:
			t.Fatalf("follow: %v", err)
		}
	}
	waitConsumer(ctx, t, stream, "readmodels-x", "batch acknowledged", func(info *jetstream.ConsumerInfo) bool { return info.AckFloor.Stream == 3 })
	// The consumer skips 4 and 5.
	if _, err := stream.ResetConsumerToSequence(ctx, "readmodels-x", 6); err != nil {
		t.Fatal(err)
	}
	appendCommits(ctx, t, s, 4, 8)
	if err := waitErr(t, done, "Follow"); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("handled %v", got)
	}
}

// Trouble the consumption reported (here a paused consumer) before a
// rewind does not outlive it: the rewind finds the consumer there, and the
// report is cleared, as a check that finds the consumer clears it. Before,
// the subscription the rewind replaced took the report's end with it, and
// the read models' part stayed failing (/readyz 503) while they applied
// every commit.
func TestFollowClearsTroubleReportedBeforeARewind(t *testing.T) {
	ctx, s, stream := followStream(t, false)
	appendCommits(ctx, t, s, 1, 3)
	var (
		mu   sync.Mutex
		last error
	)
	handled := make(chan eventstore.Seq, 100)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(fctx, eventstore.FollowOptions{Durable: "readmodels-h",
			OnHealth: func(err error) {
				mu.Lock()
				last = err
				mu.Unlock()
			}}, func(_ context.Context, b []eventstore.Commit) error {
			for _, c := range b {
				handled <- c.Seq
			}
			return nil
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	report := func() error {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	waitHandled := func(want eventstore.Seq) {
		t.Helper()
		for seq := eventstore.Seq(0); seq < want; {
			select {
			case seq = <-handled:
			case err := <-done:
				t.Fatalf("follow: %v", err)
			case <-time.After(15 * time.Second):
				t.Fatalf("commit %d not handled", want)
			}
		}
	}
	waitHandled(3)
	waitConsumer(ctx, t, stream, "readmodels-h", "batch acknowledged", func(info *jetstream.ConsumerInfo) bool { return info.AckFloor.Stream == 3 })
	if _, err := stream.PauseConsumer(ctx, "readmodels-h", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 15*time.Second, "the paused consumer reported", func() bool { return report() != nil })
	t.Logf("reported: %v", report())
	// While paused, the consumer skips 4 and 5; resumed, it delivers 6 on.
	if _, err := stream.ResetConsumerToSequence(ctx, "readmodels-h", 6); err != nil {
		t.Fatal(err)
	}
	appendCommits(ctx, t, s, 4, 8)
	if _, err := stream.ResumeConsumer(ctx, "readmodels-h"); err != nil {
		t.Fatal(err)
	}
	waitHandled(8)
	testenv.Eventually(t, 10*time.Second, "the report cleared once the rewound consumer delivers", func() bool { return report() == nil })
}

// A skip that comes in the middle of what Follow has read (4 delivered,
// then 6: the consumer's deliveries of 5 lost) rewinds to the first commit
// the handler has not had, not past the ones read before the skip: 4 is
// handled too, once.
func TestFollowRewindsToTheFirstCommitNotHandled(t *testing.T) {
	h := skipWhileHeld(t, "readmodels-y")
	close(h.release)
	if err := waitErr(t, h.done, "Follow"); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if fmt.Sprint(h.got) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("handled %v", h.got)
	}
}

// A durable consumer deleted after it skipped ahead, before Follow could
// rewind it, is gone: Follow says so with worker.ErrConsumerGone, as for a
// consumer that vanishes while delivering, so that its caller follows
// again (which recreates it) instead of taking it for a failure. Follow
// notices either the skip first (and its rewind finds the consumer gone)
// or the deletion; TestRewindOfADeletedConsumerIsGoneAtOnce covers the
// rewind alone.
func TestFollowOfAConsumerDeletedBeforeItsRewindIsGone(t *testing.T) {
	h := skipWhileHeld(t, "readmodels-z")
	if err := h.stream.DeleteConsumer(h.ctx, "readmodels-z"); err != nil {
		t.Fatal(err)
	}
	close(h.release)
	err := waitErr(t, h.done, "Follow")
	if !errors.Is(err, worker.ErrConsumerGone) {
		t.Fatalf("Follow = %v, want an error matching worker.ErrConsumerGone", err)
	}
	t.Logf("Follow: %v", err)
}

// heldSkip is a Follow on a durable consumer whose handler holds the batch
// of commits 1..3 (until release is closed) while the consumer delivers 4,
// skips 5 and delivers 6..8. got is what the handler had, to be read once
// done has answered.
type heldSkip struct {
	ctx     context.Context
	stream  jetstream.Stream
	got     []eventstore.Seq
	release chan struct{}
	done    chan error
}

// skipWhileHeld follows commits 1..8 with the durable consumer durable and
// returns once the consumer has skipped 5 and delivered up to 8 while the
// handler holds its first batch.
func skipWhileHeld(t *testing.T, durable string) *heldSkip {
	t.Helper()
	ctx, s, stream := followStream(t, false)
	h := &heldSkip{ctx: ctx, stream: stream, release: make(chan struct{}), done: make(chan error, 1)}
	appendCommits(ctx, t, s, 1, 3)
	batches := make(chan eventstore.Seq, 100)
	go func() {
		h.done <- s.Follow(ctx, eventstore.FollowOptions{Durable: durable, Until: 8, MaxBatch: 64}, func(_ context.Context, b []eventstore.Commit) error {
			for _, c := range b {
				h.got = append(h.got, c.Seq)
			}
			batches <- b[len(b)-1].Seq
			if b[len(b)-1].Seq == 3 {
				<-h.release // hold the batch of 1..3 while 4, then 6 on, arrive
			}
			return nil
		})
	}()
	// Commit 4 is appended only once the handler holds the batch ending
	// at 3: appended after the first batch alone (which may be 1 or 1..2),
	// it could join 3's batch, and nothing would be held.
	for seq := eventstore.Seq(0); seq < 3; {
		select {
		case seq = <-batches:
		case err := <-h.done:
			t.Fatalf("follow: %v", err)
		}
	}
	appendCommits(ctx, t, s, 4, 4)
	waitConsumer(ctx, t, stream, durable, "4 delivered", func(info *jetstream.ConsumerInfo) bool { return info.Delivered.Stream == 4 })
	if _, err := stream.ResetConsumerToSequence(ctx, durable, 6); err != nil { // the consumer skips 5
		t.Fatal(err)
	}
	appendCommits(ctx, t, s, 5, 8)
	waitConsumer(ctx, t, stream, durable, "8 delivered", func(info *jetstream.ConsumerInfo) bool { return info.Delivered.Stream == 8 })
	return h
}

// Rewinding a durable consumer that is gone says so at once, with
// worker.ErrConsumerGone: the server leaves a reset of a missing consumer
// unanswered, which must not be retried as a timeout for the store's whole
// budget.
func TestRewindOfADeletedConsumerIsGoneAtOnce(t *testing.T) {
	ctx, s, stream := followStream(t, false)
	if _, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "rm-gone", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := s.Rewind(ctx, "rm-gone", 1); err != nil {
		t.Fatalf("rewind of a consumer that is there: %v", err)
	}
	if err := stream.DeleteConsumer(ctx, "rm-gone"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.Rewind(ctx, "rm-gone", 1)
	t.Logf("Rewind took %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, worker.ErrConsumerGone) {
		t.Fatalf("Rewind = %v, want an error matching worker.ErrConsumerGone", err)
	}
}

// A gap in the stream itself (a deleted message) is not a lost delivery:
// after its rewinds Follow ends with the gap, whatever the batch size, fn
// has had only the commits before it, and the consumer has acknowledged
// nothing past them.
func TestFollowStopsAtAGapInTheStream(t *testing.T) {
	for _, mb := range []int{1, 2, 64} {
		t.Run(fmt.Sprint(mb), func(t *testing.T) {
			ctx, s, stream := followStream(t, true)
			appendCommits(ctx, t, s, 1, 8)
			if err := stream.DeleteMsg(ctx, 5); err != nil {
				t.Fatal(err)
			}
			var got []eventstore.Seq
			err := s.Follow(ctx, eventstore.FollowOptions{Durable: "rm", MaxBatch: mb}, func(_ context.Context, b []eventstore.Commit) error {
				for _, c := range b {
					got = append(got, c.Seq)
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), "expected seq 5") {
				t.Fatalf("err %v", err)
			}
			// What came before the gap in its own delivery batch is handled;
			// a batch that holds the gap is not, however it was split.
			for i, seq := range got {
				if seq != eventstore.Seq(i+1) || seq >= 5 {
					t.Fatalf("handled %v, want a run from 1 that stops before the gap at 5", got)
				}
			}
			waitConsumer(ctx, t, stream, "rm", "nothing acknowledged past the gap", func(info *jetstream.ConsumerInfo) bool { return info.AckFloor.Stream <= 4 })
		})
	}
}

// followStream starts a server with a fresh event stream (one that allows
// deleting a message, with allowDelete) and returns a context for the
// test, the store and the stream.
func followStream(t *testing.T, allowDelete bool) (context.Context, *eventstore.Store, jetstream.Stream) {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cfg := eventstore.Config{}.StreamConfig()
	cfg.DenyDelete = !allowDelete
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eventstore.Bind(ctx, js, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, s, stream
}

// waitConsumer waits until the durable consumer name's state is as ok
// says.
func waitConsumer(ctx context.Context, t *testing.T, stream jetstream.Stream, name, what string, ok func(*jetstream.ConsumerInfo) bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, what, func() bool {
		c, err := stream.Consumer(ctx, name)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && ok(info)
	})
}

// appendCommits appends commits from to to (inclusive) to order A, one
// event each: on a fresh stream, at the sequences of the same numbers.
func appendCommits(ctx context.Context, t *testing.T, s *eventstore.Store, from, to int) {
	t.Helper()
	ref := eventstore.Ref{Type: "order", ID: "A"}
	for i := from; i <= to; i++ {
		if _, err := storetest.AppendOne(ctx, s, ref, fmt.Sprintf("c%d", i), storetest.Event("t", i)); err != nil {
			t.Fatal(err)
		}
	}
}

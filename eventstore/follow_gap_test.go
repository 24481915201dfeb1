package eventstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/eventstore/storetest"
	"github.com/bankbook/bankbook/internal/testenv"
)

// A durable consumer that skips ahead (as a replicated consumer does when
// its old leader dropped deliveries that were recorded as delivered) is
// rewound by Follow itself: every commit still reaches the handler once,
// in order, and Follow goes on.
func TestFollowRewindsAConsumerThatSkipped(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
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
	stream, _ := js.Stream(ctx, "BANKBOOK_EVENTS")
	testenv.Eventually(t, 10*time.Second, "batch acknowledged", func() bool {
		c, err := stream.Consumer(ctx, "readmodels-x")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream == 3
	})
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

// A skip that comes in the middle of what Follow has read (4 delivered,
// then 6: the consumer's deliveries of 5 lost) rewinds to the first commit
// the handler has not had, not past the ones read before the skip: 4 is
// handled too, once.
func TestFollowRewindsToTheFirstCommitNotHandled(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	appendCommits(ctx, t, s, 1, 3)
	var got []eventstore.Seq
	batches := make(chan eventstore.Seq, 100)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Follow(ctx, eventstore.FollowOptions{Durable: "readmodels-y", Until: 8, MaxBatch: 64}, func(_ context.Context, b []eventstore.Commit) error {
			for _, c := range b {
				got = append(got, c.Seq)
			}
			batches <- b[len(b)-1].Seq
			if b[len(b)-1].Seq == 3 {
				<-release // hold the batch of 1..3 while 4, then 6 on, arrive
			}
			return nil
		})
	}()
	select {
	case <-batches:
	case err := <-done:
		t.Fatalf("follow: %v", err)
	}
	stream, err := js.Stream(ctx, "BANKBOOK_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.Consumer(ctx, "readmodels-y")
	if err != nil {
		t.Fatal(err)
	}
	appendCommits(ctx, t, s, 4, 4)
	testenv.Eventually(t, 10*time.Second, "4 delivered", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream == 4
	})
	// The consumer skips 5.
	if _, err := stream.ResetConsumerToSequence(ctx, "readmodels-y", 6); err != nil {
		t.Fatal(err)
	}
	appendCommits(ctx, t, s, 5, 8)
	testenv.Eventually(t, 10*time.Second, "8 delivered", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.Delivered.Stream == 8
	})
	close(release)
	if err := waitErr(t, done, "Follow"); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("handled %v", got)
	}
}

// A gap in the stream itself (a deleted message) is not a lost delivery:
// after its rewinds Follow ends with the gap, whatever the batch size, fn
// has had only the commits before it, and the consumer has acknowledged
// nothing past them.
func TestFollowStopsAtAGapInTheStream(t *testing.T) {
	for _, mb := range []int{1, 2, 64} {
		t.Run(fmt.Sprint(mb), func(t *testing.T) {
			srv := testenv.Start(t, "")
			_, js := srv.Connect(t)
			scfg := eventstore.Config{}.StreamConfig()
			scfg.DenyDelete = false
			if _, err := js.CreateStream(context.Background(), scfg); err != nil {
				t.Fatal(err)
			}
			s, err := eventstore.Bind(context.Background(), js, eventstore.Config{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			appendCommits(ctx, t, s, 1, 8)
			stream, err := js.Stream(ctx, "BANKBOOK_EVENTS")
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.DeleteMsg(ctx, 5); err != nil {
				t.Fatal(err)
			}
			var got []eventstore.Seq
			err = s.Follow(ctx, eventstore.FollowOptions{Durable: "rm", MaxBatch: mb}, func(_ context.Context, b []eventstore.Commit) error {
				for _, c := range b {
					got = append(got, c.Seq)
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), "expected seq 5") {
				t.Fatalf("err %v", err)
			}
			if fmt.Sprint(got) != "[1 2 3 4]" {
				t.Fatalf("handled %v", got)
			}
			c, err := stream.Consumer(ctx, "rm")
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(ctx)
			if err != nil || info.AckFloor.Stream > 4 {
				t.Fatalf("consumer %+v (%v): acknowledged past the gap", info, err)
			}
		})
	}
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

package eventstore_test

import (
	"context"
	"fmt"
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
	ref := eventstore.Ref{Type: "order", ID: "A"}
	for i := 1; i <= 3; i++ {
		if _, err := storetest.AppendOne(ctx, s, ref, fmt.Sprintf("c%d", i), storetest.Event("t", i)); err != nil {
			t.Fatal(err)
		}
	}
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
	for i := 4; i <= 8; i++ {
		if _, err := storetest.AppendOne(ctx, s, ref, fmt.Sprintf("c%d", i), storetest.Event("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitErr(t, done, "Follow"); err != nil {
		t.Fatalf("Follow: %v", err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8]" {
		t.Fatalf("handled %v", got)
	}
}

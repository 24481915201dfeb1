package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// batchSizes follows s with opts until Follow returns, and returns the
// size of each batch handed over. stopAfter, if not 0, ends the follow
// (its context) once that many commits were handed over.
func batchSizes(t *testing.T, s *eventstore.Store, opts eventstore.FollowOptions, stopAfter int) ([]int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var sizes []int
	total := 0
	err := s.Follow(ctx, opts, func(_ context.Context, b []eventstore.Commit) error {
		sizes = append(sizes, len(b))
		total += len(b)
		if stopAfter != 0 && total >= stopAfter {
			cancel()
		}
		return nil
	})
	return sizes, err
}

// With Linger, Follow fills each batch up to MaxBatch, and hands a full
// batch over at once rather than after Linger; the last one goes once it
// reaches Until.
func TestFollowLingerFillsBatchesAndHandsFullOnesAtOnce(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	appendEvents(t, s, eventstore.Ref{Type: "t", ID: "a"}, 6, 1)

	sizes, err := batchSizes(t, s, eventstore.FollowOptions{Until: 6, MaxBatch: 3, Linger: time.Hour}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[3 3]" {
		t.Fatalf("batches of %v, want [3 3]", sizes)
	}
}

// With Linger and a durable consumer, commits that arrive within Linger of
// the first go in one batch, and ending the context ends Follow.
func TestFollowLingerGathersCommitsThatArriveTogether(t *testing.T) {
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	s := open(t, js, eventstore.Config{})
	appendEvents(t, s, eventstore.Ref{Type: "t", ID: "a"}, 4, 1)

	sizes, err := batchSizes(t, s, eventstore.FollowOptions{Durable: "linger", MaxBatch: 100, Linger: 300 * time.Millisecond}, 4)
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("follow ended with %v, want ErrClosed", err)
	}
	if fmt.Sprint(sizes) != "[4]" {
		t.Fatalf("batches of %v, want [4]", sizes)
	}
}

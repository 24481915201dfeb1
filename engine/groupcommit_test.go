package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/groupcommit"
	"github.com/bankbook/bankbook/worker"
)

// Under group commit a reaction that calls a third party runs only after a
// sync that started once its commit was delivered; when syncs fail it
// waits (a RetryAfter without an error: no failure, no dead letter) and
// never calls the third party. Without group commit it is the reaction
// itself.
func TestDurableFirst(t *testing.T) {
	var (
		syncs []string
		fail  bool
	)
	e := &Engine{log: zerolog.New(zerolog.NewTestWriter(t))}
	e.syncs = groupcommit.New(func() error {
		syncs = append(syncs, "sync")
		if fail {
			return errors.New("EIO")
		}
		return nil
	})
	called := 0
	react := e.durableFirst(func(context.Context, eventstore.Commit) error {
		called++
		syncs = append(syncs, "call")
		return nil
	})
	if err := react(context.Background(), eventstore.Commit{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if len(syncs) != 2 || syncs[0] != "sync" || syncs[1] != "call" {
		t.Fatalf("%v, want a sync, then the call", syncs)
	}

	fail = true
	err := react(context.Background(), eventstore.Commit{Seq: 8})
	var ra *worker.RetryAfterError
	if !errors.As(err, &ra) || ra.Err != nil || ra.Delay != syncFailedWait || called != 1 {
		t.Fatalf("after a failed sync: %v (called %d), want a RetryAfter of %v without an error and no call", err, called, syncFailedWait)
	}

	plain := (&Engine{}).durableFirst(func(context.Context, eventstore.Commit) error { return errors.New("its own") })
	if err := plain(context.Background(), eventstore.Commit{}); err == nil || err.Error() != "its own" {
		t.Fatalf("without group commit: %v, want the reaction's own answer", err)
	}
}

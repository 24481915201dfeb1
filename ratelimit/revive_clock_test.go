package ratelimit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ratelimit"
)

// TestARevivedBucketKeepsTheClockHonest: a process that wrote to the
// bucket, which is then deleted and created again (revive), must keep
// giving slots no earlier than their time, and must not push the shared
// schedule ahead of the server's time.
func TestARevivedBucketKeepsTheClockHonest(t *testing.T) {
	srv, stores := openStores(t, 2, ratelimit.Config{})
	ls := limiters(t, stores, "chat", ratelimit.Limit{Rate: 50})
	a, b := ls[0], ls[1]
	// Process A works on the old bucket for a while.
	for range 20 {
		if _, err := a.Reserve(t.Context(), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	_, js := srv.Connect(t)
	if err := js.DeleteKeyValue(t.Context(), ratelimit.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // some time passes before the new bucket's revisions catch up
	testenv.CheckFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		_, err := a.Reserve(ctx, 3*time.Second)
		return err
	})
	// A goes on reserving on the new bucket past its old revisions.
	for i := range 80 {
		r, err := a.Reserve(t.Context(), time.Second)
		if w, ok := errors.AsType[*ratelimit.WaitError](err); ok {
			t.Errorf("A reserve %d: next slot %v away", i, w.Wait.Round(time.Millisecond))
			break
		}
		if err != nil {
			t.Fatalf("A reserve %d: %v", i, err)
		}
		now := time.Now() // the embedded server's clock too
		if early := r.At.Sub(now) - r.Delay; early > 100*time.Millisecond {
			t.Errorf("A reserve %d: slot %v is %v ahead of the server's time but Delay is %v: A acts %v before its slot",
				i, r.At.Format("15:04:05.000"), r.At.Sub(now).Round(time.Millisecond), r.Delay, early.Round(time.Millisecond))
		}
		time.Sleep(r.Delay)
	}
	// Another process now asks for a slot within 2 s.
	_, err := b.Reserve(t.Context(), 2*time.Second)
	if w, ok := errors.AsType[*ratelimit.WaitError](err); ok {
		t.Errorf("B: next slot is %v away: the shared schedule was pushed ahead of the server's time", w.Wait.Round(time.Millisecond))
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats A %+v", stores[0].Stats())
}

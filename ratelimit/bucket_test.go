package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/ratelimit"
)

// A deleted bucket (by hand, or lost with its stream) is created again by
// the next call that finds it gone: sending resumes without a restart.
func TestADeletedBucketIsCreatedAgain(t *testing.T) {
	srv, stores := openStores(t, 1, ratelimit.Config{})
	l := limiters(t, stores, "chat", ratelimit.Limit{Rate: 5})[0]
	if _, err := l.Reserve(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	_, js := srv.Connect(t)
	if err := js.DeleteKeyValue(t.Context(), ratelimit.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		_, err := l.Reserve(ctx, 3*time.Second)
		return err
	})
	if _, err := js.KeyValue(t.Context(), ratelimit.DefaultBucket); err != nil {
		t.Fatalf("the bucket is not there again: %v", err)
	}
	if st := stores[0].Stats(); st.Revived != 1 {
		t.Fatalf("stats %+v, want the bucket revived once", st)
	}
}

package ratelimit_test

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/ratelimit"
)

// A dispatcher keeps to a provider's "at most 5 requests in any rolling
// second", shared by every dispatcher on the same NATS.
func ExampleLimiter_Reserve() {
	ctx := context.Background()
	var js jetstream.JetStream // connected to the engine's NATS
	store, err := ratelimit.Open(ctx, js, ratelimit.Config{})
	if err != nil {
		return
	}
	chat, err := store.Limiter("chat", ratelimit.Limit{Rate: 5})
	if err != nil {
		return
	}
	send := func() (retryAfter time.Duration, err error) { return 0, nil } // the provider call

	for {
		r, err := chat.Reserve(ctx, 2*time.Second)
		if w, ok := errors.AsType[*ratelimit.WaitError](err); ok {
			time.Sleep(w.Wait) // or give the work back until then
			continue
		}
		if err != nil {
			time.Sleep(time.Second) // fail closed: no slot, try again later
			continue
		}
		time.Sleep(r.Delay)
		if !r.Valid(time.Now()) {
			continue // stalled past the slot: take a new one
		}
		if retryAfter, err := send(); err != nil && retryAfter > 0 {
			_ = chat.Pause(ctx, retryAfter) // a 429: every dispatcher pauses
		}
		return
	}
}

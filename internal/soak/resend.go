package soak

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
)

// resendAll sends every keyed request the clients got a definitive answer
// to once more, with its key and body, once the engine is idle after the
// kills: each must get its first answer again, marked replayed where it
// was a success, whatever restart the key's record lived through. Whether
// it acted again is checked after, from the stream (one commit per key and
// aggregate). The clients' connections send them, as keys are scoped per
// identity; answers that are not definitive are retried within the
// request budget.
func resendAll(ctx context.Context, rep *Report, cfg Config, conns []*nats.Conn, acks []Ack) {
	c := rep.check("every key answered again after the run")
	var originals []Ack
	for _, a := range acks {
		if a.Key != "" && !a.Repeat {
			originals = append(originals, a)
		}
	}
	work := make(chan Ack)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, nc := range conns {
		cl := client.New(nc)
		wg.Go(func() {
			for a := range work {
				msg := resendOne(ctx, cfg, cl, a)
				mu.Lock()
				c.expect(msg == "", "%s key %s (ack %d): %s", a.Op, a.Key, a.N, msg)
				mu.Unlock()
			}
		})
	}
	for _, a := range originals {
		select {
		case work <- a:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

// resendOne sends a's request again and says how its answer differs from
// a's ("" for none).
func resendOne(ctx context.Context, cfg Config, cl *client.Client, a Ack) string {
	info, ok := endpointByName(a.Op)
	if !ok {
		return "no such endpoint"
	}
	deadline := time.Now().Add(cfg.RequestBudget)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, cfg.AttemptTimeout)
		raw, err := cl.Request(actx, info.Subject, a.Request, client.WithIdempotencyKey(a.Key))
		cancel()
		var ae *api.Error
		errors.As(err, &ae)
		switch {
		case err == nil:
			if a.Status != 200 {
				return "first refused " + a.Code + ", now succeeded: " + string(raw.Data)
			}
			if string(raw.Data) != string(a.Reply) {
				return "answered " + string(raw.Data) + ", first " + string(a.Reply)
			}
			if !raw.Replayed {
				return "same answer, not marked replayed"
			}
			return ""
		case ae != nil && definitive(ae):
			if a.Status != ae.Status || a.Code != ae.Code {
				return "answered " + ae.Code + ", first " + string(a.Reply)
			}
			return ""
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return "no definitive answer: " + err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(50*time.Millisecond<<min(attempt-1, 5), time.Second)):
		}
	}
}

package engine

import (
	"context"
	"time"

	"github.com/bankbook/bankbook/supervisor"
)

// The part partJetStream, on an engine that runs its own nats-server, is
// not ready while that server's JetStream is off or a stream of any
// account has a write error or was not recovered at start
// (embedded.Server.StoreHealth). A file store
// whose write failed once (no file descriptor left, a disk error) refuses
// every later write until the server restarts, and the server does not
// even answer the publishes it refuses: commands time out while every
// other part looks well. An external cluster moves a stream whose store
// fails to another server itself.
const (
	partJetStream  = "jetstream"
	jetStreamEvery = 5 * time.Second
)

func (e *Engine) watchJetStream(ctx context.Context) error {
	h := supervisor.From(ctx)
	last := ""
	t := time.NewTicker(jetStreamEvery)
	defer t.Stop()
	for {
		why := ""
		if err := e.ns.StoreHealth(); err != nil {
			why = err.Error()
		}
		h.SetReady(why == "", why)
		if why != last {
			if why != "" {
				e.log.Error().Str("problem", why).Msg("jetstream: the server refuses writes; restart the engine once the cause is gone")
			} else {
				e.log.Info().Msg("jetstream: the server's streams are healthy again")
			}
			last = why
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

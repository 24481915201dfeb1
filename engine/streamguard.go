package engine

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/supervisor"
)

// The part partEventStream keeps the event stream's settings from letting
// the server drop commits, and says when commits are gone
// (eventstore.Store.Guard): deny delete and deny purge stop a client from
// removing a message, but an identity that may update the stream could
// lower its limits, or delete the stream. It puts such settings back as
// soon as it sees them (on the server's advisories, or within guardEvery),
// and is not ready while the stream has lost commits or its settings could
// not be put back, or the stream is gone.
const (
	partEventStream = "event-stream"
	guardEvery      = 30 * time.Second
)

// streamGuard is the event-stream part. Guard hands it each look on the
// goroutine of run, one at a time.
type streamGuard struct {
	e    *Engine
	last string // the last look's String, logged when it changes
}

func (g *streamGuard) run(ctx context.Context) error {
	h := supervisor.From(ctx)
	return g.e.Events.Guard(ctx, guardEvery, func(seen eventstore.Guarded) {
		changed := seen.String() != g.last
		g.last = seen.String()
		switch {
		case errors.Is(seen.Err, jetstream.ErrStreamNotFound):
			// Never created again here: an empty stream would be a history
			// without the money it held.
			h.SetReady(false, "the event stream is gone: restore the engine from a backup (docs/operations.md, \"Backups\")")
			if changed {
				g.e.log.Error().Err(seen.Err).Msg("event stream: it is gone; every command fails until it is restored")
			}
			return
		case seen.Err != nil:
			// Not ready or ready as before: the connection's own status says
			// when NATS is away.
			if changed {
				g.e.log.Warn().Err(seen.Err).Msg("event stream: its state could not be read")
			}
			return
		case seen.Restore != nil || seen.Lost > 0 || len(seen.Remaining) > 0:
			h.SetReady(false, seen.String())
		default:
			h.SetReady(true, "")
		}
		// Settings put back are logged each time (each is a change someone
		// made); lost commits when their count changes.
		if len(seen.Loss) > 0 || seen.Lost > 0 && changed {
			g.e.log.Error().Strs("settings", seen.Loss).AnErr("restore", seen.Restore).Uint64("lost", seen.Lost).Msg(seen.String())
		}
	})
}

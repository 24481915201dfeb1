package engine

import (
	"context"
	"time"

	"github.com/bankbook/bankbook/internal/memtrim"
)

// The part partMemory returns the memory a burst left behind to the
// operating system (package memtrim) once the engine has been idle for
// Config.IdleTrim, by default idleTrimAfter: the read models applied no new
// commit, and no worker loop handled a message or holds one. It trims once
// per idle spell and counts each trim as the part's work
// (bankbook_part_work_total{part="memory-trim",outcome="processed"}).
const (
	partMemory    = "memory-trim"
	idleTrimAfter = 15 * time.Second // over memtrim.BufferExpiry, so nats-server's write buffers go too
)

// trimMemory is the memory-trim part.
func (e *Engine) trimMemory(ctx context.Context) error {
	after := time.Duration(e.cfg.IdleTrim)
	if after < memtrim.BufferExpiry {
		e.log.Warn().Dur("idle_trim", after).Dur("buffer_expiry", memtrim.BufferExpiry).
			Msg("idle-trim is shorter than nats-server keeps its write buffers: a trim leaves them")
	}
	t := &memtrim.Idle{
		After:    after,
		Activity: e.activity,
		Trim: func() {
			r := memtrim.Free()
			e.trims.Add(1)
			e.log.Debug().Uint64("heap_before", r.HeapInuse).Uint64("heap_after", r.HeapInuseAfter).Uint64("released", r.Released).
				Dur("took", r.Took).Msg("idle: memory returned to the operating system")
		},
	}
	return t.Run(ctx)
}

// activity is a count that grows whenever the engine works: the read
// models' checkpoint plus every worker loop's settled messages (the reactors
// work through a burst's commits after the read models have); busy while a
// loop holds a message.
func (e *Engine) activity() (n uint64, busy bool) {
	n = uint64(e.Runner.Checkpoint())
	for _, l := range e.Loops {
		st := l.Stats()
		n += st.Processed + st.Retried + st.Deferred + st.DeadLettered
		busy = busy || st.InFlight > 0
	}
	return n, busy
}

package engine

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"
)

// A busy engine grows its Go heap to about twice what it holds live (the
// garbage collector's default GOGC=100), and its embedded nats-server keeps
// a write buffer per stream block (up to 8 MB) that expires 10 s after its
// last use, is handed back to a pool by a cleanup after the next collection,
// and leaves the pool over two more. Go returns freed memory to the operating system slowly, so after a
// burst the process keeps well over what it holds for minutes
// (docs/performance.md, "Memory"). The part partMemory gives it back once the
// engine has been idle for Config.IdleTrim, by default idleTrimAfter (the
// read models applied no new
// commit, and no worker loop handled a message): it runs the collections
// that empty the pools and returns the free pages (debug.FreeOSMemory), once
// per idle period. A collection of an idle heap takes milliseconds; nothing
// happens while commits keep coming. Each trim counts as the part's work
// (bankbook_part_work_total{part="memory-trim",outcome="processed"}).
const (
	partMemory     = "memory-trim"
	idleTrimAfter  = 15 * time.Second // nats-server's block caches expire 10 s after their last use
	idleTrimTicks  = 3                // looks at the engine's activity three times per IdleTrim
	idleTrimPasses = 3                // collections before the one FreeOSMemory runs: see above
	idleTrimPause  = 100 * time.Millisecond
)

// idleTrim decides when to trim: after quiet ticks in a row in which
// activity (a count that grows with the engine's work) did not move, once,
// and again only after activity has moved.
type idleTrim struct {
	activity func() uint64
	trim     func()
	quiet    int // ticks without activity before a trim

	last    uint64
	still   int
	trimmed bool
}

// tick looks at activity once and trims if the engine has been quiet long
// enough and has not been trimmed since it last moved. It reports whether it
// trimmed.
func (t *idleTrim) tick() bool {
	if a := t.activity(); a != t.last {
		t.last, t.still, t.trimmed = a, 0, false
		return false
	}
	t.still++
	if t.trimmed || t.still < t.quiet {
		return false
	}
	t.trim()
	t.trimmed = true
	return true
}

// trimMemory is the memory-trim part: it trims the process's memory once the
// engine has been idle for Config.IdleTrim.
func (e *Engine) trimMemory(ctx context.Context) error {
	every := time.Duration(e.cfg.IdleTrim) / idleTrimTicks
	t := &idleTrim{
		activity: e.activity,
		trim: func() {
			freeMemory(e.log)
			e.trims.Add(1)
		},
		quiet: idleTrimTicks,
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.tick()
		}
	}
}

// activity is a count that grows whenever the engine works: the read
// models' checkpoint plus every worker loop's handled messages (the
// reactors work through a burst's commits after the read models have).
func (e *Engine) activity() uint64 {
	n := uint64(e.Runner.Checkpoint())
	for _, l := range e.Loops {
		st := l.Stats()
		n += st.Processed + st.Retried + st.Deferred + st.DeadLettered
	}
	return n
}

// freeMemory lets the buffers reach their pools and leave them, collects,
// and returns the free pages to the
// operating system.
func freeMemory(log zerolog.Logger) {
	start := time.Now()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for range idleTrimPasses {
		runtime.GC()
		time.Sleep(idleTrimPause) // the cleanups run after the collection, on their own goroutine
	}
	debug.FreeOSMemory()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	log.Debug().Uint64("heap_before", before.HeapInuse).Uint64("heap_after", after.HeapInuse).
		Uint64("released", after.HeapReleased).Dur("took", time.Since(start)).Msg("idle: memory returned to the operating system")
}

// Package memtrim returns the memory a burst of work left behind to the
// operating system once a process has been idle.
//
// A busy Go process grows its heap to about twice what it holds live (the
// collector's default GOGC=100), and an embedded nats-server keeps a write
// buffer per stream block (up to 8 MB) that expires 10 s after its last use,
// is handed back to a pool by a cleanup after the next collection, and leaves
// the pool over two more. Go returns freed memory to the operating system
// slowly, so after a burst the process keeps well over what it holds for
// minutes (docs/performance.md, "Memory returned once idle"). Idle decides
// when a process is idle; Free collects and returns the free pages.
//
// Both act on the whole process: in a process that runs several engines,
// one engine's trim pauses the others for its collections (milliseconds on
// an idle heap).
package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"
)

// BufferExpiry is how long nats-server keeps a stream block's write buffer
// after its last use: an idle time shorter than this trims before the
// buffers can go.
const BufferExpiry = 10 * time.Second

const (
	passes = 3 // collections before the one debug.FreeOSMemory runs: see the package doc
	pause  = 100 * time.Millisecond
)

// Result is the heap before and after a Free.
type Result struct {
	HeapInuse, HeapInuseAfter, Released uint64
	Took                                time.Duration
}

// Free lets the pooled buffers go (three collections, 100 ms apart, for the
// cleanups that hand buffers back to their pools run on their own goroutine
// after a collection), then collects once more and returns every free page to
// the operating system (debug.FreeOSMemory).
func Free() Result {
	start := time.Now()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range passes {
		runtime.GC()
		time.Sleep(pause)
	}
	debug.FreeOSMemory()
	runtime.ReadMemStats(&after)
	return Result{HeapInuse: before.HeapInuse, HeapInuseAfter: after.HeapInuse, Released: after.HeapReleased, Took: time.Since(start)}
}

// Idle trims once a process has been idle for Quiet ticks in a row, once per
// idle spell.
type Idle struct {
	// Activity returns a count that grows whenever the process works, and
	// whether work is under way now (a handler still running).
	Activity func() (count uint64, busy bool)
	// Trim trims (Free, and whatever the caller counts).
	Trim func()
	// Quiet is how many ticks in a row without activity make the process
	// idle.
	Quiet int

	last    uint64
	still   int
	trimmed bool
}

// Tick looks at the activity once and trims if the process has been idle for
// Quiet ticks and has not been trimmed since it last worked. It reports
// whether it trimmed.
func (t *Idle) Tick() bool {
	a, busy := t.Activity()
	if a != t.last || busy {
		t.last, t.still, t.trimmed = a, 0, false
		return false
	}
	t.still++
	if t.trimmed || t.still < t.Quiet {
		return false
	}
	t.Trim()
	t.trimmed = true
	return true
}

// Run ticks every so often until ctx ends, and returns nil then.
func (t *Idle) Run(ctx context.Context, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			t.Tick()
		}
	}
}

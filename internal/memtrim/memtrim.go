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

// Ticks is how many times per Idle.After Run looks at the activity. A
// process that stops working is trimmed between After and Latest(After)
// later.
const Ticks = 3

// Latest is how long after its last work a process idle for after at most
// waits for its trim (the ticks are After/Ticks apart).
func Latest(after time.Duration) time.Duration { return after * (Ticks + 1) / Ticks }

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

// Idle trims once a process has been idle for After, once per idle spell:
// Run looks at the activity Ticks times per After, and Ticks looks in a row
// without activity make the process idle.
type Idle struct {
	// After is how long the process must be idle.
	After time.Duration
	// Activity returns a count that grows whenever the process works, and
	// whether work is under way now (a handler still running).
	Activity func() (count uint64, busy bool)
	// Trim trims (Free, and whatever the caller counts).
	Trim func()

	last    uint64
	still   int
	trimmed bool
}

// Tick looks at the activity once and trims if the process has been idle for
// Ticks looks and has not been trimmed since it last worked. It reports
// whether it trimmed.
func (t *Idle) Tick() bool {
	a, busy := t.Activity()
	if a != t.last || busy {
		t.last, t.still, t.trimmed = a, 0, false
		return false
	}
	t.still++
	if t.trimmed || t.still < Ticks {
		return false
	}
	t.Trim()
	t.trimmed = true
	return true
}

// Run ticks every After/Ticks until ctx ends, and returns nil then.
func (t *Idle) Run(ctx context.Context) error {
	tick := time.NewTicker(t.After / Ticks)
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

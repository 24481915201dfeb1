package projections_test

import (
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/projections"
)

// Hash calls made at once share reads of the read models: each waits at
// most for the read under way and the one after it, so a flood of
// projection.status with hash reads the file a few times, not once per
// request on every core at once.
func TestConcurrentHashesShareReads(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	want, wantCP := hashOf(t, st)
	// Each read takes its time, as on a large file: callers that come
	// meanwhile wait for it.
	projections.SetHashHook(st, func() { time.Sleep(100 * time.Millisecond) })
	before := projections.HashRuns(st)
	const callers = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h, cp, err := st.Hash()
			if err != nil || h != want || cp != wantCP {
				t.Errorf("Hash = %s, %d, %v; want %s, %d", h, cp, err, want, wantCP)
			}
		}()
	}
	close(start)
	wg.Wait()
	// Shared, the calls make a few reads: one per 100 ms over which they
	// arrive (at most 3 when they all arrive within 200 ms; 8 leaves a
	// loaded machine's scheduling its room). Unshared, they make 64.
	if runs := projections.HashRuns(st) - before; runs < 1 || runs > 8 {
		t.Errorf("%d concurrent Hash calls read the read models %d times, want a few", callers, runs)
	}
}

// A read for Hash that panics (bbolt does on a corrupt page) panics in its
// caller, whose request the server answers 500, and leaves Hash usable:
// the next call reads again rather than wait forever for the read that
// died.
func TestHashAfterAReadPanickedStillAnswers(t *testing.T) {
	st := openStore(t, tempPath(t, "rm.db"))
	want, wantCP := hashOf(t, st)
	var once sync.Once
	projections.SetHashHook(st, func() { once.Do(func() { panic("corrupt page") }) })
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the read's panic did not reach its caller")
			}
		}()
		_, _, _ = st.Hash()
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h, cp, err := st.Hash()
		if err != nil || h != want || cp != wantCP {
			t.Errorf("Hash after a panicked read = %s, %d, %v; want %s, %d", h, cp, err, want, wantCP)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Hash after a read that panicked did not return in 10 s")
	}
}

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
	if runs := projections.HashRuns(st) - before; runs < 1 || runs > 3 {
		t.Errorf("%d concurrent Hash calls read the read models %d times, want a few", callers, runs)
	}
}

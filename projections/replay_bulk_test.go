package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bankbook/bankbook/projections"
)

// A replay applies the stream in batches of many commits and commits its
// transaction every so many commits; however they fall, it holds what the
// live Runner (which applies as the commits come) holds: the same content
// hash at the same checkpoint.
func TestReplayInAnyNumberOfTransactionsEqualsTheLiveModels(t *testing.T) {
	f := newFixture(t)
	live := openStore(t, tempPath(t, "live.db"))
	r := projections.NewRunner(f.es, live, testLogger(t))
	startRunner(t, r)
	// 420 commits: more than one read batch (256).
	for i := range 600 {
		id := fmt.Sprintf("o%03d", i%240)
		if i < 240 {
			f.submit(t, id, i)
		} else if i%2 == 0 {
			f.cancel(t, id, "changed my mind", t0.Add(time.Duration(i)*time.Minute))
		}
	}
	last := f.lastSeq(t)
	waitFor(t, r, last)
	want, cp := hashOf(t, live)
	if cp != last {
		t.Fatalf("live read models at %d, want %d", cp, last)
	}
	for _, every := range []int{1, 300, 1 << 20} {
		t.Run(fmt.Sprintf("a transaction every %d commits", every), func(t *testing.T) {
			defer projections.SetBulkCommits(every)()
			res, err := projections.ReplayWith(context.Background(), f.es.Reader(), tempPath(t, "replay.db"), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Checkpoint != last || res.Hash != want {
				t.Fatalf("replay at %d with hash %s, want %d with the live hash %s", res.Checkpoint, res.Hash, last, want)
			}
		})
	}
}

package timers_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testcluster"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
)

// TestArmAcrossLeaderChanges: timers armed while the leader of a
// replicated timers stream moves are armed. A publish whose ack is lost in
// the election is tried again within the caller's budget, not waited for
// until the budget runs out (a command's 503 after 10 s).
func TestArmAcrossLeaderChanges(t *testing.T) {
	c := testcluster.Start(t, 3, "")
	nc, js := testenv.Dial(t, c.URLs()[0])
	ctx := context.Background()
	tm, err := timers.Open(ctx, js, timers.Config{Log: zerolog.Nop(), Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	const stream = "BANKBOOK_TIMERS"
	var (
		wg    sync.WaitGroup
		stop  atomic.Bool
		armed atomic.Int64
		mu    sync.Mutex
		fails []error
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				actx, cancel := context.WithTimeout(ctx, 8*time.Second)
				err := tm.Arm(actx, "order_cancel", fmt.Sprintf("o%d-%d", w, i), time.Now().Add(time.Hour), nil)
				cancel()
				if err != nil {
					mu.Lock()
					fails = append(fails, err)
					mu.Unlock()
					return
				}
				armed.Add(1)
			}
		})
	}
	names := c.Names()
	for range 4 {
		leader := c.WaitStreamLeader(testcluster.GlobalAccount, stream, 10*time.Second)
		to := names[(slices.Index(names, leader)+1)%len(names)]
		c.MoveStreamLeader(nc, testcluster.GlobalAccount, stream, to, time.Minute)
		time.Sleep(300 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d timers armed, then %d arms failed across the leader changes: %v", armed.Load(), len(fails), fails)
	}
	t.Logf("%d timers armed across 4 leader changes", armed.Load())
}

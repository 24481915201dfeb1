package timers_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/timers"
)

// One handler at a time holds a timer's turn, across connections (each
// an instance): the others are told until when it is held; an ended turn
// is taken again at once, one whose holder died once it has run out, and
// the turns of other timers are their own.
func TestTurnIsHeldByOneAtATime(t *testing.T) {
	srv := testenv.Start(t, "")
	ctx := context.Background()
	var instances []*timers.Timers
	for range 4 {
		instances = append(instances, open(t, srv))
	}
	take := func(tm *timers.Timers, id string, d time.Duration) (func(), error) {
		return tm.TakeTurn(ctx, "reconcile_bank", id, d)
	}
	// Taken at the same moment by every instance: one holds it.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ends  []func()
		other []error
	)
	for _, tm := range instances {
		wg.Go(func() {
			end, err := take(tm, "daily", time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				other = append(other, err)
				return
			}
			ends = append(ends, end)
		})
	}
	wg.Wait()
	if len(ends) != 1 || len(other) != len(instances)-1 {
		t.Fatalf("%d took the turn at once, the others: %v", len(ends), other)
	}
	for _, err := range other {
		var held *timers.TurnHeldError
		if !errors.As(err, &held) || time.Until(held.Until) < 50*time.Second {
			t.Fatalf("refused with %v, want the turn held for about a minute", err)
		}
	}
	if end, err := take(instances[0], "other", time.Minute); err != nil {
		t.Fatalf("another timer's turn: %v", err)
	} else {
		end()
	}
	ends[0]()
	end, err := take(instances[1], "daily", 300*time.Millisecond)
	if err != nil {
		t.Fatalf("the turn after it ended: %v", err)
	}
	_ = end // its holder dies: the turn runs out
	if _, err := take(instances[2], "daily", time.Minute); err == nil {
		t.Fatal("taken while its holder's turn lasts")
	}
	time.Sleep(400 * time.Millisecond)
	end, err = take(instances[2], "daily", time.Minute)
	if err != nil {
		t.Fatalf("the turn after it ran out: %v", err)
	}
	if _, err := take(instances[3], "daily", time.Minute); err == nil {
		t.Fatal("taken over while the instance that took it over holds it")
	}
	end()
	end() // twice: nothing more
	if end, err := take(instances[3], "daily", time.Minute); err != nil {
		t.Fatalf("the turn after it ended: %v", err)
	} else {
		end()
	}
}

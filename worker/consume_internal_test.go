package worker

import (
	"fmt"
	"testing"
	"time"
)

// TestMissesInARow: misses 2×Heartbeat apart count up; a message, or a miss
// long after the one before (heartbeats came in between), starts again.
func TestMissesInARow(t *testing.T) {
	s := &Subscription{opts: ConsumeOptions{Heartbeat: time.Second}}
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var got []int32
	at := func(d time.Duration) { got = append(got, s.missed(t0.Add(d))) }
	at(0)
	at(2 * time.Second)
	s.delivered()
	at(4 * time.Second)
	at(6 * time.Second)
	at(8 * time.Second)
	at(10 * time.Second)
	at(60 * time.Second) // a minute of heartbeats in between
	at(62 * time.Second)
	if want := "[1 2 1 2 3 4 1 2]"; fmt.Sprint(got) != want {
		t.Fatalf("misses in a row %v, want %s", got, want)
	}
	var rep []int32
	for n := int32(1); n <= 40; n++ {
		if reported(n) {
			rep = append(rep, n)
		}
	}
	if want := fmt.Sprint([]int32{ReportMisses, ReportMisses + ReportEvery, ReportMisses + 2*ReportEvery}); fmt.Sprint(rep) != want {
		t.Fatalf("reported misses %v, want %s", rep, want)
	}
}

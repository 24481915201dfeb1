package memtrim

import (
	"testing"
	"time"
)

// TestIdle drives the idle detector look by look: no trim while the count
// moves or work is under way, one after Ticks quiet looks in a row, none
// again until the process has worked, and one again after the next quiet
// spell.
func TestIdle(t *testing.T) {
	var (
		seq  uint64
		busy bool
	)
	trims := 0
	tr := &Idle{After: time.Second, Activity: func() (uint64, bool) { return seq, busy }, Trim: func() { trims++ }}
	step := func(advance uint64, want bool) {
		t.Helper()
		seq += advance
		if got := tr.Tick(); got != want {
			t.Fatalf("tick at seq %d (still %d): trimmed %v, want %v", seq, tr.still, got, want)
		}
	}
	quiet := func() { // Ticks quiet looks: the last one trims
		t.Helper()
		for range Ticks - 1 {
			step(0, false)
		}
		step(0, true)
	}
	for range 5 { // busy: every look sees new work
		step(7, false)
	}
	quiet()
	for range 10 {
		step(0, false) // trimmed once per quiet spell
	}
	step(1, false) // work again
	for range Ticks - 1 {
		step(0, false)
	}
	step(1, false) // work before the spell was long enough starts it over
	quiet()
	busy = true // a handler holds a message while the count stands still
	for range 2 * Ticks {
		step(0, false)
	}
	busy = false
	quiet()
	if trims != 3 {
		t.Fatalf("%d trims, want 3", trims)
	}
	if got := Latest(3 * time.Second); got != 4*time.Second {
		t.Fatalf("Latest(3s) = %v, want 4s with %d ticks", got, Ticks)
	}
}

package memtrim

import "testing"

// TestIdle drives the idle detector tick by tick: no trim while the count
// moves or work is under way, one after quiet ticks in a row, none again
// until the process has worked, and one again after the next quiet spell.
func TestIdle(t *testing.T) {
	var (
		seq  uint64
		busy bool
	)
	trims := 0
	tr := &Idle{Activity: func() (uint64, bool) { return seq, busy }, Trim: func() { trims++ }, Quiet: 3}
	step := func(advance uint64, want bool) {
		t.Helper()
		seq += advance
		if got := tr.Tick(); got != want {
			t.Fatalf("tick at seq %d (still %d): trimmed %v, want %v", seq, tr.still, got, want)
		}
	}
	for range 5 { // busy: every tick sees new commits
		step(7, false)
	}
	step(0, false)
	step(0, false)
	step(0, true) // third quiet tick
	for range 10 {
		step(0, false) // trimmed once per quiet spell
	}
	step(1, false) // work again
	step(0, false)
	step(0, false)
	step(1, false) // a commit restarts the count
	step(0, false)
	step(0, false)
	step(0, true)
	busy = true // a handler holds a message, the count stands still
	for range 5 {
		step(0, false)
	}
	busy = false
	step(0, false)
	step(0, false)
	step(0, true)
	if trims != 3 {
		t.Fatalf("%d trims, want 3", trims)
	}
}

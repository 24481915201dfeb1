package engine

import "testing"

// TestIdleTrim drives the idle detector tick by tick: no trim while the
// count moves, one after quiet ticks in a row, none again until it has moved,
// and one again after the next quiet spell.
func TestIdleTrim(t *testing.T) {
	var seq uint64
	trims := 0
	tr := &idleTrim{activity: func() uint64 { return seq }, trim: func() { trims++ }, quiet: 3}
	step := func(advance uint64, want bool) {
		t.Helper()
		seq += advance
		if got := tr.tick(); got != want {
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
	if trims != 2 {
		t.Fatalf("%d trims, want 2", trims)
	}
}

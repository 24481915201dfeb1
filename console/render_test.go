package console

import (
	"math"
	"testing"
)

// Amounts read with their sign before the unit, across the whole int64
// range: a balance of exactly -2^63 (a liability credited 2^63 won, which
// int64 holds) has no positive counterpart to negate into.
func TestWon(t *testing.T) {
	for n, want := range map[int64]string{
		0:             "₩0",
		12_000:        "₩12,000",
		-1_500:        "-₩1,500",
		math.MaxInt64: "₩9,223,372,036,854,775,807",
		math.MinInt64: "-₩9,223,372,036,854,775,808",
	} {
		if got := won(n); got != want {
			t.Errorf("won(%d) = %q, want %q", n, got, want)
		}
	}
}

package engine

import (
	"slices"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/projections"
)

// TestPartConcurrency: payouts run 8 at once unless told otherwise, the
// other parts one at a time, and "payouts" is a part the flag accepts.
func TestPartConcurrency(t *testing.T) {
	var c Concurrency
	for part, want := range map[string]int{"payouts": 8, "react-money": 1, "react-orders": 1, "timers": 1} {
		if got := c.Of(part); got != want {
			t.Errorf("default Of(%q) = %d, want %d", part, got, want)
		}
	}
	if err := c.Set("payouts=2,react-money=4"); err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Of("payouts") != 2 || c.Of("react-money") != 4 || c.Of("timers") != 1 {
		t.Fatalf("after Set: %v", c)
	}
	if s := c.String(); s != "react-money=4,payouts=2" {
		t.Fatalf("String() = %q", s)
	}
	if err := (Concurrency{"payout": 2}).validate(); err == nil {
		t.Fatal("an unknown part was accepted")
	}
}

// TestDeadLetterPartsAreTheEnginesParts: deadletter.list takes for part
// exactly the parts that dead-letter work (every worker loop, and the
// projections), so none of them can be left out of a filtered list.
func TestDeadLetterPartsAreTheEnginesParts(t *testing.T) {
	want := append(slices.Clone(concurrentParts), projections.DeadLetterPart)
	got := slices.Clone(api.DeadLetterParts)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("api.DeadLetterParts %v, the engine's %v", got, want)
	}
}

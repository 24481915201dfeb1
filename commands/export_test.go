package commands

import (
	"testing"
	"time"
)

// BoundRecording sets how long RecordDeposit's work may take from before
// its claim, and runs claimed once it holds the claim, until t ends.
func BoundRecording(t *testing.T, within time.Duration, claimed func()) {
	old := recordWithin
	recordWithin, testHookClaimed = within, claimed
	t.Cleanup(func() { recordWithin, testHookClaimed = old, nil })
}

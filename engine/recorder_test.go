package engine

import (
	"context"
	"testing"
	"time"

	"github.com/bankbook/bankbook/bankfeed"
)

// TestScannerRecorderSaysWhetherItRecorded: the bank scanner's recorder
// reports a transaction it recorded as new and the same transaction again
// as not (the deposit's duplicate), which is how a scan tells a transaction
// that arrived only now from a repeat of its overlap.
func TestScannerRecorderSaysWhetherItRecorded(t *testing.T) {
	e := startFast(t)
	r := recorder{e.Commands.Deposits}
	tx := bankfeed.Transaction{BankTxnID: "R-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "김민수042", Amount: 35000,
		DepositedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)}
	ctx := context.Background()
	if recorded, err := r.Record(ctx, tx); err != nil || !recorded {
		t.Fatalf("first Record: recorded %v, %v; want true", recorded, err)
	}
	if recorded, err := r.Record(ctx, tx); err != nil || recorded {
		t.Fatalf("Record again: recorded %v, %v; want false (a repeat)", recorded, err)
	}
}

package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// scanningLedger is the read models as a run finds them: T-new is not
// recorded yet. While the run reads them, the scanner records T-new (a
// commit the read models have not applied) and then advances the
// account's watermark past it, as bankfeed.Scanner does (record, then
// advance).
type scanningLedger struct {
	onRead func()
	done   bool
}

func (l *scanningLedger) DepositsOn(string, time.Time, time.Time) ([]domain.RecordedDeposit, eventstore.Seq, error) {
	if !l.done {
		l.done = true
		l.onRead()
	}
	return nil, 1, nil
}
func (l *scanningLedger) DepositsRecordedBetween(string, eventstore.Seq, eventstore.Seq, time.Time, time.Time) ([]domain.RecordedDeposit, error) {
	return nil, nil
}
func (l *scanningLedger) DepositsWithTxn([]string) ([]domain.RecordedDeposit, error) { return nil, nil }
func (l *scanningLedger) Carry(string, string) (domain.ReconcileCarry, error) {
	return domain.ReconcileCarry{}, nil
}

// TestReconcileBankReadsTheWatermarkBeforeTheLedger: a transaction the
// scanner had not covered when the run read the ledger is a timing
// difference, however far the watermark moves while the run reads: the
// run compares with the watermark it read before the ledger.
func TestReconcileBankReadsTheWatermarkBeforeTheLedger(t *testing.T) {
	es := storeOpeners[1].open(t) // JetStream
	u := newUnit(t, es)
	ctx := context.Background()
	at := u.clock.Now().Add(-time.Hour)
	// The scanner has covered the account up to 10 minutes before T-new.
	if err := u.marks.Advance(ctx, collect.Number, at.Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	line := api.StatementLine{BankTxnID: "T-new", AccountNumber: collect.Number, DepositorName: "아무개", Amount: 5000, DepositedAt: at}
	ledger := &scanningLedger{onRead: func() {
		if _, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: line.BankTxnID, AccountNumber: line.AccountNumber,
			DepositorName: line.DepositorName, Amount: line.Amount, DepositedAt: line.DepositedAt}); err != nil {
			t.Fatal(err)
		}
		if err := u.marks.Advance(ctx, collect.Number, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}}
	sum := sha256.Sum256([]byte("statement"))
	run, err := u.Deposits.ReconcileBank(ctx, commands.Meta{Command: api.ReconcileBank.Subject},
		api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: []api.StatementLine{line}}, ledger,
		func(context.Context) (eventstore.Seq, error) { return 1, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scan_watermark %v, counts %+v", run.Accounts[0].ScanWatermark, run.Counts)
	if run.Counts.TimingDifference != 1 || run.Counts.MissingInLedger != 0 {
		t.Errorf("T-new: missing_in_ledger %+v, timing_difference %+v: want a timing difference (the ledger was read before the scanner covered it)",
			run.MissingInLedger, run.TimingDifference)
	}
}

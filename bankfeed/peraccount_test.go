package bankfeed

import (
	"context"
	"sync"
	"testing"
	"time"
)

// keyedRecorder records transactions once per account and bank_txn_id, as
// the engine's deposits are keyed (domain.NewDepositID).
type keyedRecorder struct {
	mu  sync.Mutex
	got map[[2]string]Transaction
}

func (r *keyedRecorder) Record(_ context.Context, t Transaction) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{NormalizeAccountNumber(t.AccountNumber), t.BankTxnID}
	_, seen := r.got[k]
	r.got[k] = t
	return !seen, nil
}

// TestScannerBankTxnIDsArePerAccount: banks number transactions per
// account (docs/api.md, reconciliation; deposit IDs are per account and
// bank_txn_id), so a feed of the collection account with its dedicated
// sub-accounts may show one bank_txn_id on two accounts: two transactions,
// both recorded. Refusing the scan as a conflicting duplicate would fail
// every scan after it, for good: no deposit of the feed recorded again and
// the watermark stuck.
func TestScannerBankTxnIDsArePerAccount(t *testing.T) {
	own := Transaction{BankTxnID: "0001", AccountNumber: collect, DepositorName: "김민수042", Amount: 35000, DepositedAt: t0}
	onSub := Transaction{BankTxnID: "0001", AccountNumber: sub(1), DepositorName: "가게", Amount: 50000, DepositedAt: t0.Add(time.Second)}
	res := ScanResult{Transactions: []Transaction{own, onSub, onSub, own}, CompleteUpTo: t0.Add(time.Minute)}
	src := &scriptedSource{results: []ScanResult{res}}
	rec := &keyedRecorder{got: map[[2]string]Transaction{}}
	wm := newWatermarks()
	s := &Scanner{Source: src, Account: collect, Recorder: rec, Watermarks: wm, IsSubAccount: subAccounts().contains}
	st, err := s.ScanOnce(context.Background())
	if err != nil {
		t.Fatalf("ScanOnce: %v", err)
	}
	if len(rec.got) != 2 || st.Seen != 2 || st.Repeats != 2 || !wm.get(collect).Equal(res.CompleteUpTo) {
		t.Fatalf("stats %+v, recorded %v, watermark %v; want both transactions recorded once and the watermark at %v",
			st, rec.got, wm.get(collect), res.CompleteUpTo)
	}
}

package bankfeed_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bankbook/bankbook/bankfeed"
)

// mapRecorder records transactions in a map: idempotent on BankTxnID, and
// safe for the scanner's concurrent calls.
type mapRecorder struct {
	mu  sync.Mutex
	got map[string]bankfeed.Transaction
}

func (m *mapRecorder) Record(_ context.Context, t bankfeed.Transaction) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, seen := m.got[t.BankTxnID]
	m.got[t.BankTxnID] = t
	return !seen, nil
}

// mapWatermarks keeps watermarks in a map; they never move backwards.
type mapWatermarks map[string]time.Time

func (m mapWatermarks) Watermark(_ context.Context, account string) (time.Time, error) {
	return m[account], nil
}

func (m mapWatermarks) Advance(_ context.Context, account string, upTo time.Time) error {
	if upTo.After(m[account]) {
		m[account] = upTo
	}
	return nil
}

func ExampleScanner() {
	now := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	bank, _ := bankfeed.NewSimBank(bankfeed.SimOptions{
		Now:  func() time.Time { return now },
		Lag:  time.Minute, // the provider refreshes once a minute
		Seed: 1,
	})
	rec, marks := &mapRecorder{got: map[string]bankfeed.Transaction{}}, mapWatermarks{}
	s := &bankfeed.Scanner{Source: bank, Account: "123-456-789", Recorder: rec, Watermarks: marks}

	_, _ = bank.Transfer("김민수042", 35000, "123-456-789")
	now = now.Add(30 * time.Second)
	st, _ := s.ScanOnce(context.Background()) // too early: the bank has not refreshed
	fmt.Println(st.Seen, marks["123-456-789"].Format(time.TimeOnly))

	now = now.Add(time.Minute)
	st, _ = s.ScanOnce(context.Background())
	fmt.Println(st.Seen, marks["123-456-789"].Format(time.TimeOnly))

	st, _ = s.ScanOnce(context.Background()) // overlapping scan: seen again, recorded once
	fmt.Println(st.Seen, len(rec.got))
	// Output:
	// 0 23:59:30
	// 1 00:00:30
	// 1 1
}

// A collection account scanned with its virtual sub-accounts: the dedicated
// account numbers of a range route money into it, so their transfers are
// kept, under the account's one watermark.
func ExampleScanner_subAccounts() {
	now := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	bank, _ := bankfeed.NewSimBank(bankfeed.SimOptions{Now: func() time.Time { return now }, Seed: 1})
	dedicated := func(n string) bool { // 5001000000–5001999999, ten digits
		v, err := strconv.ParseUint(n, 10, 64)
		return err == nil && len(n) == 10 && v >= 5001000000 && v <= 5001999999
	}
	rec, marks := &mapRecorder{got: map[string]bankfeed.Transaction{}}, mapWatermarks{}
	s := &bankfeed.Scanner{
		Source:       bank.SourceWith("123-456-789", dedicated),
		Account:      "123-456-789",
		IsSubAccount: dedicated,
		Recorder:     rec,
		Watermarks:   marks,
	}

	_, _ = bank.Transfer("김민수042", 35000, "123-456-789") // an order
	_, _ = bank.Transfer("행복마트", 480000, "5001000042")   // a store's dedicated account
	_, _ = bank.Transfer("someone", 1000, "999-000")     // not ours
	now = now.Add(time.Second)
	st, _ := s.ScanOnce(context.Background())
	fmt.Println(st.Seen, st.SubAccounts, len(rec.got), len(marks))
	// Output:
	// 2 1 2 1
}

func ExampleParseCSV() {
	statement := "deposited_at,amount,depositor_name,account_number,bank_txn_id\n" +
		"2024-05-01T09:30:00+09:00,35000,김민수042,123-456-789,T-1\n" +
		"2024-05-01T09:31:00+09:00,1.5,\"Kim, Minsu\",123-456-789,T-2\n" +
		"2024-05-01T09:32:00+09:00,0,,123-456-789,T-3\n"
	txns, err := bankfeed.ParseCSV(strings.NewReader(statement))
	fmt.Println(len(txns))
	fmt.Println(err)
	// Output:
	// 0
	// line 3: amount: "1.5" is not an integer in minor units (digits only: no sign, separator or decimals)
	// line 4: amount: must be greater than 0, got 0
	// line 4: depositor_name: is required
}

package bankfeed

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// t0 is the start of every test clock: 09:00 in Seoul, on a whole second.
var t0 = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock { return &testClock{now: t0} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newBank returns a SimBank on clock with the given options.
func newBank(t *testing.T, clock *testClock, opts SimOptions) *SimBank {
	t.Helper()
	opts.Now = clock.Now
	if opts.Seed == 0 {
		opts.Seed = 42
	}
	b, err := NewSimBank(opts)
	if err != nil {
		t.Fatalf("NewSimBank: %v", err)
	}
	return b
}

// transfer makes a transfer that must succeed.
func transfer(t *testing.T, b *SimBank, name string, amount int64, account string) Transaction {
	t.Helper()
	tx, err := b.Transfer(name, amount, account)
	if err != nil {
		t.Fatalf("Transfer(%q, %d, %q): %v", name, amount, account, err)
	}
	return tx
}

// ids returns the bank transaction IDs of txns, in order.
func ids(txns []Transaction) []string {
	out := make([]string, len(txns))
	for i, t := range txns {
		out[i] = t.BankTxnID
	}
	return out
}

// countIDs counts each ID of txns.
func countIDs(txns []Transaction) map[string]int {
	m := map[string]int{}
	for _, t := range txns {
		m[t.BankTxnID]++
	}
	return m
}

// joined splits an errors.Join result into its parts.
func joined(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		return u.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// memRecorder is an in-memory Recorder, idempotent on BankTxnID.
type memRecorder struct {
	mu     sync.Mutex
	byID   map[string]Transaction
	order  []string // IDs in the order of Record calls
	calls  int
	failOn func(call int, t Transaction) error // optional
	hook   func(t Transaction)                 // optional, called before recording
}

func newRecorder() *memRecorder { return &memRecorder{byID: map[string]Transaction{}} }

func (r *memRecorder) Record(_ context.Context, t Transaction) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.hook != nil {
		r.hook(t)
	}
	if r.failOn != nil {
		if err := r.failOn(r.calls, t); err != nil {
			return false, err
		}
	}
	if old, ok := r.byID[t.BankTxnID]; ok {
		if !old.Equal(t) {
			return false, errors.New("memRecorder: same id, different transaction")
		}
		return false, nil
	}
	r.byID[t.BankTxnID] = t
	r.order = append(r.order, t.BankTxnID)
	return true, nil
}

func (r *memRecorder) recorded() map[string]Transaction {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Transaction, len(r.byID))
	for k, v := range r.byID {
		out[k] = v
	}
	return out
}

// memWatermarks is an in-memory Watermarks that never moves backwards and
// remembers every Advance call.
type memWatermarks struct {
	mu       sync.Mutex
	marks    map[string]time.Time
	advances []time.Time
	err      error // returned by Advance when set
}

func newWatermarks() *memWatermarks { return &memWatermarks{marks: map[string]time.Time{}} }

func (w *memWatermarks) Watermark(_ context.Context, account string) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.marks[account], nil
}

func (w *memWatermarks) Advance(_ context.Context, account string, upTo time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.advances = append(w.advances, upTo)
	if upTo.After(w.marks[account]) {
		w.marks[account] = upTo
	}
	return nil
}

func (w *memWatermarks) get(account string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.marks[account]
}

// scriptedSource answers scans from a list of results and remembers since.
type scriptedSource struct {
	mu      sync.Mutex
	results []ScanResult
	errs    []error
	sinces  []time.Time
}

func (s *scriptedSource) Scan(_ context.Context, since time.Time) (ScanResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.sinces)
	s.sinces = append(s.sinces, since)
	if i < len(s.errs) && s.errs[i] != nil {
		return ScanResult{}, s.errs[i]
	}
	if i < len(s.results) {
		return s.results[i], nil
	}
	return s.results[len(s.results)-1], nil
}

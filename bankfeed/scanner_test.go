package bankfeed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/supervisor"
)

// newScanner returns a Scanner of collect over src with in-memory storage.
func newScanner(src Source) (*Scanner, *memRecorder, *memWatermarks) {
	rec, wm := newRecorder(), newWatermarks()
	return &Scanner{Source: src, Account: collect, Recorder: rec, Watermarks: wm}, rec, wm
}

func scanOnce(t *testing.T, s *Scanner) ScanStats {
	t.Helper()
	st, err := s.ScanOnce(context.Background())
	if err != nil {
		t.Fatalf("ScanOnce: %v", err)
	}
	return st
}

// TestScannerRecordsEachTransactionOnce drives a lagging, duplicating bank
// with random transfers between overlapping scans and checks that every
// deposit ends up recorded exactly once and the watermark is honest.
func TestScannerRecordsEachTransactionOnce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	clock := newClock()
	bank := newBank(t, clock, SimOptions{Lag: 3 * time.Minute, DuplicateRate: 0.3, PageSize: 3, Seed: seed})
	s, rec, wm := newScanner(bank)
	s.Overlap = 2 * time.Minute

	for range 40 {
		for range rng.IntN(4) {
			account := collect
			if rng.IntN(4) == 0 {
				account = "555-0000"
			}
			transfer(t, bank, "buyer"+strings.Repeat("x", rng.IntN(5)), 1+rng.Int64N(100000), account)
			clock.Advance(time.Duration(rng.IntN(90)) * time.Second)
		}
		before := wm.get(collect)
		st := scanOnce(t, s)
		if want := clock.Now().Add(-3 * time.Minute); !st.CompleteUpTo.Equal(want) || !wm.get(collect).Equal(want) {
			t.Fatalf("watermark %v, CompleteUpTo %v; want now−lag %v", wm.get(collect), st.CompleteUpTo, want)
		}
		if wm.get(collect).Before(before) {
			t.Fatalf("watermark moved back from %v to %v", before, wm.get(collect))
		}
		// An honest provider, however late it shows a transfer, never
		// brings one dated before the watermark it gave.
		if len(st.Late) > 0 {
			t.Fatalf("late transactions %v from a provider whose completeness holds", st.Late)
		}
		// The watermark's promise: every deposit before it is recorded.
		got := rec.recorded()
		for _, x := range bank.Transactions() {
			if x.AccountNumber == collect && x.DepositedAt.Before(wm.get(collect)) {
				if _, ok := got[x.BankTxnID]; !ok {
					t.Fatalf("%s deposited at %v is before the watermark %v but not recorded", x.BankTxnID, x.DepositedAt, wm.get(collect))
				}
			}
		}
	}
	clock.Advance(time.Hour)
	scanOnce(t, s)

	var want []Transaction
	for _, x := range bank.Transactions() {
		if x.AccountNumber == collect {
			want = append(want, x)
		}
	}
	got := rec.recorded()
	if len(got) != len(want) {
		t.Fatalf("recorded %d distinct transactions, the bank has %d", len(got), len(want))
	}
	for _, x := range want {
		if !got[x.BankTxnID].Equal(x) {
			t.Errorf("recorded %+v, bank has %+v", got[x.BankTxnID], x)
		}
	}
	if rec.calls <= len(want) && len(want) > 0 {
		t.Logf("only %d Record calls for %d transactions: the scans did not overlap", rec.calls, len(want))
	}
}

func TestScannerScanStart(t *testing.T) {
	res := ScanResult{CompleteUpTo: t0.Add(time.Hour)}
	for _, tc := range []struct {
		name      string
		overlap   time.Duration
		watermark time.Time
		want      time.Time
	}{
		{"no watermark: from the beginning", 0, time.Time{}, time.Time{}},
		{"default overlap", 0, t0, t0.Add(-DefaultScanOverlap)},
		{"own overlap", time.Minute, t0, t0.Add(-time.Minute)},
		{"no overlap", -1, t0, t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &scriptedSource{results: []ScanResult{res}}
			s, _, wm := newScanner(src)
			s.Overlap = tc.overlap
			if !tc.watermark.IsZero() {
				_ = wm.Advance(context.Background(), collect, tc.watermark)
			}
			scanOnce(t, s)
			if !src.sinces[0].Equal(tc.want) {
				t.Fatalf("since = %v, want %v", src.sinces[0], tc.want)
			}
		})
	}
}

func TestScannerAdvancesOnlyAfterEveryRecord(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	for i := range 3 {
		transfer(t, bank, "A", int64(1000+i), collect)
		clock.Advance(time.Second)
	}
	s, rec, wm := newScanner(bank)
	rec.hook = func(Transaction) {
		if !wm.get(collect).IsZero() {
			t.Errorf("watermark advanced to %v while recording", wm.get(collect))
		}
	}
	st := scanOnce(t, s)
	if st.Seen != 3 || st.Recorded != 3 || !st.Watermark.Equal(clock.Now()) || !wm.get(collect).Equal(clock.Now()) {
		t.Fatalf("stats %+v, watermark %v; want 3 recorded and the watermark at now", st, wm.get(collect))
	}
}

func TestScannerFailedRecordLeavesWatermark(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	for i := range 3 {
		transfer(t, bank, "A", int64(1000+i), collect)
		clock.Advance(time.Second)
	}
	s, rec, wm := newScanner(bank)
	boom := errors.New("event store unavailable")
	rec.failOn = func(call int, _ Transaction) error {
		if call == 2 {
			return boom
		}
		return nil
	}
	st, err := s.ScanOnce(context.Background())
	if !errors.Is(err, boom) || st.Recorded != 1 {
		t.Fatalf("ScanOnce = %+v, %v; want the Recorder's error after 1 record", st, err)
	}
	if !wm.get(collect).IsZero() || len(wm.advances) != 0 {
		t.Fatalf("watermark %v after a failed record; want none", wm.get(collect))
	}

	// The next scan repeats the same ground and finishes the job.
	st = scanOnce(t, s)
	if st.Recorded != 3 || len(rec.recorded()) != 3 || !wm.get(collect).Equal(clock.Now()) {
		t.Fatalf("second scan %+v, %d recorded, watermark %v", st, len(rec.recorded()), wm.get(collect))
	}
}

func TestScannerErrorsLeaveWatermark(t *testing.T) {
	valid := Transaction{BankTxnID: "T-1", AccountNumber: collect, DepositorName: "A", Amount: 1000, DepositedAt: t0}
	changed := valid
	changed.Amount = 2000
	invalid := valid
	invalid.BankTxnID, invalid.Amount = "T-2", 0
	noAccount := valid
	noAccount.BankTxnID, noAccount.AccountNumber = "T-3", ""
	outage := errors.New("provider down")
	later := t0.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		src     Source
		advErr  error
		is      error
		records int
	}{
		{"source error", &scriptedSource{errs: []error{outage}}, nil, outage, 0},
		{"invalid transaction", &scriptedSource{results: []ScanResult{{Transactions: []Transaction{valid, invalid}, CompleteUpTo: later}}}, nil, ErrInvalidTransaction, 0},
		{"transaction without an account", &scriptedSource{results: []ScanResult{{Transactions: []Transaction{noAccount}, CompleteUpTo: later}}}, nil, ErrInvalidTransaction, 0},
		{"one id, two transactions", &scriptedSource{results: []ScanResult{{Transactions: []Transaction{valid, changed}, CompleteUpTo: later}}}, nil, ErrConflictingDuplicate, 0},
		{"advance fails", &scriptedSource{results: []ScanResult{{Transactions: []Transaction{valid}, CompleteUpTo: later}}}, errors.New("kv down"), nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, rec, wm := newScanner(tc.src)
			wm.marks[collect] = t0
			wm.err = tc.advErr
			_, err := s.ScanOnce(context.Background())
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || (tc.advErr != nil && !errors.Is(err, tc.advErr)) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if !wm.get(collect).Equal(t0) {
				t.Errorf("watermark moved to %v", wm.get(collect))
			}
			if len(rec.recorded()) != tc.records {
				t.Errorf("recorded %d, want %d", len(rec.recorded()), tc.records)
			}
		})
	}
}

func TestScannerSourceOutage(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	transfer(t, bank, "A", 1000, collect)
	clock.Advance(time.Minute)
	s, rec, wm := newScanner(bank)
	bank.FailNext(1)
	if _, err := s.ScanOnce(context.Background()); !errors.Is(err, ErrOutage) {
		t.Fatalf("err = %v, want ErrOutage", err)
	}
	if !wm.get(collect).IsZero() || len(rec.recorded()) != 0 {
		t.Fatalf("an outage moved the watermark (%v) or recorded something", wm.get(collect))
	}
	scanOnce(t, s)
	if len(rec.recorded()) != 1 || !wm.get(collect).Equal(clock.Now()) {
		t.Fatalf("after the outage: %d recorded, watermark %v", len(rec.recorded()), wm.get(collect))
	}
}

func TestScannerWatermarkNeverMovesBack(t *testing.T) {
	src := &scriptedSource{results: []ScanResult{
		{CompleteUpTo: t0.Add(10 * time.Minute)},
		{CompleteUpTo: t0.Add(5 * time.Minute)}, // a provider whose clock went back
		{CompleteUpTo: t0.Add(10 * time.Minute)},
		{}, // no guarantee at all
		{CompleteUpTo: t0.Add(11 * time.Minute)},
	}}
	s, _, wm := newScanner(src)
	for i, want := range []time.Duration{10, 10, 10, 10, 11} {
		st := scanOnce(t, s)
		if w := t0.Add(want * time.Minute); !wm.get(collect).Equal(w) || !st.Watermark.Equal(w) {
			t.Fatalf("scan %d: watermark %v (stats %v), want %v", i, wm.get(collect), st.Watermark, w)
		}
	}
	if want := []time.Time{t0.Add(10 * time.Minute), t0.Add(11 * time.Minute)}; !slices.EqualFunc(wm.advances, want, time.Time.Equal) {
		t.Errorf("Advance calls = %v, want only the forward moves %v", wm.advances, want)
	}
}

// TestScannerWarnsWhenCompletenessGoesBack: a provider that vouches for less
// than it did before (its complete_up_to behind the watermark it gave) leaves
// the watermark alone, and says so at warn: a provider that takes back a
// completeness claim is one whose earlier claims (reserved cancellations
// made final on them) the operator should look at.
func TestScannerWarnsWhenCompletenessGoesBack(t *testing.T) {
	src := &scriptedSource{results: []ScanResult{
		{CompleteUpTo: t0.Add(10 * time.Minute)},
		{CompleteUpTo: t0.Add(10 * time.Minute)}, // the same claim again: nothing to say
		{},                                       // no guarantee: nothing to say
		{CompleteUpTo: t0.Add(-10 * time.Minute)}, // taken back
	}}
	var logs testenv.SyncBuffer
	s, _, wm := newScanner(src)
	s.Log = zerolog.New(&logs)
	for range 3 {
		scanOnce(t, s)
	}
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Fatalf("warned before the provider took a claim back:\n%s", logs.String())
	}
	scanOnce(t, s)
	if !wm.get(collect).Equal(t0.Add(10 * time.Minute)) {
		t.Fatalf("watermark %v, want it kept at %v", wm.get(collect), t0.Add(10*time.Minute))
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "complete_up_to behind the watermark") ||
		!strings.Contains(out, `"complete_up_to":"`+t0.Add(-10*time.Minute).Format(time.RFC3339)) ||
		!strings.Contains(out, `"watermark":"`+t0.Add(10*time.Minute).Format(time.RFC3339)) {
		t.Errorf("no warning naming both instants when the provider took its claim back:\n%s", out)
	}
}

// TestScannerWarnsOfTransactionsDatedBeforeTheWatermark: a transaction the
// overlap of a later scan brings in for the first time, though dated before
// the watermark an earlier scan set, shows that the provider reported its
// data complete too early. The scan records it and says so at warn, naming
// it; a repeat inside the overlap, and a new transaction after the
// watermark, are not late.
func TestScannerWarnsOfTransactionsDatedBeforeTheWatermark(t *testing.T) {
	first := Transaction{BankTxnID: "T1", AccountNumber: collect, DepositorName: "김민수042", Amount: 35000, DepositedAt: t0}
	late := Transaction{BankTxnID: "T2", AccountNumber: collect, DepositorName: "이서연117", Amount: 12000, DepositedAt: t0.Add(5 * time.Minute)}
	after := Transaction{BankTxnID: "T3", AccountNumber: collect, DepositorName: "박지훈568", Amount: 25000, DepositedAt: t0.Add(11 * time.Minute)}
	src := &scriptedSource{results: []ScanResult{
		{Transactions: []Transaction{first}, CompleteUpTo: t0.Add(10 * time.Minute)},
		{Transactions: []Transaction{first, late, after}, CompleteUpTo: t0.Add(12 * time.Minute)},
		{Transactions: []Transaction{first, late, after}, CompleteUpTo: t0.Add(12 * time.Minute)}, // all repeats now
	}}
	var logs testenv.SyncBuffer
	s, rec, _ := newScanner(src)
	s.Log = zerolog.New(&logs)
	s.Overlap = 15 * time.Minute
	if st := scanOnce(t, s); len(st.Late) != 0 {
		t.Fatalf("first scan: late %v, want none (no watermark yet)", st.Late)
	}
	if strings.Contains(logs.String(), `"level":"warn"`) {
		t.Fatalf("warned on the first scan:\n%s", logs.String())
	}
	if st := scanOnce(t, s); !slices.Equal(st.Late, []string{"T2"}) {
		t.Fatalf("second scan: late %v, want [T2]", st.Late)
	}
	if got := slices.Sorted(maps.Keys(rec.recorded())); !slices.Equal(got, []string{"T1", "T2", "T3"}) {
		t.Fatalf("recorded %v, want T1, T2 and T3", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "the data was reported complete too early") ||
		!strings.Contains(out, `"bank_txn_ids":["T2"]`) || !strings.Contains(out, `"late":1`) ||
		!strings.Contains(out, `"watermark":"`+t0.Add(10*time.Minute).Format(time.RFC3339)) {
		t.Fatalf("no warning naming the late transaction and the watermark:\n%s", out)
	}
	if st := scanOnce(t, s); len(st.Late) != 0 || strings.Count(logs.String(), `"level":"warn"`) != 1 {
		t.Fatalf("third scan (repeats only): late %v, logs:\n%s", st.Late, logs.String())
	}
}

func TestScannerClampsFutureCompleteness(t *testing.T) {
	clock := newClock()
	src := &scriptedSource{results: []ScanResult{{CompleteUpTo: t0.Add(24 * time.Hour)}}}
	s, _, wm := newScanner(src)
	s.Now = clock.Now
	st := scanOnce(t, s)
	if !wm.get(collect).Equal(t0) || !st.Watermark.Equal(t0) || !st.CompleteUpTo.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("watermark %v, stats %+v; want the watermark clamped to now %v", wm.get(collect), st, t0)
	}
}

func TestScannerFiltersAndOrders(t *testing.T) {
	mk := func(id, account string, at time.Duration) Transaction {
		return Transaction{BankTxnID: id, AccountNumber: account, DepositorName: "A", Amount: 1000, DepositedAt: t0.Add(at)}
	}
	src := &scriptedSource{results: []ScanResult{{
		Transactions: []Transaction{
			mk("T-3", collect, 3*time.Second),
			mk("T-1", "123 456 789", time.Second), // same account, written differently
			mk("X-1", "999-000", 0),
			mk("T-3", collect, 3*time.Second),
			mk("T-2b", collect, 2*time.Second),
			mk("T-2a", collect, 2*time.Second),
			mk("T-1", "123 456 789", time.Second),
		},
		CompleteUpTo: t0.Add(time.Minute),
	}}}
	s, rec, _ := newScanner(src)
	st := scanOnce(t, s)
	if st.Seen != 4 || st.Recorded != 4 || st.Repeats != 2 || st.OtherAccounts != 1 {
		t.Errorf("stats = %+v", st)
	}
	if got, want := strings.Join(rec.order, ","), "T-1,T-2a,T-2b,T-3"; got != want {
		t.Errorf("record order = %s, want %s (deposit time, then id)", got, want)
	}
}

func TestScannerValidate(t *testing.T) {
	src := &scriptedSource{results: []ScanResult{{}}}
	for _, tc := range []struct {
		name   string
		modify func(*Scanner)
	}{
		{"no source", func(s *Scanner) { s.Source = nil }},
		{"no account", func(s *Scanner) { s.Account = " " }},
		{"no recorder", func(s *Scanner) { s.Recorder = nil }},
		{"no watermarks", func(s *Scanner) { s.Watermarks = nil }},
		{"negative interval", func(s *Scanner) { s.Interval = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := newScanner(src)
			tc.modify(s)
			if _, err := s.ScanOnce(context.Background()); err == nil {
				t.Error("ScanOnce accepted an invalid scanner")
			}
			if err := s.Run(context.Background()); err == nil {
				t.Error("Run accepted an invalid scanner")
			}
		})
	}
}

// notifySource signals every scan on a channel.
type notifySource struct {
	Source
	scans chan struct{}
}

func (n notifySource) Scan(ctx context.Context, since time.Time) (ScanResult, error) {
	res, err := n.Source.Scan(ctx, since)
	select {
	case n.scans <- struct{}{}:
	default:
	}
	return res, err
}

func TestScannerRunScansAtOnceAndStopsOnCancel(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	transfer(t, bank, "A", 1000, collect)
	src := notifySource{Source: bank, scans: make(chan struct{}, 1)}
	s, rec, _ := newScanner(src)
	s.Interval = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-src.scans:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not scan at start")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
	if len(rec.recorded()) != 1 {
		t.Errorf("recorded %d, want 1", len(rec.recorded()))
	}
}

func TestScannerRunRetriesAfterErrors(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	transfer(t, bank, "A", 1000, collect)
	clock.Advance(time.Minute)
	bank.FailNext(2)
	var logs testenv.SyncBuffer
	s, rec, wm := newScanner(bank)
	s.Interval = time.Millisecond
	s.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testenv.CheckFor(t, 10*time.Second, func() error {
		if got := wm.get(collect); !got.Equal(clock.Now()) {
			return fmt.Errorf("watermark %v after the outage, want %v", got, clock.Now())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if len(rec.recorded()) != 1 {
		t.Errorf("recorded %d, want 1", len(rec.recorded()))
	}
	out := logs.String()
	if strings.Count(out, "bank scan failed") != 2 || !strings.Contains(out, `"account":"`+collect+`"`) {
		t.Errorf("log does not show the two failed scans:\n%s", out)
	}
}

// TestScannerRunWaitsWhatTheBankAsked: a provider that asks to wait longer
// than MaxRetryAfter (its quota spent) is not asked again at every tick, but
// once its wait has passed.
func TestScannerRunWaitsWhatTheBankAsked(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	fake, srv := newFake(t, bank, FakeOptions{})
	fake.FailNext(1, http.StatusTooManyRequests, 2*time.Second)
	var logs testenv.SyncBuffer
	s := &Scanner{Source: &HTTPSource{URL: srv.URL, Token: testToken, MaxRetryAfter: 100 * time.Millisecond}, Account: collect,
		Recorder: newRecorder(), Watermarks: newWatermarks(), Interval: 50 * time.Millisecond, Log: zerolog.New(&logs)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(1500 * time.Millisecond) // 30 ticks, within the 2s asked for
	if n := fake.Requests(); n != 1 {
		t.Errorf("the bank asked to wait 2s and was asked %d times within 1.5s, want once", n)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		if n := fake.Requests(); n < 2 {
			return fmt.Errorf("%d requests: not asked again after the wait", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if !strings.Contains(logs.String(), "the bank asked to wait") {
		t.Errorf("the wait is not logged:\n%s", logs.String())
	}
}

// Under a supervisor, an outage of failingAfter scans or more shows as the
// part failing, and the first good scan shows it running again.
func TestScannerReportsAnOutageToItsSupervisor(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	bank.FailNext(outageScans)
	s, _, wm := newScanner(bank)
	s.Interval = 20 * time.Millisecond
	sup := superviseScanner(t, s)
	testenv.CheckFor(t, 10*time.Second, func() error {
		if st, _ := sup.Status("bank-scanner"); st.State != supervisor.Failing || !strings.Contains(st.LastError, "bank scans in a row failed") {
			return fmt.Errorf("status during the outage %+v", st)
		}
		return nil
	})
	testenv.CheckFor(t, 10*time.Second, func() error {
		if st, _ := sup.Status("bank-scanner"); st.State != supervisor.Running || wm.get(collect).IsZero() {
			return fmt.Errorf("status after the outage %+v, watermark %v", st, wm.get(collect))
		}
		return nil
	})
}

// outageScans is long enough an outage to report: more than failingAfter scans.
const outageScans = failingAfter + 2

// TestScannerOverHTTP runs the whole path: SimBank → FakeProvider (rate
// limited, duplicating, hanging once) → HTTPSource → Scanner.
func TestScannerOverHTTP(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{Lag: time.Minute, DuplicateRate: 0.5, PageSize: 2})
	p, srv := newFake(t, bank, FakeOptions{Account: collect, RateLimit: 1, Now: clock.Now})
	src, _ := newSource(srv.URL, clock)
	src.Timeout = 200 * time.Millisecond
	s, rec, wm := newScanner(src)
	s.Overlap = time.Minute

	var all []Transaction
	for round := range 6 {
		for i := range 3 {
			all = append(all, transfer(t, bank, "buyer", int64(100*round+i+1), collect))
			clock.Advance(20 * time.Second)
		}
		if round == 2 {
			p.HangNext(1, time.Hour)
		}
		scanOnce(t, s) // the second request in a clock second meets the rate limit
		scanOnce(t, s)
	}
	clock.Advance(2 * time.Minute)
	scanOnce(t, s)
	got := rec.recorded()
	if len(got) != len(all) {
		t.Fatalf("recorded %d, want %d", len(got), len(all))
	}
	for _, x := range all {
		if !got[x.BankTxnID].Equal(x) {
			t.Errorf("%s not recorded as deposited", x.BankTxnID)
		}
	}
	if !wm.get(collect).Equal(clock.Now().Add(-time.Minute)) {
		t.Errorf("watermark %v, want %v", wm.get(collect), clock.Now().Add(-time.Minute))
	}
	if p.Requests() <= 13+6 {
		t.Errorf("%d requests for 13 scans; want retries after 429s and the hang", p.Requests())
	}
}

// The store-account range of the tests: dedicated account numbers are the
// integers of [subFrom, subTo] zero-padded to the width of subTo, as the
// engine allocates them.
const subFrom, subTo = 5001000000, 5001999999

// inRange is Scanner.IsSubAccount for the numbers of [from, to] written
// with the width of to. It records every number it is asked about.
type inRange struct {
	from, to uint64
	mu       sync.Mutex
	asked    []string
}

func subAccounts() *inRange { return &inRange{from: subFrom, to: subTo} }

func (r *inRange) contains(number string) bool {
	r.mu.Lock()
	r.asked = append(r.asked, number)
	r.mu.Unlock()
	if len(number) != len(strconv.FormatUint(r.to, 10)) {
		return false
	}
	n, err := strconv.ParseUint(number, 10, 64)
	return err == nil && n >= r.from && n <= r.to
}

// sub is the dedicated account number n of the test range.
func sub(n uint64) string { return fmt.Sprintf("%010d", subFrom+n) }

// onePerScan returns a Recorder hook that fails the test when one scan hands
// the Recorder the same transaction twice, and a function to call before
// each scan.
func onePerScan(t *testing.T) (hook func(Transaction), next func()) {
	var mu sync.Mutex
	seen := map[string]bool{}
	hook = func(x Transaction) {
		mu.Lock()
		defer mu.Unlock()
		if seen[x.BankTxnID] {
			t.Errorf("%s handed to the Recorder twice in one scan", x.BankTxnID)
		}
		seen[x.BankTxnID] = true
	}
	next = func() {
		mu.Lock()
		defer mu.Unlock()
		clear(seen)
	}
	return hook, next
}

// TestScannerSubAccounts: with IsSubAccount, the transfers to the collection
// account and to its sub-accounts are each recorded once (repeats within a
// result and overlapping scans included), those to any other account are
// dropped and counted, and the only watermark is the collection account's.
// Without it, today's behaviour: every other account is dropped.
func TestScannerSubAccounts(t *testing.T) {
	mk := func(id, account string, at time.Duration) Transaction {
		return Transaction{BankTxnID: id, AccountNumber: account, DepositorName: "가게", Amount: 50000, DepositedAt: t0.Add(at)}
	}
	rows := []Transaction{
		mk("S-2", sub(7), 4*time.Second),
		mk("C-1", collect, time.Second),
		mk("S-1", "5001-000-000", 2*time.Second), // sub(0), written with hyphens
		mk("X-1", "999-000", 0),                  // an unrelated account
		mk("S-3", "5001 999 999", 3*time.Second), // the end of the range
		mk("X-2", "5002000000", 0),               // the right width, past the range
		mk("X-3", "05001000001", 0),              // in the range by value, not of its width
		mk("S-2", sub(7), 4*time.Second),         // repeats
		mk("C-1", collect, time.Second),
		mk("X-1", "999-000", 0),
		mk("C-2", "123 456 789", 5*time.Second),
	}
	res := ScanResult{Transactions: rows, CompleteUpTo: t0.Add(time.Minute)}
	for _, tc := range []struct {
		name      string
		subs      bool
		recorded  string // in record order
		want      ScanStats
		wantAsked int
	}{
		{
			name:     "with sub-accounts",
			subs:     true,
			recorded: "C-1,S-1,S-3,S-2,C-2",
			want:     ScanStats{Seen: 5, SubAccounts: 3, Recorded: 5, Repeats: 2, OtherAccounts: 4},
			// every row not for collect: S-2 twice, S-1, X-1 twice, S-3, X-2, X-3
			wantAsked: 8,
		},
		{
			name:     "nil IsSubAccount: today's behaviour",
			recorded: "C-1,C-2",
			want:     ScanStats{Seen: 2, Recorded: 2, Repeats: 1, OtherAccounts: 8},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &scriptedSource{results: []ScanResult{res}}
			s, rec, wm := newScanner(src)
			s.Concurrency = 1 // every transaction in turn: the global order is the deposit order
			r := subAccounts()
			if tc.subs {
				s.IsSubAccount = r.contains
			}
			hook, next := onePerScan(t)
			rec.hook = hook
			for scan := range 3 { // overlapping scans: the same result again
				next()
				st := scanOnce(t, s)
				want := tc.want
				want.CompleteUpTo, want.Watermark = res.CompleteUpTo, res.CompleteUpTo
				if !reflect.DeepEqual(st, want) {
					t.Fatalf("scan %d: stats %+v, want %+v", scan, st, want)
				}
			}
			if got := strings.Join(rec.order, ","); got != tc.recorded {
				t.Errorf("recorded %s, want %s (each once, by deposit time)", got, tc.recorded)
			}
			for _, x := range rows {
				if got, ok := rec.recorded()[x.BankTxnID]; ok && !got.Equal(x) {
					t.Errorf("recorded %+v, want it as the bank reported it %+v", got, x)
				}
			}
			if len(wm.marks) != 1 || !wm.get(collect).Equal(res.CompleteUpTo) {
				t.Errorf("watermarks %v; want only the collection account's, at %v", wm.marks, res.CompleteUpTo)
			}
			if len(r.asked) != tc.wantAsked*3 {
				t.Errorf("IsSubAccount asked %d times in 3 scans, want %d", len(r.asked), tc.wantAsked*3)
			}
			for _, n := range r.asked {
				if n != NormalizeAccountNumber(n) || n == "" || n == NormalizeAccountNumber(collect) {
					t.Errorf("IsSubAccount asked about %q: want normalised numbers other than the account's", n)
				}
			}
		})
	}
}

// TestScannerSubAccountErrors: the kept sub-account transactions obey the
// same rules as the account's own, and a failure leaves the one watermark.
func TestScannerSubAccountErrors(t *testing.T) {
	valid := Transaction{BankTxnID: "T-1", AccountNumber: collect, DepositorName: "A", Amount: 1000, DepositedAt: t0}
	invalidSub := Transaction{BankTxnID: "S-1", AccountNumber: sub(1), DepositorName: "A", DepositedAt: t0}
	sameIDOnSub := valid
	sameIDOnSub.AccountNumber = sub(1)
	changedOnSub := sameIDOnSub
	changedOnSub.Amount++
	noAccount := valid
	noAccount.BankTxnID, noAccount.AccountNumber = "T-3", " - "
	for _, tc := range []struct {
		name string
		txns []Transaction
		is   error
	}{
		{"invalid sub-account transaction", []Transaction{valid, invalidSub}, ErrInvalidTransaction},
		{"one id twice on a sub-account", []Transaction{sameIDOnSub, changedOnSub}, ErrConflictingDuplicate},
		{"transaction without an account", []Transaction{noAccount}, ErrInvalidTransaction},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &scriptedSource{results: []ScanResult{{Transactions: tc.txns, CompleteUpTo: t0.Add(time.Hour)}}}
			s, rec, wm := newScanner(src)
			r := subAccounts()
			s.IsSubAccount = r.contains
			wm.marks[collect] = t0
			if _, err := s.ScanOnce(context.Background()); !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if !wm.get(collect).Equal(t0) || len(wm.advances) != 0 || len(wm.marks) != 1 {
				t.Errorf("watermarks %v after a failed scan", wm.marks)
			}
			if n := len(rec.recorded()); n != 0 {
				t.Errorf("recorded %d", n)
			}
			if slices.Contains(r.asked, "") {
				t.Error("IsSubAccount was asked about an empty account number")
			}
		})
	}
}

// TestScannerSubAccountsEachRecordedOnce drives a lagging, duplicating bank
// serving the collection account with its sub-accounts: random transfers to
// the account, to numbers of the range, and to numbers outside it, between
// overlapping scans. Every transfer to the account or the range is recorded
// exactly once, none other is, and the one watermark keeps its promise for
// the sub-accounts too.
func TestScannerSubAccountsEachRecordedOnce(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	clock := newClock()
	bank := newBank(t, clock, SimOptions{Lag: 3 * time.Minute, DuplicateRate: 0.3, PageSize: 3, Seed: seed})
	r := subAccounts()
	s, rec, wm := newScanner(bank.SourceWith(collect, r.contains))
	s.IsSubAccount = r.contains
	s.Overlap = 2 * time.Minute
	hook, next := onePerScan(t)
	rec.hook = hook

	kept := func(x Transaction) bool {
		n := NormalizeAccountNumber(x.AccountNumber)
		return n == NormalizeAccountNumber(collect) || r.contains(n)
	}
	var subs, others int
	for range 40 {
		for range rng.IntN(5) {
			var account string
			switch rng.IntN(5) {
			case 0, 1:
				account = collect
			case 2, 3:
				account = sub(uint64(rng.IntN(20))) // few numbers: several payments each
				subs++
			default:
				account = []string{"555-0000", "5002000000", "0005001000"}[rng.IntN(3)]
				others++
			}
			transfer(t, bank, "store"+strings.Repeat("x", rng.IntN(5)), 1+rng.Int64N(100000), account)
			clock.Advance(time.Duration(rng.IntN(90)) * time.Second)
		}
		next()
		st := scanOnce(t, s)
		if want := clock.Now().Add(-3 * time.Minute); !st.CompleteUpTo.Equal(want) || !wm.get(collect).Equal(want) {
			t.Fatalf("watermark %v, CompleteUpTo %v; want now−lag %v", wm.get(collect), st.CompleteUpTo, want)
		}
		if st.OtherAccounts != 0 {
			t.Fatalf("the source answered %d transactions of other accounts", st.OtherAccounts)
		}
		got := rec.recorded()
		for _, x := range bank.Transactions() {
			if kept(x) && x.DepositedAt.Before(wm.get(collect)) {
				if _, ok := got[x.BankTxnID]; !ok {
					t.Fatalf("%s to %s at %v is before the watermark %v but not recorded", x.BankTxnID, x.AccountNumber, x.DepositedAt, wm.get(collect))
				}
			}
		}
	}
	clock.Advance(time.Hour)
	next()
	scanOnce(t, s)

	got := rec.recorded()
	want := 0
	for _, x := range bank.Transactions() {
		if !kept(x) {
			if _, ok := got[x.BankTxnID]; ok {
				t.Errorf("%s to %s recorded; it is not the collection account's", x.BankTxnID, x.AccountNumber)
			}
			continue
		}
		want++
		if !got[x.BankTxnID].Equal(x) {
			t.Errorf("recorded %+v, bank has %+v", got[x.BankTxnID], x)
		}
	}
	if len(got) != want {
		t.Fatalf("recorded %d distinct transactions, want %d", len(got), want)
	}
	if len(wm.marks) != 1 {
		t.Errorf("watermarks %v; want only the collection account's", wm.marks)
	}
	t.Logf("%d transactions recorded (%d to sub-accounts), %d to other accounts left out", want, subs, others)
}

// TestScannerSubAccountsOverHTTP: a provider's feed of the collection account
// with its virtual accounts, over the HTTP contract, through a Scanner with
// the same range. HTTPSource itself filters nothing.
func TestScannerSubAccountsOverHTTP(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{DuplicateRate: 0.5, PageSize: 2})
	r := subAccounts()
	_, srv := newFake(t, bank, FakeOptions{Account: collect, SubAccounts: r.contains, Now: clock.Now})
	src, _ := newSource(srv.URL, clock)
	s, rec, wm := newScanner(src)
	s.IsSubAccount = r.contains

	want := []Transaction{
		transfer(t, bank, "buyer", 1000, collect),
		transfer(t, bank, "store", 2000, sub(1)),
		transfer(t, bank, "store", 3000, sub(1)),
		transfer(t, bank, "store", 4000, sub(999999)),
	}
	transfer(t, bank, "someone", 5000, "999-000")
	clock.Advance(time.Second)
	st := scanOnce(t, s)
	if st.Seen != 4 || st.SubAccounts != 3 || st.OtherAccounts != 0 {
		t.Errorf("stats %+v", st)
	}
	got := rec.recorded()
	if len(got) != len(want) {
		t.Fatalf("recorded %d, want %d", len(got), len(want))
	}
	for _, x := range want {
		if !got[x.BankTxnID].Equal(x) {
			t.Errorf("%s not recorded as deposited", x.BankTxnID)
		}
	}
	if len(wm.marks) != 1 || !wm.get(collect).Equal(clock.Now()) {
		t.Errorf("watermarks %v, want only %s at %v", wm.marks, collect, clock.Now())
	}
}

// recorderFunc is a Recorder made of a function.
type recorderFunc func(context.Context, Transaction) error

func (f recorderFunc) Record(ctx context.Context, t Transaction) (bool, error) {
	err := f(ctx, t)
	return err == nil, err
}

// One scan's transactions are recorded several at once, except those that
// can touch the same order or bill: the same depositor name (as names are
// compared: "김 민수" is "김민수") on the account, or the same sub-account,
// which are recorded one after another in deposit order.
func TestScannerRecordsUnrelatedTransactionsAtOnce(t *testing.T) {
	mk := func(id, account, name string, at time.Duration) Transaction {
		return Transaction{BankTxnID: id, AccountNumber: account, DepositorName: name, Amount: 1000, DepositedAt: t0.Add(at)}
	}
	const dedicated = "5001000042"
	src := &scriptedSource{results: []ScanResult{{
		Transactions: []Transaction{
			mk("K-1", collect, "김민수", time.Second),
			mk("L-1", collect, "이영희", 2*time.Second),
			mk("K-2", collect, "김 민수", 3*time.Second),
			mk("D-1", dedicated, "가게", 4*time.Second),
			mk("D-2", dedicated, "다른 가게", 5*time.Second),
		},
		CompleteUpTo: t0.Add(time.Minute),
	}}}
	var (
		mu      sync.Mutex
		order   []string
		started = map[string]chan struct{}{"K-1": make(chan struct{}), "L-1": make(chan struct{})}
	)
	rec := recorderFunc(func(_ context.Context, tx Transaction) error {
		mu.Lock()
		order = append(order, tx.BankTxnID)
		mu.Unlock()
		// K-1 and L-1 each wait for the other to start: recorded one
		// after the other, neither would ever finish.
		if ch, ok := started[tx.BankTxnID]; ok {
			close(ch)
			other := map[string]string{"K-1": "L-1", "L-1": "K-1"}[tx.BankTxnID]
			select {
			case <-started[other]:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("%s: %s never started beside it", tx.BankTxnID, other)
			}
		}
		return nil
	})
	s := &Scanner{Source: src, Account: collect, IsSubAccount: func(n string) bool { return n == dedicated },
		Recorder: rec, Watermarks: newWatermarks()}
	st := scanOnce(t, s)
	if st.Recorded != 5 {
		t.Fatalf("recorded %d, want 5", st.Recorded)
	}
	before := func(a, b string) bool { return slices.Index(order, a) < slices.Index(order, b) }
	if !before("K-1", "K-2") || !before("D-1", "D-2") {
		t.Fatalf("recorded in the order %v: K-1 before K-2 (one name) and D-1 before D-2 (one sub-account)", order)
	}
}

// A failed transaction stops the scan: later transactions of its lane are
// not recorded, the error names it, and the watermark stays.
func TestScannerStopsAtAFailedRecord(t *testing.T) {
	mk := func(id, name string, at time.Duration) Transaction {
		return Transaction{BankTxnID: id, AccountNumber: collect, DepositorName: name, Amount: 1000, DepositedAt: t0.Add(at)}
	}
	src := &scriptedSource{results: []ScanResult{{
		Transactions: []Transaction{mk("A-1", "가", time.Second), mk("A-2", "가", 2*time.Second), mk("B-1", "나", 3*time.Second)},
		CompleteUpTo: t0.Add(time.Minute),
	}}}
	var mu sync.Mutex
	var got []string
	rec := recorderFunc(func(_ context.Context, tx Transaction) error {
		if tx.BankTxnID == "A-1" {
			return errors.New("store unavailable")
		}
		mu.Lock()
		got = append(got, tx.BankTxnID)
		mu.Unlock()
		return nil
	})
	wm := newWatermarks()
	s := &Scanner{Source: src, Account: collect, Recorder: rec, Watermarks: wm}
	st, err := s.ScanOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"A-1"`) {
		t.Fatalf("ScanOnce = %v, want the failure of A-1", err)
	}
	if slices.Contains(got, "A-2") || st.Recorded != len(got) {
		t.Fatalf("recorded %v (stats %d): A-2 must wait for A-1", got, st.Recorded)
	}
	if w, _ := wm.Watermark(context.Background(), collect); !w.IsZero() {
		t.Fatalf("watermark advanced to %v after a failed record", w)
	}
}

// A Recorder that panics fails the scan like any failed record (with the
// panic and its stack), instead of taking the process down from a lane's
// goroutine.
func TestScannerRecorderPanicIsAnError(t *testing.T) {
	src := &scriptedSource{results: []ScanResult{{
		Transactions: []Transaction{{BankTxnID: "P-1", AccountNumber: collect, DepositorName: "가", Amount: 1000, DepositedAt: t0}},
		CompleteUpTo: t0.Add(time.Minute),
	}}}
	s := &Scanner{Source: src, Account: collect, Watermarks: newWatermarks(),
		Recorder: recorderFunc(func(context.Context, Transaction) error { panic("boom") })}
	_, err := s.ScanOnce(context.Background())
	var pe *supervisor.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("ScanOnce = %v, want the recorder's panic as an error", err)
	}
	s.Concurrency = -1
	if _, err := s.ScanOnce(context.Background()); err == nil {
		t.Fatal("a negative concurrency was accepted")
	}
}

// TestScannerReportsALongWaitToItsSupervisor: a provider that asks to wait
// (429 with a Retry-After of an hour, its quota spent) gets no scan for
// that long, as many missed scans as an outage of failingAfter; the part
// must not show running and ready meanwhile.
func TestScannerReportsALongWaitToItsSupervisor(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	fake, srv := newFake(t, bank, FakeOptions{})
	fake.FailNext(1, http.StatusTooManyRequests, time.Hour)
	s := &Scanner{Source: &HTTPSource{URL: srv.URL, Token: testToken, MaxRetryAfter: 100 * time.Millisecond}, Account: collect,
		Recorder: newRecorder(), Watermarks: newWatermarks(), Interval: 20 * time.Millisecond, Log: zerolog.Nop()}
	sup := superviseScanner(t, s)
	testenv.CheckFor(t, 5*time.Second, func() error {
		if st, _ := sup.Status("bank-scanner"); st.State != supervisor.Failing || !strings.Contains(st.LastError, "asked to wait") {
			return fmt.Errorf("status while the bank makes the scanner wait an hour: %+v", st)
		}
		return nil
	})
}

// superviseScanner runs s as the part "bank-scanner" of a started
// supervisor, stopped when the test ends.
func superviseScanner(t *testing.T, s *Scanner) *supervisor.Supervisor {
	t.Helper()
	sup, err := supervisor.New(supervisor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sup.Add(supervisor.Part{Name: "bank-scanner", Run: s.Run}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Stop(context.Background()) })
	return sup
}

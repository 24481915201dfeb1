package domain_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func refsOf(items []domain.ReconcileItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.BankTxnID
	}
	return out
}

// Given a statement and recorded deposits that hold every category, when
// they are reconciled, then each transaction lands in exactly its category.
func TestReconcileBankEveryCategory(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct, other = "110-123-456789", "220-000-1111"
	line := func(id, account string, amount int64, at time.Time) domain.StatementLine {
		return domain.StatementLine{BankTxnID: id, AccountNumber: account, DepositorName: "아무개", Amount: amount, DepositedAt: at}
	}
	rec := func(id, account string, amount int64, at time.Time) domain.RecordedDeposit {
		return domain.RecordedDeposit{DepositID: string(domain.NewDepositID(account, id)), BankTxnID: id, AccountNumber: account,
			Amount: amount, DepositedAt: at, RecordedAt: at.Add(time.Minute)}
	}
	wm := t0.Add(10 * time.Hour)
	in := domain.BankReconcileInput{
		RunID: domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("a", 64)), FileSHA256: strings.Repeat("a", 64),
		Lines: []domain.StatementLine{
			line("T-match", acct, 5000, t0),
			line("T-unrecorded", acct, 7000, t0.Add(time.Hour)),
			line("T-amount", acct, 9000, t0.Add(2*time.Hour)),
			line("T-twice", acct, 1000, t0.Add(3*time.Hour)),
			line("T-twice", acct, 1000, t0.Add(3*time.Hour)),
			line("T-recorded-twice", acct, 2000, t0.Add(4*time.Hour)),
			line("T-both-accounts", acct, 2500, t0.Add(4*time.Hour)),
			line("T-elsewhere", acct, 3000, t0.Add(5*time.Hour)),
			line("T-late", acct, 4000, wm.Add(time.Minute)), // after the scan watermark: not scanned yet
			line("T-end", acct, 100, t0.Add(12*time.Hour)),  // the period's end
		},
		Recorded: []domain.RecordedDeposit{
			rec("T-match", acct, 5000, t0),
			rec("T-match", acct, 5000, t0), // read twice (both queries): ignored
			rec("T-amount", acct, 8000, t0.Add(2*time.Hour)),
			rec("T-twice", acct, 1000, t0.Add(3*time.Hour)),
			// two deposits for one transaction of one account: ambiguous
			{DepositID: "dep_first", BankTxnID: "T-recorded-twice", AccountNumber: acct, Amount: 2000, DepositedAt: t0.Add(4 * time.Hour)},
			{DepositID: "dep_second", BankTxnID: "T-recorded-twice", AccountNumber: acct, Amount: 2000, DepositedAt: t0.Add(4 * time.Hour)},
			// the bank numbers transactions per account: another account's
			// T-both-accounts is another transaction
			rec("T-both-accounts", acct, 2500, t0.Add(4*time.Hour)),
			rec("T-both-accounts", other, 2500, t0.Add(4*time.Hour)),
			rec("T-elsewhere", other, 3000, t0.Add(5*time.Hour)),
			rec("T-not-at-bank", acct, 6000, t0.Add(6*time.Hour)),
			rec("T-end", acct, 100, t0.Add(12*time.Hour)),
			rec("T-just-after", acct, 500, t0.Add(12*time.Hour+2*time.Minute)), // within the window after the end
			rec("T-long-after", acct, 500, t0.Add(13*time.Hour)),               // outside the period: not compared
			rec("T-other-account", other, 500, t0.Add(6*time.Hour)),            // an account the statement does not cover
		},
		Watermarks: map[string]time.Time{domain.NormalizeAccountNumber(acct): wm},
		Now:        t0.Add(24 * time.Hour), LedgerAsOfSeq: 42,
	}
	got := domain.ReconcileBank(in)

	for _, tc := range []struct {
		category string
		items    []domain.ReconcileItem
		want     []string
	}{
		{"matched", got.Matched, []string{"T-match", "T-both-accounts", "T-end"}},
		{"missing_in_ledger", got.MissingInLedger, []string{"T-unrecorded", "T-elsewhere"}},
		{"missing_at_bank", got.MissingAtBank, []string{"T-not-at-bank"}},
		{"amount_mismatch", got.AmountMismatch, []string{"T-amount"}},
		{"duplicate", got.Duplicate, []string{"T-twice", "T-recorded-twice"}},
		{"timing_difference", got.TimingDifference, []string{"T-late", "T-just-after"}},
	} {
		t.Run(tc.category, func(t *testing.T) {
			if r := refsOf(tc.items); !slices.Equal(r, tc.want) {
				t.Errorf("%s = %v, want %v", tc.category, r, tc.want)
			}
		})
	}
	want := domain.ReconcileCounts{Matched: 3, MissingInLedger: 2, MissingAtBank: 1, AmountMismatch: 1, Duplicate: 2, TimingDifference: 2}
	if got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	if got.Counts.Findings() != 6 || got.Truncated || got.Lines != 10 || got.LedgerAsOfSeq != 42 {
		t.Errorf("findings %d truncated %v lines %d as of %d", got.Counts.Findings(), got.Truncated, got.Lines, got.LedgerAsOfSeq)
	}
	if a := got.AmountMismatch[0]; a.StatementAmount != 9000 || a.LedgerAmount != 8000 {
		t.Errorf("amount_mismatch amounts %d/%d, want 9000/8000", a.StatementAmount, a.LedgerAmount)
	}
	if d := got.Duplicate[0]; d.StatementCount != 2 {
		t.Errorf("duplicate on the statement: count %d, want 2", d.StatementCount)
	}
	if d := got.Duplicate[1]; len(d.DepositIDs) != 2 {
		t.Errorf("recorded twice: deposit_ids %v, want 2", d.DepositIDs)
	}
	if len(got.Accounts) != 1 || !got.Accounts[0].From.Equal(t0) || !got.Accounts[0].To.Equal(t0.Add(12*time.Hour)) ||
		got.Accounts[0].ScanWatermark == nil || !got.Accounts[0].ScanWatermark.Equal(wm) {
		t.Errorf("accounts %+v", got.Accounts)
	}
}

// An account never scanned has no statement-side timing differences: what
// is not recorded is missing.
func TestReconcileBankWithoutWatermark(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	got := domain.ReconcileBank(domain.BankReconcileInput{Lines: []domain.StatementLine{
		{BankTxnID: "T-1", AccountNumber: "1", DepositorName: "a", Amount: 1, DepositedAt: at},
	}})
	if len(got.MissingInLedger) != 1 || len(got.TimingDifference) != 0 || got.Accounts[0].ScanWatermark != nil {
		t.Errorf("got %+v", got)
	}
}

// A run with more items than MaxReconcileItems records counts for all and
// the first items, findings before matches.
func TestReconcileBankBoundsItems(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	n := domain.MaxReconcileItems + 10
	in := domain.BankReconcileInput{}
	for i := range n {
		id := fmt.Sprintf("T-%05d", i)
		in.Lines = append(in.Lines, domain.StatementLine{BankTxnID: id, AccountNumber: "1", DepositorName: "a", Amount: 1, DepositedAt: at})
		if i >= 5 {
			in.Recorded = append(in.Recorded, domain.RecordedDeposit{DepositID: "dep_" + id, BankTxnID: id, AccountNumber: "1", Amount: 1, DepositedAt: at})
		}
	}
	got := domain.ReconcileBank(in)
	if !got.Truncated || got.Counts.Matched != n-5 || got.Counts.MissingInLedger != 5 {
		t.Fatalf("truncated %v counts %+v", got.Truncated, got.Counts)
	}
	if len(got.MissingInLedger) != 5 || len(got.Matched) != domain.MaxReconcileItems-5 {
		t.Errorf("recorded %d missing, %d matched; want 5 and %d", len(got.MissingInLedger), len(got.Matched), domain.MaxReconcileItems-5)
	}
}

// The same kind and file hash is the same run; another kind or file is not.
func TestNewReconciliationID(t *testing.T) {
	a := domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("a", 64))
	if a != domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("a", 64)) || len(a) != 4+24 || !strings.HasPrefix(string(a), "rec_") {
		t.Errorf("id %q", a)
	}
	if a == domain.NewReconciliationID(domain.ReconcileKindPayouts, strings.Repeat("a", 64)) ||
		a == domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("b", 64)) {
		t.Error("different runs share an ID")
	}
}

// A run is recorded once: deciding again on a recorded run writes nothing.
func TestDecideReconcileOnce(t *testing.T) {
	run := domain.ReconciliationCompleted{RunID: "rec_1", Kind: domain.ReconcileKindBank}
	evs, err := domain.DecideReconcile(domain.Reconciliation{}, run)
	if err != nil || len(evs) != 1 {
		t.Fatalf("first: %v %v", evs, err)
	}
	state := domain.ReconciliationAggregate.Apply(domain.Reconciliation{}, evs[0])
	if evs, err := domain.DecideReconcile(state, domain.ReconciliationCompleted{RunID: "rec_1", Lines: 9}); err != nil || len(evs) != 0 {
		t.Fatalf("again: %v %v", evs, err)
	}
	if state.Run.RunID != "rec_1" || !state.Exists() {
		t.Errorf("state %+v", state)
	}
}

// categories maps each item of a run (account and bank_txn_id) to its
// category.
func categories(r domain.ReconciliationCompleted) map[string]string {
	out := map[string]string{}
	for name, items := range map[string][]domain.ReconcileItem{
		"matched": r.Matched, "missing_in_ledger": r.MissingInLedger, "missing_at_bank": r.MissingAtBank,
		"amount_mismatch": r.AmountMismatch, "duplicate": r.Duplicate, "timing_difference": r.TimingDifference,
	} {
		for _, it := range items {
			out[it.AccountNumber+" "+it.BankTxnID] = name
		}
	}
	return out
}

// TestReconcileBankProperty: for random statements and ledgers, every
// transaction of the statement (its account and bank_txn_id) is in exactly
// one category, no transaction is in two, and the counts are the lengths
// of the lists.
func TestReconcileBankProperty(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	accounts := []string{"110-1", "220-2"}
	for range 200 {
		var in domain.BankReconcileInput
		at := func() time.Time { return t0.Add(time.Duration(rng.IntN(600)) * time.Minute) }
		for range rng.IntN(30) {
			id := fmt.Sprintf("T-%d", rng.IntN(40))
			in.Lines = append(in.Lines, domain.StatementLine{BankTxnID: id, AccountNumber: accounts[rng.IntN(2)], DepositorName: "a", Amount: int64(1 + rng.IntN(3)), DepositedAt: at()})
		}
		for range rng.IntN(30) {
			id, acct := fmt.Sprintf("T-%d", rng.IntN(40)), accounts[rng.IntN(2)]
			in.Recorded = append(in.Recorded, domain.RecordedDeposit{DepositID: string(domain.NewDepositID(acct, id)), BankTxnID: id, AccountNumber: acct, Amount: int64(1 + rng.IntN(3)), DepositedAt: at()})
		}
		if rng.IntN(2) == 0 {
			in.Watermarks = map[string]time.Time{domain.NormalizeAccountNumber(accounts[0]): at()}
		}
		got := domain.ReconcileBank(in)
		// A third account the statement does not cover, recording every
		// bank_txn_id: other transactions, which change no category.
		other := in
		other.Recorded = slices.Clone(in.Recorded)
		for i := range 40 {
			id := fmt.Sprintf("T-%d", i)
			other.Recorded = append(other.Recorded, domain.RecordedDeposit{DepositID: string(domain.NewDepositID("330-3", id)), BankTxnID: id, AccountNumber: "330-3", Amount: 1, DepositedAt: at()})
		}
		if a, b := categories(got), categories(domain.ReconcileBank(other)); !maps.Equal(a, b) {
			t.Fatalf("seed %d: deposits on an account the statement does not cover changed categories:\n%v\n%v", seed, a, b)
		}
		seen := map[string]string{}
		for _, cat := range []struct {
			name  string
			items []domain.ReconcileItem
			n     int
		}{
			{"matched", got.Matched, got.Counts.Matched}, {"missing_in_ledger", got.MissingInLedger, got.Counts.MissingInLedger},
			{"missing_at_bank", got.MissingAtBank, got.Counts.MissingAtBank}, {"amount_mismatch", got.AmountMismatch, got.Counts.AmountMismatch},
			{"duplicate", got.Duplicate, got.Counts.Duplicate}, {"timing_difference", got.TimingDifference, got.Counts.TimingDifference},
		} {
			if len(cat.items) != cat.n {
				t.Fatalf("seed %d: %s has %d items, counts say %d", seed, cat.name, len(cat.items), cat.n)
			}
			for _, it := range cat.items {
				k := domain.NormalizeAccountNumber(it.AccountNumber) + " " + it.BankTxnID
				if prev, dup := seen[k]; dup {
					t.Fatalf("seed %d: %s in %s and %s", seed, k, prev, cat.name)
				}
				seen[k] = cat.name
			}
		}
		for _, l := range in.Lines {
			if _, ok := seen[domain.NormalizeAccountNumber(l.AccountNumber)+" "+l.BankTxnID]; !ok {
				t.Fatalf("seed %d: statement line %s on %s in no category", seed, l.BankTxnID, l.AccountNumber)
			}
		}
		// Every recorded deposit on a statement's account within its
		// period (and the timing window after it) is in a category too (a
		// deposit ID read twice counts once, as first read).
		first := map[string]bool{}
		for _, d := range in.Recorded {
			if first[d.DepositID] {
				continue
			}
			first[d.DepositID] = true
			k := domain.NormalizeAccountNumber(d.AccountNumber) + " " + d.BankTxnID
			for _, a := range got.Accounts {
				if a.AccountNumber == domain.NormalizeAccountNumber(d.AccountNumber) && !d.DepositedAt.Before(a.From) &&
					!d.DepositedAt.After(a.To.Add(domain.ReconcileTimingWindow)) {
					if _, ok := seen[k]; !ok {
						t.Fatalf("seed %d: deposit %s on %s in no category", seed, d.BankTxnID, d.AccountNumber)
					}
				}
			}
		}
	}
}

// Given the timing differences a first statement left open, when the next
// statement of the account is reconciled, then each is settled by what the
// stream recorded since (matched, or a finding once the statement covers
// its time) or carried again, and names the run that first reported it.
func TestReconcileBankSettlesCarriedTimingDifferences(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct = "110-123-456789"
	n := domain.NormalizeAccountNumber(acct)
	line := func(id string, amount int64, at time.Time) domain.StatementLine {
		return domain.StatementLine{BankTxnID: id, AccountNumber: acct, DepositorName: "아무개", Amount: amount, DepositedAt: at}
	}
	rec := func(id string, amount int64, at time.Time) domain.RecordedDeposit {
		return domain.RecordedDeposit{DepositID: string(domain.NewDepositID(acct, id)), BankTxnID: id, AccountNumber: acct,
			Amount: amount, DepositedAt: at, RecordedAt: at.Add(time.Minute)}
	}
	first := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_first", FileSHA256: strings.Repeat("a", 64),
		Lines: []domain.StatementLine{
			line("T-a", 1000, t0),
			line("T-unscanned-then-recorded", 2000, t0.Add(9*time.Hour)),
			line("T-unscanned-never-recorded", 3000, t0.Add(9*time.Hour+time.Minute)),
			line("T-unscanned-still", 3500, t0.Add(9*time.Hour+2*time.Minute)),
			line("T-end", 100, t0.Add(10*time.Hour)),
		},
		Recorded: []domain.RecordedDeposit{
			rec("T-a", 1000, t0), rec("T-end", 100, t0.Add(10*time.Hour)),
			rec("T-next-day", 4000, t0.Add(10*time.Hour+time.Minute)),        // the bank dates it into the next statement
			rec("T-never-at-bank", 5000, t0.Add(10*time.Hour+2*time.Minute)), // on no statement ever
		},
		Watermarks: map[string]time.Time{n: t0.Add(8 * time.Hour)},
		Now:        t0.Add(11 * time.Hour),
	})
	if got, want := refsOf(first.TimingDifference), []string{"T-unscanned-then-recorded", "T-unscanned-never-recorded", "T-unscanned-still", "T-next-day", "T-never-at-bank"}; !slices.Equal(got, want) {
		t.Fatalf("first run's timing differences = %v, want %v", got, want)
	}
	carried := slices.Clone(first.TimingDifference)
	for i := range carried {
		carried[i].CarriedFrom = first.RunID // as the reconcile_carry projection keeps them
	}

	t1 := t0.Add(24 * time.Hour)
	second := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_second", FileSHA256: strings.Repeat("b", 64),
		Lines: []domain.StatementLine{
			line("T-next-day", 4000, t1), // dated into this statement
			line("T-b", 700, t1.Add(time.Hour)),
		},
		Recorded: []domain.RecordedDeposit{
			rec("T-next-day", 4000, t0.Add(10*time.Hour+time.Minute)),
			rec("T-never-at-bank", 5000, t0.Add(10*time.Hour+2*time.Minute)),
			rec("T-unscanned-then-recorded", 2000, t0.Add(9*time.Hour)),
			rec("T-b", 700, t1.Add(time.Hour)),
		},
		// The scanner passed the first two unscanned transactions, not the third.
		Watermarks: map[string]time.Time{n: t0.Add(9*time.Hour + 2*time.Minute)},
		Carried:    carried,
		Now:        t1.Add(2 * time.Hour),
	})
	for _, tc := range []struct {
		category string
		items    []domain.ReconcileItem
		want     []string
	}{
		{"matched", second.Matched, []string{"T-next-day", "T-b", "T-unscanned-then-recorded"}},
		{"missing_in_ledger", second.MissingInLedger, []string{"T-unscanned-never-recorded"}},
		{"missing_at_bank", second.MissingAtBank, []string{"T-never-at-bank"}},
		{"timing_difference", second.TimingDifference, []string{"T-unscanned-still"}},
	} {
		if got := refsOf(tc.items); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.category, got, tc.want)
		}
		for _, it := range tc.items {
			if want := map[bool]domain.ReconciliationID{true: first.RunID}[it.BankTxnID != "T-b"]; it.CarriedFrom != want {
				t.Errorf("%s %s: carried_from %q, want %q", tc.category, it.BankTxnID, it.CarriedFrom, want)
			}
		}
	}
	if second.Counts.Findings() != 2 {
		t.Errorf("findings = %d, want 2 (%+v)", second.Counts.Findings(), second.Counts)
	}
}

// A carried item is one transaction of one account: the same bank_txn_id
// on another account's statement line (bank transaction IDs are unique per
// account only) neither settles it nor takes its carried_from.
func TestReconcileBankCarriedItemsAreKeyedByAccount(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const a, b = "110-123-456789", "220-000-1111"
	carried := []domain.ReconcileItem{{BankTxnID: "T-1", AccountNumber: domain.NormalizeAccountNumber(a), StatementAmount: 500, At: t0, CarriedFrom: "rec_a"}}
	got := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_next",
		Lines: []domain.StatementLine{
			{BankTxnID: "T-1", AccountNumber: b, DepositorName: "가", Amount: 700, DepositedAt: t0.Add(time.Hour)},
			{BankTxnID: "T-2", AccountNumber: a, DepositorName: "나", Amount: 100, DepositedAt: t0.Add(2 * time.Hour)},
		},
		Recorded: []domain.RecordedDeposit{
			{DepositID: "d-b1", BankTxnID: "T-1", AccountNumber: b, Amount: 700, DepositedAt: t0.Add(time.Hour)},
			{DepositID: "d-a2", BankTxnID: "T-2", AccountNumber: a, Amount: 100, DepositedAt: t0.Add(2 * time.Hour)},
		},
		Carried: carried,
		Now:     t0.Add(3 * time.Hour),
	})
	var onA, onB *domain.ReconcileItem
	for _, list := range [][]domain.ReconcileItem{got.Matched, got.MissingInLedger, got.TimingDifference, got.Duplicate, got.AmountMismatch, got.MissingAtBank} {
		for i, it := range list {
			if it.BankTxnID != "T-1" {
				continue
			}
			if it.AccountNumber == domain.NormalizeAccountNumber(a) {
				onA = &list[i]
			} else {
				onB = &list[i]
			}
		}
	}
	if onA == nil || onB == nil {
		t.Fatalf("T-1 on each account: a %+v b %+v (run %+v)", onA, onB, got.ReconcileItems)
	}
	if onA.CarriedFrom != "rec_a" || onB.CarriedFrom != "" {
		t.Fatalf("carried_from: a %q b %q, want rec_a and none", onA.CarriedFrom, onB.CarriedFrom)
	}
}

// A carried item of one account settles on that account only: a deposit
// under the same bank_txn_id on another covered account is its own
// transaction, reported on its own (missing_at_bank here), not absorbed by
// the carried item, and it does not turn the carried item into a finding
// while the scanner has not passed it.
func TestReconcileBankCarriedItemLeavesAnotherAccountsDeposit(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const a, b = "110-123-456789", "220-000-1111"
	na, nb := domain.NormalizeAccountNumber(a), domain.NormalizeAccountNumber(b)
	run := func(watermarks map[string]time.Time) domain.ReconciliationCompleted {
		return domain.ReconcileBank(domain.BankReconcileInput{
			RunID: "rec_next",
			Lines: []domain.StatementLine{
				{BankTxnID: "T-a", AccountNumber: a, DepositorName: "가", Amount: 100, DepositedAt: t0},
				{BankTxnID: "T-b", AccountNumber: b, DepositorName: "나", Amount: 100, DepositedAt: t0},
				{BankTxnID: "T-b2", AccountNumber: b, DepositorName: "다", Amount: 100, DepositedAt: t0.Add(5 * time.Hour)},
			},
			Recorded: []domain.RecordedDeposit{
				{DepositID: "d-a", BankTxnID: "T-a", AccountNumber: a, Amount: 100, DepositedAt: t0},
				{DepositID: "d-b", BankTxnID: "T-b", AccountNumber: b, Amount: 100, DepositedAt: t0},
				{DepositID: "d-b2", BankTxnID: "T-b2", AccountNumber: b, Amount: 100, DepositedAt: t0.Add(5 * time.Hour)},
				// B's T-1: within B's period, not on the statement
				{DepositID: "d-b1", BankTxnID: "T-1", AccountNumber: b, Amount: 700, DepositedAt: t0.Add(time.Hour)},
			},
			// A's T-1 was on A's last statement and not recorded then
			Carried:    []domain.ReconcileItem{{BankTxnID: "T-1", AccountNumber: na, StatementAmount: 500, At: t0.Add(-time.Hour), CarriedFrom: "rec_a"}},
			Watermarks: watermarks,
			Now:        t0.Add(6 * time.Hour),
		})
	}
	for name, wm := range map[string]map[string]time.Time{
		"A scanned past it": {na: t0}, "A not scanned": nil,
	} {
		t.Run(name, func(t *testing.T) {
			got := run(wm)
			if len(got.MissingAtBank) != 1 || got.MissingAtBank[0].AccountNumber != nb || got.MissingAtBank[0].BankTxnID != "T-1" ||
				!slices.Equal(got.MissingAtBank[0].DepositIDs, []string{"d-b1"}) || got.MissingAtBank[0].CarriedFrom != "" {
				t.Fatalf("missing_at_bank = %+v, want B's T-1 (d-b1), not carried", got.MissingAtBank)
			}
			onA := got.MissingInLedger
			if wm == nil {
				onA = got.TimingDifference
			} else if !strings.Contains(onA[0].Note, "d-b1") {
				t.Errorf("note %q does not name B's deposit", onA[0].Note)
			}
			if len(onA) != 1 || onA[0].AccountNumber != na || onA[0].CarriedFrom != "rec_a" || len(onA[0].DepositIDs) != 0 {
				t.Fatalf("A's carried T-1 = %+v (run %+v)", onA, got.ReconcileItems)
			}
		})
	}
}

// A carry of more items than a run may list is settled all the same: the
// run counts every one, lists MaxReconcileItems of them, carried items
// first, and says it is truncated; its own timing differences are all
// kept. (A run that kept every carried item could grow past one message
// and leave its account unreconcilable for good.)
func TestReconcileBankSettlesACarryLargerThanARun(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct = "110-123-456789"
	n := domain.MaxReconcileItems + 500
	var carried []domain.ReconcileItem
	for i := range n {
		carried = append(carried, domain.ReconcileItem{BankTxnID: fmt.Sprintf("C-%05d", i), AccountNumber: domain.NormalizeAccountNumber(acct),
			StatementAmount: 1000, At: t0, CarriedFrom: "rec_before"})
	}
	run := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_after", FileSHA256: strings.Repeat("c", 64),
		Lines: []domain.StatementLine{
			{BankTxnID: "T-now", AccountNumber: acct, DepositorName: "아무개", Amount: 700, DepositedAt: t0.Add(24 * time.Hour)},
		},
		// The scanner has passed every carried transaction, and none was
		// recorded: each settles as missing in the ledger. T-now is after
		// the watermark: a timing difference.
		Watermarks: map[string]time.Time{domain.NormalizeAccountNumber(acct): t0.Add(time.Hour)},
		Carried:    carried,
		Now:        t0.Add(25 * time.Hour),
	})
	if run.Counts.MissingInLedger != n || len(run.MissingInLedger) != domain.MaxReconcileItems || !run.Truncated {
		t.Fatalf("missing in ledger: %d listed of %d counted (truncated %v), want %d listed of %d", len(run.MissingInLedger), run.Counts.MissingInLedger, run.Truncated, domain.MaxReconcileItems, n)
	}
	for _, it := range run.MissingInLedger {
		if it.CarriedFrom != "rec_before" {
			t.Fatalf("a listed item was not carried in: %+v", it)
		}
	}
	if got := refsOf(run.TimingDifference); !slices.Equal(got, []string{"T-now"}) {
		t.Fatalf("timing differences %v, want [T-now]", got)
	}
}

// Given an account whose earlier runs covered up to some time, when the next
// statement starts later, then the deposits recorded in between (on no
// statement) are compared too: missing_at_bank unless this statement holds
// them; those of the earlier period and its window are not.
func TestReconcileBankComparesTheGapSinceThePreviousStatement(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct = "110-123-456789"
	covered := t0 // the previous statement's last transaction
	rec := func(id string, at time.Time) domain.RecordedDeposit {
		return domain.RecordedDeposit{DepositID: string(domain.NewDepositID(acct, id)), BankTxnID: id, AccountNumber: acct,
			Amount: 1000, DepositedAt: at, RecordedAt: at.Add(time.Minute)}
	}
	from := t0.Add(10 * time.Hour)
	in := func(coveredTo time.Time) domain.BankReconcileInput {
		return domain.BankReconcileInput{
			RunID: domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("b", 64)), FileSHA256: strings.Repeat("b", 64),
			Lines: []domain.StatementLine{
				{BankTxnID: "T-first", AccountNumber: acct, DepositorName: "아무개", Amount: 1000, DepositedAt: from},
				{BankTxnID: "T-early", AccountNumber: acct, DepositorName: "아무개", Amount: 1000, DepositedAt: from.Add(time.Hour)},
			},
			Recorded: []domain.RecordedDeposit{
				rec("T-covered", covered.Add(-time.Minute)), // the previous period: not compared again
				rec("T-window", covered.Add(3*time.Minute)), // the previous run's window, where it matched by bank_txn_id
				rec("T-between", t0.Add(5*time.Hour)),       // on no statement
				rec("T-first", from),
				rec("T-early", from.Add(time.Hour)),
			},
			CoveredTo: map[string]time.Time{domain.NormalizeAccountNumber(acct): coveredTo},
			Now:       from.Add(24 * time.Hour),
		}
	}
	got := domain.ReconcileBank(in(covered))
	if m := refsOf(got.MissingAtBank); !slices.Equal(m, []string{"T-between"}) {
		t.Fatalf("missing_at_bank %v, want T-between", m)
	}
	if !strings.Contains(got.MissingAtBank[0].Note, "on no statement reconciled") {
		t.Errorf("note %q", got.MissingAtBank[0].Note)
	}
	if m := refsOf(got.Matched); !slices.Equal(m, []string{"T-first", "T-early"}) {
		t.Errorf("matched %v", m)
	}
	if want := covered.Add(domain.ReconcileTimingWindow); got.Accounts[0].GapFrom == nil || !got.Accounts[0].GapFrom.Equal(want) {
		t.Errorf("gap_from %v, want %s", got.Accounts[0].GapFrom, want)
	}

	// No earlier run, or one that covered past this statement's start: no gap.
	for _, c := range []time.Time{{}, from.Add(30 * time.Minute)} {
		got := domain.ReconcileBank(in(c))
		if len(got.MissingAtBank) != 0 || got.Accounts[0].GapFrom != nil {
			t.Errorf("covered to %s: missing_at_bank %v, gap_from %v; want none", c, refsOf(got.MissingAtBank), got.Accounts[0].GapFrom)
		}
	}
}

// TestReconcileBankComparesDepositsRecordedAfterTheEarlierRuns: deposits
// recorded after the account's earlier runs read it (Late), deposited in a
// time those runs had compared, are missing at the bank unless this
// statement holds them; none is reported twice, and without the earlier
// runs' sequence (LateAfter) nothing is.
func TestReconcileBankComparesDepositsRecordedAfterTheEarlierRuns(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct = "110-123-456789"
	n := domain.NormalizeAccountNumber(acct)
	rec := func(id string, at time.Time) domain.RecordedDeposit {
		return domain.RecordedDeposit{DepositID: string(domain.NewDepositID(acct, id)), BankTxnID: id, AccountNumber: acct,
			Amount: 1000, DepositedAt: at, RecordedAt: t0.Add(48 * time.Hour)}
	}
	from := t0.Add(24 * time.Hour)
	backdated, onThis := rec("T-backdated", t0.Add(time.Hour)), rec("T-on-this", t0.Add(2*time.Hour))
	in := func(lateAfter uint64) domain.BankReconcileInput {
		return domain.BankReconcileInput{
			RunID: domain.NewReconciliationID(domain.ReconcileKindBank, strings.Repeat("c", 64)), FileSHA256: strings.Repeat("c", 64),
			Lines: []domain.StatementLine{
				{BankTxnID: "T-first", AccountNumber: acct, DepositorName: "아무개", Amount: 1000, DepositedAt: from},
				// a line of the earlier period, on this statement too
				{BankTxnID: "T-on-this", AccountNumber: acct, DepositorName: "아무개", Amount: 1000, DepositedAt: t0.Add(2 * time.Hour)},
			},
			Recorded:     []domain.RecordedDeposit{rec("T-first", from), onThis, backdated},
			Late:         []domain.RecordedDeposit{backdated, onThis, backdated},
			LateAfter:    map[string]uint64{n: lateAfter},
			ComparedSeqs: map[string]uint64{n: 90},
			Now:          from.Add(24 * time.Hour),
		}
	}
	got := domain.ReconcileBank(in(40))
	if m := refsOf(got.MissingAtBank); !slices.Equal(m, []string{"T-backdated"}) || !strings.Contains(got.MissingAtBank[0].Note, "up to sequence 40") {
		t.Fatalf("missing_at_bank %v (%+v), want T-backdated, noted", m, got.MissingAtBank)
	}
	if got.MissingAtBank[0].DepositIDs[0] != backdated.DepositID {
		t.Errorf("deposit ids %v", got.MissingAtBank[0].DepositIDs)
	}
	if m := refsOf(got.Matched); !slices.Equal(m, []string{"T-first", "T-on-this"}) {
		t.Errorf("matched %v", m)
	}
	if a := got.Accounts[0]; a.ComparedSeq != 90 || a.LateAfterSeq != 40 {
		t.Errorf("compared_seq %d late_after_seq %d, want 90 and 40", a.ComparedSeq, a.LateAfterSeq)
	}
	if got := domain.ReconcileBank(in(0)); len(got.MissingAtBank) != 0 {
		t.Errorf("missing_at_bank %v without late_after, want none", refsOf(got.MissingAtBank))
	}
}

// A recorded deposit exactly ReconcileTimingWindow before the end of a
// statement is not within the window: it is missing at the bank, whether
// the statement is the first to cover it or a later one that ends exactly
// that long after it was carried.
func TestReconcileBankTimingWindowEdgeIsTheSameForACarriedItem(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	const acct = "110-123-456789"
	n := domain.NormalizeAccountNumber(acct)
	line := func(id string, at time.Time) domain.StatementLine {
		return domain.StatementLine{BankTxnID: id, AccountNumber: acct, DepositorName: "아무개", Amount: 1000, DepositedAt: at}
	}
	rec := func(id string, at time.Time) domain.RecordedDeposit {
		return domain.RecordedDeposit{DepositID: string(domain.NewDepositID(acct, id)), BankTxnID: id, AccountNumber: acct,
			Amount: 1000, DepositedAt: at, RecordedAt: at.Add(time.Minute)}
	}
	end := t0.Add(10 * time.Hour)
	first := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_first", FileSHA256: strings.Repeat("a", 64),
		Lines:      []domain.StatementLine{line("T-a", t0), line("T-end", end)},
		Recorded:   []domain.RecordedDeposit{rec("T-a", t0), rec("T-end", end), rec("T-edge", end.Add(-domain.ReconcileTimingWindow)), rec("T-after", end.Add(time.Minute))},
		Watermarks: map[string]time.Time{n: end.Add(time.Hour)},
		Now:        end.Add(time.Hour),
	})
	if got := refsOf(first.MissingAtBank); !slices.Equal(got, []string{"T-edge"}) {
		t.Fatalf("first run's missing_at_bank = %v, want [T-edge] (exactly the window before the end)", got)
	}
	if got := refsOf(first.TimingDifference); !slices.Equal(got, []string{"T-after"}) {
		t.Fatalf("first run's timing differences = %v, want [T-after]", got)
	}
	carried := slices.Clone(first.TimingDifference)
	for i := range carried {
		carried[i].CarriedFrom = first.RunID
	}
	// The next statement ends exactly the window after the carried item.
	next := end.Add(time.Minute + domain.ReconcileTimingWindow)
	second := domain.ReconcileBank(domain.BankReconcileInput{
		RunID: "rec_second", FileSHA256: strings.Repeat("b", 64),
		Lines:      []domain.StatementLine{line("T-b", next)},
		Recorded:   []domain.RecordedDeposit{rec("T-after", end.Add(time.Minute)), rec("T-b", next)},
		Watermarks: map[string]time.Time{n: next.Add(time.Hour)},
		Carried:    carried,
		Now:        next.Add(time.Hour),
	})
	if got := refsOf(second.MissingAtBank); !slices.Equal(got, []string{"T-after"}) {
		t.Fatalf("second run's missing_at_bank = %v, want [T-after] (carried, and exactly the window before the end); timing differences %v",
			got, refsOf(second.TimingDifference))
	}
}

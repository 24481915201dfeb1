package domain_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func payoutRefs(items []domain.ReconcileItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.PayoutID
	}
	return out
}

// wantPayoutCategories checks the payout IDs that each category in want
// lists, in order.
func wantPayoutCategories(t *testing.T, got domain.ReconciliationCompleted, want map[string][]string) {
	t.Helper()
	lists := map[string][]domain.ReconcileItem{"matched": got.Matched, "missing_in_ledger": got.MissingInLedger, "missing_at_bank": got.MissingAtBank,
		"amount_mismatch": got.AmountMismatch, "duplicate": got.Duplicate, "timing_difference": got.TimingDifference}
	for category, ids := range want {
		items, ok := lists[category]
		if !ok {
			t.Fatalf("no category %q", category)
		}
		if r := payoutRefs(items); !slices.Equal(r, ids) {
			t.Errorf("%s = %v, want %v", category, r, ids)
		}
	}
}

// Given a provider's report and recorded payouts that hold every category,
// when they are reconciled, then each payout lands in exactly its category.
func TestReconcilePayoutsEveryCategory(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	end := t0.Add(10 * time.Hour)
	line := func(id, status string, amount, fee int64, at time.Time) domain.PayoutReportLine {
		return domain.PayoutReportLine{PayoutID: id, Status: status, Amount: amount, Fee: fee, SettledAt: at}
	}
	rec := func(id string, status domain.PayoutStatus, amount, fee int64, at time.Time) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: status, Amount: amount, Fee: fee, FinalAt: at}
	}
	got := domain.ReconcilePayouts(domain.PayoutReconcileInput{
		Lines: []domain.PayoutReportLine{
			line("po-match", "settled", 5000, 500, t0),
			line("po-failed", "failed", 3000, 0, t0.Add(time.Hour)),
			line("po-failed-fee", "failed", 3000, 300, t0.Add(time.Hour)),
			line("po-unknown", "settled", 7000, 500, t0.Add(2*time.Hour)),
			line("po-fee", "settled", 9000, 400, t0.Add(3*time.Hour)),
			line("po-status", "settled", 1000, 500, t0.Add(4*time.Hour)),
			line("po-twice", "settled", 1000, 500, t0.Add(5*time.Hour)),
			line("po-twice", "settled", 1000, 500, t0.Add(5*time.Hour)),
			line("po-stuck", "settled", 2000, 500, t0.Add(6*time.Hour)),
			line("po-pending", "settled", 2000, 500, end.Add(-time.Minute)),
			line("po-end", "settled", 100, 0, end),
		},
		Recorded: []domain.RecordedPayout{
			rec("po-match", domain.PayoutSettledStatus, 5000, 500, t0),
			rec("po-failed", domain.PayoutFailedStatus, 3000, 0, t0.Add(time.Hour)),
			rec("po-failed-fee", domain.PayoutFailedStatus, 3000, 0, t0.Add(time.Hour)),
			rec("po-fee", domain.PayoutSettledStatus, 9000, 500, t0.Add(3*time.Hour)),
			rec("po-status", domain.PayoutFailedStatus, 1000, 0, t0.Add(4*time.Hour)),
			rec("po-twice", domain.PayoutSettledStatus, 1000, 500, t0.Add(5*time.Hour)),
			rec("po-stuck", domain.PayoutRequestedStatus, 2000, 0, time.Time{}),
			rec("po-pending", domain.PayoutRequestedStatus, 2000, 0, time.Time{}),
			rec("po-end", domain.PayoutSettledStatus, 100, 0, end),
			rec("po-not-reported", domain.PayoutSettledStatus, 6000, 500, t0.Add(7*time.Hour)),
			rec("po-just-after", domain.PayoutSettledStatus, 600, 0, end.Add(2*time.Minute)),
			rec("po-long-after", domain.PayoutSettledStatus, 600, 0, end.Add(time.Hour)),
			rec("po-before", domain.PayoutSettledStatus, 600, 0, t0.Add(-time.Hour)),
		},
	})
	wantPayoutCategories(t, got, map[string][]string{
		"matched":           {"po-match", "po-failed", "po-end"},
		"missing_in_ledger": {"po-unknown", "po-stuck"},
		"missing_at_bank":   {"po-not-reported"},
		"amount_mismatch":   {"po-failed-fee", "po-fee", "po-status"},
		"duplicate":         {"po-twice"},
		"timing_difference": {"po-pending", "po-just-after"},
	})
	if got.Kind != domain.ReconcileKindPayouts || got.Period == nil || !got.Period.From.Equal(t0) || !got.Period.To.Equal(end) || got.Counts.Findings() != 7 {
		t.Errorf("kind %s period %+v findings %d", got.Kind, got.Period, got.Counts.Findings())
	}
}

// Given earlier payouts runs, when a later report leaves out a payout
// recorded in its period, then the payout is missing at the provider unless
// an earlier run compared it: named it (on its report, whatever the
// category), or read it among the recorded payouts of its period. One
// recorded in an earlier run's period after that run read them, or in a
// gap between earlier periods, no run compared: it is missing now.
func TestReconcilePayoutsLeavesWhatAnEarlierRunCompared(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	earlierEnd := t0.Add(time.Minute)
	rec := func(id string, at time.Time, seq uint64) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutSettledStatus, Amount: 1000, Fee: 500, FinalAt: at, FinalSeq: seq}
	}
	in := domain.PayoutReconcileInput{
		Lines: []domain.PayoutReportLine{
			{PayoutID: "po-new", Status: "settled", Amount: 1000, Fee: 500, SettledAt: t0},
			{PayoutID: "po-late", Status: "settled", Amount: 1000, Fee: 500, SettledAt: t0.Add(3 * time.Hour)},
		},
		Recorded: []domain.RecordedPayout{
			rec("po-new", t0, 10), rec("po-late", t0.Add(3*time.Hour), 90),
			// read by the earlier run: in its window, recorded by its sequence
			rec("po-read-earlier", earlierEnd.Add(time.Minute), 40),
			// on the earlier report, its result recorded only later
			rec("po-named-earlier", t0.Add(time.Hour), 70),
			// in the earlier run's window, recorded after it read
			rec("po-recorded-after-the-run", earlierEnd.Add(2*time.Minute), 60),
			// after the earlier window
			rec("po-after-the-window", earlierEnd.Add(domain.ReconcileTimingWindow+time.Second), 45),
			// between two earlier periods
			rec("po-in-a-gap", t0.Add(2*time.Hour), 80),
			// before this period, in an earlier run's: read by it, or
			// recorded after the latest run read
			rec("po-before-read", t0.Add(-time.Minute), 30),
			rec("po-before-recorded-late", t0.Add(-time.Minute), 96),
			// before every earlier period, recorded late
			rec("po-before-every-report", t0.Add(-48*time.Hour), 97),
		},
		Earlier: domain.EarlierPayoutRuns{
			Named: map[string]bool{"po-named-earlier": true},
			Covers: []domain.PayoutRunCover{
				{From: t0.Add(-24 * time.Hour), To: earlierEnd, AsOfSeq: 50},
				{From: t0.Add(150 * time.Minute), To: t0.Add(4 * time.Hour), AsOfSeq: 95},
			},
		},
	}
	got := domain.ReconcilePayouts(in)
	want := []string{"po-before-recorded-late", "po-recorded-after-the-run", "po-after-the-window", "po-in-a-gap"}
	if m, missing := payoutRefs(got.Matched), payoutRefs(got.MissingAtBank); !slices.Equal(m, []string{"po-new", "po-late"}) || !slices.Equal(missing, want) {
		t.Fatalf("matched %v, missing at the provider %v; want po-new and po-late, and %v", m, missing, want)
	}
	// Without earlier runs, every one left out is missing.
	in.Earlier = domain.EarlierPayoutRuns{}
	want = []string{"po-read-earlier", "po-recorded-after-the-run", "po-after-the-window", "po-named-earlier", "po-in-a-gap"}
	if missing := payoutRefs(domain.ReconcilePayouts(in).MissingAtBank); !slices.Equal(missing, want) {
		t.Fatalf("no earlier run: missing at the provider %v, want %v", missing, want)
	}
}

// Given the timing differences a first provider report left open, when the
// next report is reconciled, then each is settled by what is recorded now,
// or carried again while the report does not cover its time.
func TestReconcilePayoutsSettlesCarriedTimingDifferences(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	carried := []domain.ReconcileItem{
		{PayoutID: "po-reported-now-settled", StatementStatus: "settled", StatementAmount: 1000, StatementFee: 500, At: t0, CarriedFrom: "rec_first"},
		{PayoutID: "po-reported-still-requested", StatementStatus: "settled", StatementAmount: 2000, StatementFee: 500, At: t0, CarriedFrom: "rec_first"},
		{PayoutID: "po-reported-other-fee", StatementStatus: "settled", StatementAmount: 3000, StatementFee: 500, At: t0, CarriedFrom: "rec_first"},
		{PayoutID: "po-settled-never-reported", LedgerStatus: "settled", LedgerAmount: 4000, LedgerFee: 500, At: t0, CarriedFrom: "rec_first"},
		{PayoutID: "po-settled-reported-now", LedgerStatus: "settled", LedgerAmount: 6000, LedgerFee: 500, At: t0, CarriedFrom: "rec_first"},
	}
	rec := func(id string, status domain.PayoutStatus, amount, fee int64, at time.Time) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: status, Amount: amount, Fee: fee, FinalAt: at}
	}
	t1 := t0.Add(24 * time.Hour)
	in := domain.PayoutReconcileInput{
		RunID: "rec_second",
		Lines: []domain.PayoutReportLine{
			{PayoutID: "po-settled-reported-now", Status: "settled", Amount: 6000, Fee: 500, SettledAt: t1},
			{PayoutID: "po-new", Status: "settled", Amount: 100, Fee: 500, SettledAt: t1.Add(time.Hour)},
		},
		Recorded: []domain.RecordedPayout{
			rec("po-reported-now-settled", domain.PayoutSettledStatus, 1000, 500, t1),
			rec("po-reported-still-requested", domain.PayoutRequestedStatus, 2000, 500, time.Time{}),
			rec("po-reported-other-fee", domain.PayoutSettledStatus, 3000, 400, t1),
			rec("po-settled-never-reported", domain.PayoutSettledStatus, 4000, 500, t0),
			rec("po-settled-reported-now", domain.PayoutSettledStatus, 6000, 500, t0),
			rec("po-new", domain.PayoutSettledStatus, 100, 500, t1.Add(time.Hour)),
		},
		Carried: carried,
		Now:     t1.Add(2 * time.Hour),
	}
	got := domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{
		"matched":           {"po-settled-reported-now", "po-new", "po-reported-now-settled"},
		"missing_in_ledger": {"po-reported-still-requested"},
		"missing_at_bank":   {"po-settled-never-reported"},
		"amount_mismatch":   {"po-reported-other-fee"},
		"timing_difference": {},
	})
	for _, list := range got.Lists() {
		for _, it := range *list {
			if want := map[bool]domain.ReconciliationID{true: "rec_first"}[it.PayoutID != "po-new"]; it.CarriedFrom != want {
				t.Errorf("%s: carried_from %q, want %q", it.PayoutID, it.CarriedFrom, want)
			}
		}
	}

	// A report that does not reach past them yet carries them again.
	in.Lines = []domain.PayoutReportLine{{PayoutID: "po-new", Status: "settled", Amount: 100, Fee: 500, SettledAt: t0.Add(time.Minute)}}
	got = domain.ReconcilePayouts(in)
	if r, want := payoutRefs(got.TimingDifference), []string{"po-reported-still-requested", "po-settled-never-reported", "po-settled-reported-now"}; !slices.Equal(r, want) {
		t.Errorf("carried again = %v, want %v", r, want)
	}
}

// Given earlier payouts runs whose periods end well before this report's,
// when it is reconciled, then the payouts recorded in between, and those
// recorded after the last run read, dated in its period, are compared too:
// the runs come in the order of their periods, and no other run would.
func TestReconcilePayoutsComparesWhatFellBetweenReports(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	rec := func(id string, at time.Time, seq uint64) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutSettledStatus, Amount: 1000, Fee: 500, FinalAt: at, FinalSeq: seq}
	}
	in := domain.PayoutReconcileInput{
		Lines: []domain.PayoutReportLine{{PayoutID: "po-on-it", Status: "settled", Amount: 1000, Fee: 500, SettledAt: t0}},
		Recorded: []domain.RecordedPayout{
			rec("po-on-it", t0, 70),
			rec("po-read", t0.Add(-24*time.Hour+2*time.Minute), 40),
			rec("po-recorded-after-the-read", t0.Add(-24*time.Hour+2*time.Minute), 60),
			rec("po-between", t0.Add(-12*time.Hour), 45),
		},
		Earlier: domain.EarlierPayoutRuns{Covers: []domain.PayoutRunCover{{From: t0.Add(-48 * time.Hour), To: t0.Add(-24 * time.Hour), AsOfSeq: 50}}},
	}
	got := domain.ReconcilePayouts(in)
	want := []string{"po-recorded-after-the-read", "po-between"}
	if missing := payoutRefs(got.MissingAtBank); !slices.Equal(payoutRefs(got.Matched), []string{"po-on-it"}) || !slices.Equal(missing, want) {
		t.Fatalf("matched %v, missing at the provider %v; want po-on-it, and %v", payoutRefs(got.Matched), missing, want)
	}
	if n := got.MissingAtBank[0].Note; !strings.Contains(n, "before the report's period") {
		t.Errorf("note %q", n)
	}
}

// Given payouts an earlier run found on its report and missing in the
// ledger, when their results are recorded since, then the next run compares
// each with that report's line, whatever its own report holds: a result
// still not recorded is left for a later run, and a payout on this report
// is compared with this report's line.
func TestReconcilePayoutsComparesResultsRecordedSinceTheyWereMissing(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	missing := func(id, status string, amount, fee int64) domain.ReconcileItem {
		return domain.ReconcileItem{PayoutID: id, StatementStatus: status, StatementAmount: amount, StatementFee: fee, At: t0, CarriedFrom: "rec_first"}
	}
	rec := func(id string, status domain.PayoutStatus, amount, fee int64) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: status, Amount: amount, Fee: fee, FinalAt: t0.Add(time.Minute), FinalSeq: 90}
	}
	t1 := t0.Add(24 * time.Hour)
	got := domain.ReconcilePayouts(domain.PayoutReconcileInput{
		RunID: "rec_second",
		Lines: []domain.PayoutReportLine{
			{PayoutID: "po-on-this-report", Status: "settled", Amount: 4000, Fee: 500, SettledAt: t1},
			{PayoutID: "po-new", Status: "settled", Amount: 100, Fee: 500, SettledAt: t1.Add(time.Hour)},
		},
		Recorded: []domain.RecordedPayout{
			rec("po-failed-there-settled-here", domain.PayoutSettledStatus, 1000, 500),
			rec("po-agrees", domain.PayoutFailedStatus, 2000, 0),
			rec("po-still-requested", domain.PayoutRequestedStatus, 3000, 0),
			rec("po-on-this-report", domain.PayoutSettledStatus, 4000, 500),
			rec("po-new", domain.PayoutSettledStatus, 100, 500),
		},
		Unrecorded: []domain.ReconcileItem{
			missing("po-failed-there-settled-here", "failed", 1000, 0),
			missing("po-agrees", "failed", 2000, 0),
			missing("po-still-requested", "settled", 3000, 500),
			missing("po-on-this-report", "failed", 4000, 0),
			missing("po-never-recorded", "settled", 5000, 500),
		},
		Earlier: domain.EarlierPayoutRuns{Named: map[string]bool{"po-failed-there-settled-here": true, "po-agrees": true, "po-on-this-report": true}},
		Now:     t1.Add(2 * time.Hour),
	})
	wantPayoutCategories(t, got, map[string][]string{
		"matched":           {"po-on-this-report", "po-new", "po-agrees"},
		"amount_mismatch":   {"po-failed-there-settled-here"},
		"missing_in_ledger": {},
		"missing_at_bank":   {},
		"timing_difference": {},
	})
	if len(got.AmountMismatch) == 1 {
		it := got.AmountMismatch[0]
		if it.CarriedFrom != "rec_first" || it.StatementStatus != "failed" || it.LedgerStatus != "settled" || it.LedgerAmount != 1000 ||
			it.Note != "its result found missing in the ledger by run rec_first, recorded since; failed at the provider, settled in the ledger" {
			t.Errorf("amount mismatch %+v", it)
		}
	}
}

// A payout recorded settled exactly ReconcileTimingWindow before the end of
// a report's period is not within the window: missing at the provider,
// whether the report is the first to cover it or a later one whose period
// ends exactly that long after it was carried.
func TestReconcilePayoutsTimingWindowEdgeIsTheSameForACarriedItem(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	rec := func(id string, at time.Time) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutSettledStatus, Amount: 1000, Fee: 500, FinalAt: at}
	}
	end := t0.Add(10 * time.Hour)
	first := domain.ReconcilePayouts(domain.PayoutReconcileInput{
		RunID: "rec_first",
		Lines: []domain.PayoutReportLine{
			{PayoutID: "po-a", Status: "settled", Amount: 1000, Fee: 500, SettledAt: t0},
			{PayoutID: "po-end", Status: "settled", Amount: 1000, Fee: 500, SettledAt: end},
		},
		Recorded: []domain.RecordedPayout{rec("po-a", t0), rec("po-end", end), rec("po-edge", end.Add(-domain.ReconcileTimingWindow)), rec("po-after", end.Add(time.Minute))},
		Now:      end.Add(time.Hour),
	})
	wantPayoutCategories(t, first, map[string][]string{"missing_at_bank": {"po-edge"}, "timing_difference": {"po-after"}})
	carried := slices.Clone(first.TimingDifference)
	for i := range carried {
		carried[i].CarriedFrom = first.RunID
	}
	next := end.Add(time.Minute + domain.ReconcileTimingWindow)
	second := domain.ReconcilePayouts(domain.PayoutReconcileInput{
		RunID:    "rec_second",
		Lines:    []domain.PayoutReportLine{{PayoutID: "po-b", Status: "settled", Amount: 1000, Fee: 500, SettledAt: next}},
		Recorded: []domain.RecordedPayout{rec("po-after", end.Add(time.Minute)), rec("po-b", next)},
		Carried:  carried,
		Now:      next.Add(time.Hour),
	})
	wantPayoutCategories(t, second, map[string][]string{"missing_at_bank": {"po-after"}, "timing_difference": {}})
}

// Given a report sent with the period it covers (the provider's report of
// a day), when it is reconciled, then the payouts recorded final in all of
// the period are compared, not only those from its first to its last
// line: one made final after the last line and not on the report is
// missing at the provider, one within 5 minutes of the period's end is a
// timing difference, and the run's period is the one given. Without the
// period, the first of them is left to the next report.
func TestReconcilePayoutsOverTheGivenPeriod(t *testing.T) {
	day := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	rec := func(id string, at time.Time) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutSettledStatus, Amount: 1000, Fee: 500, FinalAt: at, FinalSeq: 10}
	}
	period := domain.ReconcilePeriod{From: day, To: day.Add(24*time.Hour - time.Nanosecond)}
	in := domain.PayoutReconcileInput{
		Lines: []domain.PayoutReportLine{{PayoutID: "po-on-it", Status: "settled", Amount: 1000, Fee: 500, SettledAt: day.Add(time.Hour)}},
		Recorded: []domain.RecordedPayout{
			rec("po-on-it", day.Add(time.Hour)),
			rec("po-after-the-last-line", day.Add(20*time.Hour)),
			rec("po-near-the-end", period.To.Add(-time.Minute)),
		},
		Period: &period,
	}
	got := domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{"matched": {"po-on-it"}, "missing_at_bank": {"po-after-the-last-line"}, "timing_difference": {"po-near-the-end"}})
	if got.Period == nil || *got.Period != period {
		t.Errorf("the run's period %+v, want %+v", got.Period, period)
	}
	in.Period = nil
	got = domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{"matched": {"po-on-it"}, "missing_at_bank": {}, "timing_difference": {}})
}

// Given a part of a day's report whose later parts hold payouts recorded
// final just after its end (a burst across it), when it is reconciled,
// then it leaves those to their parts: not timing differences (a burst of
// thousands would not fit one run), nor a carried item missing at the
// provider. One on no part is still carried.
func TestReconcilePayoutsLeavesTheLaterPartsPayouts(t *testing.T) {
	day := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	end := day.Add(2 * time.Hour)
	rec := func(id string, at time.Time) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutSettledStatus, Amount: 1000, Fee: 500, FinalAt: at, FinalSeq: 10}
	}
	in := domain.PayoutReconcileInput{
		Lines:  []domain.PayoutReportLine{{PayoutID: "po-on-it", Status: "settled", Amount: 1000, Fee: 500, SettledAt: day.Add(time.Hour)}},
		Period: &domain.ReconcilePeriod{From: day, To: end},
		Recorded: []domain.RecordedPayout{
			rec("po-on-it", day.Add(time.Hour)),
			rec("po-later-part", end.Add(time.Second)),
			rec("po-on-no-part", end.Add(2*time.Second)),
			rec("po-carried", day.Add(-time.Minute)),
		},
		Carried: []domain.ReconcileItem{{PayoutID: "po-carried", LedgerAmount: 1000, LedgerFee: 500, LedgerStatus: "settled", At: day.Add(-time.Minute)}},
		Later:   map[string]bool{"po-later-part": true, "po-carried": true},
	}
	got := domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{"matched": {"po-on-it"}, "missing_at_bank": {}, "timing_difference": {"po-on-no-part"}})
	in.Later = nil
	got = domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{"matched": {"po-on-it"}, "missing_at_bank": {"po-carried"}, "timing_difference": {"po-later-part", "po-on-no-part"}})
}

// Given a payout the engine failed because the provider refused it and
// did not know it (NeverTaken: nothing of it is at the provider), when a
// report leaves it out, then it is not missing at the provider, nor
// carried as a timing difference: no report will ever hold it. A failure
// the provider gave, left out, is still missing; and a refused one the
// report does hold is compared as any line.
func TestReconcilePayoutsLeavesOutAPayoutTheProviderNeverTook(t *testing.T) {
	day := time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)
	period := domain.ReconcilePeriod{From: day, To: day.Add(24*time.Hour - time.Nanosecond)}
	failed := func(id string, at time.Time, neverTaken bool) domain.RecordedPayout {
		return domain.RecordedPayout{PayoutID: id, Status: domain.PayoutFailedStatus, Amount: 1000, FinalAt: at, FinalSeq: 10, NeverTaken: neverTaken}
	}
	in := domain.PayoutReconcileInput{
		Lines: []domain.PayoutReportLine{
			{PayoutID: "po-on-it", Status: "failed", Amount: 1000, SettledAt: day.Add(time.Hour)},
			{PayoutID: "po-refused-but-reported", Status: "settled", Amount: 1000, Fee: 500, SettledAt: day.Add(2 * time.Hour)},
		},
		Recorded: []domain.RecordedPayout{
			failed("po-on-it", day.Add(time.Hour), false),
			failed("po-refused-but-reported", day.Add(2*time.Hour), true),
			failed("po-refused", day.Add(3*time.Hour), true),
			failed("po-refused-near-the-end", period.To.Add(-time.Minute), true),
			failed("po-failed-not-reported", day.Add(4*time.Hour), false),
			failed("po-refused-carried", day.Add(-time.Minute), true),
		},
		Carried: []domain.ReconcileItem{{PayoutID: "po-refused-carried", LedgerAmount: 1000, LedgerStatus: "failed", At: day.Add(-time.Minute)}},
		Period:  &period,
	}
	got := domain.ReconcilePayouts(in)
	wantPayoutCategories(t, got, map[string][]string{
		"matched": {"po-on-it"}, "amount_mismatch": {"po-refused-but-reported"},
		"missing_at_bank": {"po-failed-not-reported"}, "timing_difference": {},
	})
}

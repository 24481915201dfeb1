package projections_test

import (
	"slices"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// A run whose carry base is the scope's record replaces it with its own
// timing differences; two runs made at once from the same carry lose
// nothing: the second keeps the first's new items beside its own, without
// the carried items both settled. The record keeps the earliest start and
// the latest end of a period any run covered, and the latest sequence a run
// compared deposits as of, whatever order the runs came in.
func TestCarryOfRunsMadeAtOnceLosesNothing(t *testing.T) {
	st := openStoreWith(t, "reconcile_carry")
	l := newCommitLog()
	const acct = "110123456789"
	item := func(txn string) domain.ReconcileItem {
		return domain.ReconcileItem{BankTxnID: txn, AccountNumber: acct, StatementAmount: 100, At: t0}
	}
	run := func(id domain.ReconciliationID, base domain.ReconciliationID, to time.Time, settled []domain.ReconcileItem, timing ...domain.ReconcileItem) {
		t.Helper()
		e := domain.ReconciliationCompleted{RunID: id, Kind: domain.ReconcileKindBank,
			Accounts:       []domain.ReconcileAccount{{AccountNumber: acct, From: to.Add(-time.Hour), To: to, CarryBase: base, ComparedSeq: uint64(to.Sub(t0) / time.Hour * 10)}},
			ReconcileItems: domain.ReconcileItems{Matched: settled, TimingDifference: timing}}
		if err := st.Apply([]eventstore.Commit{l.commit(t, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(id)}, t0, e)}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		coveredTo, coveredFrom time.Time
		compared               uint64
	)
	open := func() (txns []string, base domain.ReconciliationID) {
		t.Helper()
		carry, err := st.Carry(domain.ReconcileKindBank, "110-123-456789")
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range carry.Items {
			txns = append(txns, it.BankTxnID+"<"+string(it.CarriedFrom))
		}
		coveredTo, coveredFrom, compared = carry.CoveredTo, carry.CoveredFrom, carry.ComparedSeq
		return txns, carry.Base
	}
	hour := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }

	run("rec_1", "", hour(1), nil, item("A"), item("B"))
	if got, base := open(); !slices.Equal(got, []string{"A<rec_1", "B<rec_1"}) || base != "rec_1" || !coveredTo.Equal(hour(1)) {
		t.Fatalf("after rec_1: %v from %s, covered to %s", got, base, coveredTo)
	}
	// rec_2 and rec_3 both took in rec_1's carry; rec_2 settled A, rec_3
	// settled B (each carrying the other again would look the same).
	settledA, settledB := item("A"), item("B")
	settledA.CarriedFrom, settledB.CarriedFrom = "rec_1", "rec_1"
	// rec_3's statement ends before rec_2's.
	run("rec_2", "rec_1", hour(3), []domain.ReconcileItem{settledA}, withFrom(item("B"), "rec_1"), item("C"))
	run("rec_3", "rec_1", hour(2), []domain.ReconcileItem{settledB}, withFrom(item("A"), "rec_1"), item("D"))
	got, base := open()
	slices.Sort(got)
	if !slices.Equal(got, []string{"A<rec_1", "C<rec_2", "D<rec_3"}) || base != "rec_3" {
		t.Fatalf("after two runs at once: %v from %s, want A (carried again by rec_3), C and D; B settled", got, base)
	}
	if !coveredTo.Equal(hour(3)) || !coveredFrom.Equal(hour(0)) || compared != 30 {
		t.Fatalf("covered %s to %s, compared to %d after a run to %s (30) and one to %s (20)", coveredFrom, coveredTo, compared, hour(3), hour(2))
	}
	// The next run took in that record: its timing differences replace it.
	run("rec_4", "rec_3", hour(4), nil, item("E"))
	if got, _ := open(); !slices.Equal(got, []string{"E<rec_4"}) || !coveredTo.Equal(hour(4)) {
		t.Fatalf("after rec_4: %v, covered to %s", got, coveredTo)
	}
}

func withFrom(it domain.ReconcileItem, from domain.ReconciliationID) domain.ReconcileItem {
	it.CarriedFrom = from
	return it
}

// A bank run's missing_in_ledger items stay in its accounts' carry (with
// the run that found them) until a later run reports the transaction
// again; other runs keep them.
func TestCarryKeepsUnrecordedStatementLinesUntilReportedAgain(t *testing.T) {
	st := openStoreWith(t, "reconcile_carry")
	l := newCommitLog()
	const acct = "110123456789"
	item := func(txn string) domain.ReconcileItem {
		return domain.ReconcileItem{BankTxnID: txn, AccountNumber: acct, StatementAmount: 100, At: t0}
	}
	run := func(id domain.ReconciliationID, items domain.ReconcileItems) {
		t.Helper()
		e := domain.ReconciliationCompleted{RunID: id, Kind: domain.ReconcileKindBank,
			Accounts: []domain.ReconcileAccount{{AccountNumber: acct, From: t0, To: t0.Add(time.Hour)}}, ReconcileItems: items}
		if err := st.Apply([]eventstore.Commit{l.commit(t, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(id)}, t0, e)}); err != nil {
			t.Fatal(err)
		}
	}
	unrecorded := func() []string {
		t.Helper()
		carry, err := st.Carry(domain.ReconcileKindBank, acct)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range carry.Unrecorded {
			out = append(out, it.BankTxnID+"<"+string(it.CarriedFrom))
		}
		return out
	}
	run("rec_1", domain.ReconcileItems{MissingInLedger: []domain.ReconcileItem{item("A"), item("B")}, Matched: []domain.ReconcileItem{item("M")}})
	if got := unrecorded(); !slices.Equal(got, []string{"A<rec_1", "B<rec_1"}) {
		t.Fatalf("after rec_1: %v", got)
	}
	// C was carried into rec_2 as a timing difference from rec_0; rec_2
	// found it missing.
	run("rec_2", domain.ReconcileItems{Matched: []domain.ReconcileItem{withFrom(item("A"), "rec_1")}, MissingInLedger: []domain.ReconcileItem{withFrom(item("C"), "rec_0")}})
	if got := unrecorded(); !slices.Equal(got, []string{"B<rec_1", "C<rec_2"}) {
		t.Fatalf("after rec_2 reported A again: %v, want B and C, each from the run that found it missing", got)
	}
}

// Each payouts run records what it compared: its report's period, with
// the sequence it read the recorded payouts as of, and every payout it
// named, in any category. An empty report covers nothing.
func TestPayoutsRunsRecordWhatTheyCompared(t *testing.T) {
	st := openStoreWith(t, "reconcile_carry")
	l := newCommitLog()
	hour := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	run := func(id, base domain.ReconciliationID, from, to time.Time, lines int, asOf uint64, items domain.ReconcileItems) {
		t.Helper()
		e := domain.ReconciliationCompleted{RunID: id, Kind: domain.ReconcileKindPayouts, CarryBase: base, Lines: lines,
			Period: &domain.ReconcilePeriod{From: from, To: to}, LedgerAsOfSeq: asOf, ReconcileItems: items}
		if err := st.Apply([]eventstore.Commit{l.commit(t, eventstore.Ref{Type: domain.AggregateReconciliation, ID: string(id)}, t0, e)}); err != nil {
			t.Fatal(err)
		}
	}
	po := func(id string) []domain.ReconcileItem { return []domain.ReconcileItem{{PayoutID: id}} }
	run("rec_1", "", hour(1), hour(2), 3, 40, domain.ReconcileItems{Matched: po("po-a"), MissingInLedger: po("po-b")})
	run("rec_2", "rec_1", hour(3), hour(5), 2, 90, domain.ReconcileItems{MissingAtBank: po("po-c"), TimingDifference: po("po-d")})
	run("rec_3", "rec_2", time.Time{}, time.Time{}, 0, 95, domain.ReconcileItems{})
	covers, err := st.PayoutRunCovers()
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.PayoutsNamed([]string{"po-a", "po-b", "po-c", "po-d", "po-e"})
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for id := range got {
		named = append(named, id)
	}
	slices.Sort(named)
	want := []domain.PayoutRunCover{
		{RunID: "rec_1", From: hour(1), To: hour(2), AsOfSeq: 40},
		{RunID: "rec_2", From: hour(3), To: hour(5), AsOfSeq: 90},
	}
	if !slices.Equal(named, []string{"po-a", "po-b", "po-c", "po-d"}) || !slices.EqualFunc(covers, want, func(a, b domain.PayoutRunCover) bool {
		return a.RunID == b.RunID && a.From.Equal(b.From) && a.To.Equal(b.To) && a.AsOfSeq == b.AsOfSeq
	}) {
		t.Fatalf("named %v, covers %+v; want po-a to po-d, and %+v", named, covers, want)
	}
}

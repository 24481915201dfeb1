package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
)

func itemIDs(items []api.ReconcileItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.BankTxnID)
	}
	return out
}

// statementScene records deposits on the collection account and another,
// advances the collection account's scan watermark, and returns a
// statement holding every category against them.
func statementScene(t *testing.T, e *testEngine) api.ReconcileBankRequest {
	t.Helper()
	t0 := time.Now().UTC().Add(-20 * time.Hour).Truncate(time.Second)
	acct, other := e.cfg.CollectNumber, "999-000-1111"
	record := func(id, account string, amount int64, at time.Time) {
		t.Helper()
		var rep api.RecordDepositReply
		e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: id, AccountNumber: account, DepositorName: "아무개",
			Amount: amount, DepositedAt: at}, &rep, nil)
	}
	record("T-match", acct, 5000, t0)
	record("T-amount", acct, 8000, t0.Add(2*time.Hour))
	record("T-twice", acct, 1000, t0.Add(3*time.Hour))
	// banks number transactions per account: the other account's
	// T-both-accounts is another transaction, outside this statement
	record("T-both-accounts", acct, 2000, t0.Add(4*time.Hour))
	record("T-both-accounts", other, 2000, t0.Add(4*time.Hour))
	record("T-elsewhere", other, 3000, t0.Add(5*time.Hour))
	record("T-not-at-bank", acct, 6000, t0.Add(6*time.Hour))
	record("T-end", acct, 100, t0.Add(12*time.Hour))
	record("T-just-after", acct, 500, t0.Add(12*time.Hour+2*time.Minute))
	record("T-long-after", acct, 500, t0.Add(13*time.Hour))
	wm := t0.Add(10 * time.Hour)
	var sc api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: acct, CompleteUpTo: wm}, &sc, nil)

	line := func(id string, amount int64, at time.Time) api.StatementLine {
		return api.StatementLine{BankTxnID: id, AccountNumber: acct, DepositorName: "아무개", Amount: amount, DepositedAt: at}
	}
	lines := []api.StatementLine{
		line("T-match", 5000, t0),
		line("T-unrecorded", 7000, t0.Add(time.Hour)),
		line("T-amount", 9000, t0.Add(2*time.Hour)),
		line("T-twice", 1000, t0.Add(3*time.Hour)),
		line("T-twice", 1000, t0.Add(3*time.Hour)),
		line("T-both-accounts", 2000, t0.Add(4*time.Hour)),
		line("T-elsewhere", 3000, t0.Add(5*time.Hour)),
		line("T-late", 4000, wm.Add(time.Minute)),
		line("T-end", 100, t0.Add(12*time.Hour)),
	}
	sum := sha256.Sum256([]byte(t.Name() + t0.String()))
	return api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}
}

// A statement built to hold every category is reconciled into each; run
// again, it answers the same run and writes nothing; the run can be read
// back.
func TestReconcileBankEveryCategoryTwice(t *testing.T) {
	e := startEngine(t)
	req := statementScene(t, e)

	first, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := domain.NewReconciliationID(domain.ReconcileKindBank, req.FileSHA256); first.RunID != want || first.Repeated || first.Seq == 0 {
		t.Fatalf("run %s repeated %v seq %d, want %s, new, written", first.RunID, first.Repeated, first.Seq, want)
	}
	for _, tc := range []struct {
		category string
		items    []api.ReconcileItem
		want     []string
	}{
		{"matched", first.Matched, []string{"T-match", "T-both-accounts", "T-end"}},
		{"missing_in_ledger", first.MissingInLedger, []string{"T-unrecorded", "T-elsewhere"}},
		{"missing_at_bank", first.MissingAtBank, []string{"T-not-at-bank"}},
		{"amount_mismatch", first.AmountMismatch, []string{"T-amount"}},
		{"duplicate", first.Duplicate, []string{"T-twice"}},
		{"timing_difference", first.TimingDifference, []string{"T-late", "T-just-after"}},
	} {
		if got := itemIDs(tc.items); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.category, got, tc.want)
		}
	}
	if first.Clean || first.Findings != 5 || first.Lines != 9 || len(first.Accounts) != 1 || first.Accounts[0].ScanWatermark == nil {
		t.Errorf("clean %v findings %d lines %d accounts %+v", first.Clean, first.Findings, first.Lines, first.Accounts)
	}

	before := e.lastSeq(t)
	again, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.RunID != first.RunID || !again.Repeated || again.Seq != first.Seq || again.Counts != first.Counts ||
		!again.CompletedAt.Equal(first.CompletedAt) {
		t.Fatalf("again: run %s repeated %v seq %d counts %+v, want %s as recorded at seq %d", again.RunID, again.Repeated, again.Seq, again.Counts, first.RunID, first.Seq)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the same file again wrote: last seq %d → %d", before, after)
	}
	// Other lines under the file hash already reconciled are refused: the
	// run would otherwise answer for a file it never saw.
	forged := req
	forged.Lines = forged.Lines[:1]
	var fe *api.Error
	if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, forged, nil); !errors.As(err, &fe) || fe.Status != 400 || fe.Code != api.CodeInvalidInput || !strings.Contains(fe.Message, "file_sha256") {
		t.Fatalf("other lines under the same file hash: %v, want 400 invalid_input on file_sha256", err)
	}

	got, _, err := client.Do(ctxT(t), e.c, api.ReconcileGet, api.ReconcileGetRequest{RunID: string(first.RunID)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.RunID != first.RunID || got.Counts != first.Counts || !slices.Equal(itemIDs(got.Duplicate), itemIDs(first.Duplicate)) {
		t.Errorf("get: %+v", got)
	}
	var ae *api.Error
	if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileGet, api.ReconcileGetRequest{RunID: "rec_0123456789abcdef01234567"}, nil); !errors.As(err, &ae) ||
		ae.Status != 404 || ae.Code != api.CodeReconciliationNotFound {
		t.Errorf("unknown run: %v, want 404 %s", err, api.CodeReconciliationNotFound)
	}
	for _, bad := range []string{"rec_nope", "bogus", "rec_0123456789ABCDEF01234567", "rec_0123456789abcdef0123456"} {
		if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileGet, api.ReconcileGetRequest{RunID: bad}, nil); !errors.As(err, &ae) ||
			ae.Status != 400 || ae.Code != api.CodeInvalidInput || ae.Details["field"] != "run_id" {
			t.Errorf("run_id %q: %v, want 400 invalid_input", bad, err)
		}
	}
}

// The timing differences of one statement are carried to the account's
// next statement, which settles them: the transaction the scanner had not
// reached is recorded since and matches; the deposit the bank dated into
// the next statement is on it and matches; both name the first run. The
// next run also compares what was recorded between the two periods.
func TestReconcileBankCarriesTimingDifferencesToTheNextStatement(t *testing.T) {
	e := startEngine(t)
	req := statementScene(t, e)
	first, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(first.TimingDifference); !slices.Equal(got, []string{"T-late", "T-just-after"}) {
		t.Fatalf("first run's timing differences = %v", got)
	}
	late := first.TimingDifference[0]
	var rep api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-late", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: late.StatementAmount, DepositedAt: late.At}, &rep, nil)
	next := late.At.Add(6 * time.Hour)
	var sc api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: next}, &sc, nil)
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-next", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 300, DepositedAt: next.Add(-time.Hour)}, &rep, nil)
	// Recorded after the first run, deposited in its period and on neither
	// statement: no run compared it before the second.
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-backdated", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 700, DepositedAt: first.Accounts[0].From.Add(time.Minute)}, &rep, nil)
	// Deposited at the first moment the second run's gap leaves out (the
	// first run compared up to it), recorded after that run.
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-edge", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 800, DepositedAt: first.Accounts[0].To.Add(domain.ReconcileTimingWindow)}, &rep, nil)
	// On the first statement, missing in the ledger then: recorded since,
	// it is not missing at the bank.
	if got := itemIDs(first.MissingInLedger); !slices.Contains(got, "T-unrecorded") {
		t.Fatalf("first run's missing_in_ledger = %v", got)
	}
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-unrecorded", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 7000, DepositedAt: first.Accounts[0].From.Add(time.Hour)}, &rep, nil)

	sum := sha256.Sum256([]byte(t.Name() + "next"))
	second, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: []api.StatementLine{
		{BankTxnID: "T-just-after", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 500, DepositedAt: next.Add(-2 * time.Hour)},
		{BankTxnID: "T-next", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 300, DepositedAt: next.Add(-time.Hour)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := itemIDs(second.Matched), []string{"T-just-after", "T-next", "T-late", "T-unrecorded"}; !slices.Equal(got, want) {
		t.Errorf("matched = %v, want %v (counts %+v)", got, want, second.Counts)
	}
	// T-long-after was deposited after the first statement's period (and
	// its window) and before the second's, T-backdated in the first's but
	// recorded after its run: on neither statement, they are missing at
	// the bank, found by the second run.
	if got := itemIDs(second.MissingAtBank); !slices.Equal(got, []string{"T-long-after", "T-backdated", "T-edge"}) || second.Counts.TimingDifference != 0 {
		t.Errorf("missing_at_bank = %v, want T-long-after, T-backdated and T-edge (counts %+v)", got, second.Counts)
	}
	if a, b := first.Accounts[0], second.Accounts[0]; a.ComparedSeq == 0 || a.LateAfterSeq != 0 || b.LateAfterSeq != a.ComparedSeq || b.ComparedSeq <= a.ComparedSeq {
		t.Errorf("compared_seq %d then %d, late_after_seq %d then %d: want the second run to look after the first's", a.ComparedSeq, b.ComparedSeq, a.LateAfterSeq, b.LateAfterSeq)
	}
	if a := second.Accounts[0]; a.GapFrom == nil || !a.GapFrom.Equal(first.Accounts[0].To.Add(domain.ReconcileTimingWindow)) {
		t.Errorf("gap_from %v, want the first period's end %s plus the window", a.GapFrom, first.Accounts[0].To)
	}
	for _, it := range second.Matched {
		if want := map[bool]domain.ReconciliationID{true: first.RunID}[it.BankTxnID != "T-next"]; it.CarriedFrom != want || it.LedgerAmount != it.StatementAmount {
			t.Errorf("%s: carried_from %q, want %q", it.BankTxnID, it.CarriedFrom, want)
		}
	}
}

// A timing difference the scanner then passed without recording it is
// found missing in the ledger by the next run, though that run's statement
// does not hold it. Recorded since, the run after matches it with the line
// of the statement that held it, carried from the run that found it
// missing, and its note does not say that run's statement held it.
func TestReconcileBankNotesACarriedTransactionRecordedSinceItWasMissing(t *testing.T) {
	e := startEngine(t)
	acct := e.cfg.CollectNumber
	t0 := time.Now().UTC().Add(-20 * time.Hour).Truncate(time.Second)
	var sc api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: acct, CompleteUpTo: t0}, &sc, nil)
	var rep api.RecordDepositReply
	record := func(id string, amount int64, at time.Time) {
		t.Helper()
		e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: id, AccountNumber: acct, DepositorName: "아무개",
			Amount: amount, DepositedAt: at}, &rep, nil)
	}
	run := func(name string, lines ...api.StatementLine) api.ReconcileReply {
		t.Helper()
		sum := sha256.Sum256([]byte(t.Name() + name))
		r, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	line := func(id string, amount int64, at time.Time) api.StatementLine {
		return api.StatementLine{BankTxnID: id, AccountNumber: acct, DepositorName: "아무개", Amount: amount, DepositedAt: at}
	}
	first := run("first", line("T-lost", 4000, t0.Add(time.Minute)))
	if got := itemIDs(first.TimingDifference); !slices.Equal(got, []string{"T-lost"}) {
		t.Fatalf("first run's timing differences = %v", got)
	}
	// The scan passes T-lost without recording it (a feed that lost it).
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: acct, CompleteUpTo: t0.Add(time.Hour)}, &sc, nil)
	record("T-second", 300, t0.Add(2*time.Minute))
	second := run("second", line("T-second", 300, t0.Add(2*time.Minute)))
	if got := itemIDs(second.MissingInLedger); !slices.Equal(got, []string{"T-lost"}) || second.MissingInLedger[0].CarriedFrom != first.RunID {
		t.Fatalf("second run's missing_in_ledger = %v (%+v), want T-lost carried from the first", got, second.MissingInLedger)
	}
	record("T-lost", 4000, t0.Add(time.Minute)) // by the operator, from the bank's statement
	record("T-third", 200, t0.Add(3*time.Minute))
	third := run("third", line("T-third", 200, t0.Add(3*time.Minute)))
	if got := itemIDs(third.Matched); !slices.Equal(got, []string{"T-third", "T-lost"}) || third.Counts.MissingAtBank != 0 {
		t.Fatalf("third run: matched %v, counts %+v; want T-third and T-lost", got, third.Counts)
	}
	it := third.Matched[1]
	if it.CarriedFrom != second.RunID {
		t.Errorf("T-lost carried_from %q, want the run that found it missing, %q", it.CarriedFrom, second.RunID)
	}
	if strings.Contains(it.Note, "on the statement of run "+string(second.RunID)) || !strings.Contains(it.Note, string(second.RunID)) {
		t.Errorf("T-lost note %q: the second run found it missing, but its statement did not hold it", it.Note)
	}
}

// reconcileOneRecorded records one transfer (T-1, 5,000) and reconciles a
// statement that lists it n times.
func reconcileOneRecorded(t *testing.T, n int) api.ReconcileReply {
	t.Helper()
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var rep api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 5000, DepositedAt: at}, &rep, nil)
	line := api.StatementLine{BankTxnID: "T-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 5000, DepositedAt: at}
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(make([]byte, 32)),
		Lines: slices.Repeat([]api.StatementLine{line}, n)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// The same file sent again with a period it was not reconciled over is
// refused, not answered with the recorded run: that run compared other
// times (and, with accounts, other accounts), so its clean result would
// vouch for what it never compared. Over the recorded period it is the
// recorded run.
func TestReconcileBankRefusesTheSameFileOverAnotherPeriod(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var rep api.RecordDepositReply
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
		Amount: 5000, DepositedAt: at}, &rep, nil)
	// A deposit the statement does not show, on an account its lines do
	// not name: only a run given the period and the account compares it.
	e.call(t, api.DepositRecord.Subject, api.RecordDepositRequest{BankTxnID: "T-forged", AccountNumber: "777-777", DepositorName: "아무개",
		Amount: 900, DepositedAt: at.Add(-10 * time.Minute)}, &rep, nil)
	line := api.StatementLine{BankTxnID: "T-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 5000, DepositedAt: at}
	sum := sha256.Sum256([]byte(t.Name()))
	req := api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: []api.StatementLine{line}}
	first, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Clean || first.Period != nil {
		t.Fatalf("first run: clean %v period %v, want clean without a period", first.Clean, first.Period)
	}
	day := &api.ReconcilePeriod{From: at.Add(-time.Hour), To: at.Add(time.Minute)}
	withPeriod := req
	withPeriod.Period, withPeriod.Accounts = day, []string{"777-777"}
	var fe *api.Error
	if rep, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, withPeriod, nil); !errors.As(err, &fe) || fe.Status != 400 ||
		fe.Code != api.CodeInvalidInput || fe.Details["field"] != "period" {
		t.Fatalf("the same file with a period: %v (repeated %v clean %v), want 400 invalid_input on period", err, rep.Repeated, rep.Clean)
	}

	// Recorded over a period: the same period again, or one within it, is
	// the run; another one (or none) is refused.
	sum = sha256.Sum256([]byte(t.Name() + " over a day"))
	req.FileSHA256, req.Period = hex.EncodeToString(sum[:]), day
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil || !again.Repeated || again.RunID != run.RunID {
		t.Fatalf("the same file over the same period: %v repeated %v run %s, want the recorded run %s", err, again.Repeated, again.RunID, run.RunID)
	}
	// Within the run's period: the run compared all of it.
	within := req
	within.Period = &api.ReconcilePeriod{From: at, To: at}
	if again, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, within, nil); err != nil || !again.Repeated || again.RunID != run.RunID {
		t.Fatalf("the same file over a period within the run's: %v repeated %v run %s, want the recorded run %s", err, again.Repeated, again.RunID, run.RunID)
	}
	for name, p := range map[string]*api.ReconcilePeriod{
		"a later end":   {From: day.From, To: day.To.Add(time.Second)},
		"no period":     nil,
		"another start": {From: day.From.Add(-time.Hour), To: day.To},
	} {
		other := req
		other.Period = p
		if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, other, nil); !errors.As(err, &fe) || fe.Status != 400 ||
			fe.Code != api.CodeInvalidInput || fe.Details["field"] != "period" {
			t.Errorf("the same file with %s: %v, want 400 invalid_input on period", name, err)
		}
	}
}

// A payouts report sent with the period it covers is recorded over that
// period. The same file again is its run over that period, one within it,
// or none (its lines' span is within it); over one the run's does not
// hold, it is refused, as a report first sent without a period is with
// one.
func TestReconcilePayoutsOverAPeriod(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	line := api.PayoutReportLine{PayoutID: "po-unknown", Status: "settled", Amount: 5000, Fee: 500, SettledAt: at}
	sum := sha256.Sum256([]byte(t.Name()))
	day := &api.ReconcilePeriod{From: at.Add(-time.Hour), To: at.Add(time.Minute)}
	req := api.ReconcilePayoutsRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: []api.PayoutReportLine{line}, Period: day}
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Period == nil || !run.Period.From.Equal(day.From) || !run.Period.To.Equal(day.To) || len(run.MissingInLedger) != 1 {
		t.Fatalf("the run: period %+v, missing in the ledger %+v; want over %+v, the line missing", run.Period, run.MissingInLedger, day)
	}
	for name, p := range map[string]*api.ReconcilePeriod{"the same period": day, "one within it": {From: at, To: at}, "none": nil} {
		again := req
		again.Period = p
		if rep, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, again, nil); err != nil || !rep.Repeated || rep.RunID != run.RunID {
			t.Errorf("the same file over %s: %v repeated %v run %s, want the recorded run %s", name, err, rep.Repeated, rep.RunID, run.RunID)
		}
	}
	var fe *api.Error
	refused := func(name string, req api.ReconcilePayoutsRequest) {
		t.Helper()
		if _, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, req, nil); !errors.As(err, &fe) || fe.Status != 400 ||
			fe.Code != api.CodeInvalidInput || fe.Details["field"] != "period" {
			t.Errorf("%s: %v, want 400 invalid_input on period", name, err)
		}
	}
	later := req
	later.Period = &api.ReconcilePeriod{From: day.From, To: day.To.Add(time.Second)}
	refused("the same file over a later end", later)
	sum = sha256.Sum256([]byte(t.Name() + " without a period"))
	req.FileSHA256, req.Period = hex.EncodeToString(sum[:]), nil
	if _, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, req, nil); err != nil {
		t.Fatal(err)
	}
	req.Period = day
	refused("a file sent without a period, again with one", req)
}

// A statement whose every transaction is recorded at its amount is clean.
func TestReconcileBankClean(t *testing.T) {
	run := reconcileOneRecorded(t, 1)
	if !run.Clean || run.Findings != 0 || run.Counts.Matched != 1 {
		t.Fatalf("clean %v findings %d counts %+v", run.Clean, run.Findings, run.Counts)
	}
}

// A transaction on the statement twice that is recorded once is a
// duplicate that names the recorded amount: ledger_amount is absent only
// when nothing is recorded (API.md, an item), and the deposit is.
func TestReconcileBankDuplicateOfARecordedTransactionHasItsLedgerAmount(t *testing.T) {
	run := reconcileOneRecorded(t, 2)
	if run.Counts.Duplicate != 1 || len(run.Duplicate) != 1 {
		t.Fatalf("counts %+v duplicate %+v, want one duplicate", run.Counts, run.Duplicate)
	}
	if d := run.Duplicate[0]; d.LedgerAmount != 5000 || d.StatementAmount != 5000 || d.StatementCount != 2 || len(d.DepositIDs) != 1 {
		t.Fatalf("duplicate %+v, want ledger_amount 5000 (recorded), statement_amount 5000, statement_count 2, one deposit", d)
	}
}

// Reconciliation is the operator's: the NATS server refuses the app (and
// the feed) both subjects, and the auditor the command; the auditor reads
// the results.
func TestReconcileRoles(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	req := api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(make([]byte, 32)),
		Lines: []api.StatementLine{{BankTxnID: "T-1", AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 5000, DepositedAt: at}}}
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := api.ReconcileGetRequest{RunID: string(run.RunID)}
	for _, tc := range []struct {
		role           auth.Role
		command, query bool
	}{{auth.App, false, false}, {auth.Feed, false, false}, {auth.Auditor, false, true}, {auth.Operator, true, true}} {
		t.Run(string(tc.role), func(t *testing.T) {
			c := connectAs(t, e.ClientURL(), e.SeedFile(tc.role))
			check := func(what string, allowed bool, err error) {
				t.Helper()
				var ae *api.Error
				switch {
				case allowed && err != nil:
					t.Errorf("%s %s: %v", tc.role, what, err)
				case !allowed && (!errors.As(err, &ae) || ae.Status != 403 || ae.Code != api.CodeForbidden):
					t.Errorf("%s %s: %v, want 403 forbidden", tc.role, what, err)
				}
			}
			before := e.lastSeq(t)
			_, _, err := client.Do(ctxT(t), c, api.ReconcileBank, req, nil)
			check("reconcile.bank", tc.command, err)
			_, _, err = client.Do(ctxT(t), c, api.ReconcileGet, get, nil)
			check("reconcile.get", tc.query, err)
			if after := e.lastSeq(t); after != before {
				t.Errorf("%s wrote: last seq %d → %d", tc.role, before, after)
			}
		})
	}
}

// A provider's report against payouts the engine settled: matched, a fee
// that differs, a payout the engine never made, one reported twice, and one
// settled but not on the report (just before the report's end: a timing
// difference; the domain tests cover missing_at_bank, which needs a clock
// the engine does not let a test move). Run twice, it is one run.
func TestReconcilePayoutsTwice(t *testing.T) {
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-p", "김민수", 30000)
	ids := []string{e.withdraw(t, "u-p", 5000, payee), e.withdraw(t, "u-p", 6000, payee), e.withdraw(t, "u-p", 7000, payee)}
	e.waitPayouts(t, "settled", ids...)
	views := make([]api.PayoutView, len(ids))
	var last time.Time
	for i, id := range ids {
		views[i], _ = e.payout(t, id)
		at, err := time.Parse(time.RFC3339Nano, views[i].UpdatedAt)
		if err != nil {
			t.Fatal(err)
		}
		if at.After(last) {
			last = at
		}
	}
	// The payouts settle concurrently: the report holds the two that
	// settled first, so the third settles within its period (a timing
	// difference), whatever their order.
	slices.SortFunc(views, func(a, b api.PayoutView) int { return strings.Compare(a.UpdatedAt, b.UpdatedAt) })
	for i, v := range views {
		ids[i] = v.PayoutID
	}
	line := func(v api.PayoutView, fee int64) api.PayoutReportLine {
		at, _ := time.Parse(time.RFC3339Nano, v.UpdatedAt)
		return api.PayoutReportLine{PayoutID: v.PayoutID, Status: v.Status, Amount: v.Amount, Fee: fee, SettledAt: at}
	}
	unknown := api.PayoutReportLine{PayoutID: "po-never", Status: "settled", Amount: 1000, Fee: 0, SettledAt: last}
	req := api.ReconcilePayoutsRequest{FileSHA256: hex.EncodeToString(make([]byte, 32)), Lines: []api.PayoutReportLine{
		line(views[0], views[0].Fee), line(views[1], views[1].Fee+100), unknown, unknown,
	}}
	first, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	payoutIDs := func(items []api.ReconcileItem) []string {
		out := []string{}
		for _, it := range items {
			out = append(out, it.PayoutID)
		}
		return out
	}
	for _, tc := range []struct {
		category string
		items    []api.ReconcileItem
		want     []string
	}{
		{"matched", first.Matched, []string{ids[0]}},
		{"amount_mismatch", first.AmountMismatch, []string{ids[1]}},
		{"duplicate", first.Duplicate, []string{"po-never"}},
		{"missing_in_ledger", first.MissingInLedger, []string{}},
		{"timing_difference", first.TimingDifference, []string{ids[2]}},
	} {
		if got := payoutIDs(tc.items); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.category, got, tc.want)
		}
	}
	if first.Kind != domain.ReconcileKindPayouts || first.Period == nil || first.Clean || first.Repeated {
		t.Errorf("kind %s period %v clean %v repeated %v", first.Kind, first.Period, first.Clean, first.Repeated)
	}

	// The same report again is the same run; nothing is written.
	before := e.lastSeq(t)
	again, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, req, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.RunID != first.RunID || !again.Repeated || again.Counts != first.Counts || e.lastSeq(t) != before {
		t.Fatalf("again: %s repeated %v counts %+v; seq %d → %d", again.RunID, again.Repeated, again.Counts, before, e.lastSeq(t))
	}
	// A bank run of the same file bytes is another run.
	if domain.NewReconciliationID(domain.ReconcileKindBank, req.FileSHA256) == first.RunID {
		t.Fatal("a bank run and a payouts run of the same file share an ID")
	}

	// A payout the engine never made is missing in the ledger.
	one := api.ReconcilePayoutsRequest{FileSHA256: hex.EncodeToString(append(make([]byte, 31), 1)), Lines: []api.PayoutReportLine{unknown}}
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, one, nil)
	if err != nil || !slices.Equal(payoutIDs(run.MissingInLedger), []string{"po-never"}) {
		t.Fatalf("unknown payout: %+v, %v", run.Counts, err)
	}
}

// lateScene settles a payout, reconciles a report holding it and ending
// when the run is made (run 1), then settles another, recorded after that
// run read the payouts and dated within its window (5 minutes after the
// report's end). It returns both payouts' IDs and times, and run, which
// reconciles report n.
func lateScene(t *testing.T) (first, late string, at, lat time.Time, run func(n byte, lines ...api.PayoutReportLine) api.ReconcileReply) {
	t.Helper()
	e, bk := moneyEngine(t)
	fund(t, e, bk, "u-p", "김민수", 30000)
	settle := func(amount int64) (api.PayoutView, time.Time) {
		t.Helper()
		id := e.withdraw(t, "u-p", amount, payee)
		e.waitPayouts(t, "settled", id)
		v, _ := e.payout(t, id)
		at, err := time.Parse(time.RFC3339Nano, v.UpdatedAt)
		if err != nil {
			t.Fatal(err)
		}
		return v, at
	}
	run = func(n byte, lines ...api.PayoutReportLine) api.ReconcileReply {
		t.Helper()
		rep, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, api.ReconcilePayoutsRequest{FileSHA256: hex.EncodeToString(append(make([]byte, 31), n)), Lines: lines}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	v, at := settle(5000)
	end := time.Now().UTC()
	one := run(1, api.PayoutReportLine{PayoutID: v.PayoutID, Status: v.Status, Amount: v.Amount, Fee: v.Fee, SettledAt: at},
		api.PayoutReportLine{PayoutID: "po-window", Status: "settled", Amount: 100, SettledAt: end})
	if ids := itemPayoutIDs(one.Matched); !slices.Equal(ids, []string{v.PayoutID}) {
		t.Fatalf("first run matched %v", ids)
	}
	lv, lat := settle(6000)
	if lat.After(end.Add(domain.ReconcileTimingWindow)) {
		t.Fatalf("the second payout settled at %s, more than %s after the first report's end %s", lat, domain.ReconcileTimingWindow, end)
	}
	return v.PayoutID, lv.PayoutID, at, lat, run
}

// Given a payouts run, when a payout settles after it, within its period
// or just after, then the next report, which leaves the payout out, still
// compares it: no run before compared it. The payouts the first run
// compared are not compared again.
func TestReconcilePayoutsComparesAPayoutRecordedAfterTheLastRun(t *testing.T) {
	first, late, at, lat, run := lateScene(t)
	// The next report covers both, naming neither.
	two := run(2, api.PayoutReportLine{PayoutID: "po-other-1", Status: "settled", Amount: 100, SettledAt: at},
		api.PayoutReportLine{PayoutID: "po-other-2", Status: "settled", Amount: 100, SettledAt: lat.Add(time.Millisecond)})
	var named []string
	for _, list := range [][]api.ReconcileItem{two.Matched, two.MissingAtBank, two.AmountMismatch, two.Duplicate, two.TimingDifference} {
		named = append(named, itemPayoutIDs(list)...)
	}
	if !slices.Equal(itemPayoutIDs(two.TimingDifference), []string{late}) || slices.Contains(named, first) {
		t.Fatalf("second run: timing differences %v, every payout named but missing_in_ledger %v; want %s carried, and %s (compared by the first run) not named",
			itemPayoutIDs(two.TimingDifference), named, late, first)
	}
}

// Given a payouts run, when a payout settles after the run read, dated in
// its window, and the next report begins after that payout's time, then
// the next run compares it still (no run read it): not on that report, it
// is missing at the provider.
func TestReconcilePayoutsComparesAPayoutRecordedAfterTheLastRunRead(t *testing.T) {
	_, late, _, lat, run := lateScene(t)
	two := run(2, api.PayoutReportLine{PayoutID: "po-other-1", Status: "settled", Amount: 100, SettledAt: lat.Add(time.Second)},
		api.PayoutReportLine{PayoutID: "po-other-2", Status: "settled", Amount: 100, SettledAt: lat.Add(2 * time.Second)})
	if got := itemPayoutIDs(two.MissingAtBank); !slices.Equal(got, []string{late}) {
		t.Fatalf("second run: missing at the provider %v, want %s (settled after the first run read, before this report's period)", got, late)
	}
}

// Given a payout the provider reported failed while the engine had no
// result for it (missing_in_ledger), when the engine records it settled,
// then the next payouts run, whose report leaves it out, compares the
// recorded result with the first report's line: an amount_mismatch that
// names the first run. The run after that does not name it again.
func TestReconcilePayoutsComparesAResultRecordedAfterItWasMissing(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-p", "김민수", 30000)
	g.hold()
	id := e.withdraw(t, "u-p", 5000, payee)
	testenv.Eventually(t, 20*time.Second, "the transfer held at the provider", func() bool { return g.held() > 0 })
	e.waitPayouts(t, "requested", id) // the read model may lag the reply on a loaded machine
	run := func(n byte, lines ...api.PayoutReportLine) api.ReconcileReply {
		t.Helper()
		rep, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, api.ReconcilePayoutsRequest{FileSHA256: hex.EncodeToString(append(make([]byte, 31), n)), Lines: lines}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	now := time.Now().UTC()
	one := run(1, api.PayoutReportLine{PayoutID: id, Status: "failed", Amount: 5000, SettledAt: now.Add(-10 * time.Minute)},
		api.PayoutReportLine{PayoutID: "po-other-1", Status: "settled", Amount: 100, SettledAt: now})
	if got := itemPayoutIDs(one.MissingInLedger); !slices.Contains(got, id) {
		t.Fatalf("first run: missing in the ledger %v, want %s (its result not recorded)", got, id)
	}
	g.open()
	e.waitPayouts(t, "settled", id)

	two := run(2, api.PayoutReportLine{PayoutID: "po-other-2", Status: "settled", Amount: 100, SettledAt: time.Now().UTC()})
	if got := itemPayoutIDs(two.AmountMismatch); !slices.Equal(got, []string{id}) {
		t.Fatalf("second run: amount mismatch %v, want %s (failed at the provider, settled in the ledger)", got, id)
	}
	it := two.AmountMismatch[0]
	if it.CarriedFrom != one.RunID || it.StatementStatus != "failed" || it.LedgerStatus != "settled" || it.StatementAmount != 5000 ||
		!strings.Contains(it.Note, "recorded since") || !strings.Contains(it.Note, "failed at the provider, settled in the ledger") {
		t.Fatalf("second run's item: %+v", it)
	}
	three := run(3, api.PayoutReportLine{PayoutID: "po-other-3", Status: "settled", Amount: 100, SettledAt: time.Now().UTC()})
	for _, list := range [][]api.ReconcileItem{three.Matched, three.MissingAtBank, three.AmountMismatch, three.Duplicate, three.TimingDifference} {
		if slices.Contains(itemPayoutIDs(list), id) {
			t.Fatalf("third run named %s again: %+v", id, three.Counts)
		}
	}
}

func itemPayoutIDs(items []api.ReconcileItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.PayoutID)
	}
	return out
}

// A statement with more items than a run records: the counts are complete,
// the items bounded, and the run (event and reply) fits in one message.
func TestReconcileBankLargeStatementIsTruncated(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	n := domain.MaxReconcileItems + 100
	var lines []api.StatementLine
	for i := range n {
		id := fmt.Sprintf("%0128d", i) // the longest bank_txn_id
		l := api.StatementLine{BankTxnID: id, AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개", Amount: 1000, DepositedAt: at}
		lines = append(lines, l, l) // each twice: duplicates, with a note
	}
	sum := sha256.Sum256([]byte(t.Name()))
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !run.Truncated || run.Counts.Duplicate != n || len(run.Duplicate) != domain.MaxReconcileItems || run.Lines != 2*n {
		t.Fatalf("truncated %v counts %+v items %d lines %d", run.Truncated, run.Counts, len(run.Duplicate), run.Lines)
	}
	got, _, err := client.Do(ctxT(t), e.c, api.ReconcileGet, api.ReconcileGetRequest{RunID: string(run.RunID)}, nil)
	if err != nil || len(got.Duplicate) != domain.MaxReconcileItems {
		t.Fatalf("get: %d items, %v", len(got.Duplicate), err)
	}
}

// Timing differences are never cut from a run (the next run settles them
// from its event): a run with more than MaxReconcileItems keeps them all,
// and one whose timing differences cannot fit in a message is refused,
// writing nothing.
func TestReconcileKeepsEveryTimingDifference(t *testing.T) {
	e := startEngine(t)
	wm := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var sc api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: wm}, &sc, nil)
	statement := func(n, idLen int) api.ReconcileBankRequest {
		var lines []api.StatementLine
		for i := range n { // after the watermark: not scanned yet
			lines = append(lines, api.StatementLine{BankTxnID: fmt.Sprintf("%0*d", idLen, i), AccountNumber: e.cfg.CollectNumber, DepositorName: "아무개",
				Amount: 1000, DepositedAt: wm.Add(time.Minute)})
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", t.Name(), n, idLen))
		return api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}
	}
	n := domain.MaxReconcileItems + 100
	run, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, statement(n, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.Counts.TimingDifference != n || len(run.TimingDifference) != n || run.Truncated {
		t.Fatalf("timing differences %d of %d (truncated %v)", len(run.TimingDifference), run.Counts.TimingDifference, run.Truncated)
	}

	before := e.lastSeq(t)
	var ae *api.Error
	if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, statement(3000, 120), nil); !errors.As(err, &ae) || ae.Status != 400 || ae.Code != api.CodeInvalidInput {
		t.Fatalf("a run whose timing differences cannot fit: %v, want 400 %s", err, api.CodeInvalidInput)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the refused run wrote: last seq %d → %d", before, after)
	}
}

// The next statement of many accounts, its request within its limits,
// makes a run whose accounts alone (each with its carry and the gap since
// its previous run) do not fit in one message: it is refused, writing
// nothing, with a message that says what does not fit.
func TestReconcileBankRefusesARunWhoseAccountsDoNotFit(t *testing.T) {
	e := startEngine(t)
	const n = 6000
	statement := func(at time.Time) api.ReconcileBankRequest {
		var lines []api.StatementLine
		for i := range n {
			lines = append(lines, api.StatementLine{BankTxnID: fmt.Sprintf("N%d", i), AccountNumber: fmt.Sprintf("9%06d", i), DepositorName: "x",
				Amount: 1, DepositedAt: at})
		}
		sum := sha256.Sum256([]byte(t.Name() + at.String()))
		return api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: lines}
	}
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	if _, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, statement(at), nil); err != nil {
		t.Fatal(err)
	}
	before := e.lastSeq(t)
	var ae *api.Error
	_, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, statement(at.Add(time.Hour)), nil)
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != api.CodeInvalidInput {
		t.Fatalf("a run whose accounts cannot fit: %v, want 400 %s", err, api.CodeInvalidInput)
	}
	if want := fmt.Sprintf("%d accounts", n); !strings.Contains(ae.Message, want) {
		t.Errorf("message %q does not say what does not fit (%q)", ae.Message, want)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the refused run wrote: last seq %d → %d", before, after)
	}
}

// A run over a period covering as many accounts as a request may name
// makes an event that fits in a message but a reply that does not (the
// reply writes every time with its microseconds): it is refused, writing
// nothing, rather than recorded with its answer lost (500
// reply_too_large).
func TestReconcileBankRefusesARunWhoseReplyWouldNotFit(t *testing.T) {
	e := startEngine(t)
	at := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	accounts := make([]string, api.MaxReconcileLines)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("9%09d", i)
	}
	sum := sha256.Sum256([]byte(t.Name()))
	before := e.lastSeq(t)
	var ae *api.Error
	_, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]),
		Lines:    []api.StatementLine{{BankTxnID: "R1", AccountNumber: e.cfg.CollectNumber, DepositorName: "x", Amount: 1, DepositedAt: at}},
		Period:   &api.ReconcilePeriod{From: at.Add(-time.Hour), To: at.Add(time.Hour)},
		Accounts: accounts}, nil)
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != api.CodeInvalidInput {
		t.Fatalf("a run whose reply cannot fit: %v, want 400 %s", err, api.CodeInvalidInput)
	}
	if want := fmt.Sprintf("%d accounts", len(accounts)+1); !strings.Contains(ae.Message, want) {
		t.Errorf("message %q does not say what does not fit (%q)", ae.Message, want)
	}
	if after := e.lastSeq(t); after != before {
		t.Fatalf("the refused run wrote: last seq %d → %d", before, after)
	}
}

// A store's dedicated account is a sub-account of the collection account:
// one feed, one scan watermark, the collection account's. A statement line
// on it after that watermark is not scanned yet, a timing difference, not
// missing from the ledger.
func TestReconcileBankUsesTheFeedsWatermarkForDedicatedAccounts(t *testing.T) {
	e := startEngine(t)
	var link api.LinkStoreReply
	e.call(t, api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1", StoreName: "한울식당"}, &link, nil)
	wm := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var sc api.ScanCompleteReply
	e.call(t, api.DepositScanComplete.Subject, api.ScanCompleteRequest{AccountNumber: e.cfg.CollectNumber, CompleteUpTo: wm}, &sc, nil)
	sum := sha256.Sum256([]byte(t.Name()))
	rep, _, err := client.Do(ctxT(t), e.c, api.ReconcileBank, api.ReconcileBankRequest{FileSHA256: hex.EncodeToString(sum[:]), Lines: []api.StatementLine{
		{BankTxnID: "D-late", AccountNumber: link.DedicatedAccount.Number, DepositorName: "한울식당", Amount: 666, DepositedAt: wm.Add(time.Minute)},
		{BankTxnID: "D-early", AccountNumber: link.DedicatedAccount.Number, DepositorName: "한울식당", Amount: 555, DepositedAt: wm.Add(-time.Minute)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := itemIDs(rep.TimingDifference); !slices.Equal(got, []string{"D-late"}) {
		t.Errorf("timing differences %v, want [D-late] (counts %+v)", got, rep.Counts)
	}
	if got := itemIDs(rep.MissingInLedger); !slices.Equal(got, []string{"D-early"}) {
		t.Errorf("missing in ledger %v, want [D-early]", got)
	}
	if len(rep.Accounts) != 1 || rep.Accounts[0].ScanWatermark == nil || !rep.Accounts[0].ScanWatermark.Equal(wm) {
		t.Errorf("accounts %+v, want the dedicated account with the collection account's watermark %v", rep.Accounts, wm)
	}
}

// Given a withdrawal the provider refused and never knew (failed,
// "refused: …", its money back) and one it settled, when the provider's
// report, which holds only the settled one, is reconciled, then the
// refused payout is in no category: no report ever holds a transfer the
// provider never took, so it is neither missing at the provider nor a
// timing difference carried to be found missing by the next run.
func TestReconcilePayoutsLeavesOutARefusedPayout(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{RefuseAccounts: []string{refusedAccount.Number}})
	e, bk := payoutEngine(t, g)
	fund(t, e, bk, "u-r", "최거절", 10000)
	refused := e.withdraw(t, "u-r", 1000, refusedAccount)
	ok := e.withdraw(t, "u-r", 2000, payee)
	e.waitPayouts(t, "failed", refused)
	e.waitPayouts(t, "settled", ok)
	v, _ := e.payout(t, ok)
	at, err := time.Parse(time.RFC3339Nano, v.UpdatedAt)
	if err != nil {
		t.Fatal(err)
	}
	from := at.Add(-time.Hour).UTC()
	period := &domain.ReconcilePeriod{From: from, To: time.Now().UTC()}
	rep, _, err := client.Do(ctxT(t), e.c, api.ReconcilePayouts, api.ReconcilePayoutsRequest{
		FileSHA256: hex.EncodeToString(append(make([]byte, 31), 7)), Period: period,
		Lines: []api.PayoutReportLine{{PayoutID: ok, Status: "settled", Amount: v.Amount, Fee: v.Fee, SettledAt: at}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(itemPayoutIDs(rep.Matched), []string{ok}) {
		t.Errorf("matched %v, want %s", itemPayoutIDs(rep.Matched), ok)
	}
	for name, list := range map[string][]api.ReconcileItem{"missing_at_bank": rep.MissingAtBank, "timing_difference": rep.TimingDifference,
		"missing_in_ledger": rep.MissingInLedger, "amount_mismatch": rep.AmountMismatch, "duplicate": rep.Duplicate} {
		if slices.Contains(itemPayoutIDs(list), refused) {
			t.Errorf("the refused payout %s is in %s: %+v", refused, name, rep.Counts)
		}
	}
}

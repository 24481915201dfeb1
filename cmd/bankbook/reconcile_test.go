package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/engine"
)

// `reconcile bank --statement FILE` compares a statement with the deposits
// the engine recorded: exit 1 with findings, the same run again for the
// same file, 0 for a clean statement, 2 when it cannot run.
func TestReconcileBankCommand(t *testing.T) {
	s := newStatementEngine(t)
	e, url, dir, write, at, acct := s.e, s.url, s.dir, s.write, s.at, s.acct
	recorded := write("recorded.csv", statementHeader+
		"T-1,"+acct+",가,5000,"+at(0)+"\n"+
		"T-2,"+acct+",나,8000,"+at(time.Hour)+"\n"+
		"T-3,"+acct+",다,1000,"+at(2*time.Hour)+"\n")
	if _, err := cli(t, "deposit", "import", url, recorded); err != nil {
		t.Fatal(err)
	}
	statement := write("statement.csv", statementHeader+
		"T-1,"+acct+",가,5000,"+at(0)+"\n"+
		"T-2,"+acct+",나,9000,"+at(time.Hour)+"\n"+
		"T-4,"+acct+",라,7000,"+at(90*time.Minute)+"\n"+
		"T-5,"+acct+",마,100,"+at(3*time.Hour)+"\n"+
		"T-5,"+acct+",마,100,"+at(3*time.Hour)+"\n")

	var runs []api.ReconcileReply
	for range 2 {
		out, err := cli(t, "reconcile", "bank", url, "--statement", statement, "--json")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 1 {
			t.Fatalf("findings: exit %v, want 1\n%s", err, out)
		}
		var run api.ReconcileReply
		if err := json.Unmarshal([]byte(out), &run); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		runs = append(runs, run)
	}
	first, again := runs[0], runs[1]
	if first.RunID == "" || again.RunID != first.RunID || first.Repeated || !again.Repeated {
		t.Fatalf("runs %s (repeated %v) and %s (repeated %v): want one run, recorded once", first.RunID, first.Repeated, again.RunID, again.Repeated)
	}
	for name, got := range map[string][]api.ReconcileItem{
		"matched T-1": first.Matched, "amount_mismatch T-2": first.AmountMismatch, "missing_in_ledger T-4": first.MissingInLedger,
		"missing_at_bank T-3": first.MissingAtBank, "duplicate T-5": first.Duplicate,
	} {
		if want := strings.Fields(name)[1]; len(got) != 1 || got[0].BankTxnID != want {
			t.Errorf("%s: got %+v", name, got)
		}
	}

	out, err := cli(t, "reconcile", "bank", url, "--statement", statement)
	if err == nil || !strings.Contains(out, "amount_mismatch    T-2") || !strings.Contains(out, "4 findings") || !strings.Contains(out, "reconciled before") {
		t.Fatalf("human output (%v):\n%s", err, out)
	}
	out, err = cli(t, "reconcile", "get", url, string(first.RunID), "--nkey", e.SeedFile(auth.Auditor), "--json")
	var got api.ReconcileReply
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || json.Unmarshal([]byte(out), &got) != nil || got.RunID != first.RunID || got.Counts != first.Counts {
		t.Fatalf("get as the auditor: %v\n%s", err, out)
	}

	clean := write("clean.csv", statementHeader+"T-1,"+acct+",가,5000,"+at(0)+"\n")
	if out, err := cli(t, "reconcile", "bank", url, "--statement", clean); err != nil || !strings.Contains(out, "clean") {
		t.Fatalf("clean statement: %v\n%s", err, out)
	}
	// The runs are in the audit trail as recorded: verify finds them whole.
	if rep, out, err := runAuditVerify(t, url, "--nkey="+e.SeedFile(auth.Auditor), "--json"); err != nil || !rep.OK || !slices.Contains(rep.Checked.Checks, "reconciliations") {
		t.Fatalf("audit verify after the runs: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"the app may not", []string{"reconcile", "bank", url, "--statement", statement, "--nkey", e.SeedFile(auth.App)}, 2},
		{"a bad statement", []string{"reconcile", "bank", url, "--statement", write("bad.csv", statementHeader+"T-1,"+acct+",가,12x,"+at(0)+"\n")}, 2},
		{"no such file", []string{"reconcile", "bank", url, "--statement", filepath.Join(dir, "none.csv")}, 2},
		{"no engine", []string{"reconcile", "bank", "--nats-url", "nats://127.0.0.1:1", "--statement", statement}, 2},
		{"no statement", []string{"reconcile", "bank", url}, exitUsage},
		// get is a query: it fails as every query does.
		{"unknown run", []string{"reconcile", "get", url, "rec_000000000000000000000000"}, exitNotFound},
		{"a run ID of another form", []string{"reconcile", "get", url, "bogus"}, exitRefused},
		{"the app may not read runs", []string{"reconcile", "get", url, "rec_000000000000000000000000", "--nkey", e.SeedFile(auth.App)}, exitRefused},
		{"get with no engine", []string{"reconcile", "get", "--nats-url", "nats://127.0.0.1:1", "rec_000000000000000000000000"}, exitUnavailable},
		{"unknown subcommand", []string{"reconcile", "payroll"}, exitUsage},
		{"help", []string{"reconcile", "-h"}, exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cli(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}

// `reconcile payouts --report FILE` reads the provider's report dialect and
// reports payouts the engine never made; the same file is the same run; a
// bad report is not sent.
func TestReconcilePayoutsCommand(t *testing.T) {
	e, _ := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	dir := t.TempDir()
	write := fileWriter(t, dir)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second).Format(time.RFC3339)
	report := write("report.csv", "\uFEFFsettled_at,payout_id,status,amount,fee\n"+
		at+",po-1,settled,5000,500\n"+
		at+",po-2,SETTLED,6000,500\n"+
		at+",po-2,settled,6000,500\n")
	var runs []api.ReconcileReply
	for range 2 {
		out, err := cli(t, "reconcile", "payouts", url, "--report", report, "--json")
		var run api.ReconcileReply
		if exitCode(err) != 1 || json.Unmarshal([]byte(out), &run) != nil {
			t.Fatalf("exit %d (%v), want 1\n%s", exitCode(err), err, out)
		}
		runs = append(runs, run)
	}
	if runs[0].RunID != runs[1].RunID || runs[0].Repeated || !runs[1].Repeated || runs[0].Kind != "payouts" {
		t.Fatalf("runs %+v / %+v", runs[0].Counts, runs[1].Counts)
	}
	if m, d := runs[0].MissingInLedger, runs[0].Duplicate; len(m) != 1 || m[0].PayoutID != "po-1" || len(d) != 1 || d[0].PayoutID != "po-2" || d[0].StatementCount != 2 {
		t.Fatalf("missing_in_ledger %+v duplicate %+v", m, d)
	}
	out, err := cli(t, "reconcile", "payouts", url, "--report", report)
	if exitCode(err) != 1 || !strings.Contains(out, "missing_in_ledger  po-1") || !strings.Contains(out, "missing_at_bank 0") {
		t.Fatalf("human output (%v):\n%s", err, out)
	}
	// --from and --to: the period the report covers, sent with it.
	from, to := time.Now().UTC().Add(-2*time.Hour).Truncate(time.Second), time.Now().UTC().Truncate(time.Second)
	day := write("day.csv", "payout_id,status,amount,fee,settled_at\npo-9,settled,5000,500,"+at+"\n")
	out, err = cli(t, "reconcile", "payouts", url, "--report", day, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--json")
	var overDay api.ReconcileReply
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &overDay) != nil || overDay.Period == nil || !overDay.Period.From.Equal(from) || !overDay.Period.To.Equal(to) {
		t.Fatalf("a report over a period: exit %d (%v), want 1 over %s to %s\n%s", exitCode(err), err, from, to, out)
	}
	if _, err := cli(t, "reconcile", "payouts", url, "--report", day, "--to", to.Format(time.RFC3339)); exitCode(err) != exitUsage {
		t.Fatalf("--to without --from: exit %d (%v), want %d", exitCode(err), err, exitUsage)
	}
	for name, content := range map[string]string{
		"a fee with a sign":     "payout_id,status,amount,fee,settled_at\npo-1,settled,5000,-5," + at + "\n",
		"a status unknown":      "payout_id,status,amount,fee,settled_at\npo-1,pending,5000,5," + at + "\n",
		"a column missing":      "payout_id,status,amount,settled_at\npo-1,settled,5000," + at + "\n",
		"a time without offset": "payout_id,status,amount,fee,settled_at\npo-1,settled,5000,5,2026-01-01T00:00:00\n",
		"no payouts":            "payout_id,status,amount,fee,settled_at\n",
		"an empty file":         "",
		"a wildcard payout_id":  "payout_id,status,amount,fee,settled_at\npo.>,settled,5000,5," + at + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := cli(t, "reconcile", "payouts", url, "--report", write("bad.csv", content))
			if exitCode(err) != 2 {
				t.Fatalf("exit %d (%v), want 2", exitCode(err), err)
			}
		})
	}
	// Every bad cell of a file is named with its line, not the first alone.
	bad := "payout_id,status,amount,fee,settled_at\n" +
		"po-1,pending,5000,5," + at + "\n" +
		"po.>,settled,5000,5," + at + "\n" +
		"po-3,settled,0,5," + at + "\n" +
		"po-4,bogus,-1,x,yesterday\n"
	_, err = cli(t, "reconcile", "payouts", url, "--report", write("bad.csv", bad))
	for _, want := range []string{"line 2: status", "line 3: payout_id", "line 4: amount",
		// A line with cells that do not parse has its other cells checked too.
		`line 5: amount "-1"`, `line 5: fee "x"`, `line 5: settled_at "yesterday"`, "line 5: status"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a report with three bad lines: %v, want %q", err, want)
		}
	}
}

// `reconcile bank --from T --to T [--account N]` sends the period the
// statement vouches for: every account it covers is compared over all of
// it, so a deposit dated before the statement's first line, or on an
// account the statement shows no transfer to, is missing at the bank.
func TestReconcileBankCommandOverAPeriod(t *testing.T) {
	s := newStatementEngine(t)
	url, write, at, acct := s.url, s.write, s.at, s.acct
	recorded := write("recorded.csv", statementHeader+
		"T-0,"+acct+",가,5000,"+at(-30*time.Minute)+"\n"+
		"T-1,"+acct+",나,8000,"+at(time.Hour)+"\n"+
		"D-1,5001000555,다,1000,"+at(90*time.Minute)+"\n")
	if _, err := cli(t, "deposit", "import", url, recorded); err != nil {
		t.Fatal(err)
	}
	statement := write("statement.csv", statementHeader+"T-1,"+acct+",나,8000,"+at(time.Hour)+"\n")

	out, err := cli(t, "reconcile", "bank", url, "--statement", statement, "--from", at(-time.Hour), "--to", at(4*time.Hour), "--account", "5001000555", "--json")
	var run api.ReconcileReply
	if exitCode(err) != 1 || json.Unmarshal([]byte(out), &run) != nil {
		t.Fatalf("exit %d (%v), want 1 with findings:\n%s", exitCode(err), err, out)
	}
	if !slices.Equal(itemTxns(run.MissingAtBank), []string{"T-0", "D-1"}) || len(run.Matched) != 1 || run.Period == nil || len(run.Accounts) != 2 {
		t.Fatalf("the run over the period: %+v", run)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"--from without --to", []string{"--from", at(-time.Hour)}},
		{"--account without a period", []string{"--account", "5001000555"}},
		{"a bad time", []string{"--from", "yesterday", "--to", at(time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cli(t, append([]string{"reconcile", "bank", url, "--statement", statement}, tc.args...)...); exitCode(err) != exitUsage {
				t.Fatalf("exit %d (%v), want %d", exitCode(err), err, exitUsage)
			}
		})
	}
	// A line outside the period is the engine's refusal: not run.
	if _, err := cli(t, "reconcile", "bank", url, "--statement", write("late.csv", statementHeader+"T-9,"+acct+",라,100,"+at(3*time.Hour)+"\n"),
		"--from", at(-time.Hour), "--to", at(time.Hour)); exitCode(err) != 2 {
		t.Fatalf("a line outside the period: exit %d (%v), want 2", exitCode(err), err)
	}
}

func itemTxns(items []api.ReconcileItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.BankTxnID)
	}
	return out
}

// statementHeader is the header row of the `deposit import` dialect.
const statementHeader = "bank_txn_id,account_number,depositor_name,amount,deposited_at\n"

// statementEngine is an engine for the `reconcile bank` tests: its
// --nats-url flag, a temp dir and a writer of files in it, the collection
// account, and at, the time d after five hours ago in RFC 3339.
type statementEngine struct {
	e        *engine.Engine
	url, dir string
	acct     string
	write    func(name, content string) string
	at       func(d time.Duration) string
}

func newStatementEngine(t *testing.T) statementEngine {
	t.Helper()
	e, cfg := startEngine(t)
	dir := t.TempDir()
	t0 := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Second)
	return statementEngine{e: e, url: "--nats-url=" + e.ClientURL(), dir: dir, acct: cfg.CollectNumber, write: fileWriter(t, dir),
		at: func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }}
}

// A file longer than one request carries (768 KiB, about 5,000 statement
// lines) is reconciled as several runs, in time order, each over its part
// of the period given (contiguous, together the whole of it), each
// identified by its own lines: the same file again is the same runs.
// (It used to be refused, the operator told to split it by date.)
func TestReconcileALongFileInParts(t *testing.T) {
	s := newStatementEngine(t)
	url, write, at, acct := s.url, s.write, s.at, s.acct
	parse := func(t *testing.T, v string) time.Time {
		t.Helper()
		ts, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	runsOf := func(t *testing.T, args ...string) []api.ReconcileReply {
		t.Helper()
		out, err := cli(t, append(args, "--json")...)
		if exitCode(err) != 1 {
			t.Fatalf("exit %d (%v), want 1 (findings)\n%.2000s", exitCode(err), err, out)
		}
		var runs []api.ReconcileReply
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var r api.ReconcileReply
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("%v\n%.2000s", err, out)
			}
			runs = append(runs, r)
		}
		return runs
	}
	lines := func(runs []api.ReconcileReply) (n int) {
		for _, r := range runs {
			n += r.Lines
		}
		return n
	}

	t.Run("a statement over a period", func(t *testing.T) {
		// A deposit recorded early in the period on an account the
		// statement shows transfers to only at its end, in its last run,
		// and not the early one: missing at the bank, as one run of the
		// whole statement would find it.
		const other = "999-000-111"
		if _, err := cli(t, "deposit", "import", url, write("early.csv", statementHeader+"EARLY-1,"+other+",누군가,777,"+at(10*time.Second)+"\n")); err != nil {
			t.Fatal(err)
		}
		var big strings.Builder
		big.WriteString(statementHeader)
		for i := range 10_000 {
			j := 9_999 - i // newest first: the runs go in time order
			account := acct
			if j >= 9_995 {
				account = other
			}
			fmt.Fprintf(&big, "B-%05d,%s,누군가,%d,%s\n", j, account, 1000+j, at(time.Duration(j)*time.Second))
		}
		statement := write("big.csv", big.String())
		from, to := at(-time.Minute), at(3*time.Hour)
		args := []string{"reconcile", "bank", url, "--statement", statement, "--from", from, "--to", to}
		runs := runsOf(t, args...)
		if len(runs) < 2 || lines(runs) != 10_000 {
			t.Fatalf("%d runs of %d lines, want several of 10,000 in all", len(runs), lines(runs))
		}
		for i, r := range runs {
			switch {
			case r.Period == nil || r.Repeated:
				t.Fatalf("run %d: period %v, repeated %v", i, r.Period, r.Repeated)
			case i == 0 && !r.Period.From.Equal(parse(t, from)):
				t.Fatalf("the first run starts at %s, want %s", r.Period.From, from)
			case i == len(runs)-1 && !r.Period.To.Equal(parse(t, to)):
				t.Fatalf("the last run ends at %s, want %s", r.Period.To, to)
			case i > 0 && (!r.Period.From.After(runs[i-1].Period.To) || r.Period.From.Sub(runs[i-1].Period.To) > time.Microsecond):
				// A reply's times are in microseconds: the run ended a
				// nanosecond before the next one starts.
				t.Fatalf("run %d ends at %s, run %d starts at %s: not contiguous", i-1, runs[i-1].Period.To, i, r.Period.From)
			}
		}
		// (Counted: each run lists at most 1,000 items, and its thousands
		// of lines missing in the ledger come first.)
		for i, r := range runs {
			if want := min(1, 1-i); r.Counts.MissingAtBank != want {
				t.Fatalf("run %d: %d missing at the bank, want %d (the deposit on %s recorded early in the period, in run 0)", i, r.Counts.MissingAtBank, want, other)
			}
		}
		again := runsOf(t, args...)
		if len(again) != len(runs) {
			t.Fatalf("%d runs again, want %d", len(again), len(runs))
		}
		for i, r := range again {
			if r.RunID != runs[i].RunID || !r.Repeated {
				t.Fatalf("run %d again: %s repeated %v, want %s repeated", i, r.RunID, r.Repeated, runs[i].RunID)
			}
		}
		// A line outside the period is named as in the file, before any
		// run is made.
		outside := []string{"reconcile", "bank", url, "--statement", statement, "--from", at(time.Hour), "--to", to}
		if out, err := cli(t, outside...); exitCode(err) != 2 || err == nil || !strings.Contains(err.Error(), "lines[6400] at ") || !strings.Contains(err.Error(), "outside --from") {
			t.Fatalf("a line outside the period: exit %d (%v)\n%.500s", exitCode(err), err, out)
		}
		out, _ := cli(t, args...)
		if n := len(runs); !strings.Contains(out, "part 1 of "+fmt.Sprint(n)+": lines 1 to ") || !strings.Contains(out, fmt.Sprintf("part %d of %d", n, n)) {
			t.Fatalf("human output names no parts:\n%.2000s", out)
		}
	})

	t.Run("a payouts report", func(t *testing.T) {
		var big strings.Builder
		big.WriteString("payout_id,status,amount,fee,settled_at\n")
		for i := range 8_000 {
			fmt.Fprintf(&big, "po-long-%05d,settled,%d,500,%s\n", i, 5000+i, at(time.Duration(i)*time.Second))
		}
		runs := runsOf(t, "reconcile", "payouts", url, "--report", write("long-report.csv", big.String()))
		if len(runs) < 2 || lines(runs) != 8_000 {
			t.Fatalf("%d runs of %d lines, want several of 8,000 in all", len(runs), lines(runs))
		}
		for i, r := range runs {
			if r.Kind != "payouts" || r.Counts.MissingInLedger != r.Lines || (i > 0 && !runs[i-1].Period.To.Before(r.Period.From)) {
				t.Fatalf("run %d: %s, %d lines, counts %+v, period %v after %v", i, r.Kind, r.Lines, r.Counts, r.Period, runs[max(i-1, 0)].Period)
			}
		}
	})
}

// A payout_id the report repeats is a duplicate only if one run has both
// lines: a long file's runs keep a repeated line's lines together, moving
// the run's end before the first.
func TestFilePartsKeepARepeatedLineInOneRun(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	var lines []api.PayoutReportLine
	for i := range 10 {
		lines = append(lines, api.PayoutReportLine{PayoutID: fmt.Sprintf("po-%d", i), Status: "settled", Amount: 1000, SettledAt: t0.Add(time.Duration(i) * time.Second)})
	}
	lines[4].PayoutID = lines[3].PayoutID // the 4th and 5th: a run of 4 would part them
	size := slices.Repeat([]int{10}, len(lines))
	at, key := func(l api.PayoutReportLine) time.Time { return l.SettledAt }, func(l api.PayoutReportLine) string { return l.PayoutID }
	parts, err := fileParts(lines, at, key, size, 40, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	runOf := map[string]int{}
	for i, p := range parts {
		for _, l := range lines[p.Start:p.End] {
			if r, ok := runOf[l.PayoutID]; ok && r != i {
				t.Fatalf("%s is in runs %d and %d: %+v", l.PayoutID, r, i, parts)
			}
			runOf[l.PayoutID] = i
		}
	}
	if len(parts) != 3 || parts[0].End != 3 {
		t.Fatalf("parts %+v, want the first to end before the repeated line", parts)
	}

	// Further apart than a run holds: not sent at all.
	lines[9].PayoutID = lines[0].PayoutID
	if parts, err := fileParts(lines, at, key, size, 40, t0, t0.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), `"payout_id":"po-0"`) || !strings.Contains(err.Error(), "is on the file more than once") {
		t.Fatalf("po-0 on the first and the last line: parts %+v, %v", parts, err)
	}
}

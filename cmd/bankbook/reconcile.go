package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
)

const reconcileUsage = "usage: bankbook reconcile bank --statement FILE.csv [--from T --to T [--account N ...]] [--json]\n" +
	"       bankbook reconcile payouts --report FILE.csv [--from T --to T] [--json]\n" +
	"       bankbook reconcile get RUN_ID [--json]\n" +
	"       bankbook reconcile list [--limit N] [--cursor C] [--json]\n" +
	"  exit status 0: clean; 1: findings; 2: could not run (bank, payouts);\n" +
	"  get and list fail as every query does: 3 no such run, 4 refused, 5 unavailable"

// Exit statuses of reconcile (API.md "Audit and reconciliation").
const (
	exitReconcileFindings = exitFailed // 1
	exitReconcileNotRun   = 2
)

// reconcile compares a bank statement with the recorded deposits
// (bankbook.cmd.reconcile.bank; operator identity) or shows a recorded run
// (bankbook.q.reconcile.get; operator or auditor).
func reconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, reconcileUsage)
	}
	fs, cf := newClientFlagSet("reconcile "+args[0], stderr)
	switch args[0] {
	case "bank":
		statement := fs.String("statement", "", "the bank statement: a CSV file in the dialect of 'deposit import'")
		var accounts []string
		period := periodFlags(fs, "statement", "every account it covers is compared over the whole period, not only from its first to its last line")
		fs.Func("account", "an account the statement covers though it shows no transfer to it in the period (repeat for more; needs --from and --to)", func(s string) error {
			accounts = append(accounts, s)
			return nil
		})
		if err := parse(fs, args[1:], required("statement")); err != nil {
			return err
		}
		p, err := period()
		if err != nil {
			return err
		}
		if len(accounts) > 0 && p == nil {
			return usageError("--account needs --from and --to")
		}
		req, err := readStatement(*statement)
		if err != nil {
			return &exitError{code: exitReconcileNotRun, err: err}
		}
		if p != nil {
			req.Period, req.Accounts = p, accounts
		}
		// Sent in parts over a period, each run covers every account the
		// whole statement covers, as one run would: an account whose
		// first transfer is in a later part is compared over the earlier
		// parts' time too.
		covered := slices.Clone(accounts)
		for _, l := range req.Lines {
			covered = append(covered, domain.NormalizeAccountNumber(l.AccountNumber))
		}
		slices.Sort(covered)
		covered = slices.Compact(covered)
		return reconcileFile(ctx, cf, stdout, api.ReconcileBank, req, req.Lines, func(l api.StatementLine) time.Time { return l.DepositedAt },
			func(l api.StatementLine) string { return string(domain.NewDepositID(l.AccountNumber, l.BankTxnID)) }, p,
			func(lines []api.StatementLine, period *api.ReconcilePeriod) (api.ReconcileBankRequest, error) {
				txns := make([]bankfeed.Transaction, len(lines))
				for i, l := range lines {
					txns[i] = bankfeed.Transaction(l)
				}
				sum, err := bankfeed.StatementSHA256(txns)
				if err != nil {
					return api.ReconcileBankRequest{}, err
				}
				part := api.ReconcileBankRequest{FileSHA256: sum, Lines: lines}
				if period != nil {
					part.Period, part.Accounts = period, covered
				}
				return part, nil
			})
	case "payouts":
		report := fs.String("report", "", "the payout provider's report: a CSV file with columns "+strings.Join(api.PayoutReportColumns, ","))
		period := periodFlags(fs, "report", "the payouts recorded settled or failed in all of it are compared, not only from its first to its last line")
		if err := parse(fs, args[1:], required("report")); err != nil {
			return err
		}
		p, err := period()
		if err != nil {
			return err
		}
		req, err := readPayoutReport(*report)
		if err != nil {
			return &exitError{code: exitReconcileNotRun, err: err}
		}
		req.Period = p
		return reconcileFile(ctx, cf, stdout, api.ReconcilePayouts, req, req.Lines, func(l api.PayoutReportLine) time.Time { return l.SettledAt },
			func(l api.PayoutReportLine) string { return l.PayoutID }, p,
			func(lines []api.PayoutReportLine, period *api.ReconcilePeriod) (api.ReconcilePayoutsRequest, error) {
				sum, err := api.PayoutReportSHA256(lines)
				return api.ReconcilePayoutsRequest{FileSHA256: sum, Lines: lines, Period: period}, err
			})
	case "get":
		pos, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("%s", reconcileUsage)
		}
		return runReconcile(ctx, cf, stdout, api.ReconcileGet, api.ReconcileGetRequest{RunID: pos[0]})
	case "list":
		var q api.ReconcileListRequest
		pageFlags(fs, &q.PageRequest, "runs (newest first)")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.ReconcileList, q, nil, func(r api.ReconcileListReply) string {
			var b strings.Builder
			for _, run := range r.Runs {
				fmt.Fprintf(&b, "%s  %-7s %s  %11s  %s  (", run.RunID, run.Kind, run.CompletedAt, counted(run.Lines, "line"), counted(run.Findings, "finding"))
				for i, c := range slices.Sorted(maps.Keys(run.Counts)) {
					if i > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, "%s %d", c, run.Counts[c])
				}
				b.WriteString(")\n")
			}
			if len(r.Runs) == 0 {
				b.WriteString("no reconciliation runs\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	}
	return usageError("unknown reconcile command %q (bank, payouts, get, list)", args[0])
}

// periodFlags defines --from and --to on fs: the period a file (what)
// vouches for, and what that means (compared). The func it returns, once
// fs is parsed, gives the period (nil without the flags).
func periodFlags(fs *flag.FlagSet, what, compared string) func() (*api.ReconcilePeriod, error) {
	var from, to *time.Time
	fs.Func("from", fmt.Sprintf("the first instant the %s vouches for (RFC 3339; with --to): %s", what, compared), timeFlag(&from))
	fs.Func("to", fmt.Sprintf("the last instant the %s vouches for (RFC 3339, inclusive; with --from)", what), timeFlag(&to))
	return func() (*api.ReconcilePeriod, error) {
		if (from == nil) != (to == nil) {
			return nil, usageError("--from and --to go together")
		}
		if from == nil {
			return nil, nil
		}
		return &api.ReconcilePeriod{From: *from, To: *to}, nil
	}
}

// readStatement reads a statement file: its SHA-256 and its lines, checked
// as 'deposit import' checks them (bankfeed.ParseCSV), with a transaction
// the file repeats identically sent once per repeat, so the engine reports
// it as a duplicate. (ParseCSV refuses a bank_txn_id repeated with other
// data: such a file is not reconciled.)
func readStatement(path string) (api.ReconcileBankRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return api.ReconcileBankRequest{}, err
	}
	txns, rows, err := bankfeed.ParseCSVCounted(bytes.NewReader(data))
	if err != nil {
		return api.ReconcileBankRequest{}, fmt.Errorf("%s: not reconciled:\n%w", path, err)
	}
	if len(txns) == 0 {
		return api.ReconcileBankRequest{}, fmt.Errorf("%s: the statement has no transactions", path)
	}
	req := api.ReconcileBankRequest{FileSHA256: domain.FileSHA256(data)}
	for i, t := range txns {
		l := api.StatementLine{BankTxnID: t.BankTxnID, AccountNumber: t.AccountNumber, DepositorName: t.DepositorName, Amount: t.Amount, DepositedAt: t.DepositedAt}
		for range rows[i] {
			req.Lines = append(req.Lines, l)
		}
	}
	return req, nil
}

// readPayoutReport reads a payout provider's report: its SHA-256 and its
// lines in file order, repeats included. It is all or nothing: every bad
// cell of the file is reported with its line, and then nothing is sent.
func readPayoutReport(path string) (api.ReconcilePayoutsRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return api.ReconcilePayoutsRequest{}, err
	}
	req, err := api.ParsePayoutReport(data)
	if err != nil {
		return api.ReconcilePayoutsRequest{}, fmt.Errorf("%s: not reconciled:\n%w", path, err)
	}
	return req, nil
}

// partSlack is what a part's request may take beyond the whole request's
// size without its lines: another period's times, another hash.
const partSlack = 1 << 10

// reconcileFile sends req, a file's reconcile request, as one run; or,
// when its body is over ep's limit, the file as several runs, one after
// the other: its lines in time order (at), each run as many as a request
// carries (at most api.MaxReconcileLines), the lines of one instant in one
// run (api.TimeParts), and the lines of one key (bank_txn_id, payout_id)
// too (fileParts), each run over its part of period when one is given.
// part makes a run's request of its lines and period: its file_sha256 is
// that of its lines written in the file's dialect, so the same file sent
// again makes the same runs, repeats then. The first run that cannot be
// made stops the rest (sending the file again resends the runs made).
// Each run is printed as a run alone is; the exit status is the worst.
func reconcileFile[Req, L any](ctx context.Context, cf *clientFlags, stdout io.Writer, ep api.Endpoint[Req, api.ReconcileReply], req Req,
	lines []L, at func(L) time.Time, key func(L) string, period *api.ReconcilePeriod, part func([]L, *api.ReconcilePeriod) (Req, error)) error {
	notRun := func(err error) error { return &exitError{code: exitReconcileNotRun, err: err} }
	if body, err := json.Marshal(req); err != nil {
		return notRun(err)
	} else if len(body) <= ep.MaxBodyBytes {
		return runReconcile(ctx, cf, stdout, ep, req)
	}
	if period != nil {
		// Said of the file's lines, as the engine says it of a whole
		// file's request (a part's would count within the part).
		for i, l := range lines {
			if t := at(l); t.Before(period.From) || t.After(period.To) {
				return notRun(fmt.Errorf("not reconciled: lines[%d] at %s is outside --from %s --to %s", i, domain.FormatTime(t), domain.FormatTime(period.From), domain.FormatTime(period.To)))
			}
		}
	}
	lines = slices.Clone(lines)
	slices.SortStableFunc(lines, func(a, b L) int { return at(a).Compare(at(b)) })
	from, to := at(lines[0]), at(lines[len(lines)-1])
	if period != nil {
		from, to = period.From, period.To
	}
	bare, err := part(nil, period)
	if err != nil {
		return notRun(err)
	}
	body, err := json.Marshal(bare)
	if err != nil {
		return notRun(err)
	}
	budget := ep.MaxBodyBytes - len(body) - partSlack
	size := make([]int, len(lines))
	for i, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			return notRun(err)
		}
		size[i] = len(b) + 1 // and a comma
		if size[i] > budget {
			return notRun(fmt.Errorf("not reconciled: a line makes a request of more than the %d KiB %s takes", ep.MaxBodyBytes>>10, ep.Subject))
		}
	}
	parts, err := fileParts(lines, at, key, size, budget, from, to)
	if err != nil {
		return notRun(err)
	}
	var findings error
	for i, p := range parts {
		var within *api.ReconcilePeriod
		if period != nil {
			within = &p.Period
		}
		r, err := part(lines[p.Start:p.End], within)
		if err != nil {
			return notRun(err)
		}
		if !cf.json {
			fmt.Fprintf(stdout, "part %d of %d: lines %d to %d of %d in time order, %s to %s\n", i+1, len(parts), p.Start+1, p.End, len(lines),
				domain.FormatTime(at(lines[p.Start])), domain.FormatTime(at(lines[p.End-1])))
		}
		err = runReconcile(ctx, cf, stdout, ep, r)
		var ee *exitError
		switch {
		case errors.As(err, &ee) && ee.code == exitReconcileFindings:
			findings = err
		case err != nil:
			return err
		}
	}
	return findings
}

// fileParts splits lines (in time order, at) of the period [from, to]
// into runs of at most api.MaxReconcileLines lines whose sizes (size)
// add up to at most budget, the lines of one key in one run
// (api.KeyedTimeParts). Lines of one key further apart than a run holds
// are an error: each run would take its line for the only one.
func fileParts[L any](lines []L, at func(L) time.Time, key func(L) string, size []int, budget int, from, to time.Time) ([]api.TimePart, error) {
	parts, split := api.KeyedTimeParts(len(lines), func(i int) time.Time { return at(lines[i]) }, func(i int) string { return key(lines[i]) },
		from, to.Add(time.Nanosecond), func(start int) int {
			n, sum := 0, 0
			for i := start; i < len(lines) && n < api.MaxReconcileLines && sum+size[i] <= budget; i++ {
				sum += size[i]
				n++
			}
			return n
		})
	if split != nil {
		line, _ := json.Marshal(lines[split.First])
		first, last := domain.FormatTime(at(lines[split.First])), domain.FormatTime(at(lines[split.Last]))
		return nil, fmt.Errorf("not reconciled: the line %s is on the file more than once (a duplicate), at %s and at %s, further apart than one request carries: "+
			"each of the runs the file is sent as would take its line for the only one; reconcile the lines from %s to %s as a file of their own",
			line, first, last, first, last)
	}
	return parts, nil
}

// runReconcile sends a reconcile request and prints the run; its findings
// set the exit status.
func runReconcile[Req any](ctx context.Context, cf *clientFlags, stdout io.Writer, ep api.Endpoint[Req, api.ReconcileReply], req Req) error {
	// The engine refuses a body over the endpoint's limit (reconcileFile
	// sends a long file in parts): say so before sending.
	if b, err := json.Marshal(req); err != nil {
		return &exitError{code: exitReconcileNotRun, err: err}
	} else if len(b) > ep.MaxBodyBytes {
		return &exitError{code: exitReconcileNotRun, err: fmt.Errorf("not reconciled: a request of %d KiB, more than the %d KiB %s takes", len(b)>>10, ep.MaxBodyBytes>>10, ep.Subject)}
	}
	isQuery := ep.Subject == api.ReconcileGet.Subject
	c, err := cf.connect()
	if err != nil {
		if isQuery {
			return err // a query: as every query fails (5 no engine, 4 a key refused)
		}
		return &exitError{code: exitReconcileNotRun, err: err}
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rep, raw, err := client.Do(ctx, c, ep, req, nil)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && cf.json {
			printErrorBody(stdout, raw.Data)
		}
		if isQuery {
			return requestFailed(err) // a query: as every query fails
		}
		return &exitError{code: exitReconcileNotRun, err: err}
	}
	if cf.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprint(stdout, formatRun(rep))
	}
	if !rep.Clean {
		return &exitError{code: exitReconcileFindings, err: fmt.Errorf("reconciliation %s: %s", rep.RunID, counted(rep.Findings, "finding"))}
	}
	return nil
}

// formatRun is the human form of a run: a summary, the counts, and every
// item recorded except the matches.
func formatRun(r api.ReconcileReply) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s (%s), file sha256 %s, %s, ledger as of seq %d, %s\n",
		r.RunID, r.Kind, r.FileSHA256, counted(r.Lines, "line"), r.LedgerAsOfSeq, domain.FormatTime(r.CompletedAt))
	if r.Repeated {
		b.WriteString("(this file was reconciled before: the recorded run)\n")
	}
	if r.Period != nil {
		fmt.Fprintf(&b, "period %s to %s\n", domain.FormatTime(r.Period.From), domain.FormatTime(r.Period.To))
	}
	for _, a := range r.Accounts {
		wm := "never scanned"
		if a.ScanWatermark != nil {
			wm = "scanned up to " + domain.FormatTime(*a.ScanWatermark)
		}
		if a.GapFrom != nil {
			wm += "; compared from " + domain.FormatTime(*a.GapFrom) + ", where its previous statement ended"
		}
		if a.LateAfterSeq > 0 {
			wm += fmt.Sprintf("; and the deposits recorded after sequence %d, when its previous runs read it", a.LateAfterSeq)
		}
		fmt.Fprintf(&b, "account %s: %s to %s (%s)\n", a.AccountNumber, domain.FormatTime(a.From), domain.FormatTime(a.To), wm)
	}
	c := r.Counts
	// The categories carry the names of the JSON output; a payouts run's
	// missing_at_bank are the payouts not on the provider's report.
	const missingAt = "missing_at_bank"
	fmt.Fprintf(&b, "matched %d, missing_in_ledger %d, %s %d, amount_mismatch %d, duplicate %d, timing_difference %d\n",
		c.Matched, c.MissingInLedger, missingAt, c.MissingAtBank, c.AmountMismatch, c.Duplicate, c.TimingDifference)
	if r.Kind == domain.ReconcileKindPayouts && c.MissingAtBank > 0 {
		b.WriteString("(missing_at_bank: recorded settled or failed, not on the provider's report)\n")
	}
	for _, cat := range []struct {
		name  string
		items []api.ReconcileItem
	}{
		{"duplicate", r.Duplicate}, {"amount_mismatch", r.AmountMismatch}, {"missing_in_ledger", r.MissingInLedger},
		{missingAt, r.MissingAtBank}, {"timing_difference", r.TimingDifference},
	} {
		for _, it := range cat.items {
			if it.PayoutID != "" {
				fmt.Fprintf(&b, "%-18s %-20s %s", cat.name, it.PayoutID, domain.FormatTime(it.At))
				if it.StatementStatus != "" {
					fmt.Fprintf(&b, "  provider %s %d fee %d", it.StatementStatus, it.StatementAmount, it.StatementFee)
				}
				if it.LedgerStatus != "" {
					fmt.Fprintf(&b, "  ledger %s %d fee %d", it.LedgerStatus, it.LedgerAmount, it.LedgerFee)
				}
				if it.Note != "" {
					fmt.Fprintf(&b, "  (%s)", it.Note)
				}
				b.WriteString("\n")
				continue
			}
			fmt.Fprintf(&b, "%-18s %-20s %s  %s", cat.name, it.BankTxnID, it.AccountNumber, domain.FormatTime(it.At))
			if it.StatementAmount != 0 {
				fmt.Fprintf(&b, "  bank %d", it.StatementAmount)
			}
			if it.LedgerAmount != 0 {
				fmt.Fprintf(&b, "  ledger %d", it.LedgerAmount)
			}
			if len(it.DepositIDs) > 0 {
				fmt.Fprintf(&b, "  %s", strings.Join(it.DepositIDs, ","))
			}
			if it.Note != "" {
				fmt.Fprintf(&b, "  (%s)", it.Note)
			}
			b.WriteString("\n")
		}
	}
	if r.Truncated {
		fmt.Fprintf(&b, "(more items than a run records: the counts are complete, the items the first %d)\n", domain.MaxReconcileItems)
	}
	if r.Clean {
		b.WriteString("clean\n")
	} else {
		b.WriteString(counted(r.Findings, "finding") + "\n")
	}
	return b.String()
}

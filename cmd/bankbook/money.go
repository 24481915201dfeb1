package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/reservations"
)

func deposit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, "usage: bankbook deposit import FILE.csv | orphans | get | resolve [flags]")
	}
	fs, cf := newClientFlagSet("deposit "+args[0], stderr)
	switch args[0] {
	case "import":
		upTo := fs.String("complete-up-to", "", "the statement covers every transaction before this RFC 3339 time: advance the scan watermark to it")
		account := fs.String("account", "", "with --complete-up-to: the account the statement is for (default: the accounts in its rows; needed for a statement without rows)")
		files, err := parseInterspersed(fs, args[1:])
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return usageError("usage: bankbook deposit import [--complete-up-to TIME] [--account NUMBER] FILE.csv")
		}
		var complete time.Time
		if *upTo != "" {
			t, err := time.Parse(time.RFC3339Nano, *upTo)
			if err != nil {
				return usageError("--complete-up-to: %w", err)
			}
			if t.After(time.Now()) {
				return usageError("--complete-up-to is in the future: nothing imported")
			}
			complete = t
		} else if *account != "" {
			return usageError("--account names the account of --complete-up-to: give both, or neither")
		}
		return importCSV(ctx, cf, files[0], complete, *account, stdout, stderr)
	case "orphans":
		var q api.PageRequest
		pageFlags(fs, &q, "deposits")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return callConn(ctx, cf, stdout, api.DepositOrphans, q, nil, func(ctx context.Context, c *client.Client, r api.OrphansReply) string {
			var b strings.Builder
			orders := map[string]string{}
			for _, d := range r.Deposits {
				fmt.Fprintf(&b, "%s  %s  %12s  %-16s %s", d.DepositID, d.DepositedAt, itoa(d.Amount), d.DepositorName, d.Reason)
				if d.OrderID != "" {
					fmt.Fprintf(&b, " (order %s)", d.OrderID)
				}
				b.WriteString("\n")
				writeCandidates(ctx, c, q.ReadAfter, orders, &b, d)
			}
			if len(r.Deposits) == 0 {
				b.WriteString("no orphan deposits\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "get":
		var q api.DepositRequest
		fs.StringVar(&q.DepositID, "deposit-id", "", "the deposit")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args[1:], required("deposit-id")); err != nil {
			return err
		}
		return callConn(ctx, cf, stdout, api.DepositGet, q, nil, func(ctx context.Context, c *client.Client, d api.OrphanView) string {
			var b strings.Builder
			fmt.Fprintf(&b, "deposit %s  %s  %s on %s  %s  %s", d.DepositID, d.DepositedAt, itoa(d.Amount), d.AccountNumber, d.DepositorName, d.Outcome)
			if d.Reason != "" {
				fmt.Fprintf(&b, " (%s)", d.Reason)
			}
			if d.OrderID != "" {
				fmt.Fprintf(&b, "  order %s", d.OrderID)
			}
			if d.Resolution != "" {
				fmt.Fprintf(&b, "  resolved: %s", d.Resolution)
			}
			if d.UserID != "" {
				fmt.Fprintf(&b, "  wallet of %s", d.UserID)
			}
			if d.PayoutID != "" {
				fmt.Fprintf(&b, "  payout %s (see 'bankbook payout get')", d.PayoutID)
			}
			switch {
			case d.BillID != "":
				fmt.Fprintf(&b, "  bill %s (see 'bankbook bill get')", d.BillID)
			case d.LinkID != "":
				fmt.Fprintf(&b, "  unbilled, link %s", d.LinkID)
			}
			fmt.Fprintf(&b, "  (seq %d)\n", d.Seq)
			fmt.Fprintf(&b, "    bank transaction %s", d.BankTxnID)
			if d.LandedOn != "" {
				fmt.Fprintf(&b, ", landed on the collection account %s", d.LandedOn)
			}
			b.WriteString("\n")
			writeCandidates(ctx, c, q.ReadAfter, map[string]string{}, &b, d)
			return b.String()
		})
	case "resolve":
		var q api.ResolveDepositRequest
		var to domain.BankAccount
		fs.StringVar(&q.DepositID, "deposit-id", "", "the orphan deposit")
		fs.StringVar(&q.Action, "action", "", "assign_order, refund_to_wallet or refund_to_bank")
		fs.StringVar(&q.OrderID, "order-id", "", "assign_order: the order")
		fs.StringVar(&q.UserID, "user-id", "", "refund_to_wallet: the user")
		fs.StringVar(&to.Bank, "bank", "", "refund_to_bank: the sender's bank")
		fs.StringVar(&to.Number, "number", "", "refund_to_bank: the sender's account number")
		fs.StringVar(&to.Holder, "holder", "", "refund_to_bank: the account holder")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args[1:], required("deposit-id", "action")); err != nil {
			return err
		}
		if to != (domain.BankAccount{}) {
			q.BankAccount = &to
		}
		return call(ctx, cf, stdout, api.DepositResolve, q, client.WithIdempotencyKey(*key), func(r api.ResolveDepositReply) string {
			s := fmt.Sprintf("deposit %s  %s  (seq %d)", r.DepositID, r.Outcome, r.Seq)
			if r.OrderID != "" {
				s += "  order " + r.OrderID
			}
			switch {
			case r.UserID != "" && r.OrderID != "":
				s += "  (the order did not take it: credited to user " + r.UserID + "'s wallet)"
			case r.UserID != "":
				s += "  user " + r.UserID
			}
			if r.PayoutID != "" {
				s += "  payout " + r.PayoutID + " (see 'bankbook payout get')"
			}
			return s + "\n"
		})
	}
	return usageError("unknown deposit command %q (import, orphans, get, resolve)", args[0])
}

// writeCandidates lists a waiting orphan's candidates on a line of their
// own, each with its order's status now (and when it closed, which the name
// grace of an assignment counts from), read from the engine once per order
// (orders holds those read) with the --min-seq of the deposit's query. A
// candidate that cannot be read says why.
func writeCandidates(ctx context.Context, c *client.Client, after api.ReadAfter, orders map[string]string, b *strings.Builder, d api.OrphanView) {
	if len(d.Candidates) == 0 {
		return
	}
	named := make([]string, len(d.Candidates))
	for i, id := range d.Candidates {
		s, ok := orders[id]
		if !ok {
			o, _, err := client.Do(ctx, c, api.OrderGet, api.GetOrderRequest{OrderID: id, ReadAfter: after}, nil)
			switch {
			case err != nil:
				s = fmt.Sprintf("%s (not read: %v)", id, err)
			case o.ClosedAt != "":
				s = fmt.Sprintf("%s (%s %s)", id, o.Status, o.ClosedAt)
			default:
				s = fmt.Sprintf("%s (%s)", id, o.Status)
			}
			orders[id] = s
		}
		named[i] = s
	}
	fmt.Fprintf(b, "    candidates: %s\n", strings.Join(named, ", "))
}

// importCSV records every transaction of a bank statement. The file is
// checked completely first: if any row is bad, every bad row is reported
// with its line and nothing is recorded. Recording is idempotent on the
// bank's transaction ID, so an import that stopped half-way (the engine went
// away) is finished by running it again.
func importCSV(ctx context.Context, cf *clientFlags, path string, completeUpTo time.Time, account string, stdout, stderr io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	txns, err := bankfeed.ParseCSV(f)
	if err != nil {
		return fmt.Errorf("%s: nothing imported:\n%w", path, err)
	}
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	counts := map[string]int{}
	recorded := []importedRow{} // [] in --json when the statement holds none
	for _, t := range txns {
		rep, err := recordRow(ctx, c, cf.timeout, api.RecordDepositRequest{
			BankTxnID: t.BankTxnID, AccountNumber: t.AccountNumber, DepositorName: t.DepositorName, Amount: t.Amount, DepositedAt: t.DepositedAt,
		}, stderr)
		if err != nil {
			return requestFailed(fmt.Errorf("%s: transaction %s: %w (the ones before it are recorded; run the import again to finish)", path, t.BankTxnID, err))
		}
		counts[string(rep.Outcome)]++
		row := importedRow{BankTxnID: t.BankTxnID, RecordDepositReply: rep}
		recorded = append(recorded, row)
		if !cf.json {
			fmt.Fprintln(stdout, row)
		}
	}
	if !completeUpTo.IsZero() {
		accounts := map[string]bool{}
		if account != "" {
			accounts[account] = true
		}
		for i, t := range txns {
			// A store's dedicated account shares the collection account's
			// feed and watermark: it has none of its own to advance.
			if recorded[i].Outcome != domain.OutcomeStorePayment {
				accounts[t.AccountNumber] = true
			}
		}
		if len(accounts) == 0 && len(txns) > 0 {
			return fmt.Errorf("%s: %d transactions recorded, all store payments on dedicated accounts, which share the collection account's watermark: name it with --account to advance it (running the import again records nothing twice)", path, len(txns))
		}
		if len(accounts) == 0 {
			return usageError("%s has no transactions: name the account with --account to advance its watermark", path)
		}
		for account := range accounts {
			rctx, cancel := context.WithTimeout(ctx, cf.timeout)
			_, _, err := client.Do(rctx, c, api.DepositScanComplete, api.ScanCompleteRequest{AccountNumber: account, CompleteUpTo: completeUpTo}, nil)
			cancel()
			if err != nil {
				return requestFailed(fmt.Errorf("%s: recorded, but the watermark of %s was not advanced: %w", path, account, err))
			}
		}
	}
	if cf.json {
		b, _ := json.Marshal(struct {
			Transactions []importedRow  `json:"transactions"`
			Counts       map[string]int `json:"counts"`
		}{recorded, counts})
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintf(stdout, "%d transactions:%s\n", len(txns), summary(counts))
	return nil
}

// heldRowWait bounds how long an import waits for a row another attempt is
// recording: twice the claim's lease, which is all an attempt of an engine
// that died holds it.
const heldRowWait = 2 * reservations.DepositClaimLease

// recordRow records one row of an import. A row another attempt is
// recording (409 conflict with retry_after_s: an engine that died while
// recording it holds its claim until the lease runs out) is sent again
// once that time has passed, for up to heldRowWait in all, so that an
// import run again right after such a death finishes.
func recordRow(ctx context.Context, c *client.Client, timeout time.Duration, req api.RecordDepositRequest, stderr io.Writer) (api.RecordDepositReply, error) {
	var waited time.Duration
	for {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		rep, _, err := client.Do(rctx, c, api.DepositRecord, req, nil)
		cancel()
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != api.CodeConflict {
			return rep, err
		}
		s, ok := ae.Details["retry_after_s"].(float64)
		wait := time.Duration(s) * time.Second
		if !ok || waited+wait > heldRowWait {
			return rep, err
		}
		fmt.Fprintf(stderr, "transaction %s: another attempt is recording it (an engine that stopped meanwhile?); sending it again in %v\n", req.BankTxnID, wait)
		select {
		case <-ctx.Done():
			return rep, err
		case <-time.After(wait):
		}
		waited += wait
	}
}

// importedRow is one recorded transaction of an import: the bank's ID and
// the engine's reply.
type importedRow struct {
	BankTxnID string `json:"bank_txn_id"`
	api.RecordDepositReply
}

func (r importedRow) String() string {
	s := fmt.Sprintf("%-20s %s  %s", r.BankTxnID, r.DepositID, r.Outcome)
	for _, kv := range [][2]string{{"order", r.OrderID}, {"user", r.UserID}, {"reason", string(r.Reason)}} {
		if kv[1] != "" {
			s += "  " + kv[0] + " " + kv[1]
		}
	}
	return s
}

// summary prints outcome counts in a fixed order: " matched 2, orphaned 1".
func summary(counts map[string]int) string {
	var parts []string
	for _, o := range []domain.DepositOutcome{domain.OutcomeMatched, domain.OutcomeRefundedToWallet, domain.OutcomeStorePayment, domain.OutcomeOrphaned, domain.OutcomeDuplicate} {
		if n := counts[string(o)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	if len(parts) == 0 {
		return " none recorded"
	}
	return " " + strings.Join(parts, ", ")
}

func money(ctx context.Context, area string, args []string, stdout, stderr io.Writer) error {
	usages := map[string]string{
		"wallet":   "usage: bankbook wallet get|withdraw [flags]",
		"payout":   "usage: bankbook payout get --payout-id ID | payout list [--status S] | payout resolve --payout-id ID --outcome settled|failed --reason TEXT [--fee N] [--provider-ref REF] [--force]",
		"ledger":   "usage: bankbook ledger trial-balance|account|series [flags]",
		"bank-sim": "usage: bankbook bank-sim transfer [flags]",
	}
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, usages[area])
	}
	sub := args[0]
	args = args[1:]
	fs, cf := newClientFlagSet(area+" "+sub, stderr)
	switch area + " " + sub {
	case "wallet get":
		var q api.WalletRequest
		fs.StringVar(&q.UserID, "user-id", "", "the wallet's user")
		pageFlags(fs, &q.PageRequest, "movements (oldest first)")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("user-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.WalletGet, q, func(w api.WalletView) string {
			var b strings.Builder
			fmt.Fprintf(&b, "wallet %s  balance %s\n", w.UserID, itoa(w.Balance))
			for _, e := range w.Entries {
				fmt.Fprintf(&b, "  %s  %12s  %s %s\n", e.At, itoa(e.Amount), e.Kind, e.Ref)
			}
			return b.String() + nextPage(w.NextCursor)
		})
	case "wallet withdraw":
		var q api.WithdrawRequest
		fs.StringVar(&q.UserID, "user-id", "", "the wallet's user")
		fs.Int64Var(&q.Amount, "amount", 0, "amount")
		fs.StringVar(&q.BankAccount.Bank, "bank", "", "destination bank")
		fs.StringVar(&q.BankAccount.Number, "number", "", "destination account number")
		fs.StringVar(&q.BankAccount.Holder, "holder", "", "destination account holder")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("user-id", "amount", "bank", "number", "holder")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.WalletWithdraw, q, client.WithIdempotencyKey(*key), func(r api.WithdrawReply) string {
			return fmt.Sprintf("payout %s  %s  (seq %d; the provider's answer arrives later: 'bankbook payout get --payout-id %s')\n", r.PayoutID, r.Status, r.Seq, r.PayoutID)
		})
	case "payout get":
		var q api.PayoutRequest
		fs.StringVar(&q.PayoutID, "payout-id", "", "the payout")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args, required("payout-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.PayoutGet, q, nil, func(p api.PayoutView) string {
			s := fmt.Sprintf("payout %s  %s  %s to %s %s (%s)\n  from %s %s, paid from %s; requested %s, updated %s\n",
				p.PayoutID, p.Status, itoa(p.Amount), p.To.Bank, p.To.Number, p.To.Holder, p.Source, p.SourceID, p.PayFrom, p.RequestedAt, p.UpdatedAt)
			if p.Status == string(domain.PayoutSettledStatus) {
				s += fmt.Sprintf("  fee %s  provider reference %s\n", itoa(p.Fee), p.ProviderRef)
			}
			if p.Failure != "" {
				s += "  failed: " + p.Failure + " (the money went back to its source)\n"
			}
			return s
		})
	case "payout resolve":
		var q api.ResolvePayoutRequest
		fs.StringVar(&q.PayoutID, "payout-id", "", "the payout")
		fs.StringVar(&q.Outcome, "outcome", "", "the provider's result: settled or failed")
		fs.Int64Var(&q.Fee, "fee", 0, "settled: the provider's fee")
		fs.StringVar(&q.ProviderRef, "provider-ref", "", "settled: the provider's reference")
		fs.StringVar(&q.Reason, "reason", "", "how the result is known, e.g. the provider's statement")
		fs.BoolVar(&q.Force, "force", false, "record it without asking the provider (provider gone for good, no provider, a transfer it keeps pending): you answer for it; still refused while a redrive of its dead letter runs or (failed) a send of it may still reach the provider")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("payout-id", "outcome", "reason")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.PayoutResolve, q, client.WithIdempotencyKey(*key), func(r api.ResolvePayoutReply) string {
			s := fmt.Sprintf("payout %s  %s  (seq %d)\n", r.PayoutID, r.Status, r.Seq)
			if r.Status == string(domain.PayoutFailedStatus) {
				s += "  its money goes back to its source, once (already done if the payout was failed before); a dead letter of its work can now be discarded\n"
			}
			return s
		})
	case "payout list":
		var q api.PayoutListRequest
		fs.StringVar(&q.Status, "status", "", "requested, settled or failed (default: every payout)")
		pageFlags(fs, &q.PageRequest, "payouts (newest first)")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.PayoutList, q, nil, func(r api.PayoutListReply) string {
			var b strings.Builder
			for _, p := range r.Payouts {
				fmt.Fprintf(&b, "%s  %-9s %12s  to %s %s  requested %s", p.PayoutID, p.Status, itoa(p.Amount), p.To.Bank, p.To.Number, p.RequestedAt)
				if p.ProviderRef != "" {
					fmt.Fprintf(&b, "  ref %s", p.ProviderRef)
				}
				if p.Failure != "" {
					fmt.Fprintf(&b, "  failed: %s", p.Failure)
				}
				b.WriteString("\n")
			}
			if len(r.Payouts) == 0 {
				b.WriteString("no payouts\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "ledger trial-balance":
		var q api.TrialBalanceRequest
		fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("accounts per page (default %d)", api.MaxTrialBalancePage))
		fs.StringVar(&q.Cursor, "cursor", "", "page cursor from the previous page")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.LedgerTrialBalance, q, func(r api.TrialBalanceReply) string {
			s := fmt.Sprintf("trial balance as of seq %d (debit positive)\n", r.AsOfSeq)
			for _, a := range r.Accounts {
				s += fmt.Sprintf("  %-44s %15s\n", a.Account, itoa(a.Balance))
			}
			if r.NextCursor != "" {
				s += "  more accounts: --cursor " + r.NextCursor + "\n"
			}
			return s + fmt.Sprintf("  %-44s %15s\n", "total (every account)", itoa(r.Total))
		})
	case "ledger account":
		var q api.LedgerAccountRequest
		fs.StringVar(&q.Account, "account", "", "the account, e.g. liabilities:suspense:unmatched")
		pageFlags(fs, &q.PageRequest, "entries")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("account")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.LedgerAccount, q, func(r api.LedgerAccountReply) string {
			s := fmt.Sprintf("%s  balance %s\n", r.Account, itoa(r.Balance))
			for _, e := range r.Entries {
				s += fmt.Sprintf("  seq %-8d %s  %12s  %s\n", e.Seq, e.At, itoa(e.Amount), e.Memo)
			}
			return s + nextPage(r.NextCursor)
		})
	case "ledger series":
		var q api.LedgerSeriesRequest
		fs.StringVar(&q.Account, "account", "", strings.Join(api.SeriesAccounts(), " or "))
		fs.IntVar(&q.Limit, "limit", 0, fmt.Sprintf("the most recent points (default %d, at most %d)", api.DefaultSeriesPoints, api.MaxSeriesPoints))
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args, required("account")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.LedgerSeries, q, nil, func(r api.LedgerSeriesReply) string {
			var b strings.Builder
			fmt.Fprintf(&b, "%s as of seq %d (debit positive)\n", r.Account, r.AsOfSeq)
			for _, p := range r.Points {
				fmt.Fprintf(&b, "  seq %-8d %s  %15s  open %d", p.Seq, p.At, itoa(p.Balance), p.OpenCount)
				if p.OldestOpenSince != "" {
					fmt.Fprintf(&b, " since %s", p.OldestOpenSince)
				}
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "open items (%d):\n", r.OpenCount)
			for _, it := range r.OpenItems {
				fmt.Fprintf(&b, "  %-40s %12s  since %s\n", it.Key, itoa(it.Amount), it.Since)
			}
			return b.String()
		})
	case "bank-sim transfer":
		var q api.SimTransferRequest
		fs.StringVar(&q.DepositorName, "depositor", "", "the depositor name written on the transfer")
		fs.Int64Var(&q.Amount, "amount", 0, "amount")
		fs.StringVar(&q.AccountNumber, "account", "", "account number (default: the collection account)")
		if err := parse(fs, args, required("depositor", "amount")); err != nil {
			return err
		}
		return simServedBy("--bank-sim", call(ctx, cf, stdout, api.SimBankTransfer, q, nil, func(r api.SimTransferReply) string {
			seen := "(the engine sees it after the bank's refresh lag and the next scan)"
			if !r.Scanned {
				seen = "(no scan covers that account: the engine never sees this transfer)"
			}
			return fmt.Sprintf("transferred %s as %q: bank transaction %s at %s\n%s\n", itoa(q.Amount), q.DepositorName, r.BankTxnID, r.DepositedAt, seen)
		}))
	}
	return usageError("unknown %s command %q; %s", area, sub, usages[area])
}

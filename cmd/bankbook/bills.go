package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/csvtab"
)

// B2B bills: `store link`, `bill issue|cancel`, and `bill import`, which
// issues the bills of a distributor's ERP export through
// bankbook.cmd.bill.issue_bulk. The CSV dialect is in docs/operations.md
// ("Bills from ERP") and in parseBillCSV.

const (
	storeUsage      = "usage: bankbook store link --distributor-id D --store-id S --store-name NAME [--distributor-name NAME] | import --distributor-id D [--distributor-name NAME] [--out ACCOUNTS.csv] STORES.csv | rename --distributor-id D --store-id S [--store-name NAME] [--distributor-name NAME] | get --distributor-id D --store-id S | list --distributor-id D"
	billUsage       = "usage: bankbook bill issue --distributor-id D --store-id S --amount N [--memo M] | cancel --bill-id B [--reason R] | import --distributor-id D ERP.csv | get --bill-id B [--offline DIR] | active --distributor-id D | list --distributor-id D --store-id S | remind --distributor-id D [--store-id S]..."
	paymentUsage    = "usage: bankbook payment list --distributor-id D [--from T] [--to T] | --store-id S | export (--distributor-id D [--from T] [--to T] | --store-id S) [--out FILE.csv]"
	settlementUsage = "usage: bankbook settlement expected --distributor-id D"
)

func billing(ctx context.Context, area string, args []string, stdout, stderr io.Writer) error {
	usages := map[string]string{"store": storeUsage, "bill": billUsage, "payment": paymentUsage, "settlement": settlementUsage}
	if len(args) == 0 || isHelp(args[0]) {
		return groupUsage(args, stdout, usages[area])
	}
	sub := args[0]
	args = args[1:]
	fs, cf := newClientFlagSet(area+" "+sub, stderr)
	switch area + " " + sub {
	case "store link":
		var q api.LinkStoreRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.StringVar(&q.StoreID, "store-id", "", "the distributor's store")
		fs.StringVar(&q.StoreName, "store-name", "", "the store's name, 1-100 characters (a repeat does not rename: store rename does)")
		fs.StringVar(&q.DistributorName, "distributor-name", "", "the distributor's name as its stores know it, which their messages name, 1-100 characters (optional; a repeat does not change it or add one: store rename does)")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("distributor-id", "store-id", "store-name")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.StoreLink, q, client.WithIdempotencyKey(*key), func(r api.LinkStoreReply) string {
			s := linkText(r.LinkedStore, r.Seq)
			if r.StoreName != strings.TrimSpace(q.StoreName) {
				s += fmt.Sprintf("  (linked before as %s: a repeat does not rename it to %s; 'bankbook store rename' does)\n", r.StoreName, q.StoreName)
			}
			switch dist := strings.TrimSpace(q.DistributorName); {
			case dist == "" || dist == r.DistributorName:
			case r.DistributorName == "":
				s += fmt.Sprintf("  (linked before without a distributor name: a repeat does not add %s; 'bankbook store rename' does)\n", q.DistributorName)
			default:
				s += fmt.Sprintf("  (linked before with distributor name %s: a repeat does not change it to %s; 'bankbook store rename' does)\n", r.DistributorName, q.DistributorName)
			}
			return s
		})
	case "store rename":
		var (
			q                   api.RenameStoreRequest
			storeName, distName string
		)
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.StringVar(&q.StoreID, "store-id", "", "the linked store")
		fs.StringVar(&storeName, "store-name", "", "the store's new name, 1-100 characters (absent: unchanged)")
		fs.StringVar(&distName, "distributor-name", "", "the distributor's new name as its stores know it, 1-100 characters; \"\" removes it (absent: unchanged)")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("distributor-id", "store-id")); err != nil {
			return err
		}
		given := givenFlags(fs)
		if given["store-name"] {
			q.StoreName = &storeName
		}
		if given["distributor-name"] {
			q.DistributorName = &distName
		}
		if q.StoreName == nil && q.DistributorName == nil {
			return usageError("store rename: give --store-name, --distributor-name or both\n%s", storeUsage)
		}
		return call(ctx, cf, stdout, api.StoreRename, q, client.WithIdempotencyKey(*key), func(r api.RenameStoreReply) string {
			return fmt.Sprintf("store %s (%s) of distributor %s: %s  (seq %d)\n", r.StoreID, r.StoreName, named(r.DistributorID, r.DistributorName), r.Status, r.Seq)
		})
	case "store get":
		var q api.GetStoreRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.StringVar(&q.StoreID, "store-id", "", "the linked store")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("distributor-id", "store-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.StoreGet, q, func(v api.StoreView) string {
			s := linkText(v.LinkedStore, v.Seq)
			if v.RenamedAt != "" {
				s += "  renamed at " + v.RenamedAt + "\n"
			}
			return s
		})
	case "store list":
		var q api.StoreListRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		pageFlags(fs, &q.PageRequest, "stores")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("distributor-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.StoreList, q, func(r api.StoreListReply) string {
			var b strings.Builder
			for _, v := range r.Stores {
				fmt.Fprintf(&b, "%-10s %-20s %s %s  %s\n", v.StoreID, v.StoreName, v.DedicatedAccount.Bank, v.DedicatedAccount.Number, v.LinkID)
			}
			if len(r.Stores) == 0 {
				b.WriteString("no linked stores\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "bill issue":
		var q api.IssueBillRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.StringVar(&q.StoreID, "store-id", "", "the linked store")
		fs.Int64Var(&q.Amount, "amount", 0, "amount in won, as the distributor's ERP has it")
		fs.StringVar(&q.Memo, "memo", "", fmt.Sprintf("a note for the store, 1-%d characters", api.MaxMemo))
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("distributor-id", "store-id", "amount")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.BillIssue, q, client.WithIdempotencyKey(*key), func(r api.IssueBillReply) string {
			s := fmt.Sprintf("bill %s  %s  %s for store %s  (seq %d)\n  pay to %s %s (%s)\n  issued at %s\n",
				r.BillID, r.Status, itoa(r.Amount), r.StoreID, r.Seq, r.DedicatedAccount.Bank, r.DedicatedAccount.Number, r.DedicatedAccount.Holder, r.IssuedAt)
			if r.SupersededBillID != "" {
				s += "  supersedes " + r.SupersededBillID + " (now expired)\n"
			}
			return s
		})
	case "bill cancel":
		var q api.CancelBillRequest
		fs.StringVar(&q.BillID, "bill-id", "", "the store's current bill")
		fs.StringVar(&q.Reason, "reason", "", "why")
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("bill-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.BillCancel, q, client.WithIdempotencyKey(*key), func(r api.CancelBillReply) string {
			return fmt.Sprintf("bill %s  %s  (seq %d)\n", r.BillID, r.Status, r.Seq)
		})
	case "bill get":
		var q api.GetBillRequest
		fs.StringVar(&q.BillID, "bill-id", "", "the bill")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("bill-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.BillGet, q, billText)
	case "bill active":
		var q api.ActiveBillsRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		wholeFlags(fs, &q.PageRequest, "bills")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("distributor-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.BillActive, q, func(r api.ActiveBillsReply) string {
			var b strings.Builder
			for _, v := range r.Bills {
				fmt.Fprintf(&b, "%-10s %-32s %-14s amount %12s  paid %12s  outstanding %12s\n", v.StoreID, v.BillID, v.Status, itoa(v.Amount), itoa(v.PaidAmount), itoa(v.Outstanding))
			}
			if len(r.Bills) == 0 {
				b.WriteString("no current bills\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "bill list":
		var q api.BillListRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.StringVar(&q.StoreID, "store-id", "", "the linked store")
		pageFlags(fs, &q.PageRequest, "bills")
		minSeqFlag(fs, &q.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, required("distributor-id", "store-id")); err != nil {
			return err
		}
		return query(ctx, cf, *offline, stdout, api.BillList, q, func(r api.BillListReply) string {
			var b strings.Builder
			for _, v := range r.Bills {
				fmt.Fprintf(&b, "%-32s %-14s amount %12s  paid %12s  outstanding %12s  issued %s\n", v.BillID, v.Status, itoa(v.Amount), itoa(v.PaidAmount), itoa(v.Outstanding), v.IssuedAt)
			}
			if len(r.Bills) == 0 {
				b.WriteString("no bills\n")
			}
			return b.String() + nextPage(r.NextCursor)
		})
	case "bill remind":
		var q api.RemindUnpaidRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		fs.Func("store-id", "remind only this store (repeat for more; default: every linked store)", func(s string) error {
			q.StoreIDs = append(q.StoreIDs, s)
			return nil
		})
		key := fs.String("idempotency-key", "", "Idempotency-Key header")
		if err := parse(fs, args, required("distributor-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.BillRemind, q, client.WithIdempotencyKey(*key), func(r api.RemindUnpaidReply) string {
			var b strings.Builder
			switch {
			case len(r.Reminded) == 0 && q.StoreIDs == nil:
				b.WriteString("no store has an outstanding balance\n")
			case len(r.Reminded) == 0:
				b.WriteString("no store reminded\n")
			default:
				fmt.Fprintf(&b, "reminded %d store(s): %s  (seq %d)\n", len(r.Reminded), strings.Join(r.Reminded, ", "), r.Seq)
			}
			for _, n := range r.NotReminded {
				fmt.Fprintf(&b, "  not %s: %s\n", n.StoreID, strings.ReplaceAll(n.Reason, "_", " "))
			}
			if r.PaymentsCountedTo != "" {
				b.WriteString("payments counted up to " + r.PaymentsCountedTo + " (the bank scan's watermark)\n")
			}
			return b.String()
		})
	case "payment list":
		var (
			dist  api.PaymentsByDistributorRequest
			store string
		)
		fs.StringVar(&dist.DistributorID, "distributor-id", "", "a distributor's payments")
		fs.StringVar(&store, "store-id", "", "a store's payments (to every distributor)")
		fs.Func("from", "paid at or after (RFC 3339)", timeFlag(&dist.From))
		fs.Func("to", "paid before (RFC 3339)", timeFlag(&dist.To))
		wholeFlags(fs, &dist.PageRequest, "payments")
		minSeqFlag(fs, &dist.ReadAfter)
		offline := offlineFlag(fs)
		if err := parse(fs, args, oneOf("distributor-id", "store-id")); err != nil {
			return err
		}
		if store != "" {
			q := api.PaymentsByStoreRequest{StoreID: store, PageRequest: dist.PageRequest}
			return query(ctx, cf, *offline, stdout, api.PaymentsByStore, q, paymentsText)
		}
		return query(ctx, cf, *offline, stdout, api.PaymentsByDistributor, dist, paymentsText)
	case "payment export":
		var (
			dist  api.PaymentsByDistributorRequest
			store string
		)
		fs.StringVar(&dist.DistributorID, "distributor-id", "", "a distributor's payments")
		fs.StringVar(&store, "store-id", "", "a store's payments (to every distributor)")
		fs.Func("from", "paid at or after (RFC 3339; with --distributor-id)", timeFlag(&dist.From))
		fs.Func("to", "paid before (RFC 3339; with --distributor-id)", timeFlag(&dist.To))
		minSeqFlag(fs, &dist.ReadAfter)
		offline := offlineFlag(fs)
		outPath := fs.String("out", "", "write the CSV to this file, whole or not at all (default: stdout)")
		if err := parse(fs, args, oneOf("distributor-id", "store-id")); err != nil {
			return err
		}
		if store != "" && (dist.From != nil || dist.To != nil) {
			return usageError("payment export: --from and --to bound a distributor's payments, not a store's\n%s", paymentUsage)
		}
		if cf.json {
			return usageError("payment export writes CSV: --json does not apply (payment list --json gives JSON)")
		}
		dist.Limit = exportPageSize
		sum, err := writeExport(*outPath, stdout, func(w io.Writer) (exportTotals, error) {
			if store != "" {
				q := api.PaymentsByStoreRequest{StoreID: store, PageRequest: dist.PageRequest}
				return exportPayments(ctx, cf, *offline, w, api.PaymentsByStore, q, func(q *api.PaymentsByStoreRequest, c string) { q.Cursor = c })
			}
			return exportPayments(ctx, cf, *offline, w, api.PaymentsByDistributor, dist, func(q *api.PaymentsByDistributorRequest, c string) { q.Cursor = c })
		})
		if err != nil {
			return err
		}
		fmt.Fprint(stderr, exportSummary(sum, *outPath))
		return nil
	case "settlement expected":
		var q api.SettlementRequest
		fs.StringVar(&q.DistributorID, "distributor-id", "", "the distributor")
		minSeqFlag(fs, &q.ReadAfter)
		if err := parse(fs, args, required("distributor-id")); err != nil {
			return err
		}
		return call(ctx, cf, stdout, api.SettlementExpected, q, nil, func(r api.SettlementReply) string {
			var b strings.Builder
			for _, st := range r.Settlements {
				fmt.Fprintf(&b, "%s  gross %12s  fee %10s  net %12s  (%d payments)\n", st.Date, itoa(st.Gross), itoa(st.Fee), itoa(st.Net), st.Payments)
			}
			if len(r.Settlements) == 0 {
				b.WriteString("nothing to settle\n")
			}
			return b.String()
		})
	case "store import":
		dist := fs.String("distributor-id", "", "the distributor whose stores the file links")
		distName := fs.String("distributor-name", "", "the distributor's name as its stores know it, 1-100 characters, for the lines whose distributor_name is empty (optional)")
		outPath := fs.String("out", "", "write the accounts CSV to this file, whole or not at all (default: stdout)")
		files, err := parseInterspersed(fs, args, required("distributor-id"))
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return usageError("usage: bankbook store import --distributor-id D [--distributor-name NAME] [--out ACCOUNTS.csv] STORES.csv")
		}
		if err := domain.ValidateID("distributor_id", *dist); err != nil {
			return usageError("--distributor-id: %s", reasonOf(err, "distributor_id"))
		}
		if name := strings.TrimSpace(*distName); name != "" {
			if err := domain.ValidateText("distributor_name", name, domain.MaxDistributorNameLength); err != nil {
				return usageError("--distributor-name: %s", reasonOf(err, "distributor_name"))
			}
		}
		if cf.json {
			return usageError("store import writes CSV: --json does not apply")
		}
		return importStores(ctx, cf, *dist, strings.TrimSpace(*distName), files[0], *outPath, stdout, stderr)
	case "bill import":
		dist := fs.String("distributor-id", "", "the distributor whose stores the file bills")
		key := fs.String("idempotency-key", "", "base Idempotency-Key of the requests (default: derived from the distributor and the file's bills; give a new one only to issue the same bills again)")
		files, err := parseInterspersed(fs, args, required("distributor-id"))
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return usageError("usage: bankbook bill import --distributor-id D [--idempotency-key K] ERP.csv")
		}
		if err := domain.ValidateID("distributor_id", *dist); err != nil {
			return usageError("--distributor-id: %s", reasonOf(err, "distributor_id"))
		}
		return importBills(ctx, cf, *dist, files[0], *key, stdout)
	}
	return usageError("unknown %s command %q; %s", area, sub, usages[area])
}

// The columns of a bill file, as they appear in its header row.
const (
	colStoreID = "store_id"
	colAmount  = "amount"
	colMemo    = "memo"
)

// errBadBillFile matches every problem parseBillCSV reports.
var errBadBillFile = errors.New("bad bill file")

// billLineError is one problem of a bill file: Line is the 1-based line of
// the file (the header is line 1; a quoted field spanning lines counts from
// the line it starts on), Column the offending column or "" for the row.
type billLineError struct {
	Line   int
	Column string
	Reason string
}

func (e *billLineError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Reason)
}

func (e *billLineError) Is(target error) bool { return target == errBadBillFile }

// csvBill is one bill of a file with the line it came from.
type csvBill struct {
	Line int
	api.BillLine
}

// parseBillCSV reads a distributor's ERP export: UTF-8 (a leading BOM is
// ignored), comma-separated, RFC 4180 quoting, LF or CRLF, blank lines
// skipped; a header naming store_id and amount, and optionally memo, in any
// order, case-insensitive, nothing else. Cells are trimmed of surrounding
// spaces. amount is whole won: digits ("39000"), or digits grouped by
// threes with commas in a quoted field ("39,000"), as spreadsheets export
// them; no leading zero, sign, decimals, spaces or currency symbol. An
// empty memo is no memo.
//
// A store is named on one row only: a store has at most one active bill,
// so two rows for it leave the engine to guess which amount is meant (and
// rows more than api.MaxBulkBills apart go in different requests, which no
// check of the engine's sees together). Store IDs compare as written, as
// the engine keys them: S-1 and s-1 are two stores. Every row naming a
// store named elsewhere is a problem, a row bad otherwise included.
//
// It is all or nothing: when anything is wrong it returns the errors.Join
// of one *billLineError per problem of the whole file, every bad cell of
// every bad row, in file order.
func parseBillCSV(r io.Reader) ([]csvBill, error) {
	t, err := openStoreFile(r, colAmount, colMemo)
	if err != nil {
		return nil, err
	}
	var bills []csvBill
	err = storeRows(t, "the amount 1,000", `"1,000"`,
		"a store has at most one active bill, so name it on one line only (keep the line with the amount meant)",
		func(row csvtab.Row) []error {
			b, errs := billRow(row)
			if len(errs) == 0 {
				b.Line = row.Line
				bills = append(bills, b)
			}
			return errs
		})
	if err != nil {
		return nil, err
	}
	if len(bills) == 0 {
		return nil, &billLineError{Line: 2, Reason: "the file holds no bills: a header and no rows"}
	}
	return bills, nil
}

// storeRows reads every row of t, a file of the bill-file dialect whose
// rows each name a store (store_id), and gives each row that reads to take,
// which returns the row's own problems. A store is named on one row only
// (repeatedWhy says why). It returns nil, or the errors.Join of every
// problem of the file in file order: rows that do not read (commaValue,
// quoted as commaQuoted, is the example of a value that needs quoting), the
// rows' own, and every row of a store named on more than one.
func storeRows(t *csvtab.Table, commaValue, commaQuoted, repeatedWhy string, take func(csvtab.Row) []error) error {
	var (
		errs  []error
		named = map[string][]csvtab.Row{} // the rows of each store
		order []string
	)
	for {
		row, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var we *csvtab.WidthError
		switch {
		case errors.As(err, &we):
			reason := fmt.Sprintf("the row has %d fields, the header %d", we.Got, we.Header)
			if we.Got > we.Header {
				reason += fmt.Sprintf(" (a value holding a comma, such as %s, must be quoted: %s)", commaValue, commaQuoted)
			}
			errs = append(errs, &billLineError{Line: we.Line, Reason: reason})
			continue
		case err != nil:
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("read CSV: %w", err)
			}
			errs = append(errs, csvLineError(err))
			continue
		}
		if store := row.Field(colStoreID); domain.ValidateID(colStoreID, store) == nil {
			if named[store] == nil {
				order = append(order, store)
			}
			named[store] = append(named[store], row)
		}
		errs = append(errs, take(row)...)
	}
	if repeated := repeatedStores(named, order, repeatedWhy); len(repeated) > 0 {
		// In file order, a row's store_id before its other cells.
		errs = append(repeated, errs...)
		slices.SortStableFunc(errs, func(a, b error) int {
			return cmp.Compare(a.(*billLineError).Line, b.(*billLineError).Line)
		})
	}
	return errors.Join(errs...)
}

// repeatedStores is one *billLineError for each row of a store named on
// more than one row (named: the rows of each store, order: the stores),
// saying why the file may name it once.
func repeatedStores(named map[string][]csvtab.Row, order []string, why string) []error {
	var errs []error
	for _, store := range order {
		rows := named[store]
		if len(rows) < 2 {
			continue
		}
		for _, row := range rows {
			var others []int
			for _, o := range rows {
				if o.Line != row.Line {
					others = append(others, o.Line)
				}
			}
			errs = append(errs, &billLineError{Line: row.LineOf(colStoreID), Column: colStoreID,
				Reason: fmt.Sprintf("%s is also on %s; %s", store, lineList(others), why)})
		}
	}
	return errs
}

// openStoreFile opens a file of the bill-file dialect whose header names
// store_id and required, and optionally optional, nothing else: an empty
// file, one that does not read, or a header that is not so is a
// *billLineError (joined, for the header's problems).
func openStoreFile(r io.Reader, required, optional string) (*csvtab.Table, error) {
	t, err := csvtab.Open(r)
	if errors.Is(err, csvtab.ErrEmpty) {
		return nil, &billLineError{Line: 1, Reason: "the file is empty: want a header row " + colStoreID + "," + required + "," + optional}
	}
	if err != nil {
		return nil, csvLineError(err)
	}
	var errs []error
	for _, p := range t.Columns([]string{colStoreID, required, optional}, []string{colStoreID, required}) {
		switch p.Kind {
		case csvtab.Unknown:
			errs = append(errs, &billLineError{Line: 1, Reason: fmt.Sprintf("unknown column %q (want %s,%s and optionally %s)", p.Column, colStoreID, required, optional)})
		case csvtab.Repeated:
			errs = append(errs, &billLineError{Line: 1, Column: p.Column, Reason: "appears twice in the header"})
		default:
			errs = append(errs, &billLineError{Line: 1, Column: p.Column, Reason: "missing from the header"})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// billRow converts one record; its errors come in column order of the
// dialect (store_id, amount, memo).
func billRow(row csvtab.Row) (csvBill, []error) {
	var (
		b    csvBill
		errs []error
	)
	fail := func(col string, err error) {
		errs = append(errs, &billLineError{Line: row.LineOf(col), Column: col, Reason: reasonOf(err, col)})
	}
	b.StoreID = row.Field(colStoreID)
	if err := domain.ValidateID(colStoreID, b.StoreID); err != nil {
		fail(colStoreID, err)
	}
	if n, err := parseBillAmount(row.Field(colAmount)); err != nil {
		fail(colAmount, err)
	} else if _, err := domain.NewMoney(n, ""); err != nil {
		fail(colAmount, err)
	} else {
		b.Amount = n
	}
	if b.Memo = row.Field(colMemo); b.Memo != "" {
		if err := domain.ValidateText(colMemo, b.Memo, api.MaxMemo); err != nil {
			fail(colMemo, err)
		}
	}
	return b, errs
}

// parseBillAmount reads whole won: "39000", or "39,000" (every group after
// the first exactly three digits, the first one to three), without a
// leading zero ("039000" may be a code or a cut column: refused, like
// "039,000"). Anything else is refused rather than guessed at.
func parseBillAmount(s string) (int64, error) {
	bad := fmt.Errorf("%q is not an amount in won: want digits, optionally grouped by threes with commas (39000 or \"39,000\"); no leading zero, sign, decimals, spaces or currency symbol", s)
	if s == "" {
		return 0, errors.New("is required")
	}
	digits := s
	if strings.Contains(s, ",") {
		groups := strings.Split(s, ",")
		if len(groups[0]) < 1 || len(groups[0]) > 3 || groups[0][0] == '0' {
			return 0, bad
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, bad
			}
		}
		digits = strings.Join(groups, "")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, bad
		}
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, bad
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n, nil
}

// reasonOf is an error's message without its field prefix, for a line
// error that names the column itself.
func reasonOf(err error, field string) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return strings.TrimPrefix(de.Message, field+": ")
	}
	return err.Error()
}

// csvLineError turns an encoding/csv error into a *billLineError.
func csvLineError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &billLineError{Line: pe.StartLine, Reason: fmt.Sprintf("malformed CSV: %v (line %d, character %d)", pe.Err, pe.Line, pe.Column)}
	}
	return fmt.Errorf("read CSV: %w", err)
}

// billChunk is one bill.issue_bulk request of an import.
type billChunk struct {
	req   api.IssueBulkRequest
	lines []int // the file line of each bill
}

// chunkBills splits an import into requests of at most api.MaxBulkBills
// lines whose bodies fit the endpoint's limit (200-character memos can
// make 1,000 lines too big). The split depends only on the bills, so a
// repeat of the same import sends the same requests.
func chunkBills(dist string, bills []csvBill) []billChunk {
	empty, _ := json.Marshal(api.IssueBulkRequest{DistributorID: dist, Bills: []api.BillLine{}})
	limit := api.BillIssueBulk.MaxBodyBytes
	var (
		chunks []billChunk
		cur    billChunk
		size   int
	)
	for _, b := range bills {
		line, _ := json.Marshal(b.BillLine)
		add := len(line)
		if len(cur.lines) > 0 {
			add++ // the comma
		}
		if len(cur.lines) == api.MaxBulkBills || (len(cur.lines) > 0 && size+add > limit) {
			chunks = append(chunks, cur)
			cur, add = billChunk{}, len(line)
		}
		if len(cur.lines) == 0 {
			cur.req.DistributorID, size = dist, len(empty)
		}
		cur.req.Bills = append(cur.req.Bills, b.BillLine)
		cur.lines = append(cur.lines, b.Line)
		size += add
	}
	return append(chunks, cur)
}

// importKey is the base Idempotency-Key of an import: the distributor and
// a hash of the bills it issues (store, amount, memo, in file order), so
// that running the same file again, or the same bills saved with other
// line endings, quotes or a BOM, sends the same keys and the engine
// replays its stored replies instead of issuing anything.
func importKey(dist string, bills []csvBill) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode(dist)
	for _, b := range bills {
		_ = enc.Encode(b.BillLine)
	}
	return "bill-import:" + dist + ":" + hex.EncodeToString(h.Sum(nil))
}

// importRetryAdvice is what to do after a bill.issue_bulk request failed.
// An engine that went away, a request still executing (409 in_progress)
// or one that met a concurrent change (409 conflict) is finished by
// running the same import again; a request the engine refused outright (a
// 4xx such as 422 idempotency_key_reused) gets the same answer when it is
// repeated.
func importRetryAdvice(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status < 500 && ae.Code != "in_progress" && ae.Code != "conflict" {
		advice := "the engine refused the whole request, and running the same import again gets the same answer: fix the cause first (what was done is replayed, not issued twice)"
		if ae.Code == "idempotency_key_reused" {
			advice += "; this --idempotency-key went with other bills: give the key of this file's import, or none"
		}
		return advice
	}
	return "run the same import again to finish (what was done is replayed, not issued twice)"
}

// importedBill is the outcome of one line of a bill file.
type importedBill struct{ api.BulkResult }

func (b importedBill) String() string {
	s := fmt.Sprintf("line %-6d %-24s ", b.Line, b.StoreID)
	if b.Error != nil {
		return s + "refused " + b.Error.Code + ": " + b.Error.Message
	}
	s += b.BillID + "  " + b.Status
	if b.SupersededBillID != "" {
		s += "  supersedes " + b.SupersededBillID
	}
	return s
}

// importBills issues every bill of an ERP export. The file is checked
// completely first; if any line is bad, every bad line is reported and
// nothing is sent. The bills then go as bill.issue_bulk requests in file
// order, each with a key derived from the import and its index: a repeat
// of the same file replays the stored replies (nothing new is issued), and
// a repeat after a failure half-way finishes the import.
func importBills(ctx context.Context, cf *clientFlags, dist, path, key string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	bills, err := parseBillCSV(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: nothing imported:\n%w", path, err)
	}
	if key == "" {
		key = importKey(dist, bills)
	}
	chunks := chunkBills(dist, bills)
	c, err := cf.connect()
	if err != nil {
		return err
	}
	defer c.Close()

	var (
		results  []importedBill
		replayed int
		refused  []int
	)
	for i, ch := range chunks {
		rctx, cancel := context.WithTimeout(ctx, cf.timeout)
		rep, raw, err := client.Do(rctx, c, api.BillIssueBulk, ch.req, client.WithIdempotencyKey(fmt.Sprintf("%s:%d", key, i+1)))
		cancel()
		if err == nil && len(rep.Results) != len(ch.lines) {
			err = fmt.Errorf("the engine answered %d results for %d lines", len(rep.Results), len(ch.lines))
		}
		if err != nil {
			done := ""
			if i > 0 {
				done = fmt.Sprintf("; lines %d to %d are issued", chunks[0].lines[0], chunks[i-1].lines[len(chunks[i-1].lines)-1])
			}
			return requestFailed(fmt.Errorf("%s: request %d of %d (lines %d to %d): %w%s; %s",
				path, i+1, len(chunks), ch.lines[0], ch.lines[len(ch.lines)-1], err, done, importRetryAdvice(err)))
		}
		if raw.Replayed {
			replayed++
		}
		for j, r := range rep.Results {
			r.Line = ch.lines[j]
			b := importedBill{r}
			if r.Error != nil {
				refused = append(refused, r.Line)
			}
			results = append(results, b)
			if !cf.json {
				fmt.Fprintln(stdout, b)
			}
		}
	}

	issued := len(results) - len(refused)
	if cf.json {
		lines := make([]api.BulkResult, len(results))
		for i, r := range results {
			lines[i] = r.BulkResult
		}
		out, _ := json.Marshal(struct {
			DistributorID string           `json:"distributor_id"`
			Lines         []api.BulkResult `json:"lines"`
			Issued        int              `json:"issued"`
			Failed        int              `json:"failed"`
			Requests      int              `json:"requests"`
			Replayed      int              `json:"replayed"`
		}{dist, lines, issued, len(refused), len(chunks), replayed})
		fmt.Fprintln(stdout, string(out))
	} else {
		requests := "1 request"
		if len(chunks) > 1 {
			requests = fmt.Sprintf("%d requests", len(chunks))
		}
		fmt.Fprintf(stdout, "%s: %d issued, %d refused (in %s)\n", counted(len(results), "line"), issued, len(refused), requests)
		switch {
		case replayed == len(chunks):
			fmt.Fprintln(stdout, "(replayed: this file was imported before; nothing new happened)")
		case replayed > 0:
			fmt.Fprintf(stdout, "(replayed: %d of %d requests were done before and changed nothing now)\n", replayed, len(chunks))
		}
	}
	if len(refused) > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %d of %d lines refused by the engine (%s); the others are issued. Running this file again replays the same answers: issue the corrected lines on their own (bill issue, or a file of only those lines)",
			path, len(refused), len(results), lineList(refused))}
	}
	return nil
}

// lineList names lines for a message: "lines 4, 9" (at most 20, then "…").
func lineList(lines []int) string {
	parts := make([]string, 0, min(len(lines), 21))
	for i, l := range lines {
		if i == 20 {
			parts = append(parts, fmt.Sprintf("and %d more", len(lines)-20))
			break
		}
		parts = append(parts, strconv.Itoa(l))
	}
	if len(lines) == 1 {
		return "line " + parts[0]
	}
	return "lines " + strings.Join(parts, ", ")
}

// linkText is the human form of a link: its store, distributor, dedicated
// account and when it was linked.
func linkText(l api.LinkedStore, seq api.Seq) string {
	return fmt.Sprintf("store %s (%s) of distributor %s: link %s  (seq %d)\n  dedicated account: %s %s (%s)\n  linked at %s\n",
		l.StoreID, l.StoreName, named(l.DistributorID, l.DistributorName), l.LinkID, seq, l.DedicatedAccount.Bank, l.DedicatedAccount.Number, l.DedicatedAccount.Holder, l.LinkedAt)
}

// named is a distributor as the output shows it: its ID, and its name in
// parentheses when its link has one.
func named(id, name string) string {
	if name == "" {
		return id
	}
	return id + " (" + name + ")"
}

func billText(v api.BillView) string {
	s := fmt.Sprintf("bill %s  %s  store %s (%s) of %s\n  amount %s  paid %s  outstanding %s\n  pay to %s %s (%s)\n  issued at %s\n",
		v.BillID, v.Status, v.StoreID, v.StoreName, named(v.DistributorID, v.DistributorName), itoa(v.Amount), itoa(v.PaidAmount), itoa(v.Outstanding),
		v.DedicatedAccount.Bank, v.DedicatedAccount.Number, v.DedicatedAccount.Holder, v.IssuedAt)
	if v.ClosedAt != "" {
		s += "  closed at " + v.ClosedAt
		if v.SupersededBy != "" {
			s += " by " + v.SupersededBy
		}
		s += "\n"
	}
	if older := v.PaymentCount - len(v.Payments); older > 0 {
		s += fmt.Sprintf("  (%d older payments: bankbook payment list --store-id %s)\n", older, v.StoreID)
	}
	for _, p := range v.Payments {
		s += fmt.Sprintf("  payment %s  %s at %s (fee %s, settlement %s)\n", p.DepositID, itoa(p.Amount), p.PaidAt, itoa(p.Fee), p.SettlementDate)
	}
	return s
}

func paymentsText(r api.PaymentsReply) string {
	var b strings.Builder
	for _, p := range r.Payments {
		bill := p.BillID
		if bill == "" {
			bill = "(unbilled)"
		}
		fmt.Fprintf(&b, "%s  %-10s %-10s %12s  fee %8s  settlement %s  %s  %s\n", p.PaidAt, p.DistributorID, p.StoreID, itoa(p.Amount), itoa(p.Fee), p.SettlementDate, bill, p.DepositID)
	}
	if len(r.Payments) == 0 {
		b.WriteString("no payments\n")
	}
	return b.String() + nextPage(r.NextCursor)
}

// timeFlag parses an RFC 3339 time into *t.
func timeFlag(t **time.Time) func(string) error {
	return func(s string) error {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errors.New("must be an RFC 3339 time, such as 2026-12-01T00:00:00+09:00")
		}
		*t = &v
		return nil
	}
}

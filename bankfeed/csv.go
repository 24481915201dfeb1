package bankfeed

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/csvtab"
)

// The CSV statement columns, as they appear in the header row.
const (
	ColBankTxnID     = "bank_txn_id"
	ColAccountNumber = "account_number"
	ColDepositorName = "depositor_name"
	ColAmount        = "amount"
	ColDepositedAt   = "deposited_at"
)

// csvColumns lists the columns of a statement in the canonical order.
var csvColumns = []string{ColBankTxnID, ColAccountNumber, ColDepositorName, ColAmount, ColDepositedAt}

// ParseCSV reads a bank statement in the CSV dialect described in the package
// documentation and returns its transactions in file order, each bank_txn_id
// once.
//
// It is all or nothing: when anything is wrong it returns a nil slice and the
// errors.Join of one *LineError per problem found in the whole file (every bad
// cell of every bad row, not just the first). An input without a header row
// is ErrMissingHeader; a header-only file is an empty statement (nil, nil).
func ParseCSV(r io.Reader) ([]Transaction, error) {
	txns, _, err := ParseCSVCounted(r)
	return txns, err
}

// ParseCSVCounted is ParseCSV that also says how many rows of the file
// hold each transaction: rows[i] for txns[i], more than 1 where the file
// repeats it identically.
func ParseCSVCounted(r io.Reader) (txns []Transaction, rows []int, err error) {
	t, err := csvtab.Open(r)
	if errors.Is(err, csvtab.ErrEmpty) {
		return nil, nil, ErrMissingHeader
	}
	if err != nil {
		return nil, nil, csvSyntaxError(err)
	}
	if err := checkHeader(t); err != nil {
		return nil, nil, err
	}

	var (
		errs  []error
		first = map[string]int{} // bank_txn_id → index in txns
		lines = map[string]int{} // bank_txn_id → line of its first row
	)
	for {
		row, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var we *csvtab.WidthError
		switch {
		case errors.As(err, &we):
			errs = append(errs, &LineError{Line: we.Line, Err: fmt.Errorf("%w: row has %d fields, the header has %d", ErrMalformedCSV, we.Got, we.Header)})
			continue
		case err != nil:
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, fmt.Errorf("read CSV: %w", err)
			}
			errs = append(errs, csvSyntaxError(err))
			continue
		}
		tx, rowErrs := parseRow(t, row)
		if len(rowErrs) > 0 {
			errs = append(errs, rowErrs...)
			continue
		}
		if i, ok := first[tx.BankTxnID]; ok {
			if !txns[i].Equal(tx) {
				errs = append(errs, &LineError{Line: row.LineOf(ColBankTxnID), Column: ColBankTxnID,
					Err: fmt.Errorf("%w: %q differs from line %d", ErrConflictingDuplicate, tx.BankTxnID, lines[tx.BankTxnID])})
			}
			rows[i]++
			continue
		}
		first[tx.BankTxnID] = len(txns)
		lines[tx.BankTxnID] = row.Line
		txns = append(txns, tx)
		rows = append(rows, 1)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return txns, rows, nil
}

// checkHeader maps the header's columns, every one of which is required.
func checkHeader(t *csvtab.Table) error {
	var errs []error
	for _, p := range t.Columns(csvColumns, csvColumns) {
		var err error
		switch p.Kind {
		case csvtab.Unknown:
			err = fmt.Errorf("%w: unknown column %q (want %s)", ErrBadHeader, p.Column, strings.Join(csvColumns, ","))
		case csvtab.Repeated:
			err = fmt.Errorf("%w: column %q appears twice", ErrBadHeader, p.Column)
		default:
			err = fmt.Errorf("%w: missing column %q", ErrBadHeader, p.Column)
		}
		errs = append(errs, &LineError{Line: 1, Column: p.Column, Err: err})
	}
	return errors.Join(errs...)
}

// parseRow converts one row of t. The errors come in the order of the
// columns in the file.
func parseRow(tab *csvtab.Table, row csvtab.Row) (Transaction, []error) {
	field := row.Field
	problems := map[string]*FieldError{}
	fail := func(col, format string, args ...any) {
		problems[col] = &FieldError{Field: col, Reason: fmt.Sprintf(format, args...)}
	}

	t := Transaction{
		BankTxnID:     field(ColBankTxnID),
		AccountNumber: field(ColAccountNumber),
		DepositorName: field(ColDepositorName),
	}
	if s := field(ColAmount); s == "" {
		fail(ColAmount, "is required")
	} else if !csvtab.Digits(s) {
		fail(ColAmount, "%q is not an integer in minor units (digits only: no sign, separator or decimals)", s)
	} else if n, err := strconv.ParseInt(s, 10, 64); err != nil {
		fail(ColAmount, "%q is out of range", s)
	} else {
		t.Amount = n
	}
	if s := field(ColDepositedAt); s == "" {
		fail(ColDepositedAt, "is required")
	} else if at, err := time.Parse(time.RFC3339Nano, s); err != nil {
		fail(ColDepositedAt, "%q is not an RFC 3339 time with an offset", s)
	} else {
		t.DepositedAt = at.UTC()
	}
	for _, fe := range t.fieldErrors() {
		if problems[fe.Field] == nil {
			problems[fe.Field] = fe
		}
	}
	if len(problems) == 0 {
		return t, nil
	}
	cols := make([]string, 0, len(problems))
	for col := range problems {
		cols = append(cols, col)
	}
	slices.SortFunc(cols, func(a, b string) int { return tab.Index(a) - tab.Index(b) })
	errs := make([]error, len(cols))
	for i, col := range cols {
		errs[i] = &LineError{Line: row.LineOf(col), Column: col, Err: problems[col]}
	}
	return t, errs
}

// csvSyntaxError turns an encoding/csv error into a *LineError.
func csvSyntaxError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LineError{Line: pe.Line, Err: fmt.Errorf("%w: %v (character %d)", ErrMalformedCSV, pe.Err, pe.Column)}
	}
	return fmt.Errorf("read CSV: %w", err)
}

// WriteCSV writes txns as a statement in the dialect ParseCSV reads: the
// header in the canonical column order, then a row per transaction in the
// order given, times in UTC with nanoseconds.
func WriteCSV(w io.Writer, txns []Transaction) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	for _, t := range txns {
		if err := cw.Write([]string{t.BankTxnID, t.AccountNumber, t.DepositorName,
			strconv.FormatInt(t.Amount, 10), t.DepositedAt.UTC().Format(time.RFC3339Nano)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// StatementSHA256 is the file_sha256 of txns written as a statement
// (WriteCSV): a part of a statement reconciled as several runs, a night's
// statement, is identified by its transactions alone.
func StatementSHA256(txns []Transaction) (string, error) {
	var file bytes.Buffer
	if err := WriteCSV(&file, txns); err != nil {
		return "", err
	}
	return domain.FileSHA256(file.Bytes()), nil
}

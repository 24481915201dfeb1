package bankfeed

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
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
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\uFEFF")) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // counted here, so that the error names the line

	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrMissingHeader
	}
	if err != nil {
		return nil, csvSyntaxError(err)
	}
	index, err := parseHeader(header)
	if err != nil {
		return nil, err
	}

	var (
		txns  []Transaction
		errs  []error
		first = map[string]int{} // bank_txn_id → index in txns
		lines = map[string]int{} // bank_txn_id → line of its first row
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("read CSV: %w", err)
			}
			errs = append(errs, csvSyntaxError(err))
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("%w: row has %d fields, the header has %d", ErrMalformedCSV, len(rec), len(header))})
			continue
		}
		t, rowErrs := parseRow(rec, index, func(col string) int { l, _ := cr.FieldPos(index[col]); return l })
		if len(rowErrs) > 0 {
			errs = append(errs, rowErrs...)
			continue
		}
		if i, ok := first[t.BankTxnID]; ok {
			if !txns[i].Equal(t) {
				idLine, _ := cr.FieldPos(index[ColBankTxnID])
				errs = append(errs, &LineError{Line: idLine, Column: ColBankTxnID,
					Err: fmt.Errorf("%w: %q differs from line %d", ErrConflictingDuplicate, t.BankTxnID, lines[t.BankTxnID])})
			}
			continue
		}
		first[t.BankTxnID] = len(txns)
		lines[t.BankTxnID] = line
		txns = append(txns, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return txns, nil
}

// parseHeader maps each column name to its field index.
func parseHeader(header []string) (map[string]int, error) {
	index := make(map[string]int, len(header))
	known := make(map[string]bool, len(csvColumns))
	for _, c := range csvColumns {
		known[c] = true
	}
	var errs []error
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case !known[name]:
			errs = append(errs, &LineError{Line: 1, Column: h, Err: fmt.Errorf("%w: unknown column %q (want %s)", ErrBadHeader, h, strings.Join(csvColumns, ","))})
		case hasKey(index, name):
			errs = append(errs, &LineError{Line: 1, Column: name, Err: fmt.Errorf("%w: column %q appears twice", ErrBadHeader, name)})
		default:
			index[name] = i
		}
	}
	for _, c := range csvColumns {
		if !hasKey(index, c) {
			errs = append(errs, &LineError{Line: 1, Column: c, Err: fmt.Errorf("%w: missing column %q", ErrBadHeader, c)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return index, nil
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// parseRow converts one record; lineOf gives the line on which a column's
// field starts. The errors come in the order of the columns in the file.
func parseRow(rec []string, index map[string]int, lineOf func(col string) int) (Transaction, []error) {
	field := func(col string) string { return strings.TrimSpace(rec[index[col]]) }
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
	} else if !allDigits(s) {
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
	slices.SortFunc(cols, func(a, b string) int { return index[a] - index[b] })
	errs := make([]error, len(cols))
	for i, col := range cols {
		errs[i] = &LineError{Line: lineOf(col), Column: col, Err: problems[col]}
	}
	return t, errs
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// csvSyntaxError turns an encoding/csv error into a *LineError.
func csvSyntaxError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LineError{Line: pe.Line, Err: fmt.Errorf("%w: %v (character %d)", ErrMalformedCSV, pe.Err, pe.Column)}
	}
	return fmt.Errorf("read CSV: %w", err)
}

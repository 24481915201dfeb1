package api

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/csvtab"
)

// PayoutReportColumns are the columns of a payout provider's report
// (docs/api.md, bankbook.cmd.reconcile.payouts), in any order.
var PayoutReportColumns = []string{"payout_id", "status", "amount", "fee", "settled_at"}

// ErrEmptyReport is ParsePayoutReport's error for a report without a line.
var ErrEmptyReport = errors.New("the report has no payouts")

// ParsePayoutReport parses the bytes of a payout provider's report (a CSV
// file of PayoutReportColumns, docs/md "bankbook.cmd.reconcile.payouts")
// into a request: its SHA-256 and its lines in file order, repeats
// included. It is all or nothing: every bad cell is reported with its
// line. The request it returns passes Validate.
func ParsePayoutReport(data []byte) (ReconcilePayoutsRequest, error) {
	lines, err := ParsePayoutReportLines(data)
	if err != nil {
		return ReconcilePayoutsRequest{}, err
	}
	req := ReconcilePayoutsRequest{FileSHA256: domain.FileSHA256(data), Lines: lines}
	if err := req.Validate(); err != nil {
		return ReconcilePayoutsRequest{}, err
	}
	return req, nil
}

// ParsePayoutReportLines is ParsePayoutReport's lines, however many: a
// report of more than MaxReconcileLines is several runs.
func ParsePayoutReportLines(data []byte) ([]PayoutReportLine, error) {
	t, err := csvtab.Open(bytes.NewReader(data))
	if errors.Is(err, csvtab.ErrEmpty) {
		return nil, fmt.Errorf("no header row (%s)", strings.Join(PayoutReportColumns, ","))
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, p := range t.Columns(PayoutReportColumns, PayoutReportColumns) {
		if p.Kind == csvtab.Missing {
			errs = append(errs, fmt.Errorf("line 1: missing column %q", p.Column))
			continue
		}
		errs = append(errs, fmt.Errorf("line 1: column %q %s (want %s)", p.Column, p.Kind, strings.Join(PayoutReportColumns, ",")))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var lines []PayoutReportLine
	now := time.Now()
	for {
		row, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, err)
			var pe *csv.ParseError
			var we *csvtab.WidthError
			if !errors.As(err, &pe) && !errors.As(err, &we) {
				break // the input failed: reading stopped
			}
			continue
		}
		line, field := row.Line, row.Field
		l := PayoutReportLine{PayoutID: field("payout_id"), Status: strings.ToLower(field("status"))}
		// A cell that does not parse is reported as such; the line's other
		// cells are checked as the engine would, that cell taken as valid.
		check := l
		for _, n := range []struct {
			col         string
			to, checked *int64
			valid       int64
		}{{"amount", &l.Amount, &check.Amount, 1}, {"fee", &l.Fee, &check.Fee, 0}} {
			v, err := strconv.ParseInt(field(n.col), 10, 64)
			if err != nil || !csvtab.Digits(field(n.col)) {
				errs = append(errs, fmt.Errorf("line %d: %s %q is not an integer in minor units", line, n.col, field(n.col)))
				*n.checked = n.valid
			} else {
				*n.checked = v
			}
			*n.to = v
		}
		at, err := time.Parse(time.RFC3339Nano, field("settled_at"))
		l.SettledAt, check.SettledAt = at.UTC(), at.UTC()
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: settled_at %q is not an RFC 3339 time with an offset", line, field("settled_at")))
			check.SettledAt = now
		}
		for _, p := range PayoutLineProblems(check, func(name string) string { return name }, now) {
			msg := p.Error()
			if de := (*domain.Error)(nil); errors.As(p, &de) {
				msg = de.Message
			}
			errs = append(errs, fmt.Errorf("line %d: %s", line, msg))
		}
		lines = append(lines, l)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(lines) == 0 {
		return nil, ErrEmptyReport
	}
	return lines, nil
}

// WritePayoutReport writes lines as a report of PayoutReportColumns, with
// its header row: the dialect ParsePayoutReport reads, settled_at in UTC.
func WritePayoutReport(w io.Writer, lines []PayoutReportLine) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(PayoutReportColumns); err != nil {
		return err
	}
	for _, l := range lines {
		if err := cw.Write([]string{l.PayoutID, l.Status, strconv.FormatInt(l.Amount, 10), strconv.FormatInt(l.Fee, 10),
			l.SettledAt.UTC().Format(time.RFC3339Nano)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// PayoutReportSHA256 is the file_sha256 of lines written as a report
// (WritePayoutReport): a part of a report reconciled as several runs, a
// night's report, is identified by its lines alone.
func PayoutReportSHA256(lines []PayoutReportLine) (string, error) {
	var file bytes.Buffer
	if err := WritePayoutReport(&file, lines); err != nil {
		return "", err
	}
	return domain.FileSHA256(file.Bytes()), nil
}

// Package csvtab reads the CSV files bankbook takes from people and from
// other systems (bank statements, ERP bill exports, payout provider
// reports): a header row naming the columns, in any order, then one record
// per row.
//
// It does the framing the three dialects share and leaves their cells and
// their error messages to the callers: a leading UTF-8 byte-order mark is
// dropped (spreadsheets write one), header names are matched trimmed and
// case-insensitively, a row of another width than the header is reported
// with its line rather than stopping the read, and so is a row that
// encoding/csv cannot parse, so that a caller can report every problem of
// a file at once.
package csvtab

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrEmpty is returned by Open for an input with no header row.
var ErrEmpty = errors.New("csvtab: no header row")

// Table reads the rows of one CSV file after its header.
type Table struct {
	cr     *csv.Reader
	header []string
	index  map[string]int // column name → field index, set by Columns
}

// Open reads r's header row. An empty input is ErrEmpty; a header that
// encoding/csv cannot parse is its *csv.ParseError.
func Open(r io.Reader) (*Table, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\uFEFF")) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // counted by Next, so that the error names the line
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, err
	}
	return &Table{cr: cr, header: header, index: map[string]int{}}, nil
}

// Problem kinds of a header.
const (
	Unknown  = "unknown"  // a column the dialect does not have
	Repeated = "repeated" // a column named twice
	Missing  = "missing"  // a required column the header lacks
)

// HeaderProblem is one thing wrong with a header. Column is the name as
// the file spells it for Unknown, and the dialect's name otherwise.
type HeaderProblem struct {
	Kind   string
	Column string
}

// Columns maps the header's names (trimmed, lower-cased) to their fields
// and returns what is wrong with it, in header order and then in the order
// of required: names not among known, names given twice (the first one
// counts), and required names missing. known and required are lower-case.
func (t *Table) Columns(known, required []string) []HeaderProblem {
	var problems []HeaderProblem
	for i, h := range t.header {
		name := strings.ToLower(strings.TrimSpace(h))
		_, seen := t.index[name]
		switch {
		case !slices.Contains(known, name):
			problems = append(problems, HeaderProblem{Kind: Unknown, Column: h})
		case seen:
			problems = append(problems, HeaderProblem{Kind: Repeated, Column: name})
		default:
			t.index[name] = i
		}
	}
	for _, c := range required {
		if _, ok := t.index[c]; !ok {
			problems = append(problems, HeaderProblem{Kind: Missing, Column: c})
		}
	}
	return problems
}

// WidthError is a row with another number of fields than the header.
type WidthError struct {
	Line        int
	Got, Header int
}

func (e *WidthError) Error() string {
	return fmt.Sprintf("line %d: %d fields, the header has %d", e.Line, e.Got, e.Header)
}

// Row is one record of a Table.
type Row struct {
	// Line is the line the record starts on.
	Line  int
	t     *Table
	rec   []string
	lines []int // the line each field starts on
}

// Next returns the next row, or io.EOF after the last. A row that
// encoding/csv cannot parse is its *csv.ParseError and a row of the wrong
// width a *WidthError: both leave the Table ready for the next row. Any
// other error means the input failed, and the Table can read no more.
func (t *Table) Next() (Row, error) {
	rec, err := t.cr.Read()
	if err != nil {
		return Row{}, err
	}
	line, _ := t.cr.FieldPos(0)
	if len(rec) != len(t.header) {
		return Row{}, &WidthError{Line: line, Got: len(rec), Header: len(t.header)}
	}
	lines := make([]int, len(rec))
	for i := range rec {
		lines[i], _ = t.cr.FieldPos(i)
	}
	return Row{Line: line, t: t, rec: rec, lines: lines}, nil
}

// Field returns the row's value of column col, trimmed ("" for a column
// the header does not have).
func (r Row) Field(col string) string {
	i, ok := r.t.index[col]
	if !ok {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

// LineOf returns the line on which column col's field starts (a quoted
// field may span lines); the row's first line for a column the header does
// not have.
func (r Row) LineOf(col string) int {
	i, ok := r.t.index[col]
	if !ok {
		return r.Line
	}
	return r.lines[i]
}

// Index returns the field index of column col in the header, or -1.
func (t *Table) Index(col string) int {
	if i, ok := t.index[col]; ok {
		return i
	}
	return -1
}

// Digits reports whether s is one or more ASCII decimal digits: how the
// dialects write an amount in minor units (no sign, separator or decimals).
func Digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

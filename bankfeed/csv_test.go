package bankfeed

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCSVGood(t *testing.T) {
	in := "\uFEFF" + // byte-order mark from a spreadsheet export
		"amount, Deposited_At ,bank_txn_id,depositor_name,account_number\r\n" +
		"35000,2024-05-01T09:30:00+09:00,T-1,김민수042,123-456-789\r\n" +
		"\r\n" + // blank line
		`1200,2024-05-01T00:31:00.123456Z,T-2,"Kim, Minsu 7",123-456-789` + "\r\n" +
		`  500 ,2024-04-30T20:00:00.5-05:00,T-3,"say ""hi""",123-456-789` + "\n" +
		"35000,2024-05-01T00:30:00Z,T-1,김민수042,123-456-789\n" + // exact repeat of line 2 (same instant in UTC)
		"1000000000000000,2024-05-01T01:00:00Z,T-4,ＡＢＣ,999\n"
	got, err := ParseCSV(strings.NewReader(in))
	if err != nil {
		t.Fatalf("ParseCSV: %v", err)
	}
	want := []Transaction{
		{BankTxnID: "T-1", AccountNumber: "123-456-789", DepositorName: "김민수042", Amount: 35000, DepositedAt: time.Date(2024, 5, 1, 0, 30, 0, 0, time.UTC)},
		{BankTxnID: "T-2", AccountNumber: "123-456-789", DepositorName: "Kim, Minsu 7", Amount: 1200, DepositedAt: time.Date(2024, 5, 1, 0, 31, 0, 123456000, time.UTC)},
		{BankTxnID: "T-3", AccountNumber: "123-456-789", DepositorName: `say "hi"`, Amount: 500, DepositedAt: time.Date(2024, 5, 1, 1, 0, 0, 500000000, time.UTC)},
		{BankTxnID: "T-4", AccountNumber: "999", DepositorName: "ＡＢＣ", Amount: 1_000_000_000_000_000, DepositedAt: time.Date(2024, 5, 1, 1, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d transactions %v, want %d", len(got), ids(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) || got[i].DepositedAt.Location() != time.UTC {
			t.Errorf("row %d = %+v, want %+v (in UTC)", i, got[i], want[i])
		}
	}
}

func TestParseCSVNoRows(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		err      error
	}{
		{"empty file", "", ErrMissingHeader},
		{"only a BOM", "\uFEFF", ErrMissingHeader},
		{"only blank lines", "\n\r\n\n", ErrMissingHeader},
		{"header only", "bank_txn_id,account_number,depositor_name,amount,deposited_at\n", nil},
		{"header only, no newline, BOM", "\uFEFFbank_txn_id,account_number,depositor_name,amount,deposited_at", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tc.in))
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != nil {
				t.Fatalf("got %v, want nil", got)
			}
		})
	}
}

// problem is one expected *LineError.
type problem struct {
	line   int
	column string
	kind   error
}

func (p problem) String() string { return fmt.Sprintf("line %d %q", p.line, p.column) }

// checkProblems asserts that err is exactly the joined LineErrors want.
func checkProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	var got []problem
	for _, e := range joined(err) {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("error %v is not a *LineError", e)
		}
		got = append(got, problem{line: le.Line, column: le.Column})
		for _, p := range want {
			if p.line == le.Line && p.column == le.Column && !errors.Is(le, p.kind) {
				t.Errorf("%v: %v does not match %v", p, le, p.kind)
			}
		}
	}
	str := func(ps []problem) string {
		var s []string
		for _, p := range ps {
			s = append(s, p.String())
		}
		return strings.Join(s, ", ")
	}
	if str(got) != str(want) {
		t.Fatalf("problems:\n got %s\nwant %s\nerror:\n%v", str(got), str(want), err)
	}
}

func TestParseCSVBadRows(t *testing.T) {
	lines := []string{
		/* 1 */ "bank_txn_id,account_number,depositor_name,amount,deposited_at",
		/* 2 */ "T-1,123,Good,1000,2024-05-01T00:00:00Z",
		/* 3 */ ",123,No id,1000,2024-05-01T00:00:00Z",
		/* 4 */ `T-4,123,Comma,"1,000",2024-05-01T00:00:00Z`,
		/* 5 */ "T-5,123,Zero,0,2024-05-01T00:00:00Z",
		/* 6 */ "T-6,123,Negative,-5,2024-05-01T00:00:00Z",
		/* 7 */ "T-7,123,Decimal,1.5,2024-05-01T00:00:00Z",
		/* 8 */ "T-8,123,TooMuch,1000000000000000001,2024-05-01T00:00:00Z",
		/* 9 */ "T-9,123,Overflow,99999999999999999999,2024-05-01T00:00:00Z",
		/* 10 */ "T-10,123,No offset,1000,2024-05-01T09:00:00",
		/* 11 */ "T-11,123,Words,1000,yesterday",
		/* 12 */ "T-12,123,   ,1000,2024-05-01T00:00:00Z",
		/* 13 */ "T-13,123," + strings.Repeat("김", 65) + ",1000,2024-05-01T00:00:00Z",
		/* 14 */ "T-14,,No account,1000,2024-05-01T00:00:00Z",
		/* 15 */ "T 15,123,Space in id,1000,2024-05-01T00:00:00Z",
		/* 16 */ "T-16,123,Too few fields,1000",
		/* 17 */ `T-17,123,"Two`,
		/* 18 */ `lines",1000,2024-05-01T00:00:00Z`,
		/* 19 */ "T-19,123,Bad amount after a multi-line field,x,2024-05-01T00:00:00Z",
		/* 20 */ `T-20,123,Bare "quote,1000,2024-05-01T00:00:00Z`,
		/* 21 */ "T-21,123,Two bad cells,abc,",
		/* 22 */ "T-1,123,Good,2000,2024-05-01T00:00:00Z",
		/* 23 */ "T-23,123,Control\x01char,1000,2024-05-01T00:00:00Z",
		/* 24 */ "T-24,123,Too,many,fields,2024-05-01T00:00:00Z",
		/* 25 */ "T-25,123,Fine,1000,2024-05-01T00:00:00Z",
		/* 26 */ "T-26,123,Plus sign,+5,2024-05-01T00:00:00Z",
		/* 27 */ "T-27,123,Far future,1000,9999-01-01T00:00:00Z",
		/* 28 */ "T-28,123,Long ago,1000,0001-01-01T00:00:00Z",
		/* 29 */ "T-29,12\x0134,Control in account,1000,2024-05-01T00:00:00Z",
		/* 30 */ "T-30,12.34,Dot in account,1000,2024-05-01T00:00:00Z",
		/* 31 */ "T-31,123,Full-width digits,１２３,2024-05-01T00:00:00Z",
		/* 32 */ "T-32,123,Exponent,1e3,2024-05-01T00:00:00Z",
		/* 33 */ "T-33,123,One past int64,9223372036854775808,2024-05-01T00:00:00Z",
	}
	got, err := ParseCSV(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	if got != nil {
		t.Fatalf("got %d transactions, want none from a bad file", len(got))
	}
	inv, bad := ErrInvalidTransaction, ErrMalformedCSV
	checkProblems(t, err, []problem{
		{3, "bank_txn_id", inv},
		{4, "amount", inv},
		{5, "amount", inv},
		{6, "amount", inv},
		{7, "amount", inv},
		{8, "amount", inv},
		{9, "amount", inv},
		{10, "deposited_at", inv},
		{11, "deposited_at", inv},
		{12, "depositor_name", inv},
		{13, "depositor_name", inv},
		{14, "account_number", inv},
		{15, "bank_txn_id", inv},
		{16, "", bad},
		{17, "depositor_name", inv},
		{19, "amount", inv},
		{20, "", bad},
		{21, "amount", inv},
		{21, "deposited_at", inv},
		{22, "bank_txn_id", ErrConflictingDuplicate},
		{23, "depositor_name", inv},
		{24, "", bad},
		{26, "amount", inv},
		{27, "deposited_at", inv},
		{28, "deposited_at", inv},
		{29, "account_number", inv},
		{30, "account_number", inv},
		{31, "amount", inv},
		{32, "amount", inv},
		{33, "amount", inv},
	})
	if !strings.Contains(err.Error(), "line 22: bank_txn_id: ") || !strings.Contains(err.Error(), "differs from line 2") {
		t.Errorf("the duplicate error does not point at both lines:\n%v", err)
	}
	// A problem the domain finds names its field once.
	for _, field := range []string{"deposited_at", "account_number"} {
		if strings.Contains(err.Error(), field+": "+field+": ") {
			t.Errorf("%s named twice:\n%v", field, err)
		}
	}
	if !strings.Contains(err.Error(), "line 27: deposited_at: must not be more than") {
		t.Errorf("the future time's problem is not said as the domain says it:\n%v", err)
	}
}

func TestParseCSVHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         []problem
	}{
		{"unknown column", "bank_txn_id,account_number,depositor_name,amount,deposited_at,memo",
			[]problem{{1, "memo", ErrBadHeader}}},
		{"missing columns", "bank_txn_id,depositor_name,amount",
			[]problem{{1, "account_number", ErrBadHeader}, {1, "deposited_at", ErrBadHeader}}},
		{"repeated column", "bank_txn_id,account_number,depositor_name,amount,deposited_at,AMOUNT",
			[]problem{{1, "amount", ErrBadHeader}}},
		{"a data row instead of a header", "T-1,123,Kim,1000,2024-05-01T00:00:00Z",
			[]problem{{1, "T-1", ErrBadHeader}, {1, "123", ErrBadHeader}, {1, "Kim", ErrBadHeader}, {1, "1000", ErrBadHeader}, {1, "2024-05-01T00:00:00Z", ErrBadHeader},
				{1, "bank_txn_id", ErrBadHeader}, {1, "account_number", ErrBadHeader}, {1, "depositor_name", ErrBadHeader}, {1, "amount", ErrBadHeader}, {1, "deposited_at", ErrBadHeader}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCSV(strings.NewReader(tc.header + "\nT-1,123,Kim,1000,2024-05-01T00:00:00Z\n"))
			if got != nil || !errors.Is(err, ErrBadHeader) {
				t.Fatalf("ParseCSV = %v, %v; want ErrBadHeader", got, err)
			}
			checkProblems(t, err, tc.want)
		})
	}
}

func TestParseCSVDuplicates(t *testing.T) {
	const header = "bank_txn_id,account_number,depositor_name,amount,deposited_at\n"
	t.Run("exact repeat is returned once", func(t *testing.T) {
		row := "T-1,123,Kim,1000,2024-05-01T00:00:00Z\n"
		got, err := ParseCSV(strings.NewReader(header + row + "T-2,123,Lee,500,2024-05-01T00:01:00Z\n" + row))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ids(got), ",") != "T-1,T-2" {
			t.Fatalf("got %v, want T-1,T-2", ids(got))
		}
	})
	t.Run("conflicting repeat fails the file", func(t *testing.T) {
		got, err := ParseCSV(strings.NewReader(header +
			"T-1,123,Kim,1000,2024-05-01T00:00:00Z\n" +
			"T-1,123,Kim,1000,2024-05-01T00:00:01Z\n"))
		if got != nil || !errors.Is(err, ErrConflictingDuplicate) {
			t.Fatalf("ParseCSV = %v, %v; want ErrConflictingDuplicate", got, err)
		}
		checkProblems(t, err, []problem{{3, "bank_txn_id", ErrConflictingDuplicate}})
	})
}

func TestParseCSVReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := &failingReader{data: []byte("bank_txn_id,account_number,depositor_name,amount,deposited_at\nT-1,1"), err: boom}
	got, err := ParseCSV(r)
	if got != nil || !errors.Is(err, boom) {
		t.Fatalf("ParseCSV = %v, %v; want the read error", got, err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// writeCSV writes txns in the statement dialect.
func writeCSV(t testing.TB, txns []Transaction) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvColumns)
	for _, x := range txns {
		_ = w.Write([]string{x.BankTxnID, x.AccountNumber, x.DepositorName, fmt.Sprint(x.Amount), x.DepositedAt.Format(time.RFC3339Nano)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseCSVRoundTrip(t *testing.T) {
	bank := newBank(t, newClock(), SimOptions{})
	for i, name := range []string{"김민수042", "Kim, \"Minsu\"", "이 영 희 7", "O'Brien"} {
		transfer(t, bank, name, int64(1000*(i+1)), collect)
	}
	want := bank.Transactions()
	got, err := ParseCSV(bytes.NewReader(writeCSV(t, want)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, Transaction.Equal) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func FuzzParseCSV(f *testing.F) {
	const header = "bank_txn_id,account_number,depositor_name,amount,deposited_at\n"
	for _, seed := range []string{
		"",
		header,
		"\uFEFF" + header + "T-1,123,김민수042,35000,2024-05-01T09:30:00+09:00\n",
		header + `T-1,123,"a,""b""",1,2024-05-01T00:00:00.5Z` + "\nT-1,123,\"a,\"\"b\"\"\",1,2024-05-01T00:00:00.5Z\n",
		"amount,deposited_at,bank_txn_id,account_number,depositor_name\r\n1,2024-05-01T00:00:00Z,x,y,z\r\n",
		header + "T-1,123,Kim,1000\n\"unterminated\n",
		header + "T-1,123,Kim,-1,2024-13-01T00:00:00Z\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseCSV(bytes.NewReader(data))
		if err != nil {
			if got != nil {
				t.Fatalf("returned %d transactions with an error", len(got))
			}
			for _, e := range joined(err) {
				var le *LineError
				if !errors.As(e, &le) && !errors.Is(e, ErrMissingHeader) {
					t.Fatalf("error %T %v is neither a *LineError nor ErrMissingHeader", e, e)
				}
				if le != nil && le.Line < 1 {
					t.Fatalf("line %d < 1: %v", le.Line, le)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, x := range got {
			if err := x.Validate(); err != nil {
				t.Fatalf("accepted an invalid transaction %+v: %v", x, err)
			}
			if seen[x.BankTxnID] {
				t.Fatalf("bank_txn_id %q returned twice", x.BankTxnID)
			}
			seen[x.BankTxnID] = true
			if x.DepositedAt.Location() != time.UTC {
				t.Fatalf("deposited_at %v not in UTC", x.DepositedAt)
			}
		}
		// What was accepted survives a round trip unchanged.
		again, err := ParseCSV(bytes.NewReader(writeCSV(t, got)))
		if err != nil {
			t.Fatalf("re-parse of accepted data: %v", err)
		}
		if !slices.EqualFunc(again, got, Transaction.Equal) {
			t.Fatalf("round trip changed the data:\n%+v\n%+v", got, again)
		}
	})
}

// TestParseCSVQuotesAnUnknownColumnOfControlCharacters: an unknown header
// column is the file's own text, so an error shows it quoted wherever it
// names it: an escape sequence in a bank file never reaches the operator's
// terminal as it is.
func TestParseCSVQuotesAnUnknownColumnOfControlCharacters(t *testing.T) {
	header := "bank_txn_id,account_number,depositor_name,amount,deposited_at,\x1b[31mred\x1b[0m"
	_, err := ParseCSV(strings.NewReader(header + "\nT-1,123,Kim,1000,2024-05-01T00:00:00Z,x\n"))
	if !errors.Is(err, ErrBadHeader) {
		t.Fatalf("ParseCSV: %v; want ErrBadHeader", err)
	}
	if msg := err.Error(); strings.ContainsRune(msg, '\x1b') || !strings.Contains(msg, `\x1b[31mred\x1b[0m`) {
		t.Fatalf("the error shows the column as it is, or not at all: %q", msg)
	}
}

package csvtab

import (
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestColumns(t *testing.T) {
	tab, err := Open(strings.NewReader("\uFEFF Amount ,memo,AMOUNT,extra\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := tab.Columns([]string{"id", "amount", "memo"}, []string{"id", "amount"})
	want := []HeaderProblem{{Repeated, "amount"}, {Unknown, "extra"}, {Missing, "id"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %+v, want %+v", got, want)
	}
	if tab.Index("amount") != 0 || tab.Index("memo") != 1 || tab.Index("id") != -1 {
		t.Fatalf("index amount %d memo %d id %d, want 0 1 -1", tab.Index("amount"), tab.Index("memo"), tab.Index("id"))
	}
}

func TestEmpty(t *testing.T) {
	for _, in := range []string{"", "\uFEFF"} {
		if _, err := Open(strings.NewReader(in)); !errors.Is(err, ErrEmpty) {
			t.Errorf("Open(%q): %v, want ErrEmpty", in, err)
		}
	}
}

// Every row is read, whatever is wrong with the ones before it, and each
// problem names its line; a quoted field spanning lines has its own.
func TestRowsAndTheirLines(t *testing.T) {
	in := "id,amount,memo\n" +
		"a, 10 ,x\n" + // line 2
		"b,20\n" + // line 3: too few fields
		"c,\"3\"0\",y\n" + // line 4: a bare quote
		"\"d\nd\",40,m\n" + // lines 5-6
		"e,50,\"z\"\n" // line 7
	tab, err := Open(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if p := tab.Columns([]string{"id", "amount", "memo"}, nil); len(p) != 0 {
		t.Fatalf("problems %+v", p)
	}
	var got []string
	for {
		row, err := tab.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var (
			we *WidthError
			pe *csv.ParseError
		)
		switch {
		case errors.As(err, &we):
			got = append(got, we.Error())
		case errors.As(err, &pe):
			got = append(got, "syntax at line "+strconv.Itoa(pe.Line))
		case err != nil:
			t.Fatal(err)
		default:
			got = append(got, row.Field("id")+"="+row.Field("amount")+" line "+strconv.Itoa(row.Line)+" memo line "+strconv.Itoa(row.LineOf("memo"))+" missing "+strconv.Itoa(row.LineOf("nope")))
		}
	}
	want := []string{
		"a=10 line 2 memo line 2 missing 2",
		"line 3: 2 fields, the header has 3",
		"syntax at line 4",
		"d\nd=40 line 5 memo line 6 missing 5",
		"e=50 line 7 memo line 7 missing 7",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows\n%q\nwant\n%q", got, want)
	}
}

func TestDigits(t *testing.T) {
	for s, want := range map[string]bool{"0": true, "0123456789": true, "": false, "-1": false, "1,000": false, " 1": false, "1.5": false, "١": false} {
		if Digits(s) != want {
			t.Errorf("Digits(%q) = %v, want %v", s, !want, want)
		}
	}
}

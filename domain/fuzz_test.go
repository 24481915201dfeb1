package domain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/bankbook/bankbook/domain"
)

// FuzzNormalizeName: the normal form is a fixed point and has no white space.
// Run with: go test -fuzz FuzzNormalizeName ./domain/
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{
		"", "김민수042", "김민수 042", norm.NFD.String("김민수 042"), "KIM minsu",
		"\t\u00a0\u3000", "Straße", "İstanbul", "ΣΟΦΙΑ", "René", "\xff\xfe", "j\u030C",
		"ＢＯＢ１２３", "ｷﾑ\u202e042", "Ꭰꭰ", "\u00a8x", "ᴮ㈜ﬁ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := domain.NormalizeName(s)
		if twice := domain.NormalizeName(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		if i := strings.IndexFunc(once, unicode.IsSpace); i >= 0 {
			t.Fatalf("NormalizeName(%q) = %q contains white space at byte %d", s, once, i)
		}
		if !utf8.ValidString(once) {
			t.Fatalf("NormalizeName(%q) = %q is not valid UTF-8", s, once)
		}
	})
}

// FuzzDepositorName: for any name, suffix and maxRunes ≥ 4 the depositor
// name fits and ends with the three-digit suffix.
func FuzzDepositorName(f *testing.F) {
	f.Add("김민수", 42, 10)
	f.Add(strings.Repeat("김민수박", 8), 7, 4)
	f.Add(" \t", 999, 20)
	f.Fuzz(func(t *testing.T, name string, suffix, maxRunes int) {
		if maxRunes < 4 || maxRunes > 1000 || suffix < 0 {
			t.Skip()
		}
		got := domain.DepositorName(name, suffix, maxRunes)
		if n := utf8.RuneCountInString(got); n > maxRunes {
			t.Fatalf("DepositorName(%q, %d, %d) = %q has %d runes", name, suffix, maxRunes, got, n)
		}
		tail := got[len(got)-3:]
		if tail[0] < '0' || tail[0] > '9' || tail[1] < '0' || tail[1] > '9' || tail[2] < '0' || tail[2] > '9' {
			t.Fatalf("DepositorName(%q, %d, %d) = %q does not end with 3 digits", name, suffix, maxRunes, got)
		}
	})
}

// FuzzDecode: decoding arbitrary stored payloads never panics, and whatever
// decodes re-encodes to an equal event.
func FuzzDecode(f *testing.F) {
	c := domain.Events()
	for _, e := range []domain.Event{submitted(), domain.OrderCancelled{OrderID: "o-1", Reason: "r", CancelledAt: t0}, billIssued(), billedPayment(), unbilledPayment()} {
		typ, v, data, err := c.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typ, v, []byte(data))
	}
	f.Add("order.submitted", 1, []byte(`{"amount":{"amount":"x"}}`))
	f.Add("order.cancelled", 2, []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, version int, data []byte) {
		e, err := c.Decode(typ, version, data)
		if err != nil {
			return
		}
		typ2, v2, data2, err := c.Encode(e)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", e, err)
		}
		e2, err := c.Decode(typ2, v2, data2)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", data2, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n%#v\n%#v", e, e2)
		}
		var m map[string]any
		if err := json.Unmarshal(data2, &m); err != nil {
			t.Fatalf("encoded payload is not an object: %v", err)
		}
	})
}

// FuzzParseBillID: parsing never panics, and whatever parses is the one ID
// BillID makes of its parts.
// Run with: go test -fuzz FuzzParseBillID ./domain/
func FuzzParseBillID(f *testing.F) {
	for _, s := range []string{bill(1), bill(123456789), "", "bill_", "bill__1", "bill_" + strings.Repeat("a", 24) + "_01", lnk} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		link, n, err := domain.ParseBillID(s)
		if err != nil {
			if link != "" || n != 0 {
				t.Fatalf("ParseBillID(%q) = %q, %d with error %v", s, link, n, err)
			}
			return
		}
		if n < 1 {
			t.Fatalf("ParseBillID(%q): n = %d", s, n)
		}
		if back := domain.BillID(link, n); back != s {
			t.Fatalf("ParseBillID(%q) = %q, %d, which BillID makes %q", s, link, n, back)
		}
		if err := domain.ValidateID("bill_id", s); err != nil {
			t.Fatalf("bill ID %q parses but is not a valid ID: %v", s, err)
		}
	})
}

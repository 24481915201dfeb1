package firmbanking

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/domain"
)

func TestTransferValidate(t *testing.T) {
	with := func(f func(*Transfer)) Transfer {
		tr := transfer("P-1")
		f(&tr)
		return tr
	}
	tests := []struct {
		name      string
		tr        Transfer
		wantField string // "" means valid
	}{
		{name: "valid", tr: transfer("P-1")},
		{name: "valid without memo", tr: with(func(t *Transfer) { t.Memo = "" })},
		{name: "64-character ID", tr: with(func(t *Transfer) { t.ID = strings.Repeat("a", 64) })},
		{name: "ID alphabet", tr: with(func(t *Transfer) { t.ID = "AZaz09_-" })},
		{name: "maximum amount", tr: with(func(t *Transfer) { t.Amount = domain.MaxAmount })},
		{name: "empty ID", tr: with(func(t *Transfer) { t.ID = "" }), wantField: "id"},
		{name: "65-character ID", tr: with(func(t *Transfer) { t.ID = strings.Repeat("a", 65) }), wantField: "id"},
		{name: "ID with a slash", tr: with(func(t *Transfer) { t.ID = "P/1" }), wantField: "id"},
		{name: "ID with a space", tr: with(func(t *Transfer) { t.ID = "P 1" }), wantField: "id"},
		{name: "ID with Hangul", tr: with(func(t *Transfer) { t.ID = "출금1" }), wantField: "id"},
		{name: "zero amount", tr: with(func(t *Transfer) { t.Amount = 0 }), wantField: "amount"},
		{name: "negative amount", tr: with(func(t *Transfer) { t.Amount = -1 }), wantField: "amount"},
		{name: "amount above maximum", tr: with(func(t *Transfer) { t.Amount = domain.MaxAmount + 1 }), wantField: "amount"},
		{name: "no bank", tr: with(func(t *Transfer) { t.To.Bank = "" }), wantField: "to.bank"},
		{name: "blank bank", tr: with(func(t *Transfer) { t.To.Bank = "  " }), wantField: "to.bank"},
		{name: "no number", tr: with(func(t *Transfer) { t.To.Number = "" }), wantField: "to.number"},
		{name: "number with letters", tr: with(func(t *Transfer) { t.To.Number = "12a-34" }), wantField: "to.number"},
		{name: "number of hyphens only", tr: with(func(t *Transfer) { t.To.Number = "---" }), wantField: "to.number"},
		{name: "number too long", tr: with(func(t *Transfer) { t.To.Number = strings.Repeat("1", 33) }), wantField: "to.number"},
		{name: "no holder", tr: with(func(t *Transfer) { t.To.Holder = "" }), wantField: "to.holder"},
		{name: "holder too long", tr: with(func(t *Transfer) { t.To.Holder = strings.Repeat("김", 65) }), wantField: "to.holder"},
		{name: "holder with a newline", tr: with(func(t *Transfer) { t.To.Holder = "김\n민수" }), wantField: "to.holder"},
		{name: "holder not UTF-8", tr: with(func(t *Transfer) { t.To.Holder = "\xff" }), wantField: "to.holder"},
		{name: "memo of 40 characters", tr: with(func(t *Transfer) { t.Memo = strings.Repeat("출", 40) })},
		{name: "memo too long", tr: with(func(t *Transfer) { t.Memo = strings.Repeat("출", 41) }), wantField: "memo"},
		{name: "blank memo", tr: with(func(t *Transfer) { t.Memo = " " }), wantField: "memo"},
		{name: "number with spaces", tr: with(func(t *Transfer) { t.To.Number = "1 2" }), wantField: "to.number"},
		{name: "bank with surrounding space", tr: with(func(t *Transfer) { t.To.Bank = "KB " }), wantField: "to.bank"},
		{name: "holder with a bidi override", tr: with(func(t *Transfer) { t.To.Holder = "김\u202e민수" }), wantField: "to.holder"},
		{name: "holder with a zero-width space", tr: with(func(t *Transfer) { t.To.Holder = "김\u200b민수" }), wantField: "to.holder"},
		{name: "memo with a newline", tr: with(func(t *Transfer) { t.Memo = "a\nb" }), wantField: "memo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.tr.Validate()
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var de *domain.Error
			if !errors.Is(err, ErrInvalidTransfer) || !errors.Is(err, domain.ErrInvalidInput) || !errors.As(err, &de) {
				t.Fatalf("Validate = %v, want ErrInvalidTransfer and a *domain.Error", err)
			}
			if de.Details["field"] != tc.wantField {
				t.Fatalf("Validate blames field %v, want %q (%v)", de.Details["field"], tc.wantField, err)
			}
		})
	}
}

func TestStatusFinal(t *testing.T) {
	tests := []struct {
		s            Status
		valid, final bool
	}{
		{StatusPending, true, false},
		{StatusSettled, true, true},
		{StatusFailed, true, true},
		{"", false, false},
		{"SETTLED", false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.s), func(t *testing.T) {
			if tc.s.Valid() != tc.valid || tc.s.Final() != tc.final {
				t.Fatalf("%q: Valid=%v Final=%v, want %v %v", tc.s, tc.s.Valid(), tc.s.Final(), tc.valid, tc.final)
			}
		})
	}
}

func TestPermanentErrorMatching(t *testing.T) {
	tests := []struct {
		status   int
		mismatch bool
	}{
		{400, false}, {401, false}, {403, false}, {422, true},
	}
	for _, tc := range tests {
		err := error(&PermanentError{Status: tc.status, Body: "x"})
		if !errors.Is(err, ErrPermanent) {
			t.Errorf("%d: does not match ErrPermanent", tc.status)
		}
		if errors.Is(err, ErrIdempotencyMismatch) != tc.mismatch {
			t.Errorf("%d: matches ErrIdempotencyMismatch = %v, want %v", tc.status, !tc.mismatch, tc.mismatch)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("%d: matches ErrUnavailable", tc.status)
		}
	}
}

// One rule for a payout's bank account: every account the API accepts for a
// withdrawal or a refund to the bank (domain.ValidateBankAccount of its
// canonical form) is a transfer this package validates and the provider's
// strict decoder takes, and every other is refused by both (issue 7: "1 2",
// "110 123 456789", a blank bank or a holder with control characters were
// accepted and then refused by firm banking for ever).
func TestTransferAcceptsWhatTheAPIAccepts(t *testing.T) {
	for _, a := range []domain.BankAccount{
		{Bank: "신한은행", Number: "110 123 456789", Holder: "이영희"},
		{Bank: "KB", Number: "1 2", Holder: "a"},
		{Bank: "KB", Number: "110-123-456789", Holder: "김민수"},
		{Bank: " KB ", Number: " 1 ", Holder: " a "},
		{Bank: "KB", Number: "---", Holder: "a"},
		{Bank: "KB", Number: "   ", Holder: "a"},
		{Bank: "   ", Number: "1", Holder: "a"},
		{Bank: "KB", Number: "1", Holder: "a\x01"},
		{Bank: "KB", Number: "1", Holder: "a\u202e"},
		{Bank: "KB", Number: "1\t2", Holder: "a"},
		{Bank: "KB", Number: "１２", Holder: "a"},
	} {
		checkAcceptedIsExecutable(t, a)
	}
}

func FuzzAcceptedIsExecutable(f *testing.F) {
	f.Add("신한은행", "110 123 456789", "이영희")
	f.Add("KB", "1 2", "a")
	f.Add("  ", "---", "a\x00")
	f.Fuzz(func(t *testing.T, bank, number, holder string) {
		checkAcceptedIsExecutable(t, domain.BankAccount{Bank: bank, Number: number, Holder: holder})
	})
}

func checkAcceptedIsExecutable(t *testing.T, written domain.BankAccount) {
	t.Helper()
	a := domain.CanonicalBankAccount(written)
	apiErr := domain.ValidateBankAccount("bank_account", a)
	tr := transfer("P-1")
	tr.To = a
	trErr := tr.Validate()
	if (apiErr == nil) != (trErr == nil) {
		t.Fatalf("%+q: the API says %v, firm banking says %v", written, apiErr, trErr)
	}
	if apiErr != nil {
		return
	}
	data, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := decodeTransfer(data); err != nil || back != tr {
		t.Fatalf("%+q: the provider decodes %s as %+v, %v", written, data, back, err)
	}
}

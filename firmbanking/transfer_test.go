package firmbanking

import (
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

package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// checkField runs a validator on each input and checks it accepts exactly
// the valid ones, blaming field for the others.
func checkField(t *testing.T, field string, validate func(string) error, valid, invalid []string) {
	t.Helper()
	for _, s := range valid {
		if err := validate(s); err != nil {
			t.Errorf("%q: %v, want valid", s, err)
		}
	}
	for _, s := range invalid {
		err := validate(s)
		if err == nil {
			t.Errorf("%q: valid, want refused", s)
			continue
		}
		de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
		if de.Details["field"] != field {
			t.Errorf("%q: blames %v, want %s", s, de.Details["field"], field)
		}
	}
}

func TestValidateIDRefusesSubjectSyntax(t *testing.T) {
	checkField(t, "order_id", func(s string) error { return domain.ValidateID("order_id", s) },
		[]string{"a", "o-1", "AZaz09_-", strings.Repeat("x", 64), "018f2c1e-7b1a-7c3e-9d2f-0a1b2c3d4e5f"},
		[]string{"", "*", ">", "a b", "a.b", "a.>", "a\x00", "a\nb", "주문", "ＡＢＣ", "a/b", "a:b", "a\u202eb", strings.Repeat("x", 65)})
}

func TestValidateAccountNumber(t *testing.T) {
	checkField(t, "account_number", func(s string) error { return domain.ValidateAccountNumber("account_number", s) },
		[]string{"123401-04-567890", "1234 0104 567890", "999", "GB29NWBK", strings.Repeat("1", 64)},
		[]string{"", "   ", "---", "- -", "123\x00456", "123\n456", "*", ">", "1:2", "1.2", "１２３", "12\t3", strings.Repeat("1", 65)})
}

func TestValidateLedgerAccount(t *testing.T) {
	checkField(t, "account", func(s string) error { return domain.ValidateLedgerAccount("account", s) },
		[]string{"liabilities:wallet:u-1", "assets:bank:110123456789", domain.AccountBankFees, domain.AccountSuspense, domain.AccountPayoutsPending, "x"},
		[]string{"", "assets:*", "assets:>", "assets: bank", "assets::bank", ":assets", "assets:", "a\x00", "자산", strings.Repeat("a", 201)})
}

func TestValidateText(t *testing.T) {
	checkField(t, "holder", func(s string) error { return domain.ValidateText("holder", s, 5) },
		[]string{"김민수", "Kim M", "(주)뱅크", "\u00a0x", "e\u0301", "☕"},
		[]string{"", " ", "\t", "\u3164", "\u115f", " \u3164\u00a0", "\u2800", "\u0301", "\ufe0f", "\u3164\u034f", " \ufe0f ", "a\u1cbb", "a\ue000", "김\n민수", "a\x00", "a\u200bb", "a\u202eb", "a\u2028b", "a\ufeff", "\xff", "김민수김민수", "a\ufffd"})
}

// Bank times lie between 2000 and a few minutes ahead of now.
func TestValidateBankTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	valid := []time.Time{
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		now.Add(-24 * time.Hour),
		now,
		now.Add(domain.MaxClockSkew),
		now.Add(time.Hour).In(time.FixedZone("KST", 9*3600)).Add(-time.Hour),
	}
	invalid := []time.Time{
		{},
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		now.Add(domain.MaxClockSkew + time.Nanosecond),
		now.AddDate(1, 0, 0),
	}
	for _, at := range valid {
		if err := domain.ValidateBankTime("deposited_at", at, now); err != nil {
			t.Errorf("%v: %v, want valid", at, err)
		}
	}
	for _, at := range invalid {
		err := domain.ValidateBankTime("deposited_at", at, now)
		if err == nil {
			t.Errorf("%v: valid, want refused", at)
			continue
		}
		if de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid); de.Details["field"] != "deposited_at" {
			t.Errorf("%v: blames %v", at, de.Details["field"])
		}
		// The zero time reads as no time: the message says both.
		if at.IsZero() && !strings.Contains(err.Error(), "not before 2000-01-01") {
			t.Errorf("%v: %v, want the earliest time named", at, err)
		}
	}
}

// TestAnASCIIFieldOfOtherCharactersIsRefusedForThem: the fields of ASCII
// characters only are refused for a character they may not hold before
// their length is counted, so a value of wide characters (12 full-width
// digits: 36 bytes) is not told it is too long when it is not.
func TestAnASCIIFieldOfOtherCharactersIsRefusedForThem(t *testing.T) {
	wide := strings.Repeat("１", 12)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"ValidateID", domain.ValidateID("f", strings.Repeat("가", 22))},
		{"ValidateLedgerAccount", domain.ValidateLedgerAccount("f", strings.Repeat("가", 67))},
		{"ValidateAccountNumber", domain.ValidateAccountNumber("f", strings.Repeat(wide, 2))},
		{"ValidateBankAccount", domain.ValidateBankAccount("f", domain.BankAccount{Bank: "KB", Number: wide, Holder: "홍길동"})},
	} {
		de := requireDomainError(t, c.err, domain.ErrInvalidInput, domain.KindInvalid)
		if msg := de.Error(); !strings.Contains(msg, "may contain only") && !strings.Contains(msg, "must be digits") {
			t.Errorf("%s: %q, want the characters it may hold", c.name, msg)
		}
	}
}

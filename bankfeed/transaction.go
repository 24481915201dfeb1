package bankfeed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bankbook/bankbook/domain"
)

// Limits on the fields of a Transaction.
const (
	// MaxTxnIDLength is the longest bank_txn_id accepted, in bytes.
	MaxTxnIDLength = 128
	// MaxAccountNumberLength is the longest account number accepted, in bytes.
	MaxAccountNumberLength = 64
	// MaxDepositorNameLength is the longest depositor name accepted, in runes.
	MaxDepositorNameLength = 64
)

// Transaction is one credit on a bank account as the bank reports it.
// BankTxnID is the bank's own identifier and the key under which a deposit is
// recorded exactly once.
type Transaction struct {
	BankTxnID     string    `json:"bank_txn_id"`
	AccountNumber string    `json:"account_number"`
	DepositorName string    `json:"depositor_name"`
	Amount        int64     `json:"amount"`
	DepositedAt   time.Time `json:"deposited_at"`
}

// Validate checks a transaction. It returns nil or the errors.Join of one
// *FieldError per bad field (each matches ErrInvalidTransaction):
//
//   - bank_txn_id: 1–128 bytes of printable ASCII without spaces (0x21–0x7E);
//   - account_number: not blank, at most 64 bytes of UTF-8 without control
//     characters;
//   - depositor_name: not blank, at most 64 runes of UTF-8 without control
//     characters, as deposit.record takes it (domain.ValidateName: a
//     letter or a digit, no U+FFFD, no bidirectional controls);
//   - amount: 0 < amount ≤ domain.MaxAmount (minor units);
//   - deposited_at: set, between the years 1 and 9999.
func (t Transaction) Validate() error {
	var errs []error
	for _, fe := range t.fieldErrors() {
		errs = append(errs, fe)
	}
	return errors.Join(errs...)
}

// fieldErrors lists what Validate reports, one entry per bad field.
func (t Transaction) fieldErrors() []*FieldError {
	var out []*FieldError
	bad := func(field, format string, args ...any) {
		out = append(out, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	switch {
	case t.BankTxnID == "":
		bad("bank_txn_id", "is required")
	case len(t.BankTxnID) > MaxTxnIDLength:
		bad("bank_txn_id", "must be at most %d bytes, got %d", MaxTxnIDLength, len(t.BankTxnID))
	default:
		for i := 0; i < len(t.BankTxnID); i++ {
			if c := t.BankTxnID[i]; c < 0x21 || c > 0x7e {
				bad("bank_txn_id", "must be printable ASCII without spaces, found byte %#02x at %d", c, i)
				break
			}
		}
	}
	switch {
	case strings.TrimSpace(t.AccountNumber) == "":
		bad("account_number", "is required")
	default:
		// The engine's rule, so that what a feed accepts can be recorded.
		if err := domain.ValidateAccountNumber("account_number", t.AccountNumber); err != nil {
			bad("account_number", "%s", domainReason(err))
		}
	}
	switch n := utf8.RuneCountInString(t.DepositorName); {
	case strings.TrimSpace(t.DepositorName) == "":
		bad("depositor_name", "is required")
	case n > MaxDepositorNameLength:
		bad("depositor_name", "must be at most %d characters, got %d", MaxDepositorNameLength, n)
	default:
		if reason := textProblem(t.DepositorName); reason != "" {
			bad("depositor_name", "%s", reason)
		} else if err := domain.ValidateName("depositor_name", t.DepositorName); err != nil {
			// The engine's rule (deposit.record), so that a statement it
			// would refuse a row of is refused whole, before any row is
			// recorded.
			bad("depositor_name", "%s", domainReason(err))
		}
	}
	switch {
	case t.Amount <= 0:
		bad("amount", "must be greater than 0, got %d", t.Amount)
	case t.Amount > domain.MaxAmount:
		bad("amount", "must not exceed %d, got %d", domain.MaxAmount, t.Amount)
	}
	if err := domain.ValidateBankTime("deposited_at", t.DepositedAt, time.Now()); err != nil {
		bad("deposited_at", "%s", domainReason(err))
	}
	return out
}

// domainReason is the message of a domain validation error, without its field.
func domainReason(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		if field, ok := de.Details["field"].(string); ok {
			return strings.TrimPrefix(de.Message, field+": ") // domain.Invalid starts with it
		}
		return de.Message
	}
	return err.Error()
}

// textProblem says why s is not printable UTF-8, or returns "".
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("must not contain control character %U", r)
		}
	}
	return ""
}

// Equal reports whether t and u carry the same data (times compared with
// time.Time.Equal, so the same instant in two time zones is equal).
func (t Transaction) Equal(u Transaction) bool {
	return t.BankTxnID == u.BankTxnID && t.AccountNumber == u.AccountNumber &&
		t.DepositorName == u.DepositorName && t.Amount == u.Amount && t.DepositedAt.Equal(u.DepositedAt)
}

// NormalizeAccountNumber is domain.NormalizeAccountNumber: the form in
// which account numbers are compared.
func NormalizeAccountNumber(s string) string { return domain.NormalizeAccountNumber(s) }

// ScanResult is one answer of an account-scan API.
type ScanResult struct {
	// Transactions are in no particular order and may repeat.
	Transactions []Transaction
	// CompleteUpTo: the bank's data is known complete up to this instant
	// (exclusive): every transfer deposited before it is in this or an
	// earlier result. A provider that refreshes every few minutes reports
	// the time of its last refresh. Zero means no guarantee.
	CompleteUpTo time.Time
}

// Source is a bank's account-scan API for one account, possibly with its
// virtual sub-accounts (or for several accounts: the Scanner keeps its
// account and sub-accounts and drops the others' transactions).
type Source interface {
	// Scan returns transactions deposited at or after since (it may return
	// older ones too, and repeats). Every transaction deposited in
	// [since, CompleteUpTo) is in the result. A Scan that returns an error
	// guarantees nothing; the caller scans again later.
	Scan(ctx context.Context, since time.Time) (ScanResult, error)
}

package firmbanking

import (
	"context"
	"fmt"

	"github.com/bankbook/bankbook/domain"
)

// Limits checked by Transfer.Validate.
const (
	// MaxIDLen is the longest transfer ID.
	MaxIDLen = domain.MaxIDLength
	// MaxNameLen is the longest bank name or holder name, in characters.
	MaxNameLen = domain.MaxBankTextLength
	// MaxNumberLen is the longest account number, hyphens included.
	MaxNumberLen = domain.MaxAccountDigitsLength
	// MaxMemoLen is the longest memo, in characters.
	MaxMemoLen = 40
)

// Transfer asks the provider to send money from the company account to a bank
// account.
type Transfer struct {
	// ID is our payout ID and the provider's idempotency key: 1-64 characters
	// of [A-Za-z0-9_-].
	ID string `json:"id"`
	// Amount is in minor units, 0 < Amount ≤ domain.MaxAmount.
	Amount int64 `json:"amount"`
	// To is the receiving account.
	To domain.BankAccount `json:"to"`
	// Memo is shown on the receiver's statement (optional, ≤ 40 characters).
	Memo string `json:"memo,omitempty"`
}

// Validate reports the first problem with t as an error matching both
// ErrInvalidTransfer and domain.ErrInvalidInput. The receiving account is
// checked with domain.ValidateBankAccount, the rule the API checks payout
// requests with, so a payout the engine accepted is a transfer this package
// sends: bank and holder 1–64 characters without control, format or
// separator characters and without surrounding white space, number 1–32
// digits and '-' with at least one digit.
func (t Transfer) Validate() error {
	if err := ValidateID(t.ID); err != nil {
		return err
	}
	switch {
	case t.Amount <= 0:
		return invalid("amount", "must be positive")
	case t.Amount > domain.MaxAmount:
		return invalid("amount", "must not exceed %d", domain.MaxAmount)
	}
	if err := domain.ValidateBankAccount("to", t.To); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTransfer, err)
	}
	if t.Memo == "" {
		return nil
	}
	if err := domain.ValidateText("memo", t.Memo, MaxMemoLen); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTransfer, err)
	}
	return nil
}

// ValidateID reports whether id is a valid transfer ID: domain.ValidateID,
// 1-64 characters of [A-Za-z0-9_-]. The error matches ErrInvalidTransfer.
func ValidateID(id string) error {
	if err := domain.ValidateID("id", id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTransfer, err)
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrInvalidTransfer, domain.Invalid(field, format, args...))
}

// Status is where a transfer is at the provider.
type Status string

// Transfer statuses.
const (
	// StatusPending: accepted, not final. It will become settled or failed.
	StatusPending Status = "pending"
	// StatusSettled: the money was sent. Final.
	StatusSettled Status = "settled"
	// StatusFailed: the money was definitively not sent (closed account,
	// wrong holder, ...). Final.
	StatusFailed Status = "failed"
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusSettled || s == StatusFailed
}

// Final reports whether s can no longer change.
func (s Status) Final() bool { return s == StatusSettled || s == StatusFailed }

// Result is the provider's view of one transfer.
type Result struct {
	// ID is the transfer's ID.
	ID string `json:"id"`
	// Status is pending, settled or failed.
	Status Status `json:"status"`
	// Fee is what the provider charged, in minor units: set for settled
	// transfers, 0 otherwise.
	Fee int64 `json:"fee"`
	// ProviderRef is the provider's own reference, for reconciliation.
	ProviderRef string `json:"provider_ref,omitempty"`
	// Reason says why a transfer failed.
	Reason string `json:"reason,omitempty"`
}

// check reports whether r is a plausible answer about transfer id.
func (r Result) check(id string) error {
	switch {
	case r.ID != id:
		return fmt.Errorf("result is for transfer %q, want %q", r.ID, id)
	case !r.Status.Valid():
		return fmt.Errorf("result has unknown status %q", r.Status)
	case r.Fee < 0 || r.Fee > domain.MaxAmount:
		return fmt.Errorf("result has fee %d out of range", r.Fee)
	}
	return nil
}

// Provider is a firm-banking API.
type Provider interface {
	// Send submits t. It is idempotent on t.ID: sending the same transfer
	// again returns its current result and never sends money twice. A
	// transport-level failure returns an error; the caller may retry with the
	// same ID. An error that matches ErrNotTaken or ErrRefused (NotTaken)
	// says the provider did not act on this call; any other leaves that
	// open.
	Send(ctx context.Context, t Transfer) (Result, error)
	// Status returns the current result of transfer id (ErrUnknownTransfer
	// if the provider never accepted it).
	Status(ctx context.Context, id string) (Result, error)
}

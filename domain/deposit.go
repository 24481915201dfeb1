package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// DepositID identifies a deposit: one credit on a bank account.
type DepositID string

// AggregateDeposit is the aggregate type name of deposits.
const AggregateDeposit = "deposit"

// NewDepositID derives a deposit's ID from the account it arrived on
// (normalised) and the bank's transaction ID, so a transaction that scans
// report again and again always names the same deposit.
func NewDepositID(accountNumber, bankTxnID string) DepositID {
	sum := sha256.Sum256([]byte(NormalizeAccountNumber(accountNumber) + "\x00" + bankTxnID))
	return DepositID("dep_" + hex.EncodeToString(sum[:16]))
}

// OrphanReason says why a deposit matched nothing.
type OrphanReason string

// Orphan reasons.
const (
	ReasonNoSuchName     OrphanReason = "no_such_name"
	ReasonAmountMismatch OrphanReason = "amount_mismatch"
	ReasonAmbiguous      OrphanReason = "ambiguous"
	ReasonOrderGone      OrphanReason = "order_gone"
	ReasonUnknownAccount OrphanReason = "unknown_account" // not the collection account
)

// DepositRecorded records a bank transaction, once, with what it did.
type DepositRecorded struct {
	DepositID     DepositID      `json:"deposit_id"`
	BankTxnID     string         `json:"bank_txn_id"`
	AccountNumber string         `json:"account_number"`
	DepositorName string         `json:"depositor_name"`
	Amount        int64          `json:"amount"`
	DepositedAt   time.Time      `json:"deposited_at"`
	Outcome       DepositOutcome `json:"outcome"`
	OrderID       OrderID        `json:"order_id,omitempty"`
	UserID        UserID         `json:"user_id,omitempty"`
	Reason        OrphanReason   `json:"reason,omitempty"`
	RecordedAt    time.Time      `json:"recorded_at"`
}

// EventType implements Event.
func (DepositRecorded) EventType() string { return "deposit.recorded" }

// Deposit is the state of one deposit.
type Deposit struct {
	ID            DepositID
	BankTxnID     string
	AccountNumber string
	DepositorName string
	Amount        int64
	DepositedAt   time.Time
	Outcome       DepositOutcome
	OrderID       OrderID
	UserID        UserID
	Reason        OrphanReason
	RecordedAt    time.Time
	Version       int
}

// Exists reports whether the deposit has been recorded.
func (d Deposit) Exists() bool { return d.Version > 0 }

// Apply returns the state after e.
func (d Deposit) Apply(e Event) Deposit {
	if e, ok := e.(DepositRecorded); ok {
		d = Deposit{
			ID: e.DepositID, BankTxnID: e.BankTxnID, AccountNumber: e.AccountNumber, DepositorName: e.DepositorName,
			Amount: e.Amount, DepositedAt: e.DepositedAt, Outcome: e.Outcome, OrderID: e.OrderID, UserID: e.UserID,
			Reason: e.Reason, RecordedAt: e.RecordedAt, Version: d.Version,
		}
	}
	d.Version++
	return d
}

// DecideRecord records a deposit the first time its bank transaction is
// seen; a deposit already recorded needs nothing (a duplicate scan).
func DecideRecord(d Deposit, r DepositRecorded) ([]Event, error) {
	if d.Exists() {
		return nil, nil
	}
	return []Event{r}, nil
}

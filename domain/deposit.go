package domain

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// MaxAccountNumberLength is the longest account number a deposit may name
// (as the bank reports it, separators included).
const MaxAccountNumberLength = 64

// ValidateAccountNumber checks the number of an account money arrives on,
// as a bank feed or an operator writes it, supplied in field: 1–64
// characters of letters A-Z a-z and digits, grouped with spaces or '-', with
// at least one letter or digit. Accounts are compared normalised
// (NormalizeAccountNumber), and the normalised number names the account's
// ledger account (AccountBank), so nothing else may appear in it.
func ValidateAccountNumber(field, number string) error {
	alnum := 0
	for i := 0; i < len(number); i++ {
		switch c := number[i]; {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			alnum++
		case c == ' ' || c == '-':
		default:
			return Invalid(field, "may contain only letters, digits, spaces and '-'")
		}
	}
	if alnum == 0 {
		return Invalid(field, "is required: letters or digits, grouped with spaces or '-'")
	}
	if len(number) > MaxAccountNumberLength { // bytes, and so characters: all are ASCII
		return Invalid(field, "must be at most %d characters", MaxAccountNumberLength)
	}
	return nil
}

// EarliestBankYear starts the window of plausible bank times (when money was
// deposited, up to when a feed is complete): 2000-01-01T00:00:00Z. A time
// outside the window is a typo or a broken feed, never a transaction, and a
// deposit dated in the far past or future would sort before or after
// everything else for ever.
const EarliestBankYear = 2000

// MaxClockSkew is how far in the future of the engine's clock a bank time
// may be: clocks of banks and engines differ by a little.
const MaxClockSkew = 5 * time.Minute

// ValidateBankTime checks a bank time supplied in field against the window
// [EarliestBankYear-01-01T00:00:00Z, now + MaxClockSkew].
func ValidateBankTime(field string, t, now time.Time) error {
	earliest := time.Date(EarliestBankYear, 1, 1, 0, 0, 0, 0, time.UTC)
	switch {
	case t.IsZero(): // absent, or 0001-01-01T00:00:00Z, which reads the same
		return Invalid(field, "is required, a time not before %s", earliest.Format(time.RFC3339))
	case t.Before(earliest):
		return Invalid(field, "must not be before %s", earliest.Format(time.RFC3339))
	case t.After(now.Add(MaxClockSkew)):
		return Invalid(field, "must not be more than %s in the future (the engine's clock says %s)", MaxClockSkew, FormatTime(now))
	}
	return nil
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
	// LinkID and BillID: a store payment's link, and the bill it went to
	// (none for an unbilled payment).
	LinkID string `json:"link_id,omitempty"`
	BillID string `json:"bill_id,omitempty"`
	// LandedOn is the company account the money landed in when
	// AccountNumber is a dedicated (virtual) account of it that no store
	// holds (an orphan); empty: AccountNumber itself.
	LandedOn   string    `json:"landed_on,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

// EventType implements Event.
func (DepositRecorded) EventType() string { return "deposit.recorded" }

// Landed is the company account the deposit's money is in.
func (e DepositRecorded) Landed() string { return cmp.Or(e.LandedOn, e.AccountNumber) }

// Orphan resolutions (bankbook.cmd.deposit.resolve).
const (
	ResolveAssignOrder    = "assign_order"
	ResolveRefundToWallet = "refund_to_wallet"
	ResolveRefundToBank   = "refund_to_bank"
)

// DepositResolved records an operator's resolution of an orphan deposit.
// For refund_to_bank the money leaves suspense for payouts pending (PayoutID).
type DepositResolved struct {
	DepositID  DepositID    `json:"deposit_id"`
	Action     string       `json:"action"`
	Amount     int64        `json:"amount"`
	OrderID    OrderID      `json:"order_id,omitempty"`
	UserID     UserID       `json:"user_id,omitempty"`
	PayoutID   PayoutID     `json:"payout_id,omitempty"`
	To         *BankAccount `json:"to,omitempty"` // refund_to_bank: the sender's account
	ResolvedAt time.Time    `json:"resolved_at"`
}

// EventType implements Event.
func (DepositResolved) EventType() string { return "deposit.resolved" }

// DepositReopened records that a refund to the bank failed: the money is
// back in suspense and the deposit an orphan again.
type DepositReopened struct {
	DepositID  DepositID `json:"deposit_id"`
	Amount     int64     `json:"amount"`
	PayoutID   PayoutID  `json:"payout_id"`
	Reason     string    `json:"reason"`
	ReopenedAt time.Time `json:"reopened_at"`
}

// EventType implements Event.
func (DepositReopened) EventType() string { return "deposit.reopened" }

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
	LandedOn      string // DepositRecorded.LandedOn
	BillID        string // DepositRecorded.BillID: the bill a store payment went to
	RecordedAt    time.Time
	// RecordedOrderID and RecordedUserID are what the recording said
	// (DepositRecorded), which a resolution does not change: a duplicate
	// recording repeats them.
	RecordedOrderID OrderID
	RecordedUserID  UserID
	// Resolution is the action that resolved an orphan ("" while unresolved).
	Resolution string
	PayoutID   PayoutID
	To         *BankAccount // refund_to_bank: where it was sent
	Version    int
}

// Unresolved reports whether the deposit is an orphan awaiting an operator.
func (d Deposit) Unresolved() bool { return d.Outcome == OutcomeOrphaned && d.Resolution == "" }

// Landed is the company account the deposit's money is in, which a refund
// to the bank pays from.
func (d Deposit) Landed() string { return cmp.Or(d.LandedOn, d.AccountNumber) }

// Exists reports whether the deposit has been recorded.
func (d Deposit) Exists() bool { return d.Version > 0 }

// Apply returns the state after e.
func (d Deposit) Apply(e Event) Deposit {
	switch e := e.(type) {
	case DepositResolved:
		d.Resolution, d.PayoutID, d.To = e.Action, e.PayoutID, e.To
		if e.OrderID != "" {
			d.OrderID = e.OrderID
		}
		if e.UserID != "" {
			d.UserID = e.UserID
		}
	case DepositReopened:
		d.Resolution, d.PayoutID, d.To = "", "", nil
	case DepositRecorded:
		d = Deposit{
			ID: e.DepositID, BankTxnID: e.BankTxnID, AccountNumber: e.AccountNumber, DepositorName: e.DepositorName,
			Amount: e.Amount, DepositedAt: e.DepositedAt, Outcome: e.Outcome, OrderID: e.OrderID, UserID: e.UserID,
			Reason: e.Reason, LandedOn: e.LandedOn, BillID: e.BillID, RecordedAt: e.RecordedAt, Version: d.Version,
			RecordedOrderID: e.OrderID, RecordedUserID: e.UserID,
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
	switch r.Outcome {
	case OutcomeMatched, OutcomeRefundedToWallet, OutcomeOrphaned, OutcomeStorePayment:
	default:
		// A bug upstream, never the client's: a deposit is recorded with
		// what happened to its money, or not at all.
		return nil, fmt.Errorf("deposit %s: outcome %q is not one a deposit is recorded with", r.DepositID, r.Outcome)
	}
	return []Event{r}, nil
}

// DecideResolve records an operator's resolution of an unresolved orphan.
// Resolving again the same way needs nothing.
func DecideResolve(d Deposit, r DepositResolved) ([]Event, error) {
	if !d.Exists() {
		return nil, ErrDepositNotFound.With("", map[string]any{"deposit_id": string(r.DepositID)})
	}
	if d.Resolution != "" && d.Resolution == r.Action && d.sameTarget(r) {
		return nil, nil // the same resolution again
	}
	if !d.Unresolved() {
		return nil, ErrNotOrphan.With("", map[string]any{"deposit_id": string(d.ID), "outcome": string(d.Outcome), "resolution": d.Resolution})
	}
	r.Amount = d.Amount
	return []Event{r}, nil
}

// sameTarget reports whether r names what the deposit was resolved to. A
// bank account is its bank and number (the number however grouped) and
// its holder: the same number at another bank is another account, and
// another holder is a transfer the provider checks against someone else.
func (d Deposit) sameTarget(r DepositResolved) bool {
	switch r.Action {
	case ResolveAssignOrder:
		return d.OrderID == r.OrderID
	case ResolveRefundToWallet:
		return d.UserID == r.UserID
	}
	if d.To == nil || r.To == nil {
		return false
	}
	was, now := CanonicalBankAccount(*d.To), CanonicalBankAccount(*r.To)
	return was.Bank == now.Bank && was.Holder == now.Holder && NormalizeAccountNumber(was.Number) == NormalizeAccountNumber(now.Number)
}

// DecideReopen puts a deposit whose refund to the bank failed back in the
// orphan queue, once.
func DecideReopen(d Deposit, r DepositReopened) ([]Event, error) {
	if d.Resolution != ResolveRefundToBank || d.PayoutID != r.PayoutID {
		return nil, nil
	}
	return []Event{r}, nil
}

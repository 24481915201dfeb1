package domain

import "time"

// AggregatePayout is the aggregate type name of payouts: money sent out of
// the company's account through the firm-banking provider.
const AggregatePayout = "payout"

// PayoutID identifies a payout; it is also the provider's idempotency key.
type PayoutID string

// AccountPayoutsPending is the clearing account of payouts requested but not
// yet settled; it drains when the provider settles or fails them.
const AccountPayoutsPending = "liabilities:payouts:pending"

// Payout sources: where the money comes from, and goes back to if the
// transfer fails.
const (
	PayoutFromWallet  = "wallet"  // a user's withdrawal
	PayoutFromDeposit = "deposit" // an orphan deposit refunded to the sender's bank account
)

// PayoutRequested records a payout to be sent. The money has already left
// its source (wallet.debited or deposit.resolved) for payouts pending.
type PayoutRequested struct {
	PayoutID    PayoutID    `json:"payout_id"`
	Amount      int64       `json:"amount"`
	To          BankAccount `json:"to"`
	PayFrom     string      `json:"pay_from"`     // the company account the money leaves
	Source      string      `json:"source"`       // PayoutFromWallet or PayoutFromDeposit
	SourceID    string      `json:"source_id"`    // the user or the deposit
	FromAccount string      `json:"from_account"` // ledger account the money came from
	RequestedAt time.Time   `json:"requested_at"`
}

// EventType implements Event.
func (PayoutRequested) EventType() string { return "payout.requested" }

// PayoutSettled records that the provider sent the money, and its fee.
type PayoutSettled struct {
	PayoutID    PayoutID  `json:"payout_id"`
	Amount      int64     `json:"amount"`
	Fee         int64     `json:"fee"`
	BankAccount string    `json:"bank_account"` // the company account it was paid from
	ProviderRef string    `json:"provider_ref,omitempty"`
	SettledAt   time.Time `json:"settled_at"`
}

// EventType implements Event.
func (PayoutSettled) EventType() string { return "payout.settled" }

// PayoutFailed records that the provider definitively did not send the
// money; its source takes it back.
type PayoutFailed struct {
	PayoutID PayoutID  `json:"payout_id"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
}

// EventType implements Event.
func (PayoutFailed) EventType() string { return "payout.failed" }

// PayoutStatus is where a payout is.
type PayoutStatus string

// Payout statuses.
const (
	PayoutRequestedStatus PayoutStatus = "requested"
	PayoutSettledStatus   PayoutStatus = "settled"
	PayoutFailedStatus    PayoutStatus = "failed"
)

// Payout is the state of one payout.
type Payout struct {
	ID          PayoutID
	Amount      int64
	To          BankAccount
	PayFrom     string
	Source      string
	SourceID    string
	FromAccount string
	Status      PayoutStatus
	Fee         int64
	Reason      string
	Version     int
}

// Apply returns the state after e.
func (p Payout) Apply(e Event) Payout {
	switch e := e.(type) {
	case PayoutRequested:
		p = Payout{ID: e.PayoutID, Amount: e.Amount, To: e.To, PayFrom: e.PayFrom, Source: e.Source, SourceID: e.SourceID, FromAccount: e.FromAccount,
			Status: PayoutRequestedStatus, Version: p.Version}
	case PayoutSettled:
		p.Status, p.Fee = PayoutSettledStatus, e.Fee
	case PayoutFailed:
		p.Status, p.Reason = PayoutFailedStatus, e.Reason
	}
	p.Version++
	return p
}

// DecideRequestPayout records a payout once.
func DecideRequestPayout(p Payout, r PayoutRequested) ([]Event, error) {
	if p.Version > 0 {
		return nil, nil
	}
	return []Event{r}, nil
}

// DecidePayoutResult records the provider's final answer once: a payout
// that is already settled or failed needs nothing.
func DecidePayoutResult(p Payout, result Event) ([]Event, error) {
	if p.Version == 0 {
		return nil, ErrPayoutNotFound
	}
	if p.Status != PayoutRequestedStatus {
		return nil, nil
	}
	return []Event{result}, nil
}

// ValidateBankAccount checks a bank account a payout is sent to.
func ValidateBankAccount(field string, a BankAccount) error {
	switch {
	case a.Bank == "" || len([]rune(a.Bank)) > 64:
		return Invalid(field+".bank", "is required (at most 64 characters)")
	case a.Number == "" || len(a.Number) > 32:
		return Invalid(field+".number", "is required (at most 32 characters)")
	case a.Holder == "" || len([]rune(a.Holder)) > 64:
		return Invalid(field+".holder", "is required (at most 64 characters)")
	}
	digits := NormalizeAccountNumber(a.Number)
	if digits == "" {
		return Invalid(field+".number", "must contain digits")
	}
	for _, r := range digits {
		if !(r >= '0' && r <= '9') {
			return Invalid(field+".number", "must be digits, spaces and '-'")
		}
	}
	return nil
}

package domain

import (
	"strings"
	"time"
	"unicode/utf8"
)

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
	// Source and SourceID repeat the payout's (wallet and user, say), so
	// that the message telling the user needs no other event. Empty on
	// events written before they were added.
	Source   string `json:"source,omitempty"`
	SourceID string `json:"source_id,omitempty"`
}

// EventType implements Event.
func (PayoutSettled) EventType() string { return "payout.settled" }

// Settled is the payout.settled of p: its amount paid from its account,
// with the provider's fee and reference, at at.
func (p Payout) Settled(fee int64, providerRef string, at time.Time) PayoutSettled {
	return PayoutSettled{PayoutID: p.ID, Amount: p.Amount, Fee: fee, BankAccount: p.PayFrom, ProviderRef: providerRef, SettledAt: at,
		Source: p.Source, SourceID: p.SourceID}
}

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

// ResolvePayout is an operator's record of a payout's final result, as the
// provider reports it, for a payout the payouts part could not finish (its
// work dead-lettered): Outcome is PayoutSettledStatus (with the provider's
// Fee and ProviderRef) or PayoutFailedStatus.
type ResolvePayout struct {
	Outcome     PayoutStatus
	Fee         int64
	ProviderRef string
	Reason      string
	// Forced says the operator skipped the engine's checks.
	Forced bool
	Now    time.Time
}

// DecideResolvePayout records an operator's result for a payout still
// requested. A payout that already has that result needs nothing (a repeat);
// one with the other result is ErrPayoutFinal.
func DecideResolvePayout(p Payout, c ResolvePayout) ([]Event, error) {
	switch {
	case p.Version == 0:
		return nil, ErrPayoutNotFound
	case p.Status == c.Outcome:
		return nil, nil
	case p.Status != PayoutRequestedStatus:
		return nil, ErrPayoutFinal.With("", map[string]any{"status": string(p.Status)})
	case c.Outcome == PayoutSettledStatus:
		return []Event{p.Settled(c.Fee, c.ProviderRef, c.Now)}, nil
	case c.Outcome == PayoutFailedStatus:
		who := "operator: "
		if c.Forced {
			who = "operator (forced): "
		}
		return []Event{PayoutFailed{PayoutID: p.ID, Reason: who + c.Reason, FailedAt: c.Now}}, nil
	}
	return nil, Invalid("outcome", "must be settled or failed")
}

// Limits of a bank account a payout is sent to: what firm banking accepts.
const (
	// MaxBankTextLength is the longest bank or holder name, in characters.
	MaxBankTextLength = 64
	// MaxAccountDigitsLength is the longest payout account number in
	// canonical form, hyphens included.
	MaxAccountDigitsLength = 32
)

// CanonicalBankAccount returns a in the form bankbook records and sends:
// spaces removed from the number (people group digits with spaces or '-';
// firm banking takes digits and '-', so "110 123 456789" becomes
// "110123456789" and "110-123-456789" stays as it is), and bank and holder
// without leading or trailing white space. It changes nothing else: what is
// still not canonical fails ValidateBankAccount. CanonicalBankAccount of a
// canonical account is the account itself.
func CanonicalBankAccount(a BankAccount) BankAccount {
	return BankAccount{
		Bank:   strings.TrimSpace(a.Bank),
		Number: strings.ReplaceAll(a.Number, " ", ""),
		Holder: strings.TrimSpace(a.Holder),
	}
}

// ValidateBankAccount checks a bank account a payout is sent to, in
// canonical form (CanonicalBankAccount). It is the one rule for that shape:
// the API checks requests with it and the firm-banking adapter checks
// transfers with it, so every account the API accepts is one firm banking
// accepts. Bank and holder: validateBankText (ValidateText with at most 64
// characters, nothing invisible). Number: 1–32 characters of digits and '-',
// with at least one digit, each '-' between two digits.
func ValidateBankAccount(field string, a BankAccount) error {
	if err := validateBankText(field+".bank", a.Bank); err != nil {
		return err
	}
	if err := validateAccountDigits(field+".number", a.Number); err != nil {
		return err
	}
	return validateBankText(field+".holder", a.Holder)
}

// validateBankText checks a bank's name or an account holder: ValidateText,
// no surrounding white space, and nothing that shows nothing (a variation
// selector or a Hangul filler beside a name), which the bank would refuse
// or print as a name other than the one shown.
func validateBankText(field, s string) error {
	if err := ValidateText(field, s, MaxBankTextLength); err != nil {
		return err
	}
	if s != strings.TrimSpace(s) {
		return Invalid(field, "must not start or end with white space")
	}
	if i := strings.IndexFunc(s, invisible); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return Invalid(field, "must not contain characters that show nothing (found %U)", r)
	}
	return nil
}

// validateAccountDigits checks a payout account number in canonical form.
func validateAccountDigits(field, n string) error {
	if n == "" {
		return Invalid(field, "is required")
	}
	digits := 0
	for i := 0; i < len(n); i++ {
		switch c := n[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '-':
			// Only between groups of digits: "110-123-456789".
			if i == 0 || i == len(n)-1 || n[i-1] == '-' {
				return Invalid(field, "must be groups of digits joined by single '-' (110-123-456789)")
			}
		default:
			return Invalid(field, "must be digits, optionally grouped with '-'")
		}
	}
	if digits == 0 {
		return Invalid(field, "must contain digits")
	}
	if len(n) > MaxAccountDigitsLength { // bytes, and so characters: all are ASCII
		return Invalid(field, "must be at most %d characters", MaxAccountDigitsLength)
	}
	return nil
}

package domain

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// AggregateWallet is the aggregate type name of wallets (one per user).
const AggregateWallet = "wallet"

// Wallet credit kinds.
const (
	CreditDepositRefund  = "deposit_refund"  // a deposit for a cancelled or reserved order, or a second payment
	CreditOrderRefund    = "order_refund"    // the paid amount of an order cancelled after payment
	CreditOrphanRefund   = "orphan_refund"   // an orphan deposit an operator gave to the user
	CreditPayoutReversal = "payout_reversal" // a withdrawal the provider failed to send (ref: ReversalRef)
	// CreditPaymentReversal returns a payment from the wallet that its
	// order did not take (ref: PaymentReversalRef).
	CreditPaymentReversal = "payment_reversal"
)

// AccountWalletPayments is the clearing account of wallet money on its way
// to an order (wallet.spent, then order.paid, or the payment_reversal credit
// that returns it).
const AccountWalletPayments = "liabilities:wallet-payments:pending"

// PaymentRef is the ref under which a wallet pays order id: a wallet pays
// an order once.
func PaymentRef(id OrderID) string { return "payment:" + string(id) }

// PaymentReversalRef is the ref of the credit that returns a wallet's
// payment of order id, which the order did not take.
func PaymentReversalRef(id OrderID) string { return "payment-reversal:" + string(id) }

// WalletSpent records money leaving a wallet to pay one of its user's
// orders. The money waits in AccountWalletPayments until the order takes it
// (order.paid from that account) or, if the order no longer awaits its
// payment, it returns (wallet.credited, payment_reversal).
type WalletSpent struct {
	UserID  UserID    `json:"user_id"`
	Amount  int64     `json:"amount"`
	OrderID OrderID   `json:"order_id"`
	SpentAt time.Time `json:"spent_at"`
}

// EventType implements Event.
func (WalletSpent) EventType() string { return "wallet.spent" }

// WalletDebited records money leaving a wallet for a payout (a withdrawal).
type WalletDebited struct {
	UserID   UserID      `json:"user_id"`
	Amount   int64       `json:"amount"`
	PayoutID PayoutID    `json:"payout_id"`
	To       BankAccount `json:"to"`
	DebitAt  time.Time   `json:"debited_at"`
}

// EventType implements Event.
func (WalletDebited) EventType() string { return "wallet.debited" }

// WalletCredited records money credited to a user's wallet. Ref names what
// it is for (a deposit or an order); a wallet is credited once per Ref.
type WalletCredited struct {
	UserID UserID `json:"user_id"`
	Amount int64  `json:"amount"`
	Kind   string `json:"kind"`
	Ref    string `json:"ref"`
	// OrderID is the order a deposit_refund or order_refund is for, for
	// the message to the user. Absent for other kinds, and on refunds
	// written before notifications.
	OrderID OrderID `json:"order_id,omitempty"`
	// FromAccount is the ledger account the money comes from.
	FromAccount string    `json:"from_account"`
	CreditedAt  time.Time `json:"credited_at"`
}

// EventType implements Event.
func (WalletCredited) EventType() string { return "wallet.credited" }

// Wallet is the state of one user's wallet.
type Wallet struct {
	UserID  UserID
	Balance int64
	refs    map[string]bool // credits applied, by Ref
	Version int
}

// Apply returns the state after e. The refs map is copied, never shared
// with the previous state.
func (w Wallet) Apply(e Event) Wallet {
	switch e := e.(type) {
	case WalletCredited:
		w = w.moved(e.UserID, e.Amount, e.Ref)
	case WalletDebited:
		w = w.moved(e.UserID, -e.Amount, WithdrawalRef(e.PayoutID))
	case WalletSpent:
		w = w.moved(e.UserID, -e.Amount, PaymentRef(e.OrderID))
	}
	w.Version++
	return w
}

// moved returns w after a movement of amount (negative: a debit) under
// ref, with a copy of the refs map, never the one w shares with the
// previous state.
func (w Wallet) moved(user UserID, amount int64, ref string) Wallet {
	w.UserID = user
	w.Balance += amount
	w.refs = maps.Clone(w.refs)
	if w.refs == nil {
		w.refs = map[string]bool{}
	}
	w.refs[ref] = true
	return w
}

// walletJSON is the JSON form of a Wallet (aggregate snapshots store it):
// the movements it has applied, by ref, as a sorted list.
type walletJSON struct {
	UserID  UserID   `json:"user_id"`
	Balance int64    `json:"balance"`
	Refs    []string `json:"refs"`
	Version int      `json:"version"`
}

// MarshalJSON encodes the whole state, the refs of the movements applied
// included, so that UnmarshalJSON restores an equal Wallet.
func (w Wallet) MarshalJSON() ([]byte, error) {
	var refs []string
	if w.refs != nil {
		refs = slices.Sorted(maps.Keys(w.refs))
	}
	return json.Marshal(walletJSON{UserID: w.UserID, Balance: w.Balance, Refs: refs, Version: w.Version})
}

// UnmarshalJSON restores a Wallet that MarshalJSON encoded.
func (w *Wallet) UnmarshalJSON(b []byte) error {
	var v walletJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*w = Wallet{UserID: v.UserID, Balance: v.Balance, Version: v.Version}
	if v.Refs != nil {
		w.refs = make(map[string]bool, len(v.Refs))
		for _, r := range v.Refs {
			w.refs[r] = true
		}
	}
	return nil
}

// Credited reports whether the wallet has a credit for ref.
func (w Wallet) Credited(ref string) bool { return w.refs[ref] }

// CreditWallet asks to credit a wallet.
type CreditWallet struct {
	UserID UserID
	Amount int64
	Kind   string
	Ref    string
	// OrderID is the order a refund is for (optional).
	OrderID     OrderID
	FromAccount string
	Now         time.Time
}

// DecideCredit credits the wallet unless it already has a credit for c.Ref.
func DecideCredit(w Wallet, c CreditWallet) ([]Event, error) {
	if c.Amount <= 0 || c.Amount > MaxAmount {
		return nil, Invalid("amount", "must be between 1 and %d", MaxAmount)
	}
	if w.Credited(c.Ref) {
		return nil, nil
	}
	return []Event{WalletCredited{UserID: c.UserID, Amount: c.Amount, Kind: c.Kind, Ref: c.Ref, OrderID: c.OrderID, FromAccount: c.FromAccount, CreditedAt: c.Now}}, nil
}

// Withdraw asks to move money out of a wallet to a bank account.
type Withdraw struct {
	UserID   UserID
	Amount   int64
	PayoutID PayoutID
	To       BankAccount
	Now      time.Time
	// Min is the smallest amount a withdrawal may move (the engine's
	// --min-withdrawal); 0: any. Each payout costs a firm-banking fee.
	Min int64
}

// DecideWithdraw debits the wallet for a payout. A wallet never goes
// negative: a withdrawal above the balance is refused, and so is one below
// c.Min. The same payout is debited once, and a repeat of one debited
// already is answered as done even if c.Min has risen since.
func DecideWithdraw(w Wallet, c Withdraw) ([]Event, error) {
	if c.Min > 0 && c.Amount < c.Min && !w.refs[WithdrawalRef(c.PayoutID)] {
		err := Invalid("amount", "must be at least %d, the smallest withdrawal (each costs a firm-banking fee)", c.Min)
		err.Details["min"] = c.Min
		return nil, err
	}
	return decideDebit(w, c.Amount, WithdrawalRef(c.PayoutID), WalletDebited{UserID: c.UserID, Amount: c.Amount, PayoutID: c.PayoutID, To: c.To, DebitAt: c.Now})
}

// WithdrawalRef is the ref under which a wallet is debited for payout id:
// a payout is debited once.
func WithdrawalRef(id PayoutID) string { return "payout:" + string(id) }

// decideDebit is the rule of every debit of a wallet: an amount within
// bounds, once per ref (a debit made already needs nothing), and never
// above the balance, so that a wallet never goes negative.
func decideDebit(w Wallet, amount int64, ref string, debit Event) ([]Event, error) {
	if amount <= 0 || amount > MaxAmount {
		return nil, Invalid("amount", "must be between 1 and %d", MaxAmount)
	}
	if w.refs[ref] {
		return nil, nil
	}
	if amount > w.Balance {
		return nil, ErrInsufficientFunds.With("", map[string]any{"balance": w.Balance, "amount": amount})
	}
	return []Event{debit}, nil
}

// Spend asks to pay an order of the wallet's user from the wallet.
type Spend struct {
	UserID  UserID
	OrderID OrderID
	Amount  int64
	Now     time.Time
}

// DecideSpend debits the wallet to pay order c.OrderID, once per order. A
// wallet never goes negative: a payment above the balance is refused
// (insufficient_funds). A payment of the order that was returned (the order
// did not take it) is not made again: the order no longer awaits it.
func DecideSpend(w Wallet, c Spend) ([]Event, error) {
	if w.refs[PaymentReversalRef(c.OrderID)] {
		return nil, ErrWrongState.With("the order did not take the wallet's payment, which was returned to the wallet", map[string]any{"order_id": string(c.OrderID)})
	}
	return decideDebit(w, c.Amount, PaymentRef(c.OrderID), WalletSpent{UserID: c.UserID, Amount: c.Amount, OrderID: c.OrderID, SpentAt: c.Now})
}

// ReversalRef is the ref of the credit that returns failed payout id's money
// to its wallet: a wallet takes it once.
func ReversalRef(id PayoutID) string { return reversalPrefix + string(id) }

// PayoutOfReversal is the payout whose money a ReversalRef credit returns.
func PayoutOfReversal(ref string) PayoutID { return PayoutID(strings.TrimPrefix(ref, reversalPrefix)) }

const reversalPrefix = "reversal:"

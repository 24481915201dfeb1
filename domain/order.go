package domain

import (
	"slices"
	"strings"
	"time"
	"unicode"
)

// OrderStatus is where an order is in its life.
type OrderStatus string

// Order statuses (API.md).
const (
	StatusAwaitingDeposit OrderStatus = "awaiting_deposit"
	StatusPaid            OrderStatus = "paid"
	StatusCancelReserved  OrderStatus = "cancel_reserved"
	StatusCancelled       OrderStatus = "cancelled"
	StatusExpired         OrderStatus = "expired"
)

// Open reports whether an order in status s still holds its depositor name:
// a deposit under that name may still arrive for it.
func (s OrderStatus) Open() bool {
	return s == StatusAwaitingDeposit || s == StatusCancelReserved
}

// AggregateOrder is the aggregate type name of orders.
const AggregateOrder = "order"

// BankAccount is an account at a bank.
type BankAccount struct {
	Bank   string `json:"bank"`
	Number string `json:"number"`
	Holder string `json:"holder"`
}

// OrderSubmitted records a new smart bank-transfer order.
type OrderSubmitted struct {
	OrderID        OrderID     `json:"order_id"`
	BuyerID        UserID      `json:"buyer_id"`
	BuyerName      string      `json:"buyer_name"`
	Amount         Money       `json:"amount"`
	DepositorName  string      `json:"depositor_name"`
	CollectAccount BankAccount `json:"collect_account"`
	CancelWindowS  int64       `json:"cancel_window_s"`
	// PaymentDeadlineS is how long after submission the order waits for
	// its deposit before it expires. Absent (0) on orders submitted before
	// orders expired: those expire under the configured deadline.
	PaymentDeadlineS int64     `json:"payment_deadline_s,omitempty"`
	SubmittedAt      time.Time `json:"submitted_at"`
}

// EventType implements Event.
func (OrderSubmitted) EventType() string { return "order.submitted" }

// Expiry is when the order expires unpaid, as submitted: SubmittedAt plus
// PaymentDeadlineS.
func (e OrderSubmitted) Expiry() time.Time {
	return e.SubmittedAt.Add(time.Duration(e.PaymentDeadlineS) * time.Second)
}

// SubmitExpiry is the Expiry of the order DecideSubmit submits at now under
// deadline.
func SubmitExpiry(now time.Time, deadline time.Duration) time.Time {
	return now.Add(deadline.Truncate(time.Second))
}

// OrderCancelled records that an order was cancelled: at once (the buyer had
// not paid), when a reserved cancellation became final, or after payment (the
// paid amount is refunded in the same commit by OrderRefunded).
type OrderCancelled struct {
	OrderID     OrderID   `json:"order_id"`
	Reason      string    `json:"reason,omitempty"`
	CancelledAt time.Time `json:"cancelled_at"`
	// AfterReservation is set when a reserved cancellation became final.
	AfterReservation bool `json:"after_reservation,omitempty"`
	// BuyerID and Amount are the order's, for the message to the buyer.
	// Absent on events written before notifications: those notify no one.
	BuyerID UserID `json:"buyer_id,omitempty"`
	Amount  int64  `json:"amount,omitempty"`
}

// EventType implements Event.
func (OrderCancelled) EventType() string { return "order.cancelled" }

// OrderCancelReserved records "the buyer may already have transferred": the
// order is cancelled for real at CancelAt, once the bank scan has covered it.
// A deposit that arrives meanwhile is refunded to the buyer's wallet.
type OrderCancelReserved struct {
	OrderID    OrderID   `json:"order_id"`
	Reason     string    `json:"reason,omitempty"`
	CancelAt   time.Time `json:"cancel_at"`
	ReservedAt time.Time `json:"reserved_at"`
}

// EventType implements Event.
func (OrderCancelReserved) EventType() string { return "order.cancel_reserved" }

// OrderExpired records that an order was still awaiting its deposit at its
// payment deadline, once the bank scan had covered that time: nothing was
// paid, so nothing is posted. The order is closed and its depositor name is
// kept for the name grace, like a cancelled order's.
type OrderExpired struct {
	OrderID OrderID `json:"order_id"`
	// ExpiresAt is the deadline: submitted_at + the payment deadline.
	ExpiresAt time.Time `json:"expires_at"`
	// ExpiredAt is when the expiry was decided, the order's closing time.
	ExpiredAt time.Time `json:"expired_at"`
	// BuyerID and Amount are the order's, for the message to the buyer.
	// Absent on events written before notifications: those notify no one.
	BuyerID UserID `json:"buyer_id,omitempty"`
	Amount  int64  `json:"amount,omitempty"`
}

// EventType implements Event.
func (OrderExpired) EventType() string { return "order.expired" }

// OrderPaid records that a deposit paid the order.
type OrderPaid struct {
	OrderID   OrderID   `json:"order_id"`
	DepositID DepositID `json:"deposit_id"`
	Amount    int64     `json:"amount"`
	// FromAccount is the ledger account the money comes from: the bank
	// account it arrived on, suspense for an orphan assigned later, or
	// AccountWalletPayments for a payment from the buyer's wallet (then
	// DepositID is empty).
	FromAccount string    `json:"from_account"`
	PaidAt      time.Time `json:"paid_at"`
}

// EventType implements Event.
func (OrderPaid) EventType() string { return "order.paid" }

// OrderRefunded records money for the order credited to the buyer's wallet:
// a deposit that arrived for a cancelled, cancel-reserved or already paid
// order (DepositID set), or the paid amount of an order cancelled after
// payment (DepositID empty).
type OrderRefunded struct {
	OrderID   OrderID   `json:"order_id"`
	BuyerID   UserID    `json:"buyer_id"`
	DepositID DepositID `json:"deposit_id,omitempty"`
	Amount    int64     `json:"amount"`
	// FromAccount is the ledger account the refund is paid from: the bank
	// account a refunded deposit arrived on, or orders payable.
	FromAccount string    `json:"from_account"`
	RefundedAt  time.Time `json:"refunded_at"`
}

// WalletCredit is the wallet credit that settles this refund: once per
// deposit, or once per order for a paid amount.
func (e OrderRefunded) WalletCredit(now time.Time) CreditWallet {
	c := CreditWallet{UserID: e.BuyerID, Amount: e.Amount, Kind: CreditOrderRefund, Ref: "order:" + string(e.OrderID), OrderID: e.OrderID, FromAccount: e.FromAccount, Now: now}
	if e.DepositID != "" {
		c.Kind, c.Ref = CreditDepositRefund, string(e.DepositID)
	}
	return c
}

// EventType implements Event.
func (OrderRefunded) EventType() string { return "order.refunded" }

// Order is the state of one order, rebuilt from its events.
type Order struct {
	ID             OrderID
	BuyerID        UserID
	BuyerName      string
	Amount         Money
	DepositorName  string
	CollectAccount BankAccount
	CancelWindow   time.Duration
	// ExpiresAt is the payment deadline; zero for an order submitted
	// before orders expired (ExpiryCheck.Deadline applies to it).
	ExpiresAt      time.Time
	Status         OrderStatus
	CancelReason   string
	CancelAt       time.Time // when a reserved cancellation becomes final
	ClosedAt       time.Time // when the order left the open statuses
	PaidAmount     int64
	PaidBy         DepositID   // the deposit that paid the order (empty: paid from the wallet)
	PaidFrom       string      // the ledger account the payment came from (OrderPaid.FromAccount)
	DepositIDs     []DepositID // deposits applied to the order: paid it or refunded
	RefundedAmount int64
	SubmittedAt    time.Time
	UpdatedAt      time.Time
	// Version counts the events applied; 0 means the order does not exist.
	Version int
}

// Exists reports whether the order has been submitted.
func (o Order) Exists() bool { return o.Version > 0 }

// KeepsName reports whether the order still needs its depositor name at
// now, the bank scan being complete up to watermark: an open order does; a
// closed one through the name grace after it closed, so that a late
// deposit under the name is refunded to its buyer, and until the scan has
// covered the grace: a transfer made within the grace but not scanned yet
// would otherwise pay the order that took the name over. The watermark
// covers the grace's last instant only once it is past it: every transfer
// dated before the watermark is recorded, and one dated at it may not be. An
// order that does not exist, or has no name, does not.
func (o Order) KeepsName(now, watermark time.Time, grace time.Duration) bool {
	switch {
	case !o.Exists() || o.DepositorName == "":
		return false
	case o.Status.Open():
		return true
	}
	due := o.ClosedAt.Add(grace)
	return !now.After(due) || !watermark.After(due)
}

// HoldsUnpaidName reports whether the order counts against its buyer's
// limit of unpaid orders at now: it holds its depositor name without having
// been paid — it is open (awaiting its deposit, or cancel-reserved), or it
// was cancelled or expired unpaid less than grace (the name grace) ago.
func (o Order) HoldsUnpaidName(now time.Time, grace time.Duration) bool {
	switch {
	case !o.Exists():
		return false
	case o.Status.Open():
		return true
	case o.Status == StatusCancelled || o.Status == StatusExpired:
		return o.PaidAmount == 0 && now.Sub(o.ClosedAt) <= grace
	}
	return false
}

// Apply returns the state after e. It never fails: events are facts.
func (o Order) Apply(e Event) Order {
	switch e := e.(type) {
	case OrderSubmitted:
		o = Order{
			ID:             e.OrderID,
			BuyerID:        e.BuyerID,
			BuyerName:      e.BuyerName,
			Amount:         e.Amount,
			DepositorName:  e.DepositorName,
			CollectAccount: e.CollectAccount,
			CancelWindow:   time.Duration(e.CancelWindowS) * time.Second,
			Status:         StatusAwaitingDeposit,
			SubmittedAt:    e.SubmittedAt,
			UpdatedAt:      e.SubmittedAt,
			Version:        o.Version,
		}
		if e.PaymentDeadlineS > 0 {
			o.ExpiresAt = e.Expiry()
		}
	case OrderExpired:
		o.Status = StatusExpired
		o.ClosedAt, o.UpdatedAt = e.ExpiredAt, e.ExpiredAt
	case OrderCancelled:
		if o.Status != StatusCancelReserved || e.Reason != "" {
			o.CancelReason = e.Reason
		}
		o.Status = StatusCancelled
		o.ClosedAt, o.UpdatedAt = e.CancelledAt, e.CancelledAt
	case OrderCancelReserved:
		o.Status = StatusCancelReserved
		o.CancelReason = e.Reason
		o.CancelAt, o.UpdatedAt = e.CancelAt, e.ReservedAt
	case OrderPaid:
		o.Status = StatusPaid
		o.PaidBy, o.PaidFrom = e.DepositID, e.FromAccount
		o.PaidAmount += e.Amount
		if e.DepositID != "" {
			o.DepositIDs = append(slices.Clip(o.DepositIDs), e.DepositID)
		}
		o.ClosedAt, o.UpdatedAt = e.PaidAt, e.PaidAt
	case OrderRefunded:
		o.RefundedAmount += e.Amount
		if e.DepositID != "" {
			o.DepositIDs = append(slices.Clip(o.DepositIDs), e.DepositID)
		}
		o.UpdatedAt = e.RefundedAt
	}
	o.Version++
	return o
}

// SubmitOrder asks for a new order. The caller has validated the IDs and
// money, reserved DepositorName, and supplies the time.
type SubmitOrder struct {
	OrderID        OrderID
	BuyerID        UserID
	BuyerName      string
	Amount         Money
	DepositorName  string
	CollectAccount BankAccount
	CancelWindow   time.Duration
	// PaymentDeadline is how long the order waits for its deposit before it
	// expires; whole seconds are recorded.
	PaymentDeadline time.Duration
	Now             time.Time
}

// DecideSubmit decides a submit against the current state of that order ID.
func DecideSubmit(o Order, c SubmitOrder) ([]Event, error) {
	if o.Exists() {
		return nil, ErrOrderExists.With("", map[string]any{"order_id": string(c.OrderID)})
	}
	if err := ValidateNewBuyerName(c.BuyerName); err != nil {
		return nil, err
	}
	if c.DepositorName == "" {
		return nil, Invalid("depositor_name", "is required")
	}
	return []Event{OrderSubmitted{
		OrderID:          c.OrderID,
		BuyerID:          c.BuyerID,
		BuyerName:        c.BuyerName,
		Amount:           c.Amount,
		DepositorName:    c.DepositorName,
		CollectAccount:   c.CollectAccount,
		CancelWindowS:    int64(c.CancelWindow / time.Second),
		PaymentDeadlineS: int64(c.PaymentDeadline / time.Second),
		SubmittedAt:      c.Now,
	}}, nil
}

// MaxReasonLength is the longest cancel reason accepted, in runes.
const MaxReasonLength = 500

// ValidateReason checks a free-text reason: at most MaxReasonLength
// characters once trimmed, printable, without format or separator
// characters (line breaks are allowed).
func ValidateReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if n := len([]rune(reason)); n > MaxReasonLength {
		return Invalid("reason", "must be at most %d characters", MaxReasonLength)
	}
	for i, r := range reason {
		if r == '\r' && strings.HasPrefix(reason[i+1:], "\n") {
			continue // a line break as Windows writes it; a lone CR could hide text
		}
		if r == unicode.ReplacementChar || unicode.IsControl(r) && r != '\n' {
			return Invalid("reason", "must be printable UTF-8")
		}
		if unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			// A right-to-left override and its kind would make the
			// console and the CLI show another text than the one kept.
			return Invalid("reason", "must not contain format or separator characters (found %U)", r)
		}
	}
	return nil
}

// CancelOrder asks to cancel an order. Deposited is the buyer's answer to
// "have you already transferred the money?".
type CancelOrder struct {
	OrderID   OrderID
	Deposited bool
	Reason    string
	Now       time.Time
}

// DecideCancel decides a cancellation:
//   - awaiting deposit, not deposited: cancelled now;
//   - awaiting deposit, deposited: cancel-reserved until submitted_at + the
//     cancel window (the scan window), when the money, if it came, has been seen;
//   - paid: cancelled now and the paid amount refunded to the buyer's wallet;
//   - anything else (cancel-reserved, cancelled, expired): wrong state.
func DecideCancel(o Order, c CancelOrder) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrderNotFound.With("", map[string]any{"order_id": string(c.OrderID)})
	}
	if err := ValidateReason(c.Reason); err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(c.Reason)
	switch {
	case o.Status == StatusAwaitingDeposit && !c.Deposited:
		return []Event{OrderCancelled{OrderID: o.ID, Reason: reason, CancelledAt: c.Now, BuyerID: o.BuyerID, Amount: o.Amount.Amount}}, nil
	case o.Status == StatusAwaitingDeposit:
		return []Event{OrderCancelReserved{OrderID: o.ID, Reason: reason, CancelAt: o.SubmittedAt.Add(o.CancelWindow), ReservedAt: c.Now}}, nil
	case o.Status == StatusPaid:
		return []Event{
			OrderCancelled{OrderID: o.ID, Reason: reason, CancelledAt: c.Now, BuyerID: o.BuyerID, Amount: o.Amount.Amount},
			OrderRefunded{OrderID: o.ID, BuyerID: o.BuyerID, Amount: o.PaidAmount, FromAccount: AccountPayableOrders, RefundedAt: c.Now},
		}, nil
	}
	return nil, ErrWrongState.With("order is "+string(o.Status)+"; only an order awaiting its deposit or paid can be cancelled",
		map[string]any{"order_id": string(o.ID), "status": string(o.Status)})
}

// FinaliseCancel decides what a due cancellation timer does. The reserved
// cancellation becomes final only once the bank scan is known complete up to
// CancelAt (watermark); before that it returns ErrNotDue and the timer waits.
// An order that is no longer cancel-reserved needs nothing (no events).
func FinaliseCancel(o Order, watermark, now time.Time) ([]Event, error) {
	if o.Status != StatusCancelReserved {
		return nil, nil
	}
	if watermark.Before(o.CancelAt) {
		return nil, ErrNotDue.With("the bank scan covers "+FormatTime(watermark)+", not yet "+FormatTime(o.CancelAt),
			map[string]any{"order_id": string(o.ID), "cancel_at": FormatTime(o.CancelAt)})
	}
	return []Event{OrderCancelled{OrderID: o.ID, Reason: o.CancelReason, CancelledAt: now, AfterReservation: true, BuyerID: o.BuyerID, Amount: o.Amount.Amount}}, nil
}

// ExpiryCheck is what a due expiry timer knows.
type ExpiryCheck struct {
	// Watermark is how far the bank scan is known complete.
	Watermark time.Time
	Now       time.Time
	// Deadline is the payment deadline of an order that recorded none
	// (submitted before orders expired).
	Deadline time.Duration
}

// DecideExpire decides what a due expiry timer does. An order still
// awaiting its deposit expires at its deadline (submitted_at + the payment
// deadline), but only once the bank scan is known complete up to the
// deadline: a transfer made in time and not yet scanned must still pay the
// order. Before that it returns ErrNotDue and the timer waits. An order that
// no longer awaits its deposit (paid, cancelled, cancel-reserved, expired),
// or that never appeared, needs nothing (no events).
func DecideExpire(o Order, c ExpiryCheck) ([]Event, error) {
	if !o.Exists() || o.Status != StatusAwaitingDeposit {
		return nil, nil
	}
	at := o.ExpiryTime(c.Deadline)
	details := map[string]any{"order_id": string(o.ID), "expires_at": FormatTime(at)}
	if c.Now.Before(at) {
		return nil, ErrNotDue.With("the order expires at "+FormatTime(at), details)
	}
	if c.Watermark.Before(at) {
		return nil, ErrNotDue.With("the bank scan covers "+FormatTime(c.Watermark)+", not yet "+FormatTime(at), details)
	}
	return []Event{OrderExpired{OrderID: o.ID, ExpiresAt: at, ExpiredAt: c.Now, BuyerID: o.BuyerID, Amount: o.Amount.Amount}}, nil
}

// ExpiryTime is when the order expires if still unpaid: its recorded
// deadline, or, for an order submitted before deadlines were recorded,
// submitted_at + fallback.
func (o Order) ExpiryTime(fallback time.Duration) time.Time {
	if !o.ExpiresAt.IsZero() {
		return o.ExpiresAt
	}
	return o.SubmittedAt.Add(fallback)
}

// DepositOutcome is what a deposit did to the order it named.
type DepositOutcome string

// String returns the outcome's name.
func (o DepositOutcome) String() string { return string(o) }

// Deposit outcomes (API.md).
const (
	OutcomeMatched          DepositOutcome = "matched"
	OutcomeRefundedToWallet DepositOutcome = "refunded_to_wallet"
	OutcomeOrphaned         DepositOutcome = "orphaned"
	OutcomeDuplicate        DepositOutcome = "duplicate"
	// OutcomeStorePayment is a deposit on a store's dedicated account: a
	// payment to its distributor (store.payment_received on the link).
	OutcomeStorePayment DepositOutcome = "store_payment"
)

// PaidFromWallet reports whether the order was paid from its buyer's
// wallet.
func (o Order) PaidFromWallet() bool { return o.PaidFrom == AccountWalletPayments }

// DecidePayFromWallet pays an order awaiting its deposit with money the
// wallet of user, its buyer, spent on it (wallet.spent, in
// AccountWalletPayments), for its amount. An order paid so already needs
// nothing; another status, another user or another amount is an error (the
// wallet's payment goes back to the wallet).
func DecidePayFromWallet(o Order, user UserID, amount int64, now time.Time) ([]Event, error) {
	switch {
	case !o.Exists():
		return nil, ErrOrderNotFound
	case o.BuyerID != user:
		return nil, ErrWrongState.With("the order is another buyer's: a wallet pays only its own user's orders", map[string]any{"order_id": string(o.ID)})
	case o.PaidFromWallet():
		return nil, nil
	case o.Status != StatusAwaitingDeposit:
		return nil, ErrWrongState.With("only an order awaiting its payment can be paid from the wallet", map[string]any{"order_id": string(o.ID), "status": string(o.Status)})
	case amount != o.Amount.Amount:
		return nil, ErrAmountMismatch.With("", map[string]any{"order_id": string(o.ID), "expected": o.Amount.Amount, "amount": amount})
	}
	return []Event{OrderPaid{OrderID: o.ID, Amount: amount, FromAccount: AccountWalletPayments, PaidAt: now}}, nil
}

// ApplyDeposit is a deposit whose depositor name belongs to the order.
type ApplyDeposit struct {
	DepositID DepositID
	Amount    int64
	// FromAccount is the ledger account the money is in (see OrderPaid).
	FromAccount string
	// DepositedAt is when the buyer transferred: the name grace is measured
	// to it, not to when a scan got to the transfer.
	DepositedAt time.Time
	Now         time.Time
	// NameGrace is how long a closed order keeps its depositor name: a
	// deposit within it is refunded to the buyer's wallet.
	NameGrace time.Duration
}

// DecideDeposit decides what a deposit under the order's depositor name does:
//   - awaiting deposit, exact amount: pays the order (matched);
//   - awaiting deposit, another amount: ErrAmountMismatch (the deposit is an orphan);
//   - cancel-reserved, paid (a second payment), or closed (cancelled or
//     expired) within the name grace: refunded in full to the buyer's wallet;
//   - closed longer than the grace: ErrOrderGone (an orphan);
//   - made (DepositedAt) more than MaxClockSkew before the order was
//     submitted: ErrDepositBeforeOrder, whatever the status (an orphan).
//
// A deposit already applied to the order needs nothing (no events) and
// reports the outcome it had.
func DecideDeposit(o Order, d ApplyDeposit) ([]Event, DepositOutcome, error) {
	if !o.Exists() {
		return nil, "", ErrOrderGone
	}
	if slices.Contains(o.DepositIDs, d.DepositID) {
		// What the deposit did is a fact of the log, not of the order's
		// status now: an order paid by it may have been cancelled since.
		if o.PaidBy == d.DepositID {
			return nil, OutcomeMatched, nil
		}
		return nil, OutcomeRefundedToWallet, nil
	}
	if !d.DepositedAt.IsZero() && d.DepositedAt.Before(o.SubmittedAt.Add(-MaxClockSkew)) {
		// Made before the order existed (beyond the clocks' skew): the
		// buyer could not have known its depositor name. The name was
		// another order's then (one closed since, whose name this one took
		// over), so the money is not this order's.
		return nil, "", ErrDepositBeforeOrder.With("", map[string]any{"order_id": string(o.ID)})
	}
	refund := []Event{OrderRefunded{OrderID: o.ID, BuyerID: o.BuyerID, DepositID: d.DepositID, Amount: d.Amount, FromAccount: d.FromAccount, RefundedAt: d.Now}}
	switch o.Status {
	case StatusAwaitingDeposit:
		if d.Amount != o.Amount.Amount {
			return nil, "", ErrAmountMismatch.With("", map[string]any{"order_id": string(o.ID), "expected": o.Amount.Amount, "amount": d.Amount})
		}
		return []Event{OrderPaid{OrderID: o.ID, DepositID: d.DepositID, Amount: d.Amount, FromAccount: d.FromAccount, PaidAt: d.Now}}, OutcomeMatched, nil
	case StatusCancelReserved, StatusPaid:
		return refund, OutcomeRefundedToWallet, nil
	}
	if d.DepositedAt.Sub(o.ClosedAt) <= d.NameGrace {
		return refund, OutcomeRefundedToWallet, nil
	}
	return nil, "", ErrOrderGone.With("", map[string]any{"order_id": string(o.ID)})
}

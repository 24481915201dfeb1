package domain

import (
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
	SubmittedAt    time.Time   `json:"submitted_at"`
}

// EventType implements Event.
func (OrderSubmitted) EventType() string { return "order.submitted" }

// OrderCancelled records that an order was cancelled and released its
// depositor name.
type OrderCancelled struct {
	OrderID     OrderID   `json:"order_id"`
	Reason      string    `json:"reason,omitempty"`
	CancelledAt time.Time `json:"cancelled_at"`
}

// EventType implements Event.
func (OrderCancelled) EventType() string { return "order.cancelled" }

// Order is the state of one order, rebuilt from its events.
type Order struct {
	ID             OrderID
	BuyerID        UserID
	BuyerName      string
	Amount         Money
	DepositorName  string
	CollectAccount BankAccount
	CancelWindow   time.Duration
	Status         OrderStatus
	CancelReason   string
	SubmittedAt    time.Time
	UpdatedAt      time.Time
	// Version counts the events applied; 0 means the order does not exist.
	Version int
}

// Exists reports whether the order has been submitted.
func (o Order) Exists() bool { return o.Version > 0 }

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
	case OrderCancelled:
		o.Status = StatusCancelled
		o.CancelReason = e.Reason
		o.UpdatedAt = e.CancelledAt
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
	Now            time.Time
}

// DecideSubmit decides a submit against the current state of that order ID.
func DecideSubmit(o Order, c SubmitOrder) ([]Event, error) {
	if o.Exists() {
		return nil, ErrOrderExists.With("", map[string]any{"order_id": string(c.OrderID)})
	}
	if err := ValidateBuyerName(c.BuyerName); err != nil {
		return nil, err
	}
	if c.DepositorName == "" {
		return nil, Invalid("depositor_name", "is required")
	}
	return []Event{OrderSubmitted{
		OrderID:        c.OrderID,
		BuyerID:        c.BuyerID,
		BuyerName:      c.BuyerName,
		Amount:         c.Amount,
		DepositorName:  c.DepositorName,
		CollectAccount: c.CollectAccount,
		CancelWindowS:  int64(c.CancelWindow / time.Second),
		SubmittedAt:    c.Now,
	}}, nil
}

// MaxReasonLength is the longest cancel reason accepted, in runes.
const MaxReasonLength = 500

// ValidateReason checks a free-text reason: at most MaxReasonLength
// characters once trimmed, printable.
func ValidateReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if n := len([]rune(reason)); n > MaxReasonLength {
		return Invalid("reason", "must be at most %d characters", MaxReasonLength)
	}
	for _, r := range reason {
		if r == unicode.ReplacementChar || unicode.IsControl(r) && r != '\n' {
			return Invalid("reason", "must be printable UTF-8")
		}
	}
	return nil
}

// CancelOrder asks to cancel an order whose buyer has not transferred money
// (the "deposited: no" branch of delayed cancellation).
type CancelOrder struct {
	OrderID OrderID
	Reason  string
	Now     time.Time
}

// DecideCancel decides an immediate cancellation.
func DecideCancel(o Order, c CancelOrder) ([]Event, error) {
	if !o.Exists() {
		return nil, ErrOrderNotFound.With("", map[string]any{"order_id": string(c.OrderID)})
	}
	if err := ValidateReason(c.Reason); err != nil {
		return nil, err
	}
	if o.Status != StatusAwaitingDeposit {
		return nil, ErrWrongState.With("order is "+string(o.Status)+"; only an order awaiting deposit can be cancelled",
			map[string]any{"order_id": string(o.ID), "status": string(o.Status)})
	}
	return []Event{OrderCancelled{OrderID: o.ID, Reason: strings.TrimSpace(c.Reason), CancelledAt: c.Now}}, nil
}

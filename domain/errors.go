package domain

import "fmt"

// Kind classifies a domain error; the API layer maps each kind to a status.
type Kind int

const (
	// KindInvalid is bad input: a missing, malformed or out-of-range field (400).
	KindInvalid Kind = iota + 1
	// KindNotFound means the addressed aggregate does not exist (404).
	KindNotFound
	// KindConflict means the aggregate is in a state that forbids the command,
	// or something already exists (409).
	KindConflict
	// KindRule means a business rule refused a well-formed command (422).
	KindRule
)

// Error is a domain error: a stable snake_case Code, a human Message and
// optional Details. Two *Error values match under errors.Is when their
// codes are equal, so sentinels below can be compared with errors.Is even when
// the returned error carries details.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// With returns a copy of e with the given message and details.
func (e *Error) With(message string, details map[string]any) *Error {
	c := *e
	if message != "" {
		c.Message = message
	}
	c.Details = details
	return &c
}

// Invalid returns a KindInvalid error for one request field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{
		Kind:    KindInvalid,
		Code:    "invalid_input",
		Message: field + ": " + fmt.Sprintf(format, args...),
		Details: map[string]any{"field": field},
	}
}

// Sentinel errors. Compare with errors.Is.
var (
	// ErrInvalidInput matches every error made by Invalid.
	ErrInvalidInput = &Error{Kind: KindInvalid, Code: "invalid_input", Message: "invalid input"}
	// ErrUnsupportedCurrency is returned for a currency the engine does not collect.
	ErrUnsupportedCurrency = &Error{Kind: KindInvalid, Code: "unsupported_currency", Message: "currency is not supported"}
	// ErrOrderNotFound is returned for a command or query on an unknown order.
	ErrOrderNotFound = &Error{Kind: KindNotFound, Code: "order_not_found", Message: "order not found"}
	// ErrOrderExists is returned when submit names an order_id already in use.
	ErrOrderExists = &Error{Kind: KindConflict, Code: "order_exists", Message: "an order with this order_id already exists"}
	// ErrWrongState is returned when the order's or the bill's status
	// forbids the command; its details carry the status.
	ErrWrongState = &Error{Kind: KindConflict, Code: "wrong_state", Message: "the order's status does not allow this command"}
	// ErrNotDue is returned when a reserved cancellation cannot be finalised,
	// or an order cannot expire, yet: the bank scan has not covered its time.
	ErrNotDue = &Error{Kind: KindConflict, Code: "not_due", Message: "the bank scan has not yet covered the cancellation time"}
	// ErrAmountMismatch is returned when a deposit's amount differs from the
	// open order its depositor name belongs to.
	ErrAmountMismatch = &Error{Kind: KindRule, Code: "amount_mismatch", Message: "the deposit's amount differs from the order's"}
	// ErrOrderGone is returned when a deposit names an order that no longer
	// takes deposits (or never existed).
	ErrOrderGone = &Error{Kind: KindRule, Code: "order_gone", Message: "the order no longer takes deposits"}
	// ErrDepositBeforeOrder is returned for a deposit made before the order
	// that holds its depositor name now was submitted: it was not for it.
	ErrDepositBeforeOrder = &Error{Kind: KindRule, Code: "deposit_before_order", Message: "the transfer was made before the order was submitted"}
	// ErrInsufficientFunds is returned for a withdrawal larger than the wallet's balance.
	ErrInsufficientFunds = &Error{Kind: KindRule, Code: "insufficient_funds", Message: "the wallet's balance is lower than the amount"}
	// ErrPayoutNotFound is returned for a result of an unknown payout.
	ErrPayoutNotFound = &Error{Kind: KindNotFound, Code: "payout_not_found", Message: "payout not found"}
	// ErrPayoutFinal is returned when an operator records a result for a
	// payout that already has another one.
	ErrPayoutFinal = &Error{Kind: KindConflict, Code: "payout_final", Message: "the payout already has a final result"}
	// ErrPayoutInFlight is returned when an operator records a result for
	// a payout whose transfer may still be live at the provider.
	ErrPayoutInFlight = &Error{Kind: KindConflict, Code: "payout_in_flight", Message: "the payout's result cannot be recorded safely yet: its transfer may be live at the provider"}
	// ErrPayoutUnresolved is returned when discarding the dead letter of a
	// payout that has no result yet.
	ErrPayoutUnresolved = &Error{Kind: KindConflict, Code: "payout_unresolved", Message: "the dead letter's payout has no result yet: record it first (payout.resolve), or its money stays in payouts pending"}
	// ErrMoneyUnsettled is returned when discarding the dead letter of a
	// commit whose money has not reached where it resolved to yet.
	ErrMoneyUnsettled = &Error{Kind: KindConflict, Code: "money_unsettled", Message: "the dead letter's commit has not moved its money where it goes yet: redrive it once what stops it is mended, or the money stays in suspense"}
	// ErrNotOrphan is returned when resolving a deposit that is not an
	// unresolved orphan.
	ErrNotOrphan = &Error{Kind: KindConflict, Code: "not_an_orphan", Message: "the deposit is not an unresolved orphan"}
	// ErrDepositNotFound is returned for a command on an unknown deposit.
	ErrDepositNotFound = &Error{Kind: KindNotFound, Code: "deposit_not_found", Message: "deposit not found"}
	// ErrDepositorNamesExhausted is returned when every depositor name a
	// submit tried for the buyer name (a bounded number of its 1000
	// suffixes) is held by another order.
	ErrDepositorNamesExhausted = &Error{Kind: KindConflict, Code: "depositor_names_exhausted", Message: "the depositor names for this buyer name are in use by other orders"}
	// ErrTooManyUnpaidOrders is returned when a buyer already holds the
	// most unpaid orders allowed (Order.HoldsUnpaidName), so that no buyer
	// can use up the depositor names of a buyer name.
	ErrTooManyUnpaidOrders = &Error{Kind: KindRule, Code: "too_many_unpaid_orders", Message: "the buyer has too many unpaid orders; pay one, or wait until the name grace of a cancelled or expired one ends"}
	// ErrStoreNotLinked is returned for a bill or a payment of a
	// (distributor, store) pair that store.link has not linked.
	ErrStoreNotLinked = &Error{Kind: KindNotFound, Code: "store_not_linked", Message: "the store is not linked to the distributor"}
	// ErrBillNotFound is returned for a bill ID that names no bill issued.
	ErrBillNotFound = &Error{Kind: KindNotFound, Code: "bill_not_found", Message: "bill not found"}
	// ErrNotificationNotFound is returned for a command on a notification
	// that was never created (notify.redrive of an unknown ID: 404).
	ErrNotificationNotFound = &Error{Kind: KindNotFound, Code: "notification_not_found", Message: "notification not found"}
	// ErrNotificationNotPending is returned when a notification that is
	// not pending is attempted or reported failed, or a dead one is
	// reported sent; its details carry the status.
	ErrNotificationNotPending = &Error{Kind: KindConflict, Code: "notification_not_pending", Message: "the notification is not pending"}
	// ErrNotificationNotDead is returned when notify.redrive names a
	// notification that is pending or sent (409); its details carry the
	// status.
	ErrNotificationNotDead = &Error{Kind: KindConflict, Code: "notification_not_dead", Message: "only a dead-lettered notification can be redriven"}
	// ErrAttemptTaken is returned when another dispatcher recorded an
	// attempt of the notification after this one read it.
	ErrAttemptTaken = &Error{Kind: KindConflict, Code: "attempt_taken", Message: "another dispatcher is attempting this notification"}
	// ErrReconciliationNotFound is returned for a run_id that names no
	// reconciliation run (bankbook.q.reconcile.get: 404).
	ErrReconciliationNotFound = &Error{Kind: KindNotFound, Code: "reconciliation_not_found", Message: "reconciliation run not found"}
)

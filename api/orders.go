package api

import (
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// SubmitOrderRequest is the body of bankbook.cmd.order.submit.
type SubmitOrderRequest struct {
	BuyerID   string `json:"buyer_id"`
	BuyerName string `json:"buyer_name"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency,omitempty"`
	// OrderID is optional; the engine generates one when it is empty.
	OrderID string `json:"order_id,omitempty"`
}

// Validate checks the request fields, reporting the first problem in field order.
func (r SubmitOrderRequest) Validate() error {
	var errs []error
	if r.OrderID != "" {
		errs = append(errs, domain.ValidateID("order_id", r.OrderID))
	}
	errs = append(errs, domain.ValidateID("buyer_id", r.BuyerID), domain.ValidateNewBuyerName(r.BuyerName))
	if _, err := domain.NewMoney(r.Amount, r.Currency); err != nil {
		errs = append(errs, err)
	}
	return first(errs)
}

// Canonical returns the request as the engine compares and executes it:
// the default currency written as its absence, so that a request with
// "currency":"KRW" and one without are the same request for idempotency.
func (r SubmitOrderRequest) Canonical() SubmitOrderRequest {
	r.Currency = defaultCurrency(r.Currency)
	return r
}

// defaultCurrency writes the default currency, KRW, as its absence, so
// that a request that names it and one that does not are the same request
// (for an Idempotency-Key, say).
func defaultCurrency(c string) string {
	if c == string(domain.KRW) {
		return ""
	}
	return c
}

// SubmitOrderReply is the reply of bankbook.cmd.order.submit.
type SubmitOrderReply struct {
	OrderID        string             `json:"order_id"`
	Status         domain.OrderStatus `json:"status"`
	DepositorName  string             `json:"depositor_name"`
	CollectAccount domain.BankAccount `json:"collect_account"`
	Amount         int64              `json:"amount"`
	Currency       domain.Currency    `json:"currency"`
	SubmittedAt    string             `json:"submitted_at"`
	CancelWindowS  int64              `json:"cancel_window_s"`
	// ExpiresAt is the payment deadline: unpaid then, the order expires.
	ExpiresAt string `json:"expires_at,omitempty"`
	Written
}

// CancelOrderRequest is the body of bankbook.cmd.order.cancel.
type CancelOrderRequest struct {
	OrderID string `json:"order_id"`
	// Deposited says whether the buyer has already transferred the money; required.
	Deposited *bool  `json:"deposited"`
	Reason    string `json:"reason,omitempty"`
}

// Validate checks the request fields.
func (r CancelOrderRequest) Validate() error {
	if err := domain.ValidateID("order_id", r.OrderID); err != nil {
		return err
	}
	if r.Deposited == nil {
		return domain.Invalid("deposited", "is required: say whether the buyer has already transferred the money")
	}
	return domain.ValidateReason(r.Reason)
}

// Canonical removes the reason's surrounding white space, as the
// cancellation records it.
func (r CancelOrderRequest) Canonical() CancelOrderRequest {
	r.Reason = strings.TrimSpace(r.Reason)
	return r
}

// Refund says where money went back to.
type Refund struct {
	To     string `json:"to"` // "wallet"
	Amount int64  `json:"amount"`
	// At is when the refund was recorded (in the order view).
	At string `json:"at,omitempty"`
}

// CancelOrderReply is the reply of bankbook.cmd.order.cancel.
type CancelOrderReply struct {
	OrderID  string             `json:"order_id"`
	Status   domain.OrderStatus `json:"status"`
	CancelAt string             `json:"cancel_at,omitempty"`
	Refund   *Refund            `json:"refund,omitempty"`
	Written
}

// PayFromWalletRequest is the body of bankbook.cmd.order.pay_from_wallet:
// the order to pay, awaiting its payment, from its buyer's wallet.
type PayFromWalletRequest struct {
	OrderID string `json:"order_id"`
}

// Validate checks the request fields.
func (r PayFromWalletRequest) Validate() error { return domain.ValidateID("order_id", r.OrderID) }

// PayFromWalletReply is the reply of bankbook.cmd.order.pay_from_wallet.
type PayFromWalletReply struct {
	OrderID string             `json:"order_id"`
	Status  domain.OrderStatus `json:"status"`
	// Amount is what the wallet paid: the order's amount.
	Amount int64 `json:"amount"`
	// WalletBalance is the wallet's balance right after the payment.
	WalletBalance int64 `json:"wallet_balance"`
	Written
}

// GetOrderRequest is the body of bankbook.q.order.get.
type GetOrderRequest struct {
	OrderID string `json:"order_id"`
	ReadAfter
}

// Validate checks the request.
func (q GetOrderRequest) Validate() error { return domain.ValidateID("order_id", q.OrderID) }

// first returns the first non-nil error.
func first(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

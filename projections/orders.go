package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketOrders maps order_id to the JSON of its OrderView.
var bucketOrders = []byte("orders")

// OrderView is an order as the bankbook.q.order.get query shows it (API.md).
// It is built from events only, so a replay rebuilds it byte for byte.
type OrderView struct {
	OrderID        string             `json:"order_id"`
	BuyerID        string             `json:"buyer_id"`
	BuyerName      string             `json:"buyer_name"`
	Amount         int64              `json:"amount"`
	Currency       string             `json:"currency"`
	Status         string             `json:"status"`
	DepositorName  string             `json:"depositor_name"`
	CollectAccount domain.BankAccount `json:"collect_account"`
	CancelWindowS  int64              `json:"cancel_window_s"`
	PaidAmount     int64              `json:"paid_amount"`
	// DepositIDs lists the deposits applied to the order (the one that paid
	// it, and any refunded to the buyer's wallet); never nil.
	DepositIDs []string `json:"deposit_ids"`
	// Refunds lists money returned for the order; never nil.
	Refunds      []Refund `json:"refunds"`
	CancelReason string   `json:"cancel_reason,omitempty"`
	// CancelAt is when a reserved cancellation becomes final.
	CancelAt string `json:"cancel_at,omitempty"`
	// SubmittedAt and UpdatedAt are event times in domain.TimeLayout.
	SubmittedAt string `json:"submitted_at"`
	UpdatedAt   string `json:"updated_at"`
	// Version is the number of the order's events applied to the view.
	Version int `json:"version"`
}

// Refund is money returned for an order.
type Refund struct {
	To     string `json:"to"` // "wallet"
	Amount int64  `json:"amount"`
	At     string `json:"at"`
}

// Order returns the view of one order; false if no such order has been
// applied yet.
func (s *Store) Order(id string) (OrderView, bool, error) {
	var (
		v     OrderView
		found bool
	)
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		v, found, err = getOrder(tx.Bucket(bucketOrders), id)
		return err
	})
	return v, found, err
}

// orders is the projection of order events into bucketOrders.
type orders struct{}

func (orders) bucket() []byte { return bucketOrders }

func (orders) apply(tx *bbolt.Tx, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b := tx.Bucket(bucketOrders)
	switch ev := ev.(type) {
	case domain.OrderSubmitted:
		old, _, err := getOrder(b, string(ev.OrderID))
		if err != nil {
			return err
		}
		at := domain.FormatTime(ev.SubmittedAt)
		if err := tx.Bucket(bucketOpenByAmount).Put(openKey(ev.Amount.Amount, string(ev.OrderID)), nil); err != nil {
			return err
		}
		return putOrder(b, OrderView{
			OrderID:        string(ev.OrderID),
			BuyerID:        string(ev.BuyerID),
			BuyerName:      ev.BuyerName,
			Amount:         ev.Amount.Amount,
			Currency:       string(ev.Amount.Currency),
			Status:         string(domain.StatusAwaitingDeposit),
			DepositorName:  ev.DepositorName,
			CollectAccount: ev.CollectAccount,
			CancelWindowS:  ev.CancelWindowS,
			DepositIDs:     []string{},
			Refunds:        []Refund{},
			SubmittedAt:    at,
			UpdatedAt:      at,
			// Like domain.Order.Apply: a view only ever counts up, so an
			// event applied twice would show.
			Version: old.Version + 1,
		})
	case domain.OrderCancelled:
		return updateOrder(b, ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusCancelled)
			if ev.Reason != "" || !ev.AfterReservation {
				v.CancelReason = ev.Reason
			}
			v.UpdatedAt = domain.FormatTime(ev.CancelledAt)
		})
	case domain.OrderCancelReserved:
		return updateOrder(b, ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusCancelReserved)
			v.CancelReason = ev.Reason
			v.CancelAt = domain.FormatTime(ev.CancelAt)
			v.UpdatedAt = domain.FormatTime(ev.ReservedAt)
		})
	case domain.OrderPaid:
		return updateOrder(b, ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusPaid)
			v.PaidAmount += ev.Amount
			v.DepositIDs = append(v.DepositIDs, string(ev.DepositID))
			v.UpdatedAt = domain.FormatTime(ev.PaidAt)
		})
	case domain.OrderRefunded:
		return updateOrder(b, ev.OrderID, func(v *OrderView) {
			if ev.DepositID != "" {
				v.DepositIDs = append(v.DepositIDs, string(ev.DepositID))
			}
			v.Refunds = append(v.Refunds, Refund{To: "wallet", Amount: ev.Amount, At: domain.FormatTime(ev.RefundedAt)})
			v.UpdatedAt = domain.FormatTime(ev.RefundedAt)
		})
	}
	return nil
}

// updateOrder changes the view of an order that must exist, counts the
// event, and keeps the index of open orders.
func updateOrder(b *bbolt.Bucket, id domain.OrderID, change func(*OrderView)) error {
	v, found, err := getOrder(b, string(id))
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for order %s, which was never submitted", ErrInconsistent, id)
	}
	change(&v)
	v.Version++
	if !domain.OrderStatus(v.Status).Open() {
		if err := b.Tx().Bucket(bucketOpenByAmount).Delete(openKey(v.Amount, v.OrderID)); err != nil {
			return err
		}
	}
	return putOrder(b, v)
}

// bucketOpenByAmount indexes the open orders by amount: amount(8) order_id → nil.
var bucketOpenByAmount = []byte("orders_open_by_amount")

// openIndex owns bucketOpenByAmount; orders writes it.
type openIndex struct{}

func (openIndex) bucket() []byte { return bucketOpenByAmount }

func (openIndex) apply(*bbolt.Tx, eventstore.Commit, eventstore.Envelope, domain.Event) error {
	return nil
}

func openKey(amount int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(amount)), id...)
}

func getOrder(b *bbolt.Bucket, id string) (OrderView, bool, error) {
	raw := b.Get([]byte(id))
	if raw == nil {
		return OrderView{}, false, nil
	}
	var v OrderView
	if err := json.Unmarshal(raw, &v); err != nil {
		return OrderView{}, false, fmt.Errorf("order view %s: %w", id, err)
	}
	if v.DepositIDs == nil {
		v.DepositIDs = []string{}
	}
	if v.Refunds == nil {
		v.Refunds = []Refund{}
	}
	return v, true, nil
}

func putOrder(b *bbolt.Bucket, v OrderView) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("order view %s: %w", v.OrderID, err)
	}
	return b.Put([]byte(v.OrderID), raw)
}

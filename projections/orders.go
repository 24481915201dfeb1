package projections

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketOrders maps order_id to the JSON of its OrderView.
var bucketOrders = []byte("orders")

// OrderView is an order as the bankbook.q.order.get query shows it (API.md):
// the wire type of package api. It is built from events only, so a replay
// rebuilds it byte for byte; Seq is the stream sequence of the last commit
// applied to the order.
type OrderView = api.OrderView

// Refund is money returned for an order.
type Refund = api.Refund

// Order returns the view of one order; false if no such order has been
// applied yet.
func (s *Store) Order(id string) (OrderView, bool, error) {
	var v OrderView
	found, err := lookup(s, bucketOrders, id, &v)
	return withSlices(v), found, err
}

// applyOrders is the "orders" projection: order events into bucketOrders
// (buckets[0]) and the index of open orders bucketOpenByAmount (buckets[1]).
func applyOrders(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b, open := buckets[0], buckets[1]
	update := func(id domain.OrderID, change func(*OrderView)) error {
		return updateOrder(b, open, c.Seq, id, change)
	}
	switch ev := ev.(type) {
	case domain.OrderSubmitted:
		old, _, err := getOrder(b, string(ev.OrderID))
		if err != nil {
			return err
		}
		at := domain.FormatTime(ev.SubmittedAt)
		if err := open.Put(openKey(ev.Amount.Amount, string(ev.OrderID)), nil); err != nil {
			return err
		}
		var expiresAt string
		if ev.PaymentDeadlineS > 0 {
			expiresAt = domain.FormatTime(ev.SubmittedAt.Add(time.Duration(ev.PaymentDeadlineS) * time.Second))
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
			ExpiresAt:      expiresAt,
			DepositIDs:     []string{},
			Refunds:        []Refund{},
			SubmittedAt:    at,
			UpdatedAt:      at,
			// Like domain.Order.Apply: a view only ever counts up, so an
			// event applied twice would show.
			Version: old.Version + 1,
			Seq:     api.Seq(c.Seq),
		})
	case domain.OrderCancelled:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusCancelled)
			if ev.Reason != "" || !ev.AfterReservation {
				v.CancelReason = ev.Reason
			}
			v.UpdatedAt = domain.FormatTime(ev.CancelledAt)
		})
	case domain.OrderCancelReserved:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusCancelReserved)
			v.CancelReason = ev.Reason
			v.CancelAt = domain.FormatTime(ev.CancelAt)
			v.UpdatedAt = domain.FormatTime(ev.ReservedAt)
		})
	case domain.OrderExpired:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusExpired)
			v.UpdatedAt = domain.FormatTime(ev.ExpiredAt)
		})
	case domain.OrderPaid:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusPaid)
			v.PaidAmount += ev.Amount
			v.DepositIDs = append(v.DepositIDs, string(ev.DepositID))
			v.UpdatedAt = domain.FormatTime(ev.PaidAt)
		})
	case domain.OrderRefunded:
		return update(ev.OrderID, func(v *OrderView) {
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
// event, records the commit's sequence, and keeps the index of open orders.
func updateOrder(b, open *bbolt.Bucket, seq eventstore.Seq, id domain.OrderID, change func(*OrderView)) error {
	v, found, err := getOrder(b, string(id))
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for order %s, which was never submitted", ErrInconsistent, id)
	}
	change(&v)
	v.Version++
	v.Seq = api.Seq(seq)
	if !domain.OrderStatus(v.Status).Open() {
		if err := open.Delete(openKey(v.Amount, v.OrderID)); err != nil {
			return err
		}
	}
	return putOrder(b, v)
}

// bucketOpenByAmount indexes the open orders by amount: amount(8) order_id →
// nil. The "orders" projection owns it.
var bucketOpenByAmount = []byte("orders_open_by_amount")

func openKey(amount int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(amount)), id...)
}

func getOrder(b *bbolt.Bucket, id string) (OrderView, bool, error) {
	var v OrderView
	if found, err := getJSON(b, id, &v); !found || err != nil {
		return OrderView{}, false, err
	}
	return withSlices(v), true, nil
}

// withSlices gives a view read from storage its never-nil lists.
func withSlices(v OrderView) OrderView {
	if v.DepositIDs == nil {
		v.DepositIDs = []string{}
	}
	if v.Refunds == nil {
		v.Refunds = []Refund{}
	}
	return v
}

func putOrder(b *bbolt.Bucket, v OrderView) error { return putJSON(b, v.OrderID, v) }

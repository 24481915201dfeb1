package projections

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
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
// (buckets[0]), the index of open orders bucketOpenByAmount (buckets[1])
// and the search indexes bucketOrdersByStatus, bucketOrdersByDepositor and
// bucketOrdersByBuyerName (buckets[2:5]).
func applyOrders(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b, open, search := buckets[0], buckets[1], searchIndexes(buckets[2:5])
	update := func(id domain.OrderID, change func(*OrderView)) error {
		return updateOrder(b, open, search, c.Seq, id, change)
	}
	switch ev := ev.(type) {
	case domain.OrderSubmitted:
		old, found, err := getOrder(b, string(ev.OrderID))
		if err != nil {
			return err
		}
		var before *OrderView
		if found {
			before = &old
		}
		at := domain.FormatTime(ev.SubmittedAt)
		if err := open.Put(openKey(ev.Amount.Amount, string(ev.OrderID)), nil); err != nil {
			return err
		}
		var expiresAt string
		if ev.PaymentDeadlineS > 0 {
			expiresAt = domain.FormatTime(ev.SubmittedAt.Add(time.Duration(ev.PaymentDeadlineS) * time.Second))
		}
		v := OrderView{
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
		}
		if err := reindexOrder(search, before, v); err != nil {
			return err
		}
		return putOrder(b, v)
	case domain.OrderCancelled:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusCancelled)
			if ev.Reason != "" || !ev.AfterReservation {
				v.CancelReason = ev.Reason
			}
			v.UpdatedAt = domain.FormatTime(ev.CancelledAt)
			v.ClosedAt = v.UpdatedAt
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
			v.ClosedAt = v.UpdatedAt
		})
	case domain.OrderPaid:
		return update(ev.OrderID, func(v *OrderView) {
			v.Status = string(domain.StatusPaid)
			v.PaidAmount += ev.Amount
			if ev.DepositID != "" {
				v.DepositIDs = append(v.DepositIDs, string(ev.DepositID))
			}
			if ev.FromAccount == domain.AccountWalletPayments {
				v.PaidFrom = api.PaidFromWallet
			}
			v.UpdatedAt = domain.FormatTime(ev.PaidAt)
			v.ClosedAt = v.UpdatedAt
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
func updateOrder(b, open *bbolt.Bucket, search searchIndexes, seq eventstore.Seq, id domain.OrderID, change func(*OrderView)) error {
	v, found, err := getOrder(b, string(id))
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for order %s, which was never submitted", ErrInconsistent, id)
	}
	before := v
	change(&v)
	v.Version++
	v.Seq = api.Seq(seq)
	if !domain.OrderStatus(v.Status).Open() {
		if err := open.Delete(openKey(v.Amount, v.OrderID)); err != nil {
			return err
		}
	}
	if err := reindexOrder(search, &before, v); err != nil {
		return err
	}
	return putOrder(b, v)
}

// searchIndexes are the orders' search indexes: bucketOrdersByStatus,
// bucketOrdersByDepositor, bucketOrdersByBuyerName.
type searchIndexes []*bbolt.Bucket

// reindexOrder moves an order's search-index keys from its view before a
// change (nil: a new order) to its view after it, touching only the keys
// that differ. The name keys depend on what only a submission sets (the
// names, the submission time), so any other change moves the status key
// alone, without normalising the names again.
func reindexOrder(search searchIndexes, before *OrderView, after OrderView) error {
	var oldStatus [][]byte
	if before != nil {
		oldStatus = statusKeys(*before)
	}
	if err := moveKeys(search[0], oldStatus, statusKeys(after)); err != nil {
		return err
	}
	if before != nil && before.DepositorName == after.DepositorName && before.BuyerName == after.BuyerName && before.SubmittedAt == after.SubmittedAt {
		return nil
	}
	var oldNames [][]byte
	if before != nil {
		oldNames = nameKeys(*before)
	}
	for i, k := range nameKeys(after) {
		var was [][]byte
		if oldNames != nil {
			was = [][]byte{oldNames[i]}
		}
		if err := moveKeys(search[1+i], was, [][]byte{k}); err != nil {
			return err
		}
	}
	return nil
}

// moveKeys deletes from b the keys of old that are not in new and puts
// those of new that are not in old.
func moveKeys(b *bbolt.Bucket, old, new [][]byte) error {
	for _, k := range old {
		if !slices.ContainsFunc(new, func(n []byte) bool { return bytes.Equal(n, k) }) {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	for _, k := range new {
		if !slices.ContainsFunc(old, func(o []byte) bool { return bytes.Equal(o, k) }) {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
	}
	return nil
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

// The search indexes of the "orders" projection (bankbook.q.order.search):
// the orders by status, by normalised depositor name and by normalised
// buyer name, each in order of submission.
var (
	// bucketOrdersByStatus lists the orders by status, and all of them under
	// "*": status 0x00 submitted_at (domain.TimeLayout) 0x00 order_id → nil.
	bucketOrdersByStatus = []byte("orders_by_status")
	// bucketOrdersByDepositor lists the orders by depositor name
	// (domain.NormalizeName): name 0x00 submitted_at 0x00 order_id → nil.
	// A change of the name normalisation needs a new Version of the
	// orders projection.
	bucketOrdersByDepositor = []byte("orders_by_depositor")
	// bucketOrdersByBuyerName lists the orders by buyer name
	// (domain.NormalizeName): name 0x00 submitted_at 0x00 order_id → nil,
	// so that an operator finds a buyer's orders by the name the buyer
	// gives, without the digits of a depositor name.
	bucketOrdersByBuyerName = []byte("orders_by_buyer_name")
)

// orderSearchKey is an order's key under prefix in a search index.
func orderSearchKey(prefix string, v OrderView) []byte {
	return []byte(prefix + "\x00" + v.SubmittedAt + "\x00" + v.OrderID)
}

// statusKeys are an order's keys in bucketOrdersByStatus: under "*" and
// under its status.
func statusKeys(v OrderView) [][]byte {
	return [][]byte{orderSearchKey(allStatuses, v), orderSearchKey(v.Status, v)}
}

// nameKeys are an order's keys in bucketOrdersByDepositor and
// bucketOrdersByBuyerName.
func nameKeys(v OrderView) [][]byte {
	return [][]byte{orderSearchKey(domain.NormalizeName(v.DepositorName), v), orderSearchKey(domain.NormalizeName(v.BuyerName), v)}
}

// OrderSearch is what SearchOrders looks for; an empty field does not
// narrow the search.
type OrderSearch struct {
	OrderID string
	// DepositorName and BuyerName match after domain.NormalizeName.
	DepositorName string
	BuyerName     string
	Status        string
}

// SearchOrders returns up to limit orders that match q, newest submission
// first (ties in order ID order, descending), after cursor ("" for the
// first page; a cursor that is not hex is ErrBadCursor, and any other is a
// position in the index to continue from), and
// the next page's cursor ("" at the end). A search by order ID has one page.
func (s *Store) SearchOrders(q OrderSearch, limit int, cursor string) ([]OrderView, string, error) {
	out := []OrderView{}
	limit = max(limit, 1)
	after, err := cursorAfter(cursor, nil)
	if err != nil {
		return nil, "", err
	}
	name, buyer := "", ""
	if q.DepositorName != "" {
		name = domain.NormalizeName(q.DepositorName)
	}
	if q.BuyerName != "" {
		buyer = domain.NormalizeName(q.BuyerName)
	}
	matches := func(v OrderView) bool {
		return (q.Status == "" || v.Status == q.Status) && (name == "" || domain.NormalizeName(v.DepositorName) == name) &&
			(buyer == "" || domain.NormalizeName(v.BuyerName) == buyer)
	}
	var next string
	err = s.view(func(tx *bbolt.Tx) error {
		orders, err := queryBucket(tx, bucketOrders)
		if err != nil {
			return err
		}
		if q.OrderID != "" {
			v, found, err := getOrder(orders, q.OrderID)
			if found && matches(v) && len(after) == 0 {
				out = append(out, v)
			}
			return err
		}
		index, prefix := bucketOrdersByStatus, allStatuses
		switch {
		case name != "":
			index, prefix = bucketOrdersByDepositor, name
		case buyer != "":
			index, prefix = bucketOrdersByBuyerName, buyer
		case q.Status != "":
			prefix = q.Status
		}
		b, err := queryBucket(tx, index)
		if err != nil {
			return err
		}
		out, next, err = newestFirst(b, []byte(prefix+"\x00"), after, limit, true, func(k, _ []byte) (OrderView, bool, error) {
			_, id := cutLast(k)
			v, found, err := getOrder(orders, string(id))
			if err != nil {
				return v, false, err
			}
			if !found {
				return v, false, fmt.Errorf("%w: order %s indexed but not stored", ErrInconsistent, id)
			}
			return v, matches(v), nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

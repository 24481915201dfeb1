package projections

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
)

// OpenOrderIDs returns the IDs of the orders the read models show open
// (awaiting their deposit, or cancel-reserved), by amount. It reads the
// "orders" projection's index of open orders, as of its checkpoint: an
// order opened or closed since is missing or still listed. Startup repairs
// use it (re-arming timers: commands.Orders.RearmTimers), and load each
// order from the event log before acting on it.
func (s *Store) OpenOrderIDs() ([]domain.OrderID, error) {
	var ids []domain.OrderID
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketOpenByAmount)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, _ []byte) error {
			if len(k) <= 8 {
				return fmt.Errorf("%w: key %x in %s has no order ID", ErrInconsistent, k, bucketOpenByAmount)
			}
			ids = append(ids, domain.OrderID(k[8:]))
			return nil
		})
	})
	return ids, err
}

// OverdueOpenOrders returns the IDs of the open orders whose timer was due
// before before, as the read models show them: a cancel-reserved order's
// cancel_at, an order awaiting its deposit's expires_at (one from before
// payment deadlines has none). It reads them in one transaction and decodes
// only those two times and the status of each, so that a periodic check of
// many open orders stays cheap (the engine's timer-check part). An order
// whose view cannot be read is left out and named in the error, which
// comes with the others.
func (s *Store) OverdueOpenOrders(before time.Time) ([]domain.OrderID, error) {
	var (
		overdue []domain.OrderID
		bad     []error
	)
	err := s.view(func(tx *bbolt.Tx) error {
		open, err := queryBucket(tx, bucketOpenByAmount)
		if err != nil {
			return err
		}
		orders, err := queryBucket(tx, bucketOrders)
		if err != nil {
			return err
		}
		return open.ForEach(func(k, _ []byte) error {
			if len(k) <= 8 {
				bad = append(bad, fmt.Errorf("%w: key %x in %s has no order ID", ErrInconsistent, k, bucketOpenByAmount))
				return nil
			}
			id := k[8:]
			due, err := dueOf(orders.Get(id))
			switch {
			case err != nil:
				bad = append(bad, fmt.Errorf("open order %s: %w", id, err))
			case !due.IsZero() && due.Before(before):
				overdue = append(overdue, domain.OrderID(id))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return overdue, fmt.Errorf("%d open orders could not be read, the first: %w", len(bad), bad[0])
	}
	return overdue, nil
}

// dueOf is when the timer of the open order whose view is raw falls due:
// its cancel_at while cancel-reserved, else its expires_at; zero for none.
func dueOf(raw []byte) (time.Time, error) {
	if raw == nil {
		return time.Time{}, fmt.Errorf("%w: no view", ErrInconsistent)
	}
	var v struct {
		Status    string `json:"status"`
		CancelAt  string `json:"cancel_at"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return time.Time{}, err
	}
	due := v.ExpiresAt
	if v.Status == string(domain.StatusCancelReserved) {
		due = v.CancelAt
	}
	if due == "" {
		return time.Time{}, nil
	}
	at, err := time.Parse(time.RFC3339Nano, due)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: due at %q", ErrInconsistent, due)
	}
	return at, nil
}

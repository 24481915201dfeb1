package projections

import (
	"fmt"

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

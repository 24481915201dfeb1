package reservations

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/internal/kvcas"
	"github.com/bankbook/bankbook/internal/transient"
)

// Unpaid is an order counted against its buyer's limit of unpaid orders.
type Unpaid struct {
	OrderID domain.OrderID `json:"order_id"`
	// AdmittedAt is when the order was admitted: a submit that dies before
	// its order appears leaves an entry that only counts for a while.
	AdmittedAt time.Time `json:"admitted_at"`
}

// unpaidList is the value of a buyer's entry.
type unpaidList struct {
	Orders []Unpaid `json:"orders"`
}

// LimitError is returned by Admit when the buyer already has Limit unpaid
// orders that count.
type LimitError struct {
	BuyerID domain.UserID
	Limit   int
	Orders  []domain.OrderID // the orders that count, oldest first
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("buyer %s has %d unpaid orders, the limit", e.BuyerID, len(e.Orders))
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// ErrLimit matches every *LimitError.
var ErrLimit = errors.New("too many unpaid orders")

// Counts reports whether an admitted order still counts against its
// buyer's limit. It must be monotone: an entry it once reports false for is
// dropped and never counted again. It may be called several times for one
// entry and must have no side effects.
type Counts func(ctx context.Context, u Unpaid) (bool, error)

// unpaidKey is the KV key of a buyer's unpaid orders. Name reservations
// are keyed by bare base64url, which has no '.', so the two never collide.
func unpaidKey(buyer domain.UserID) string {
	return "unpaid." + base64.RawURLEncoding.EncodeToString([]byte(buyer))
}

// Admit adds order to buyer's unpaid orders, unless buyer already has limit
// orders that still count (counts), in which case it returns a
// *LimitError and writes nothing. Entries that no longer count are dropped
// in the same write. Admitting an order already admitted succeeds and
// changes nothing (a retried submit). Two concurrent admits for one buyer
// are serialised by a compare-and-swap on the entry, so the limit holds
// across every engine instance.
func (s *Store) Admit(ctx context.Context, buyer domain.UserID, order domain.OrderID, limit int, counts Counts) error {
	memo := map[domain.OrderID]bool{} // decide may run again after a conflict
	_, err := kvcas.Update(ctx, s.kv, unpaidKey(buyer), &kvcas.Options{CreateFirst: true, Retry: s.retry}, func(cur kvcas.Entry) ([]byte, error) {
		var list unpaidList
		if !cur.Absent() {
			if err := json.Unmarshal(cur.Value, &list); err != nil {
				return nil, fmt.Errorf("unpaid orders of %s: %w", buyer, err)
			}
		}
		if slices.ContainsFunc(list.Orders, func(u Unpaid) bool { return u.OrderID == order }) {
			return nil, kvcas.ErrUnchanged
		}
		kept := list.Orders[:0:0]
		for _, u := range list.Orders {
			c, seen := memo[u.OrderID]
			if !seen {
				var err error
				if c, err = counts(ctx, u); err != nil {
					return nil, err
				}
				memo[u.OrderID] = c
			}
			if c {
				kept = append(kept, u)
			}
		}
		if len(kept) >= limit {
			ids := make([]domain.OrderID, len(kept))
			for i, u := range kept {
				ids[i] = u.OrderID
			}
			return nil, &LimitError{BuyerID: buyer, Limit: limit, Orders: ids}
		}
		return json.Marshal(unpaidList{Orders: append(kept, Unpaid{OrderID: order, AdmittedAt: s.now().UTC()})})
	})
	var le *LimitError
	if err == nil || errors.As(err, &le) {
		return err
	}
	return fmt.Errorf("admit order %s of %s: %w", order, buyer, err)
}

// UnpaidOrders returns the orders admitted for buyer and not yet dropped,
// oldest first (some may no longer count: entries are dropped by Admit).
func (s *Store) UnpaidOrders(ctx context.Context, buyer domain.UserID) ([]Unpaid, error) {
	e, err := transient.Do(ctx, s.retry, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return s.kv.Get(ctx, unpaidKey(buyer)) })
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("unpaid orders of %s: %w", buyer, err)
	}
	var list unpaidList
	if err := json.Unmarshal(e.Value(), &list); err != nil {
		return nil, fmt.Errorf("unpaid orders of %s: %w", buyer, err)
	}
	return list.Orders, nil
}

// Forget drops order from buyer's unpaid orders, for an order that no
// longer counts and never will again (closed longer than the name grace
// ago). An entry left listing no order is purged, with a marker that
// expires after Config.ReleasedTTL like a released name's, so buyers
// without unpaid orders do not accumulate in the bucket; a later Admit
// creates the entry again. Like Admit it is a kvcas.Update of the entry,
// so a concurrent Admit is not lost. Forgetting an order the entry does
// not list does nothing.
func (s *Store) Forget(ctx context.Context, buyer domain.UserID, order domain.OrderID) error {
	_, err := kvcas.Update(ctx, s.kv, unpaidKey(buyer), &kvcas.Options{Retry: s.retry, RemoveTTL: s.releasedTTL}, func(cur kvcas.Entry) ([]byte, error) {
		if cur.Absent() {
			return nil, kvcas.ErrUnchanged
		}
		var list unpaidList
		if err := json.Unmarshal(cur.Value, &list); err != nil {
			return nil, fmt.Errorf("unpaid orders of %s: %w", buyer, err)
		}
		kept := slices.DeleteFunc(slices.Clone(list.Orders), func(u Unpaid) bool { return u.OrderID == order })
		switch {
		case len(kept) == 0:
			return nil, kvcas.ErrRemove
		case len(kept) == len(list.Orders):
			return nil, kvcas.ErrUnchanged
		}
		return json.Marshal(unpaidList{Orders: kept})
	})
	if err != nil {
		return fmt.Errorf("forget order %s of %s: %w", order, buyer, err)
	}
	return nil
}

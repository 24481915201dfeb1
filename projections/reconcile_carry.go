package projections

import (
	"encoding/json"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketReconcileCarry holds the timing differences each reconciliation
// scope's latest run left open, what its next run settles: "bank" NUL
// normalised account number, or "payouts" → JSON of []domain.ReconcileItem,
// each with CarriedFrom set (the run that first reported it).
var bucketReconcileCarry = []byte("reconcile_carry")

// applyReconcileCarry is the "reconcile_carry" projection. A run replaces
// the open items of every scope it covers (a bank run: each account of its
// statement; a payouts run: the provider) with its own timing differences,
// which include those it carried again.
func applyReconcileCarry(buckets []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.ReconciliationCompleted)
	if !ok {
		return nil
	}
	open := map[string][]domain.ReconcileItem{}
	switch e.Kind {
	case domain.ReconcileKindBank:
		for _, a := range e.Accounts {
			open[carryKey(e.Kind, a.AccountNumber)] = []domain.ReconcileItem{}
		}
		for _, it := range e.TimingDifference {
			k := carryKey(e.Kind, it.AccountNumber)
			open[k] = append(open[k], carried(it, e.RunID))
		}
	case domain.ReconcileKindPayouts:
		k := carryKey(e.Kind, "")
		open[k] = []domain.ReconcileItem{}
		for _, it := range e.TimingDifference {
			open[k] = append(open[k], carried(it, e.RunID))
		}
	default:
		return nil
	}
	for k, items := range open {
		raw, err := json.Marshal(items)
		if err != nil {
			return err
		}
		if err := buckets[0].Put([]byte(k), raw); err != nil {
			return err
		}
	}
	return nil
}

func carried(it domain.ReconcileItem, run domain.ReconciliationID) domain.ReconcileItem {
	if it.CarriedFrom == "" {
		it.CarriedFrom = run
	}
	return it
}

func carryKey(kind, account string) string {
	if kind == domain.ReconcileKindBank {
		return kind + "\x00" + domain.NormalizeAccountNumber(account)
	}
	return kind
}

// CarriedTimingDifferences returns the timing differences the latest run of
// a scope left open: kind domain.ReconcileKindBank and an account number,
// or domain.ReconcileKindPayouts (account ignored). None if no run covered
// the scope.
func (s *Store) CarriedTimingDifferences(kind, account string) ([]domain.ReconcileItem, error) {
	var out []domain.ReconcileItem
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketReconcileCarry)
		if err != nil {
			return err
		}
		raw := b.Get([]byte(carryKey(kind, account)))
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &out)
	})
	return out, err
}

package projections

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

var (
	// bucketDeposits maps deposit_id to the JSON of its OrphanView-shaped
	// record (every deposit, whatever its outcome).
	bucketDeposits = []byte("deposits")
	// bucketOrphans indexes the unresolved orphans: deposited_at|deposit_id → deposit_id.
	bucketOrphans = []byte("orphans")
)

// OrphanView is one deposit as the read models hold it, and an entry of the
// orphan queue (bankbook.q.deposit.orphans): the wire type of package api.
// Candidates are filled in from the "candidates" projection when the queue
// or one deposit (Deposit) is queried (they are [] in the stored view); Seq is the stream sequence
// of the last commit applied to the deposit.
type OrphanView = api.OrphanView

// applyDeposits is the "deposits" projection: every deposit into
// bucketDeposits (buckets[0]) and the unresolved orphans into bucketOrphans
// (buckets[1]).
func applyDeposits(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b, idx := buckets[0], buckets[1]
	switch e := ev.(type) {
	case domain.DepositRecorded:
		v := OrphanView{
			DepositID: string(e.DepositID), BankTxnID: e.BankTxnID, AccountNumber: e.AccountNumber,
			DepositorName: e.DepositorName, Amount: e.Amount, DepositedAt: domain.FormatTime(e.DepositedAt),
			Outcome: string(e.Outcome), Reason: string(e.Reason), OrderID: string(e.OrderID), UserID: string(e.UserID), LandedOn: e.LandedOn,
			LinkID: e.LinkID, BillID: e.BillID, Candidates: []string{},
			Seq: api.Seq(c.Seq),
		}
		if err := putJSON(b, v.DepositID, v); err != nil {
			return err
		}
		if e.Outcome == domain.OutcomeOrphaned {
			return idx.Put(orphanKey(v), []byte(v.DepositID))
		}
	case domain.DepositResolved:
		return updateDeposit(b, idx, c.Seq, e.DepositID, func(v *OrphanView) {
			v.Resolution, v.PayoutID = e.Action, string(e.PayoutID)
			v.OrderID = cmp.Or(string(e.OrderID), v.OrderID)
			v.UserID = cmp.Or(string(e.UserID), v.UserID)
		})
	case domain.DepositReopened:
		return updateDeposit(b, idx, c.Seq, e.DepositID, func(v *OrphanView) { v.Resolution, v.PayoutID = "", "" })
	case domain.WalletCredited:
		// An orphan assigned to an order that did not take it as its
		// payment went to the buyer's wallet (a deposit_refund through the
		// order, or an orphan_refund when the order changed meanwhile): the
		// deposit names that wallet, as the resolution's reply did.
		if e.Kind != domain.CreditDepositRefund && e.Kind != domain.CreditOrphanRefund {
			return nil
		}
		// Most such credits are refunds to a wallet an operator chose (or
		// not a deposit's at all): only an assigned deposit's view is
		// decoded. Its JSON holds this member as written here, a string
		// value's quotes being escaped.
		raw := b.Get([]byte(e.Ref))
		if raw == nil || !bytes.Contains(raw, assignedMember) {
			return nil
		}
		var v OrphanView
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		if v.Resolution != domain.ResolveAssignOrder || v.UserID != "" {
			return nil
		}
		return updateDeposit(b, idx, c.Seq, domain.DepositID(e.Ref), func(v *OrphanView) { v.UserID = string(e.UserID) })
	}
	return nil
}

// assignedMember is how a deposit view assigned to an order says so.
var assignedMember = []byte(`"resolution":"` + domain.ResolveAssignOrder + `"`)

func updateDeposit(b, idx *bbolt.Bucket, seq eventstore.Seq, id domain.DepositID, change func(*OrphanView)) error {
	raw := b.Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("%w: event for deposit %s, which was never recorded", ErrInconsistent, id)
	}
	var v OrphanView
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	change(&v)
	v.Seq = api.Seq(seq)
	if err := putJSON(b, v.DepositID, v); err != nil {
		return err
	}
	if v.Waiting() {
		return idx.Put(orphanKey(v), []byte(v.DepositID))
	}
	return idx.Delete(orphanKey(v))
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// getJSON decodes the view stored at key into v; false if there is none.
func getJSON(b *bbolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("view %s: %w", key, err)
	}
	return true, nil
}

// lookup reads the view stored at key in bucket into v, in a read
// transaction of its own; false if there is none.
func lookup(s *Store, bucket []byte, key string, v any) (bool, error) {
	var found bool
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucket)
		if err != nil {
			return err
		}
		found, err = getJSON(b, key, v)
		return err
	})
	return found, err
}

func orphanKey(v OrphanView) []byte { return []byte(v.DepositedAt + "|" + v.DepositID) }

// Deposit returns one deposit's view, with its candidates while it waits
// in the orphan queue ([] otherwise); false if it was never recorded.
func (s *Store) Deposit(id string) (OrphanView, bool, error) {
	var (
		v     OrphanView
		found bool
	)
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketDeposits)
		if err != nil {
			return err
		}
		ranked, err := queryBucket(tx, bucketCandOrphans)
		if err != nil {
			return err
		}
		if found, err = getJSON(b, id, &v); !found || err != nil {
			return err
		}
		v.Candidates, err = candidatesOf(ranked, id)
		return err
	})
	return v, found, err
}

// Orphans returns up to limit unresolved orphan deposits, oldest first, after
// cursor ("" for the first page); next is the following page's cursor, ""
// at the end. Each carries its candidates as the "candidates" projection
// keeps them, so a page costs the same whatever the number of open orders.
func (s *Store) Orphans(limit int, cursor string) ([]OrphanView, string, error) {
	out := []OrphanView{}
	after, err := cursorAfter(cursor, nil)
	if err != nil {
		return nil, "", err
	}
	var next string
	err = s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketDeposits)
		if err != nil {
			return err
		}
		idx, err := queryBucket(tx, bucketOrphans)
		if err != nil {
			return err
		}
		ranked, err := queryBucket(tx, bucketCandOrphans)
		if err != nil {
			return err
		}
		c := idx.Cursor()
		k, id := c.Seek(after)
		if len(after) > 0 && bytes.Equal(k, after) {
			k, id = c.Next()
		}
		var last []byte
		for ; k != nil; k, id = c.Next() {
			if len(out) == limit {
				next = hex.EncodeToString(last)
				return nil
			}
			var o OrphanView
			if err := json.Unmarshal(b.Get(id), &o); err != nil {
				return err
			}
			if o.Candidates, err = candidatesOf(ranked, string(id)); err != nil {
				return err
			}
			out = append(out, o)
			last = k
		}
		return nil
	})
	return out, next, err
}

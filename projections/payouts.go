package projections

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

var (
	// bucketPayouts maps payout_id to the JSON of its PayoutView.
	bucketPayouts = []byte("payouts")
	// bucketPayoutsByStatus lists the payouts by status, and all of them
	// under "*", in order of request (bankbook.q.payout.list): status 0x00
	// requested_at (domain.TimeLayout) 0x00 payout_id → nil.
	bucketPayoutsByStatus = []byte("payouts_by_status")
)

// PayoutView is a payout as bankbook.q.payout.get shows it (the wire type of
// package api); Seq is the stream sequence of the last commit applied to the
// payout.
type PayoutView = api.PayoutView

// applyPayouts is the "payouts" projection: payout events into bucketPayouts
// (buckets[0]) and bucketPayoutsByStatus (buckets[1]).
func applyPayouts(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b, idx := buckets[0], buckets[1]
	switch e := ev.(type) {
	case domain.PayoutRequested:
		var old PayoutView
		found, err := getJSON(b, string(e.PayoutID), &old)
		if err != nil {
			return err
		}
		if found {
			if err := unindexPayout(idx, old); err != nil {
				return err
			}
		}
		at := domain.FormatTime(e.RequestedAt)
		return putPayout(b, idx, PayoutView{
			PayoutID: string(e.PayoutID), Status: string(domain.PayoutRequestedStatus), Amount: e.Amount, To: e.To,
			Source: e.Source, SourceID: e.SourceID, PayFrom: e.PayFrom, RequestedAt: at, UpdatedAt: at, Seq: api.Seq(c.Seq),
		})
	case domain.PayoutSettled:
		return updatePayout(b, idx, c.Seq, e.PayoutID, func(v *PayoutView) {
			v.Status, v.Fee, v.ProviderRef = string(domain.PayoutSettledStatus), e.Fee, e.ProviderRef
			if e.BankAccount != "" {
				v.PayFrom = e.BankAccount // the account it was actually paid from
			}
			v.UpdatedAt = domain.FormatTime(e.SettledAt)
		})
	case domain.PayoutFailed:
		return updatePayout(b, idx, c.Seq, e.PayoutID, func(v *PayoutView) {
			v.Status, v.Failure = string(domain.PayoutFailedStatus), e.Reason
			v.UpdatedAt = domain.FormatTime(e.FailedAt)
		})
	}
	return nil
}

func updatePayout(b, idx *bbolt.Bucket, seq eventstore.Seq, id domain.PayoutID, change func(*PayoutView)) error {
	var v PayoutView
	found, err := getJSON(b, string(id), &v)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for payout %s, which was never requested", ErrInconsistent, id)
	}
	if err := unindexPayout(idx, v); err != nil {
		return err
	}
	change(&v)
	v.Seq = api.Seq(seq)
	return putPayout(b, idx, v)
}

// payoutIndexKeys are a payout's keys in bucketPayoutsByStatus.
func payoutIndexKeys(v PayoutView) [][]byte {
	k := func(prefix string) []byte { return []byte(prefix + "\x00" + v.RequestedAt + "\x00" + v.PayoutID) }
	return [][]byte{k(allStatuses), k(v.Status)}
}

func unindexPayout(idx *bbolt.Bucket, v PayoutView) error {
	for _, k := range payoutIndexKeys(v) {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// putPayout stores the view and its index keys.
func putPayout(b, idx *bbolt.Bucket, v PayoutView) error {
	for _, k := range payoutIndexKeys(v) {
		if err := idx.Put(k, nil); err != nil {
			return err
		}
	}
	return putJSON(b, v.PayoutID, v)
}

// Payouts returns up to limit payouts of status ("" for every status),
// newest request first (ties in payout ID order, descending), after cursor
// ("" for the first page; a cursor that is not hex is ErrBadCursor, and any
// other is a position in the index to continue from), and the next page's
// cursor ("" at the end).
func (s *Store) Payouts(status string, limit int, cursor string) ([]PayoutView, string, error) {
	after, err := cursorAfter(cursor, nil)
	if err != nil {
		return nil, "", err
	}
	prefix := allStatuses
	if status != "" {
		prefix = status
	}
	var (
		out  []PayoutView
		next string
	)
	err = s.view(func(tx *bbolt.Tx) error {
		payouts, err := queryBucket(tx, bucketPayouts)
		if err != nil {
			return err
		}
		idx, err := queryBucket(tx, bucketPayoutsByStatus)
		if err != nil {
			return err
		}
		out, next, err = newestFirst(idx, []byte(prefix+"\x00"), after, max(limit, 1), true, func(k, _ []byte) (PayoutView, bool, error) {
			_, id := cutLast(k)
			var v PayoutView
			found, err := getJSON(payouts, string(id), &v)
			if err == nil && !found {
				err = fmt.Errorf("%w: payout %s indexed but not stored", ErrInconsistent, id)
			}
			return v, err == nil, err
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// Payout returns the view of one payout; false if no such payout has been
// applied yet.
func (s *Store) Payout(id string) (PayoutView, bool, error) {
	var v PayoutView
	found, err := lookup(s, bucketPayouts, id, &v)
	return v, found, err
}

package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketPayoutsByFinal indexes the payouts settled or failed by when:
// settled_at or failed_at (domain.TimeLayout) NUL payout_id → payout_id.
var bucketPayoutsByFinal = []byte("payouts_by_final")

// bucketPayoutsFinalBySeq indexes the same results by the stream sequence
// of the commit that recorded them: seq(8) NUL payout_id → payout_id.
var bucketPayoutsFinalBySeq = []byte("payouts_final_by_seq")

// applyPayoutIndex is the "payout_index" projection, what payout
// reconciliation compares a provider's report with: every payout's result
// by its time (buckets[0]) and by when it was recorded (buckets[1]).
func applyPayoutIndex(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	var id domain.PayoutID
	var at time.Time
	switch e := ev.(type) {
	case domain.PayoutSettled:
		id, at = e.PayoutID, e.SettledAt
	case domain.PayoutFailed:
		id, at = e.PayoutID, e.FailedAt
	default:
		return nil
	}
	if err := buckets[0].Put([]byte(domain.FormatTime(at)+"\x00"+string(id)), []byte(id)); err != nil {
		return err
	}
	k := append(binary.BigEndian.AppendUint64(nil, uint64(c.Seq)), 0)
	return buckets[1].Put(append(k, id...), []byte(id))
}

// PayoutsFinalRecordedAfter returns the payouts whose result was recorded
// by a commit after sequence after, in that order, as
// bankbook.q.payout.get shows them.
func (s *Store) PayoutsFinalRecordedAfter(after eventstore.Seq) ([]PayoutView, error) {
	start := binary.BigEndian.AppendUint64(nil, uint64(after)+1)
	return s.indexedPayouts(bucketPayoutsFinalBySeq, start, func([]byte) bool { return true })
}

// PayoutsFinalIn returns the payouts settled or failed from from to to,
// both inclusive, in that order, as bankbook.q.payout.get shows them.
func (s *Store) PayoutsFinalIn(from, to time.Time) ([]PayoutView, error) {
	last := domain.FormatTime(to)
	return s.indexedPayouts(bucketPayoutsByFinal, []byte(domain.FormatTime(from)), func(k []byte) bool {
		at, _, _ := bytes.Cut(k, []byte{0})
		return string(at) <= last
	})
}

// indexedPayouts returns the payouts an index of payout_index names (its
// values are payout IDs), from key start on while within(key).
func (s *Store) indexedPayouts(index, start []byte, within func(k []byte) bool) ([]PayoutView, error) {
	out := []PayoutView{}
	err := s.view(func(tx *bbolt.Tx) error {
		idx, err := queryBucket(tx, index)
		if err != nil {
			return err
		}
		payouts, err := queryBucket(tx, bucketPayouts)
		if err != nil {
			return err
		}
		c := idx.Cursor()
		for k, id := c.Seek(start); k != nil && within(k); k, id = c.Next() {
			raw := payouts.Get(id)
			if raw == nil {
				continue // the payouts projection has not applied it yet
			}
			var v PayoutView
			if err := json.Unmarshal(raw, &v); err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

package projections

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketPayouts maps payout_id to the JSON of its PayoutView.
var bucketPayouts = []byte("payouts")

// PayoutView is a payout as bankbook.q.payout.get shows it (the wire type of
// package api); Seq is the stream sequence of the last commit applied to the
// payout.
type PayoutView = api.PayoutView

// applyPayouts is the "payouts" projection: payout events into bucketPayouts
// (buckets[0]).
func applyPayouts(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	b := buckets[0]
	switch e := ev.(type) {
	case domain.PayoutRequested:
		at := domain.FormatTime(e.RequestedAt)
		return putJSON(b, string(e.PayoutID), PayoutView{
			PayoutID: string(e.PayoutID), Status: string(domain.PayoutRequestedStatus), Amount: e.Amount, To: e.To,
			Source: e.Source, SourceID: e.SourceID, PayFrom: e.PayFrom, RequestedAt: at, UpdatedAt: at, Seq: api.Seq(c.Seq),
		})
	case domain.PayoutSettled:
		return updatePayout(b, c.Seq, e.PayoutID, func(v *PayoutView) {
			v.Status, v.Fee, v.ProviderRef = string(domain.PayoutSettledStatus), e.Fee, e.ProviderRef
			if e.BankAccount != "" {
				v.PayFrom = e.BankAccount // the account it was actually paid from
			}
			v.UpdatedAt = domain.FormatTime(e.SettledAt)
		})
	case domain.PayoutFailed:
		return updatePayout(b, c.Seq, e.PayoutID, func(v *PayoutView) {
			v.Status, v.Failure = string(domain.PayoutFailedStatus), e.Reason
			v.UpdatedAt = domain.FormatTime(e.FailedAt)
		})
	}
	return nil
}

func updatePayout(b *bbolt.Bucket, seq eventstore.Seq, id domain.PayoutID, change func(*PayoutView)) error {
	var v PayoutView
	found, err := getJSON(b, string(id), &v)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: event for payout %s, which was never requested", ErrInconsistent, id)
	}
	change(&v)
	v.Seq = api.Seq(seq)
	return putJSON(b, v.PayoutID, v)
}

// Payout returns the view of one payout; false if no such payout has been
// applied yet.
func (s *Store) Payout(id string) (PayoutView, bool, error) {
	var v PayoutView
	found, err := lookup(s, bucketPayouts, id, &v)
	return v, found, err
}

package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The "store_payments" projection: every store payment (billed or not),
// from store.payment_received, listed by distributor and by store, oldest
// first. Each entry is a BillPayment with its distributor, store and bill
// (when billed), and the fee, net and settlement date the event recorded.
var (
	// bucketPaymentsByDistributor: distributor_id 0x00 paid_at(8) deposit_id
	// → JSON of BillPayment.
	bucketPaymentsByDistributor = []byte("store_payments_by_distributor")
	// bucketPaymentsByStore: store_id 0x00 paid_at(8) deposit_id → JSON of
	// BillPayment (a store's payments to every distributor).
	bucketPaymentsByStore = []byte("store_payments_by_store")
)

// paidAtLen is the length of the paid_at part of a payment key: Unix
// microseconds (paid_at's precision, domain.TimeLayout) as a big-endian
// uint64 with the sign bit flipped, so that byte order is time order.
const paidAtLen = 8

func paidAtBytes(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro())^(1<<63))
}

// boundBytes is paidAtBytes of a range bound of any precision, rounded up
// to whole microseconds: a paid_at (whole microseconds) is at or after t
// exactly when it is at or after the rounded bound.
func boundBytes(t time.Time) []byte {
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		t = r.Add(time.Microsecond)
	}
	return paidAtBytes(t)
}

// paymentKey is id 0x00 paid_at(8) deposit_id: one contiguous range per
// id, ordered by paid_at then deposit_id. A deposit is paid to one link
// once, so the key is unique.
func paymentKey(id string, paidAt time.Time, deposit domain.DepositID) []byte {
	k := make([]byte, 0, len(id)+1+paidAtLen+len(deposit))
	k = append(k, id...)
	k = append(k, 0)
	k = append(k, paidAtBytes(paidAt)...)
	return append(k, deposit...)
}

// applyStorePayments is the "store_payments" projection:
// store.payment_received into bucketPaymentsByDistributor (buckets[0]) and
// bucketPaymentsByStore (buckets[1]).
func applyStorePayments(buckets []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.StorePaymentReceived)
	if !ok {
		return nil
	}
	raw, err := json.Marshal(BillPayment{
		DepositID: string(e.DepositID), DistributorID: string(e.DistributorID), StoreID: string(e.StoreID), BillID: e.BillID,
		Amount: e.Amount, Fee: e.Fee, Net: e.Net, PaidAt: domain.FormatTime(e.PaidAt), SettlementDate: e.SettlementDate,
	})
	if err != nil {
		return err
	}
	if err := buckets[0].Put(paymentKey(string(e.DistributorID), e.PaidAt, e.DepositID), raw); err != nil {
		return err
	}
	return buckets[1].Put(paymentKey(string(e.StoreID), e.PaidAt, e.DepositID), raw)
}

// PaymentsByDistributor returns up to limit of the payments a
// distributor's stores made (bankbook.q.payment.by_distributor), billed
// and unbilled, ordered by paid_at then deposit_id, after cursor ("" for
// the first page). from (inclusive) and to (exclusive), when not nil,
// bound paid_at, at any precision. NextCursor is the following page's
// cursor, "" at the end; pass the same from and to with it. A limit below
// 1 means 1; a cursor this method did not hand out is ErrBadCursor.
func (s *Store) PaymentsByDistributor(distributorID string, from, to *time.Time, limit int, cursor string) (api.PaymentsReply, error) {
	return s.payments(bucketPaymentsByDistributor, distributorID, from, to, limit, cursor)
}

// PaymentsByStore returns up to limit of the payments a store made to any
// of its distributors (bankbook.q.payment.by_store), ordered by paid_at
// then deposit_id, after cursor, as PaymentsByDistributor does.
func (s *Store) PaymentsByStore(storeID string, limit int, cursor string) (api.PaymentsReply, error) {
	return s.payments(bucketPaymentsByStore, storeID, nil, nil, limit, cursor)
}

func (s *Store) payments(bucket []byte, id string, from, to *time.Time, limit int, cursor string) (api.PaymentsReply, error) {
	out := api.PaymentsReply{Payments: []BillPayment{}}
	limit = max(limit, 1)
	after, err := cursorAfter(cursor, func(after []byte) bool { return len(after) > paidAtLen })
	if err != nil {
		return api.PaymentsReply{}, err
	}
	prefix := append([]byte(id), 0)
	start := append(bytes.Clone(prefix), after...)
	if from != nil {
		if lo := append(bytes.Clone(prefix), boundBytes(*from)...); bytes.Compare(lo, start) > 0 {
			start, after = lo, nil
		}
	}
	var end []byte // the first key past the range; nil: the prefix's end
	if to != nil {
		end = append(bytes.Clone(prefix), boundBytes(*to)...)
	}
	err = s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucket)
		if err != nil {
			return err
		}
		c := b.Cursor()
		k, raw := c.Seek(start)
		if len(after) > 0 && bytes.Equal(k, start) {
			k, raw = c.Next()
		}
		var (
			last []byte
			size pageBytes
		)
		for ; k != nil && bytes.HasPrefix(k, prefix) && (end == nil || bytes.Compare(k, end) < 0); k, raw = c.Next() {
			// A payment is stored as the JSON its reply carries.
			if len(out.Payments) == limit || !size.fits(len(out.Payments), len(raw)) {
				out.NextCursor = hex.EncodeToString(last)
				return nil
			}
			var p BillPayment
			if err := json.Unmarshal(raw, &p); err != nil {
				return fmt.Errorf("payment %x: %w", k, err)
			}
			out.Payments = append(out.Payments, p)
			last = k[len(prefix):]
		}
		return nil
	})
	if err != nil {
		return api.PaymentsReply{}, err
	}
	return out, nil
}

// The "settlements" projection: per distributor and settlement date, the
// sums of the payments that settle then, from store.payment_received. The
// fee, net and date are the ones each event recorded (the fee rate and the
// schedule of the day it was received), never recomputed from today's
// configuration.
//
// bucketSettlements maps distributor_id 0x00 date (YYYY-MM-DD) → JSON of
// Settlement {date, gross, fee, net, payments}.
var bucketSettlements = []byte("settlements")

// Settlement is what a distributor is paid on one date (the wire type of
// package api).
type Settlement = api.Settlement

// applySettlements is the "settlements" projection: store.payment_received
// into bucketSettlements (buckets[0]).
func applySettlements(buckets []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.StorePaymentReceived)
	if !ok {
		return nil
	}
	if _, err := time.Parse(domain.DateLayout, e.SettlementDate); err != nil {
		return fmt.Errorf("%w: payment %s: settlement date %q", ErrInconsistent, e.DepositID, e.SettlementDate)
	}
	b := buckets[0]
	key := string(pairKey(string(e.DistributorID), e.SettlementDate))
	sum := Settlement{Date: e.SettlementDate}
	if _, err := getJSON(b, key, &sum); err != nil {
		return err
	}
	sum.Gross += e.Amount
	sum.Fee += e.Fee
	sum.Net += e.Net
	sum.Payments++
	return putJSON(b, key, sum)
}

// Settlements returns what a distributor is paid, by settlement date,
// oldest first (bankbook.q.settlement.expected): every date on which a
// payment it received settles, past dates included (the query is the
// caller's to cut at today). A distributor without payments has none.
func (s *Store) Settlements(distributorID string) (api.SettlementReply, error) {
	out := api.SettlementReply{DistributorID: distributorID, Settlements: []Settlement{}}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketSettlements)
		if err != nil {
			return err
		}
		prefix := append([]byte(distributorID), 0)
		c := b.Cursor()
		for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			var v Settlement
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("settlement %s: %w", k[len(prefix):], err)
			}
			out.Settlements = append(out.Settlements, v)
		}
		return nil
	})
	if err != nil {
		return api.SettlementReply{}, err
	}
	return out, nil
}

package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The "bills" projection: every bill of every link, its payments, and which
// bill is current for each (distributor, store) pair. It follows the link
// aggregate's events (bill.issued, bill.expired, bill.cancelled and the
// billed store.payment_received); bill.reminded changes no view.
//
// A bill's figures (paid_amount, outstanding, status) are the ones recorded
// in its events, never recomputed: a payment sets them to the event's
// bill_paid_amount, bill_outstanding and bill_status, an expiry to the
// expired event's paid_amount and outstanding. A closed bill (expired or
// cancelled) keeps the outstanding it had when it closed; a payment comes
// to it after that only when recorded late (paid while the bill was
// current), and keeps its closed status.
var (
	// bucketBills maps bill_id to the JSON of its BillView, with
	// "payments": [] (the payments are in bucketBillPayments, so a bill
	// that receives many payments is not rewritten whole for each).
	bucketBills = []byte("bills")
	// bucketBillPayments holds each bill's payments in the order they were
	// recorded: bill_id 0x00 seq(8) version(4) → JSON of BillPayment
	// (deposit_id, amount, fee, net, paid_at, settlement_date).
	bucketBillPayments = []byte("bill_payments")
	// bucketBillsCurrent indexes the current bills (active, partially paid
	// or paid, not yet superseded or cancelled) by distributor, in store
	// order: distributor_id 0x00 store_id → bill_id. A pair has at most one
	// current bill, and a new bill for a store takes its predecessor's
	// place, so a page cursor stays valid while bills are issued.
	bucketBillsCurrent = []byte("bills_current")
)

// BillView is a bill as bankbook.q.bill.get and bankbook.q.bill.active
// answer it (the wire type of package api). Seq is the stream sequence of
// the last commit that changed the bill.
type BillView = api.BillView

// BillPayment is one payment to a bill, or one entry of the payment lists.
type BillPayment = api.BillPayment

// applyBills is the "bills" projection: bills into bucketBills
// (buckets[0]), their payments into bucketBillPayments (buckets[1]) and the
// current bills into bucketBillsCurrent (buckets[2]).
func applyBills(buckets []*bbolt.Bucket, c eventstore.Commit, env eventstore.Envelope, ev domain.Event) error {
	bills, payments, current := buckets[0], buckets[1], buckets[2]
	switch e := ev.(type) {
	case domain.BillIssued:
		if bills.Get([]byte(e.BillID)) != nil {
			return fmt.Errorf("%w: bill %s issued twice", ErrInconsistent, e.BillID)
		}
		key := pairKey(string(e.DistributorID), string(e.StoreID))
		if other := current.Get(key); other != nil {
			return fmt.Errorf("%w: bill %s issued while bill %s is current for store %s", ErrInconsistent, e.BillID, other, e.StoreID)
		}
		if err := current.Put(key, []byte(e.BillID)); err != nil {
			return err
		}
		return putJSON(bills, e.BillID, BillView{
			BillID: e.BillID, LinkID: e.LinkID, DistributorID: string(e.DistributorID), StoreID: string(e.StoreID),
			StoreName: e.StoreName, DistributorName: e.DistributorName, Amount: e.Amount, Outstanding: e.Amount, Status: string(domain.BillStatusActive),
			Memo: e.Memo, DedicatedAccount: e.DedicatedAccount, IssuedAt: domain.FormatTime(e.IssuedAt),
			Payments: []BillPayment{}, Seq: api.Seq(c.Seq),
		})
	case domain.BillExpired:
		return closeBill(bills, current, c.Seq, e.BillID, func(v *BillView) {
			v.Status = string(domain.BillStatusExpired)
			v.PaidAmount, v.Outstanding = e.PaidAmount, e.Outstanding
			v.ClosedAt, v.SupersededBy = domain.FormatTime(e.ExpiredAt), e.SupersededBy
		})
	case domain.BillCancelled:
		return closeBill(bills, current, c.Seq, e.BillID, func(v *BillView) {
			v.Status = string(domain.BillStatusCancelled)
			v.PaidAmount, v.Outstanding = e.PaidAmount, domain.BillOutstanding(e.Amount, e.PaidAmount)
			v.ClosedAt = domain.FormatTime(e.CancelledAt)
		})
	case domain.StorePaymentReceived:
		if e.BillID == "" {
			return nil // unbilled: in the payment lists and the settlements only
		}
		// A payment recorded late goes to the bill current when it was
		// paid, which may have expired or been cancelled since: it keeps
		// its status (the event's) and gains the payment.
		v, err := issuedBill(bills, e.BillID)
		if err != nil {
			return err
		}
		if !domain.BillStatus(v.Status).Current() && e.BillStatus != domain.BillStatus(v.Status) {
			return fmt.Errorf("%w: payment %s for bill %s as %s, which is %s", ErrInconsistent, e.DepositID, e.BillID, e.BillStatus, v.Status)
		}
		v.PaidAmount, v.Outstanding, v.Status = e.BillPaidAmount, e.BillOutstanding, string(e.BillStatus)
		v.PaymentCount++
		v.Seq = api.Seq(c.Seq)
		if err := putJSON(bills, v.BillID, v); err != nil {
			return err
		}
		raw, err := json.Marshal(BillPayment{
			DepositID: string(e.DepositID), Amount: e.Amount, Fee: e.Fee, Net: e.Net,
			PaidAt: domain.FormatTime(e.PaidAt), SettlementDate: e.SettlementDate,
		})
		if err != nil {
			return err
		}
		return payments.Put(billPaymentKey(e.BillID, c.Seq, env.Version), raw)
	}
	return nil
}

// issuedBill reads a bill that must exist.
func issuedBill(bills *bbolt.Bucket, id string) (BillView, error) {
	var v BillView
	found, err := getJSON(bills, id, &v)
	switch {
	case err != nil:
		return BillView{}, err
	case !found:
		return BillView{}, fmt.Errorf("%w: event for bill %s, which was never issued", ErrInconsistent, id)
	}
	return v, nil
}

// currentBill reads a bill that must exist and be current.
func currentBill(bills *bbolt.Bucket, id string) (BillView, error) {
	v, err := issuedBill(bills, id)
	if err == nil && !domain.BillStatus(v.Status).Current() {
		return BillView{}, fmt.Errorf("%w: event for bill %s, which is %s", ErrInconsistent, id, v.Status)
	}
	return v, err
}

// closeBill expires or cancels a current bill: it changes the view and
// takes the bill out of the index of current bills.
func closeBill(bills, current *bbolt.Bucket, seq eventstore.Seq, id string, change func(*BillView)) error {
	v, err := currentBill(bills, id)
	if err != nil {
		return err
	}
	change(&v)
	v.Seq = api.Seq(seq)
	if err := putJSON(bills, v.BillID, v); err != nil {
		return err
	}
	key := pairKey(v.DistributorID, v.StoreID)
	if !bytes.Equal(current.Get(key), []byte(id)) {
		return fmt.Errorf("%w: bill %s is not the current bill of store %s", ErrInconsistent, id, v.StoreID)
	}
	return current.Delete(key)
}

// pairKey is the key a 0x00 b (distributor_id and store_id, or
// distributor_id and a date): the entries of one a are one contiguous
// range, in the order of b. IDs never contain 0x00 (domain.ValidateID).
func pairKey(distributor, store string) []byte {
	k := make([]byte, 0, len(distributor)+1+len(store))
	k = append(k, distributor...)
	k = append(k, 0)
	return append(k, store...)
}

// billPaymentKey is bill_id 0x00 seq version: a bill's payments are one
// contiguous range, in the order they were recorded.
func billPaymentKey(bill string, seq eventstore.Seq, version int) []byte {
	k := make([]byte, 0, len(bill)+1+12)
	k = append(k, bill...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	return binary.BigEndian.AppendUint32(k, uint32(version))
}

// withPayments fills v.Payments from bucketBillPayments with the bill's
// most recent api.MaxBillPayments payments, in the order they were
// recorded (never nil): a view stays small enough for one NATS message
// however often a store pays. v.PaymentCount, kept in the stored view,
// counts them all.
func withPayments(payments *bbolt.Bucket, v *BillView) error {
	newest, _, err := newestFirst(payments, append([]byte(v.BillID), 0), nil, api.MaxBillPayments, false, func(_, raw []byte) (BillPayment, bool, error) {
		var p BillPayment
		if err := json.Unmarshal(raw, &p); err != nil {
			return p, false, fmt.Errorf("bill %s payment: %w", v.BillID, err)
		}
		return p, true, nil
	})
	if err != nil {
		return err
	}
	slices.Reverse(newest)
	v.Payments = newest
	return nil
}

// Bill returns the view of one bill with its recent payments (bankbook.q.bill.get);
// false if no such bill has been issued.
func (s *Store) Bill(billID string) (BillView, bool, error) {
	var (
		v     BillView
		found bool
	)
	err := s.view(func(tx *bbolt.Tx) error {
		bills, err := queryBucket(tx, bucketBills)
		if err != nil {
			return err
		}
		payments, err := queryBucket(tx, bucketBillPayments)
		if err != nil {
			return err
		}
		if found, err = getJSON(bills, billID, &v); !found || err != nil {
			return err
		}
		return withPayments(payments, &v)
	})
	if err != nil || !found {
		return BillView{}, false, err
	}
	return v, true, nil
}

// ActiveBills returns up to limit of a distributor's current bills
// (bankbook.q.bill.active: active, partially paid or paid, not superseded
// or cancelled), each with its payments, in store_id order, after cursor
// ("" for the first page); NextCursor is the following page's cursor, ""
// at the end. Ordering by store keeps a cursor valid while bills are
// issued: a store's new bill takes the place of the one it supersedes. A
// limit below 1 means 1; a cursor this method did not hand out is
// ErrBadCursor.
func (s *Store) ActiveBills(distributorID string, limit int, cursor string) (api.ActiveBillsReply, error) {
	bills, next, err := storePage(s, bucketBillsCurrent, distributorID, limit, cursor, func(tx *bbolt.Tx, id []byte) (BillView, error) {
		var v BillView
		b, err := queryBucket(tx, bucketBills)
		if err != nil {
			return v, err
		}
		payments, err := queryBucket(tx, bucketBillPayments)
		if err != nil {
			return v, err
		}
		found, err := getJSON(b, string(id), &v)
		if err != nil {
			return v, err
		}
		if !found {
			return v, fmt.Errorf("%w: current bill %s has no view", ErrInconsistent, id)
		}
		return v, withPayments(payments, &v)
	})
	return api.ActiveBillsReply{Bills: bills, NextCursor: next}, err
}

// StoreBills returns up to limit of the bills of a store's link to a
// distributor (bankbook.q.bill.list), each with its recent payments,
// newest first, after cursor ("" for the first page: the number of the
// last bill of the previous page); NextCursor is the following page's
// cursor, "" at the end. linked is false when the read models hold no
// link of the pair. A limit below 1 means 1; a cursor this method did not
// hand out is ErrBadCursor.
func (s *Store) StoreBills(distributorID, storeID string, limit int, cursor string) (out api.BillListReply, linked bool, err error) {
	out = api.BillListReply{Bills: []BillView{}}
	limit = max(limit, 1)
	before := math.MaxInt
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 1 || strconv.Itoa(n) != cursor {
			return api.BillListReply{}, false, fmt.Errorf("%w: cursor", ErrBadCursor)
		}
		before = n
	}
	err = s.view(func(tx *bbolt.Tx) error {
		links, err := queryBucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		bills, err := queryBucket(tx, bucketBills)
		if err != nil {
			return err
		}
		payments, err := queryBucket(tx, bucketBillPayments)
		if err != nil {
			return err
		}
		var link StoreView
		if linked, err = getJSON(links, string(pairKey(distributorID, storeID)), &link); !linked || err != nil {
			return err
		}
		// Bill IDs end in their number, unpadded: gather the numbers, then
		// take them newest first.
		prefix := []byte(domain.BillID(link.LinkID, 1))
		prefix = prefix[:len(prefix)-1]
		var numbers []int
		c := bills.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if _, n, err := domain.ParseBillID(string(k)); err == nil && n < before {
				numbers = append(numbers, n)
			}
		}
		slices.Sort(numbers)
		slices.Reverse(numbers)
		var size pageBytes
		for i, n := range numbers {
			if i == limit {
				out.NextCursor = strconv.Itoa(numbers[i-1])
				return nil
			}
			var v BillView
			if _, err := getJSON(bills, domain.BillID(link.LinkID, n), &v); err != nil {
				return err
			}
			if err := withPayments(payments, &v); err != nil {
				return err
			}
			if fits, err := size.fitsItem(len(out.Bills), v); err != nil || !fits {
				out.NextCursor = strconv.Itoa(numbers[i-1])
				return err
			}
			out.Bills = append(out.Bills, v)
		}
		return nil
	})
	if err != nil {
		return api.BillListReply{}, false, err
	}
	return out, linked, nil
}

// storePage reads a page of a distributor's entries of bucket, keyed
// distributor_id 0x00 store_id, in store_id order, after cursor: "" for
// the first page, else the hex of the store ID a page ended on (anything
// that is not is ErrBadCursor). item makes each entry's value an item, in
// the read transaction tx. The page ends after limit items (below 1 means
// 1) or before the first that would take it past what a reply carries
// (pageBytes); next is the following page's cursor, "" when the
// distributor has no more. Ordering by store keeps a cursor valid while
// entries are added.
func storePage[T any](s *Store, bucket []byte, distributorID string, limit int, cursor string, item func(tx *bbolt.Tx, v []byte) (T, error)) (items []T, next string, err error) {
	after, err := cursorAfter(cursor, func(after []byte) bool { return domain.ValidateID("cursor", string(after)) == nil })
	if err != nil {
		return nil, "", err
	}
	limit = max(limit, 1)
	items = []T{}
	err = s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucket)
		if err != nil {
			return err
		}
		prefix := append([]byte(distributorID), 0)
		start := append(bytes.Clone(prefix), after...)
		c := b.Cursor()
		k, v := c.Seek(start)
		if len(after) > 0 && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		var (
			last []byte
			size pageBytes
		)
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(items) == limit {
				next = hex.EncodeToString(last)
				return nil
			}
			it, err := item(tx, v)
			if err != nil {
				return err
			}
			if fits, err := size.fitsItem(len(items), it); err != nil || !fits {
				next = hex.EncodeToString(last)
				return err
			}
			items = append(items, it)
			last = k[len(prefix):]
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// The "links" projection: the links of each distributor, from
// store.linked and store.renamed.
//
// bucketLinks maps distributor_id 0x00 store_id → the JSON of its
// StoreView.
var bucketLinks = []byte("links_by_distributor")

// StoreView is a link as bankbook.q.store.get and bankbook.q.store.list
// show it.
type StoreView = api.StoreView

// applyLinks is the "links" projection: store.linked and store.renamed
// into bucketLinks (buckets[0]). A pair is linked once; the link ID is
// derived from the pair.
func applyLinks(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	links := buckets[0]
	switch e := ev.(type) {
	case domain.StoreLinked:
		key := pairKey(string(e.DistributorID), string(e.StoreID))
		if links.Get(key) != nil {
			return fmt.Errorf("%w: store %s linked twice to distributor %s", ErrInconsistent, e.StoreID, e.DistributorID)
		}
		return putJSON(links, string(key), StoreView{
			LinkedStore: api.LinkedStore{
				LinkID: e.LinkID, DistributorID: string(e.DistributorID), StoreID: string(e.StoreID), StoreName: e.StoreName,
				DistributorName: e.DistributorName, DedicatedAccount: e.DedicatedAccount, LinkedAt: domain.FormatTime(e.LinkedAt),
			},
			Seq: api.Seq(c.Seq),
		})
	case domain.StoreRenamed:
		key := string(pairKey(string(e.DistributorID), string(e.StoreID)))
		var v StoreView
		found, err := getJSON(links, key, &v)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: store %s of distributor %s renamed before it was linked", ErrInconsistent, e.StoreID, e.DistributorID)
		}
		v.StoreName, v.DistributorName, v.RenamedAt, v.Seq = e.StoreName, e.DistributorName, domain.FormatTime(e.RenamedAt), api.Seq(c.Seq)
		return putJSON(links, key, v)
	}
	return nil
}

// StoresOf returns the store IDs of every link of a distributor, in
// store_id order (the keys alone: a link's ID derives from its pair); none
// (an empty slice) for a distributor that has linked no store. The
// bill.remind_unpaid command visits them.
func (s *Store) StoresOf(distributorID string) ([]string, error) {
	out := []string{}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketLinks)
		if err != nil {
			return err
		}
		prefix := append([]byte(distributorID), 0)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StoreLink returns the link of a distributor and a store; false when the
// pair is not linked.
func (s *Store) StoreLink(distributorID, storeID string) (StoreView, bool, error) {
	var v StoreView
	found, err := lookup(s, bucketLinks, string(pairKey(distributorID, storeID)), &v)
	return v, found, err
}

// StoreLinks returns up to limit of a distributor's links
// (bankbook.q.store.list), in store_id order, after cursor ("" for the
// first page); NextCursor is the following page's cursor, "" at the end. A
// limit below 1 means 1; a cursor this method did not hand out is
// ErrBadCursor.
func (s *Store) StoreLinks(distributorID string, limit int, cursor string) (api.StoreListReply, error) {
	stores, next, err := storePage(s, bucketLinks, distributorID, limit, cursor, func(_ *bbolt.Tx, raw []byte) (StoreView, error) {
		var v StoreView
		if err := json.Unmarshal(raw, &v); err != nil {
			return v, fmt.Errorf("link view of distributor %s: %w", distributorID, err)
		}
		return v, nil
	})
	return api.StoreListReply{Stores: stores, NextCursor: next}, err
}

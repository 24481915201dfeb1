package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The "series" projection (bankbook.q.ledger.series): for each account that
// holds open items (api.SeriesAccounts: suspense and payouts pending), the
// items open now and one point per commit that changed the account — its
// balance, how many items are open and since when the oldest is — from
// which the console draws the account's balance and age over time.
//
// Items open and close the way the audit's clearing check has them
// (audit/fold.go): an orphan deposit opens in suspense (key: deposit ID)
// and closes when its money moves (order.paid or wallet.credited from
// suspense, or deposit.resolved to the bank, which opens the payout in
// payouts pending); a payout opens in payouts pending (key: payout ID) and
// closes when it settles or its money returns (wallet.credited of a
// reversal, deposit.reopened, which opens the deposit again). Balances are
// the ledger's (domain.Postings), debit-positive.
var (
	// bucketSeriesState maps an account to its balance (int64) and its
	// open items (uint64), 16 bytes big-endian.
	bucketSeriesState = []byte("series_state")
	// bucketSeriesOpen holds the open items: account 0x00 key → JSON of
	// api.OpenItem.
	bucketSeriesOpen = []byte("series_open")
	// bucketSeriesOpenBySince orders them by age: account 0x00 since
	// (domain.TimeLayout) 0x00 key → nil.
	bucketSeriesOpenBySince = []byte("series_open_by_since")
	// bucketSeriesPoints holds the points: account 0x00 seq(8) → JSON of
	// api.SeriesPoint.
	bucketSeriesPoints = []byte("series_points")
)

// SeriesPoint is an account's state after one commit; OpenItem one item
// it holds (the wire types of package api).
type (
	SeriesPoint = api.SeriesPoint
	OpenItem    = api.OpenItem
)

// seriesState is an account's running state.
type seriesState struct {
	balance int64
	open    uint64
}

func getSeriesState(b *bbolt.Bucket, account string) seriesState {
	v := b.Get([]byte(account))
	if len(v) != 16 {
		return seriesState{}
	}
	return seriesState{balance: int64(binary.BigEndian.Uint64(v)), open: binary.BigEndian.Uint64(v[8:])}
}

func putSeriesState(b *bbolt.Bucket, account string, st seriesState) error {
	v := binary.BigEndian.AppendUint64(nil, uint64(st.balance))
	return b.Put([]byte(account), binary.BigEndian.AppendUint64(v, st.open))
}

// seriesAccounts are the accounts the series follows, in the order their
// points are written.
var seriesAccounts = api.SeriesAccounts()

func seriesKey(account, rest string) []byte { return []byte(account + "\x00" + rest) }

// applySeries is the "series" projection: bucketSeriesState (buckets[0]),
// bucketSeriesOpen (buckets[1]), bucketSeriesOpenBySince (buckets[2]) and
// bucketSeriesPoints (buckets[3]). The events of one commit write one point
// per account: each event rewrites the commit's point.
func applySeries(buckets []*bbolt.Bucket, c eventstore.Commit, e eventstore.Envelope, ev domain.Event) error {
	postings, mv := domain.Postings(ev), domain.Clearing(ev)
	if mv == (domain.ClearingMove{}) && !slices.ContainsFunc(postings, func(p domain.Posting) bool {
		return api.IsSeriesAccount(p.Debit) || api.IsSeriesAccount(p.Credit)
	}) {
		return nil // most events: nothing to write, nothing to allocate
	}
	state, open, bySince, points := buckets[0], buckets[1], buckets[2], buckets[3]
	touched := map[string]*seriesState{}
	get := func(account string) *seriesState {
		if st := touched[account]; st != nil {
			return st
		}
		st := getSeriesState(state, account)
		touched[account] = &st
		return &st
	}
	for _, p := range postings {
		if api.IsSeriesAccount(p.Debit) {
			get(p.Debit).balance += p.Amount
		}
		if api.IsSeriesAccount(p.Credit) {
			get(p.Credit).balance -= p.Amount
		}
	}
	if cl := mv.Close; cl.Account != "" {
		closed, err := closeItem(open, bySince, cl.Account, cl.Key)
		if err != nil {
			return err
		}
		if closed {
			get(cl.Account).open--
		}
	}
	if o := mv.Open; o.Account != "" {
		since := o.Since
		if since.IsZero() {
			since = e.OccurredAt
		}
		// An item opened again (audit replaces it too) is counted once.
		reopened, err := closeItem(open, bySince, o.Account, o.Key)
		if err != nil {
			return err
		}
		it := OpenItem{Key: o.Key, Amount: o.Amount, Since: domain.FormatTime(since)}
		if err := putJSON(open, string(seriesKey(o.Account, it.Key)), it); err != nil {
			return err
		}
		if err := bySince.Put(seriesKey(o.Account, it.Since+"\x00"+it.Key), nil); err != nil {
			return err
		}
		if !reopened {
			get(o.Account).open++
		}
	}
	for _, account := range seriesAccounts { // a fixed order: the same bytes on every rebuild
		st := touched[account]
		if st == nil {
			continue
		}
		if err := putSeriesState(state, account, *st); err != nil {
			return err
		}
		p := SeriesPoint{Seq: api.Seq(c.Seq), At: domain.FormatTime(e.OccurredAt), Balance: st.balance, OpenCount: int(st.open)}
		prefix := seriesKey(account, "")
		if k, _ := bySince.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			since, _, _ := strings.Cut(string(k[len(prefix):]), "\x00")
			p.OldestOpenSince = since
		}
		if err := putJSON(points, string(binary.BigEndian.AppendUint64(prefix, uint64(c.Seq))), p); err != nil {
			return err
		}
	}
	return nil
}

// closeItem removes an open item; false if it was not open.
func closeItem(open, bySince *bbolt.Bucket, account, key string) (bool, error) {
	var it OpenItem
	found, err := getJSON(open, string(seriesKey(account, key)), &it)
	if err != nil || !found {
		return false, err
	}
	if err := bySince.Delete(seriesKey(account, it.Since+"\x00"+key)); err != nil {
		return false, err
	}
	return true, open.Delete(seriesKey(account, key))
}

// LedgerSeries returns an account's most recent limit points, oldest first,
// up to maxItems of the items it holds open now, oldest first, how many it
// holds, and the sequence the series has applied. An account the series
// does not follow (api.IsSeriesAccount) has no points and no items.
func (s *Store) LedgerSeries(account string, limit, maxItems int) (api.LedgerSeriesReply, error) {
	out := api.LedgerSeriesReply{Account: account, Points: []SeriesPoint{}, OpenItems: []OpenItem{}}
	err := s.view(func(tx *bbolt.Tx) error {
		out.AsOfSeq = api.Seq(s.bucketCheckpoint(tx, bucketSeriesPoints))
		state, err := queryBucket(tx, bucketSeriesState)
		if err != nil {
			return err
		}
		open, err := queryBucket(tx, bucketSeriesOpen)
		if err != nil {
			return err
		}
		bySince, err := queryBucket(tx, bucketSeriesOpenBySince)
		if err != nil {
			return err
		}
		points, err := queryBucket(tx, bucketSeriesPoints)
		if err != nil {
			return err
		}
		out.OpenCount = int(getSeriesState(state, account).open)
		prefix := seriesKey(account, "")
		newest, _, err := newestFirst(points, prefix, nil, max(limit, 1), false, func(k, v []byte) (SeriesPoint, bool, error) {
			var p SeriesPoint
			if err := json.Unmarshal(v, &p); err != nil {
				return p, false, fmt.Errorf("series point %q: %w", k, err)
			}
			return p, true, nil
		})
		if err != nil {
			return err
		}
		for i := len(newest) - 1; i >= 0; i-- {
			out.Points = append(out.Points, newest[i])
		}
		c := bySince.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out.OpenItems) < maxItems; k, _ = c.Next() {
			_, key := cutLast(k)
			var it OpenItem
			found, err := getJSON(open, string(seriesKey(account, string(key))), &it)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%w: open item %s of %s indexed but not stored", ErrInconsistent, key, account)
			}
			out.OpenItems = append(out.OpenItems, it)
		}
		return nil
	})
	if err != nil {
		return api.LedgerSeriesReply{}, err
	}
	return out, nil
}

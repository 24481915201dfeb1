package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

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
// Candidates are worked out when the queue is queried, not stored; Seq is
// the stream sequence of the last commit applied to the deposit.
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
			Outcome: string(e.Outcome), Reason: string(e.Reason), OrderID: string(e.OrderID), Candidates: []string{},
			Seq: api.Seq(c.Seq),
		}
		if err := putJSON(b, v.DepositID, v); err != nil {
			return err
		}
		if e.Outcome == domain.OutcomeOrphaned {
			return idx.Put(orphanKey(v), []byte(v.DepositID))
		}
	case domain.DepositResolved:
		return updateDeposit(b, idx, c.Seq, e.DepositID, func(v *OrphanView) { v.Resolution = e.Action })
	case domain.DepositReopened:
		return updateDeposit(b, idx, c.Seq, e.DepositID, func(v *OrphanView) { v.Resolution = "" })
	}
	return nil
}

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
	if v.Outcome == domain.OutcomeOrphaned.String() && v.Resolution == "" {
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

// Deposit returns one deposit's view; false if it was never recorded.
func (s *Store) Deposit(id string) (OrphanView, bool, error) {
	var v OrphanView
	found, err := lookup(s, bucketDeposits, id, &v)
	return v, found, err
}

// Orphans returns up to limit unresolved orphan deposits, oldest first, after
// cursor ("" for the first page); next is the following page's cursor, ""
// at the end.
func (s *Store) Orphans(limit int, cursor string) ([]OrphanView, string, error) {
	out := []OrphanView{}
	after, err := hex.DecodeString(cursor)
	if err != nil {
		return nil, "", fmt.Errorf("%w: cursor", ErrBadCursor)
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
			if o.Candidates, err = candidates(tx, o); err != nil {
				return err
			}
			out = append(out, o)
			last = k
		}
		return nil
	})
	return out, next, err
}

// MaxCandidates is how many orders are suggested for one orphan.
const MaxCandidates = 3

// candidates suggests the open orders an orphan deposit most likely meant:
// the same amount, ranked by how close the depositor names are (edit
// distance of the normalised names, without the order's 3-digit suffix
// counting against a name that lacks it) and then by how close in time the
// order was submitted. Open orders of the same amount are found through an
// index, so the cost does not depend on how many orders there are in all.
func candidates(tx *bbolt.Tx, o OrphanView) ([]string, error) {
	type cand struct {
		id   string
		dist int
		gap  time.Duration
	}
	var found []cand
	deposited, _ := time.Parse(domain.TimeLayout, o.DepositedAt)
	name := domain.NormalizeName(o.DepositorName)
	prefix := binary.BigEndian.AppendUint64(nil, uint64(o.Amount))
	orders, err := queryBucket(tx, bucketOrders)
	if err != nil {
		return nil, err
	}
	open, err := queryBucket(tx, bucketOpenByAmount)
	if err != nil {
		return nil, err
	}
	c := open.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(found) < 1000; k, _ = c.Next() {
		v, ok, err := getOrder(orders, string(k[8:]))
		if err != nil || !ok {
			return nil, err
		}
		submitted, _ := time.Parse(domain.TimeLayout, v.SubmittedAt)
		gap := deposited.Sub(submitted)
		if gap < 0 {
			gap = -gap
		}
		dn := domain.NormalizeName(v.DepositorName)
		d := min(editDistance(name, dn), editDistance(name, strings.TrimRight(dn, "0123456789"))+1)
		found = append(found, cand{id: v.OrderID, dist: d, gap: gap})
	}
	slices.SortFunc(found, func(a, b cand) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return int(a.gap - b.gap)
	})
	out := []string{}
	for _, f := range found[:min(len(found), MaxCandidates)] {
		out = append(out, f.id)
	}
	return out, nil
}

// editDistance is the Levenshtein distance between two strings, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

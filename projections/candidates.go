package projections

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The "candidates" projection ranks, for every unresolved orphan deposit,
// the open orders it most likely meant, and keeps that ranking current as
// orders open and close and orphans are resolved or reopened. An order
// ranked for an orphan that closes unpaid (its reserved cancellation taking
// effect, say, for a transfer whose depositor name the bank cut short)
// stays in that orphan's ranking, marked closed: it is likely the one the
// money was for, and assigning the orphan to it refunds its buyer's wallet
// within the name grace. So does an order that closed unpaid before the
// orphan was recorded, if the transfer was made while it was still open
// (within domain.MaxClockSkew) and it closed within closedSearchWindow of
// the recording: the bank scan lags the transfers, so a buyer who
// transferred and then cancelled (the cancellation problem) can see the
// order cancelled before the scan brings the money in. The orphan queue
// then reads each orphan's candidates instead of searching the open
// orders, so a page costs the same however many open orders there are; the
// search is made once, when an orphan is recorded, over every open order of
// its amount (no cap, so the best is always found) and every order of its
// amount closed unpaid since the transfer.
//
// It follows order events by itself (it cannot read the "orders"
// projection's buckets): an order is open while domain.Order's status
// after its events is Open, the same rule the order view follows.
//
// Its stored ranking depends on domain.NormalizeName: a change of the name
// normalisation needs a new Version of this projection.
var (
	// bucketCandOrders holds the open orders by amount: amount(8) order_id →
	// submitted (Unix microseconds, 8 bytes) and the normalised depositor
	// name.
	bucketCandOrders = []byte("candidate_orders")
	// bucketCandOrderIDs finds an open order's amount and status: order_id →
	// amount(8) status.
	bucketCandOrderIDs = []byte("candidate_order_ids")
	// bucketCandOrphans holds every orphan deposit (resolved or not) with
	// its ranking: deposit_id → JSON of candOrphan.
	bucketCandOrphans = []byte("candidate_orphans")
	// bucketCandByAmount indexes the unresolved orphans by amount:
	// amount(8) deposit_id → nil.
	bucketCandByAmount = []byte("candidate_orphans_by_amount")
	// bucketCandRefs says which orphans rank which order: order_id 0x00
	// deposit_id → nil.
	bucketCandRefs = []byte("candidate_refs")
	// bucketCandClosed holds the orders that closed unpaid in the last
	// closedSearchWindow, by amount and closing time: amount(8) closed(8)
	// order_id → what bucketCandOrders held for it. See timeKey.
	bucketCandClosed = []byte("candidate_closed_orders")
	// bucketCandClosedByTime orders them by closing time, to let the old
	// ones go: closed(8) amount(8) order_id → nil.
	bucketCandClosedByTime = []byte("candidate_closed_by_time")
)

// closedSearchWindow is how long an order that closed unpaid is searched
// for the orphans recorded after it: a transfer the bank reports this much
// later than the order's closing (a statement imported a week late) no
// longer suggests it.
const closedSearchWindow = 7 * 24 * time.Hour

// timeKey encodes a time (Unix microseconds) so that keys sort in time
// order, times before 1970 included.
func timeKey(us int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(us)^1<<63) }

// MaxCandidates is how many orders are suggested for one orphan.
const MaxCandidates = 3

// keptCandidates is how many ranked orders an orphan keeps: more than it
// shows, so that the closing of a ranked order seldom calls for a new search.
const keptCandidates = 8

// candOrder is an open order as the ranking needs it.
type candOrder struct {
	Name string // the depositor name, normalised
	At   int64  // submitted, Unix microseconds
}

func (c candOrder) encode() []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(c.At)), c.Name...)
}

func decodeCandOrder(v []byte) (candOrder, error) {
	if len(v) < 8 {
		return candOrder{}, fmt.Errorf("%w: open order record of %d bytes", ErrInconsistent, len(v))
	}
	return candOrder{At: int64(binary.BigEndian.Uint64(v)), Name: string(v[8:])}, nil
}

// rankedOrder is one open order ranked for an orphan.
type rankedOrder struct {
	OrderID string `json:"order_id"`
	// Later says the order was submitted more than domain.MaxClockSkew
	// after the transfer: by the deposit-before-order rule the transfer
	// is not its payment (domain.ErrDepositBeforeOrder), so it ranks
	// after every order that could be.
	Later bool  `json:"later,omitempty"`
	Dist  int   `json:"dist"` // edit distance of the names
	Gap   int64 `json:"gap"`  // |deposited − submitted|, microseconds
	// Closed says the order closed unpaid (cancelled or expired) after it
	// was ranked here: it stays, and no longer changes.
	Closed bool `json:"closed,omitempty"`
}

// compareRanked orders the candidates: orders the transfer could pay
// first, then closest name, then closest in time, then order ID (so that
// the ranking, and the stored bytes, are the same on every rebuild).
func compareRanked(a, b rankedOrder) int {
	return cmp.Or(compareBool(a.Later, b.Later), cmp.Compare(a.Dist, b.Dist), cmp.Compare(a.Gap, b.Gap), strings.Compare(a.OrderID, b.OrderID))
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// candOrphan is an orphan deposit and its ranking.
type candOrphan struct {
	Amount int64  `json:"amount"`
	Name   string `json:"name"` // the depositor name, normalised
	At     int64  `json:"at"`   // deposited, Unix microseconds
	// Open says the orphan is unresolved; a resolved one keeps its record
	// (without a ranking) in case it is reopened.
	Open bool `json:"open"`
	// Ranked are the best open orders of the amount, at most
	// keptCandidates, with the best MaxCandidates of the ranked ones that
	// closed unpaid since, all best first. More says other open orders of
	// the amount may exist (all ranked below the ranked open ones, of which
	// there are then at least MaxCandidates); without it, the ranked open
	// ones are all of them.
	Ranked []rankedOrder `json:"ranked"`
	More   bool          `json:"more"`
}

// ranker ranks open orders for one orphan, reusing its buffers.
type ranker struct {
	o         *candOrphan
	a, b      []rune
	prev, cur []int
}

func newRanker(o *candOrphan) *ranker { return &ranker{o: o, a: []rune(o.Name)} }

// rank ranks order id for the orphan: the edit distance of the normalised
// names, where the order's trailing digits (its 3-digit suffix) do not count
// against a name that lacks them (dropping them costs 1), then the time
// between submission and transfer.
func (r *ranker) rank(id string, c candOrder) rankedOrder {
	r.b = r.b[:0]
	for _, x := range c.Name {
		r.b = append(r.b, x)
	}
	trimmed := len(r.b)
	for trimmed > 0 && r.b[trimmed-1] >= '0' && r.b[trimmed-1] <= '9' {
		trimmed--
	}
	// One table gives both distances: its last row holds the distance
	// from the orphan's name to every prefix of the order's.
	row := r.distances()
	gap := r.o.At - c.At
	if gap < 0 {
		gap = -gap
	}
	later := c.At-r.o.At > domain.MaxClockSkew.Microseconds()
	return rankedOrder{OrderID: id, Later: later, Dist: min(row[len(r.b)], row[trimmed]+1), Gap: gap}
}

// distances returns the Levenshtein distances, in runes, from r.a to each
// prefix of r.b.
func (r *ranker) distances() []int {
	n := len(r.b) + 1
	if cap(r.prev) < n {
		r.prev, r.cur = make([]int, n), make([]int, n)
	}
	prev, cur := r.prev[:n], r.cur[:n]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(r.a); i++ {
		cur[0] = i
		for j := 1; j < n; j++ {
			cost := 1
			if r.a[i-1] == r.b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	r.prev, r.cur = prev, cur
	return prev
}

// offer puts an open order into the ranking if it belongs there. It
// returns whether it was added and the ID of an open order it pushed out
// ("" if none). The orders ranked that closed unpaid stay where they are:
// only open ones are pushed out, and they count against keptCandidates.
func (o *candOrphan) offer(r rankedOrder) (added bool, dropped string) {
	open, worst := 0, -1 // the ranked open orders, and where the worst is
	for i, x := range o.Ranked {
		if x.OrderID == r.OrderID {
			return false, "" // ranked already (an order submitted again after it closed unpaid)
		}
		if !x.Closed {
			open, worst = open+1, i
		}
	}
	pos, _ := slices.BinarySearchFunc(o.Ranked, r, compareRanked)
	switch {
	case open == keptCandidates && pos > worst:
		o.More = true
		return false, ""
	case o.More && pos > worst:
		// Below every ranked open order, and unranked ones exist: where
		// it stands among those is unknown, and it is not needed yet.
		return false, ""
	}
	o.Ranked = slices.Insert(o.Ranked, pos, r)
	if open == keptCandidates {
		if pos <= worst {
			worst++
		}
		dropped = o.Ranked[worst].OrderID
		o.Ranked, o.More = slices.Delete(o.Ranked, worst, worst+1), true
	}
	return true, dropped
}

// openRanked returns how many of the orphan's ranked orders are open.
func (o *candOrphan) openRanked() int {
	n := 0
	for _, r := range o.Ranked {
		if !r.Closed {
			n++
		}
	}
	return n
}

// closeRanked marks ranked order id closed unpaid.
func (o *candOrphan) closeRanked(id string) {
	for i := range o.Ranked {
		if o.Ranked[i].OrderID == id {
			o.Ranked[i].Closed = true
		}
	}
	o.keepBestClosed()
}

// offerClosed puts an order that closed unpaid into the ranking, unless it
// is ranked already.
func (o *candOrphan) offerClosed(r rankedOrder) {
	if slices.ContainsFunc(o.Ranked, func(x rankedOrder) bool { return x.OrderID == r.OrderID }) {
		return
	}
	r.Closed = true
	pos, _ := slices.BinarySearchFunc(o.Ranked, r, compareRanked)
	o.Ranked = slices.Insert(o.Ranked, pos, r)
	o.keepBestClosed()
}

// keepBestClosed keeps the best MaxCandidates of the ranked orders that
// closed unpaid (a closed one below MaxCandidates others can never be
// shown: those never leave).
func (o *candOrphan) keepBestClosed() {
	closed := 0
	o.Ranked = slices.DeleteFunc(o.Ranked, func(r rankedOrder) bool {
		if !r.Closed {
			return false
		}
		closed++
		return closed > MaxCandidates
	})
}

// candBuckets are the projection's buckets in one write transaction.
type candBuckets struct {
	orders, ids, orphans, byAmount, refs, closed, closedByTime *bbolt.Bucket
}

// applyCandidates is the "candidates" projection, over bucketCandOrders,
// bucketCandOrderIDs, bucketCandOrphans, bucketCandByAmount and
// bucketCandRefs, bucketCandClosed and bucketCandClosedByTime
// (buckets[0..6]).
func applyCandidates(buckets []*bbolt.Bucket, c eventstore.Commit, env eventstore.Envelope, ev domain.Event) error {
	b := candBuckets{orders: buckets[0], ids: buckets[1], orphans: buckets[2], byAmount: buckets[3], refs: buckets[4], closed: buckets[5], closedByTime: buckets[6]}
	switch e := ev.(type) {
	case domain.OrderSubmitted:
		return b.orderSubmitted(e)
	case domain.DepositRecorded:
		if e.Outcome != domain.OutcomeOrphaned {
			return nil
		}
		if _, found, err := b.orphan(string(e.DepositID)); err != nil || found {
			return err // a deposit is recorded once
		}
		o := candOrphan{Amount: e.Amount, Name: domain.NormalizeName(e.DepositorName), At: e.DepositedAt.UnixMicro()}
		return b.reopen(string(e.DepositID), o, env.RecordedAt)
	case domain.DepositResolved:
		return b.resolved(string(e.DepositID))
	case domain.DepositReopened:
		o, found, err := b.orphan(string(e.DepositID))
		if err != nil || !found {
			return err // a deposit that never was an orphan cannot be one again
		}
		return b.reopen(string(e.DepositID), o, env.RecordedAt)
	}
	if c.AggregateType == domain.AggregateOrder {
		return b.orderChanged(c.AggregateID, ev)
	}
	return nil
}

func amountKey(amount int64, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(amount)), id...)
}

func refKey(order, deposit string) []byte {
	k := make([]byte, 0, len(order)+1+len(deposit))
	k = append(k, order...)
	k = append(k, 0)
	return append(k, deposit...)
}

func (b candBuckets) orphan(id string) (candOrphan, bool, error) {
	var o candOrphan
	found, err := getJSON(b.orphans, id, &o)
	return o, found, err
}

// orderSubmitted adds an open order and offers it to every unresolved
// orphan of its amount.
func (b candBuckets) orderSubmitted(e domain.OrderSubmitted) error {
	id, amount := string(e.OrderID), e.Amount.Amount
	if err := b.orderClosed(id); err != nil { // an order submitted twice counts once
		return err
	}
	c := candOrder{Name: domain.NormalizeName(e.DepositorName), At: e.SubmittedAt.UnixMicro()}
	if err := b.orders.Put(amountKey(amount, id), c.encode()); err != nil {
		return err
	}
	if err := b.ids.Put([]byte(id), amountKey(amount, string(domain.StatusAwaitingDeposit))); err != nil {
		return err
	}
	prefix := amountKey(amount, "")
	var deposits []string
	cur := b.byAmount.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		deposits = append(deposits, string(k[len(prefix):]))
	}
	for _, dep := range deposits {
		o, found, err := b.orphan(dep)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: orphan %s indexed but not recorded", ErrInconsistent, dep)
		}
		more := o.More
		added, dropped := o.offer(newRanker(&o).rank(id, c))
		if !added {
			if o.More != more { // now known to have unranked candidates
				if err := putJSON(b.orphans, dep, o); err != nil {
					return err
				}
			}
			continue
		}
		if err := b.refs.Put(refKey(id, dep), nil); err != nil {
			return err
		}
		if dropped != "" {
			if err := b.refs.Delete(refKey(dropped, dep)); err != nil {
				return err
			}
		}
		if err := putJSON(b.orphans, dep, o); err != nil {
			return err
		}
	}
	return nil
}

// orderChanged follows an order's status; once the order is no longer
// open, it leaves the open orders, and the rankings unless it closed
// unpaid.
func (b candBuckets) orderChanged(id string, ev domain.Event) error {
	v := b.ids.Get([]byte(id))
	if len(v) < 8 {
		return nil // not an open order (closed already, or not an order event at all)
	}
	status := domain.OrderStatus(v[8:])
	after := domain.Order{Status: status}.Apply(ev)
	switch next := after.Status; {
	case next == status:
		return nil
	case next.Open():
		return b.ids.Put([]byte(id), append(bytes.Clone(v[:8]), next...))
	case next == domain.StatusCancelled || next == domain.StatusExpired:
		return b.orderLeft(id, true, after.ClosedAt)
	}
	return b.orderClosed(id)
}

// orderClosed removes an open order (if it is one) from the open orders and
// from every ranking that holds it, searching again for an orphan left
// with fewer than MaxCandidates ranked open orders while other open orders
// may exist.
func (b candBuckets) orderClosed(id string) error { return b.orderLeft(id, false, time.Time{}) }

// orderLeft removes an open order (if it is one) from the open orders; one
// that closed unpaid (at closedAt) stays in the rankings that hold it,
// marked closed, and is kept for the orphans recorded after it
// (closedUnpaid); any other leaves them (orderClosed).
func (b candBuckets) orderLeft(id string, unpaid bool, closedAt time.Time) error {
	v := b.ids.Get([]byte(id))
	if len(v) < 8 {
		return nil
	}
	amount := int64(binary.BigEndian.Uint64(v[:8]))
	if err := b.ids.Delete([]byte(id)); err != nil {
		return err
	}
	if unpaid {
		if err := b.closedUnpaid(amount, id, closedAt); err != nil {
			return err
		}
	}
	if err := b.orders.Delete(amountKey(amount, id)); err != nil {
		return err
	}
	prefix := refKey(id, "")
	var deposits []string
	cur := b.refs.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		deposits = append(deposits, string(k[len(prefix):]))
	}
	for _, dep := range deposits {
		if err := b.refs.Delete(refKey(id, dep)); err != nil {
			return err
		}
		o, found, err := b.orphan(dep)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: orphan %s ranks order %s but is not recorded", ErrInconsistent, dep, id)
		}
		if unpaid {
			o.closeRanked(id)
		} else {
			o.Ranked = slices.DeleteFunc(o.Ranked, func(r rankedOrder) bool { return r.OrderID == id })
		}
		if o.More && o.openRanked() < MaxCandidates {
			if err := b.search(dep, &o); err != nil {
				return err
			}
		}
		if err := putJSON(b.orphans, dep, o); err != nil {
			return err
		}
	}
	return nil
}

// search ranks every open order of the orphan's amount anew, with the
// ranked orders that closed unpaid, keeping the best keptCandidates, and
// updates which orders the orphan ranks.
func (b candBuckets) search(dep string, o *candOrphan) error {
	for _, r := range o.Ranked {
		if r.Closed {
			continue
		}
		if err := b.refs.Delete(refKey(r.OrderID, dep)); err != nil {
			return err
		}
	}
	o.Ranked = slices.DeleteFunc(o.Ranked, func(r rankedOrder) bool { return !r.Closed })
	o.More = false
	prefix := amountKey(o.Amount, "")
	r := newRanker(o)
	cur := b.orders.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		c, err := decodeCandOrder(v)
		if err != nil {
			return err
		}
		o.offer(r.rank(string(k[len(prefix):]), c))
	}
	for _, r := range o.Ranked {
		if r.Closed {
			continue // it changes no more
		}
		if err := b.refs.Put(refKey(r.OrderID, dep), nil); err != nil {
			return err
		}
	}
	return nil
}

// closedUnpaid keeps open order id of the amount, which closed unpaid at
// closedAt, for the orphans recorded after it, and lets go of those that
// closed more than closedSearchWindow before it.
func (b candBuckets) closedUnpaid(amount int64, id string, closedAt time.Time) error {
	c := b.orders.Get(amountKey(amount, id))
	if c == nil {
		return fmt.Errorf("%w: open order %s not in the open orders", ErrInconsistent, id)
	}
	at := timeKey(closedAt.UnixMicro())
	if err := b.closed.Put(slices.Concat(amountKey(amount, ""), at, []byte(id)), bytes.Clone(c)); err != nil {
		return err
	}
	if err := b.closedByTime.Put(slices.Concat(at, amountKey(amount, id)), nil); err != nil {
		return err
	}
	cutoff := timeKey(closedAt.Add(-closedSearchWindow).UnixMicro())
	var old [][]byte
	cur := b.closedByTime.Cursor()
	for k, _ := cur.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = cur.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := b.closedByTime.Delete(k); err != nil {
			return err
		}
		if err := b.closed.Delete(slices.Concat(k[8:16], k[:8], k[16:])); err != nil {
			return err
		}
	}
	return nil
}

// searchClosed ranks for the orphan, recorded (or reopened) at now, the
// orders of its amount that were open when its transfer was made (within
// domain.MaxClockSkew) and closed unpaid within closedSearchWindow of now,
// keeping the best MaxCandidates of the ranked ones that closed unpaid.
// One submitted after the transfer (Later) is left out: the transfer cannot
// be its payment.
func (b candBuckets) searchClosed(o *candOrphan, now time.Time) error {
	from := max(o.At-domain.MaxClockSkew.Microseconds(), now.Add(-closedSearchWindow).UnixMicro())
	prefix := amountKey(o.Amount, "")
	r := newRanker(o)
	cur := b.closed.Cursor()
	for k, v := cur.Seek(slices.Concat(prefix, timeKey(from))); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		c, err := decodeCandOrder(v)
		if err != nil {
			return err
		}
		if rk := r.rank(string(k[len(prefix)+8:]), c); !rk.Later {
			o.offerClosed(rk)
		}
	}
	return nil
}

// reopen makes o (a recorded or reopened orphan) unresolved at now and
// ranks for it the open orders and those closed unpaid since its transfer.
func (b candBuckets) reopen(dep string, o candOrphan, now time.Time) error {
	if o.Open {
		return nil
	}
	o.Open = true
	if err := b.search(dep, &o); err != nil {
		return err
	}
	if err := b.searchClosed(&o, now); err != nil {
		return err
	}
	if err := b.byAmount.Put(amountKey(o.Amount, dep), nil); err != nil {
		return err
	}
	return putJSON(b.orphans, dep, o)
}

// resolved takes a resolved orphan out of the rankings.
func (b candBuckets) resolved(dep string) error {
	o, found, err := b.orphan(dep)
	if err != nil || !found || !o.Open {
		return err
	}
	for _, r := range o.Ranked {
		if err := b.refs.Delete(refKey(r.OrderID, dep)); err != nil {
			return err
		}
	}
	o.Open, o.Ranked, o.More = false, nil, false
	if err := b.byAmount.Delete(amountKey(o.Amount, dep)); err != nil {
		return err
	}
	return putJSON(b.orphans, dep, o)
}

// candidatesOf returns the IDs of an orphan's best MaxCandidates ranked
// orders (open, or closed unpaid since they were ranked), best first ([]
// for none).
func candidatesOf(orphans *bbolt.Bucket, dep string) ([]string, error) {
	var o candOrphan
	if _, err := getJSON(orphans, dep, &o); err != nil {
		return nil, err
	}
	out := []string{}
	for _, r := range o.Ranked[:min(len(o.Ranked), MaxCandidates)] {
		out = append(out, r.OrderID)
	}
	return out, nil
}

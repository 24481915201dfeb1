package projections

import (
	"bytes"
	"encoding/json"
	"math"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketReconcileCarry holds the timing differences each reconciliation
// scope's runs left open, what its next run settles: "bank" NUL normalised
// account number, or "payouts" → JSON of carryRecord.
var bucketReconcileCarry = []byte("reconcile_carry")

// bucketPayoutRunCovers holds what each payouts run compared of the
// recorded payouts: run_id → JSON of domain.PayoutRunCover.
var bucketPayoutRunCovers = []byte("reconcile_payout_runs")

// bucketPayoutsNamed holds every payout a payouts run named in any
// category: payout_id → the run_id of the first.
var bucketPayoutsNamed = []byte("reconcile_payouts_named")

// carryRecord is a scope's open timing differences, each with CarriedFrom
// set (the run that first reported it), the run that last wrote them, the
// earliest start and the latest end of a period its runs covered, and, for
// a bank account, the latest sequence they read its deposits as of (a
// payouts run records what it compared in buckets of its own).
type carryRecord struct {
	RunID       domain.ReconciliationID `json:"run_id"`
	Items       []domain.ReconcileItem  `json:"items"`
	CoveredTo   time.Time               `json:"covered_to,omitzero"`
	CoveredFrom time.Time               `json:"covered_from,omitzero"`
	ComparedSeq uint64                  `json:"compared_seq,omitempty"`
	Unrecorded  []domain.ReconcileItem  `json:"unrecorded,omitempty"`
}

// applyReconcileCarry is the "reconcile_carry" projection. A run took in the
// open items of each scope it covers (a bank run: each account of its
// statement; a payouts run: the provider) as its CarryBase, settled or
// carried again every one of them, and found its own timing differences: so
// when the scope's record is still the carry it took in, its timing
// differences replace it. When another run wrote the scope since (two runs
// at once), nothing may be lost: the record keeps its items but those this
// run settled, and gains this run's timing differences. A payouts run also
// records what it compared (buckets[1] and [2]).
func applyReconcileCarry(buckets []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.ReconciliationCompleted)
	if !ok {
		return nil
	}
	if e.Kind == domain.ReconcileKindPayouts {
		if err := putPayoutsCompared(buckets[1], buckets[2], e); err != nil {
			return err
		}
	}
	type scope struct {
		key      string
		base     domain.ReconciliationID
		from, to time.Time // a bank account's period
		compared uint64
	}
	var scopes []scope
	open := map[string][]domain.ReconcileItem{}
	unrecorded := map[string][]domain.ReconcileItem{} // this run's missing_in_ledger
	reported := map[string]bool{}                     // every transaction this run reported
	switch e.Kind {
	case domain.ReconcileKindBank:
		for _, a := range e.Accounts {
			scopes = append(scopes, scope{carryKey(e.Kind, a.AccountNumber), a.CarryBase, a.From.UTC(), a.To.UTC(), a.ComparedSeq})
		}
	case domain.ReconcileKindPayouts:
		scopes = append(scopes, scope{key: carryKey(e.Kind, ""), base: e.CarryBase}) // what it compared: putPayoutsCompared
	default:
		return nil
	}
	for _, it := range e.TimingDifference {
		k := carryKey(e.Kind, it.AccountNumber)
		open[k] = append(open[k], carried(it, e.RunID))
	}
	for _, it := range e.MissingInLedger {
		k := carryKey(e.Kind, it.AccountNumber)
		it.CarriedFrom = e.RunID // the run that found it missing, whatever carried it there
		unrecorded[k] = append(unrecorded[k], it)
	}
	for _, list := range e.Lists() {
		for _, it := range *list {
			reported[carryItemKey(it)] = true
		}
	}
	for _, sc := range scopes {
		rec := carryRecord{RunID: e.RunID, Items: open[sc.key], CoveredTo: sc.to, CoveredFrom: sc.from, ComparedSeq: sc.compared}
		var stored carryRecord
		if raw := buckets[0].Get([]byte(sc.key)); raw != nil {
			if err := json.Unmarshal(raw, &stored); err != nil {
				return err
			}
			if stored.RunID != sc.base {
				rec.Items = mergeCarry(e, stored.Items, rec.Items)
			}
			if stored.CoveredTo.After(rec.CoveredTo) {
				rec.CoveredTo = stored.CoveredTo // an earlier run of a later period
			}
			if !stored.CoveredFrom.IsZero() && (rec.CoveredFrom.IsZero() || stored.CoveredFrom.Before(rec.CoveredFrom)) {
				rec.CoveredFrom = stored.CoveredFrom
			}
			rec.ComparedSeq = max(rec.ComparedSeq, stored.ComparedSeq)
		}
		// A transaction this run reported again is settled or found anew.
		for _, it := range stored.Unrecorded {
			if !reported[carryItemKey(it)] {
				rec.Unrecorded = append(rec.Unrecorded, it)
			}
		}
		rec.Unrecorded = append(rec.Unrecorded, unrecorded[sc.key]...)
		if n := len(rec.Unrecorded); n > domain.MaxUnrecordedCarried {
			rec.Unrecorded = rec.Unrecorded[n-domain.MaxUnrecordedCarried:]
		}
		if rec.Items == nil {
			rec.Items = []domain.ReconcileItem{}
		}
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := buckets[0].Put([]byte(sc.key), raw); err != nil {
			return err
		}
	}
	return nil
}

// putPayoutsCompared records what payouts run e compared: its period and
// the sequence it read the recorded payouts as of, and each payout it
// named.
func putPayoutsCompared(covers, named *bbolt.Bucket, e domain.ReconciliationCompleted) error {
	if e.Period != nil && e.Lines > 0 {
		raw, err := json.Marshal(domain.PayoutRunCover{RunID: e.RunID, From: e.Period.From.UTC(), To: e.Period.To.UTC(), AsOfSeq: e.LedgerAsOfSeq})
		if err != nil {
			return err
		}
		if err := covers.Put([]byte(e.RunID), raw); err != nil {
			return err
		}
	}
	for _, list := range e.Lists() {
		for _, it := range *list {
			if it.PayoutID == "" || named.Get([]byte(it.PayoutID)) != nil {
				continue
			}
			if err := named.Put([]byte(it.PayoutID), []byte(e.RunID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// PayoutRunCovers returns what each payouts run recorded so far compared
// of the recorded payouts (domain.EarlierPayoutRuns.Covers).
func (s *Store) PayoutRunCovers() ([]domain.PayoutRunCover, error) {
	var out []domain.PayoutRunCover
	err := s.view(func(tx *bbolt.Tx) error {
		covers, err := queryBucket(tx, bucketPayoutRunCovers)
		if err != nil {
			return err
		}
		return covers.ForEach(func(_, raw []byte) error {
			var c domain.PayoutRunCover
			if err := json.Unmarshal(raw, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// PayoutsNamed returns which of ids a payouts run recorded so far named,
// in any category (domain.EarlierPayoutRuns.Named).
func (s *Store) PayoutsNamed(ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.view(func(tx *bbolt.Tx) error {
		named, err := queryBucket(tx, bucketPayoutsNamed)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if named.Get([]byte(id)) != nil {
				out[id] = true
			}
		}
		return nil
	})
	return out, err
}

// mergeCarry is what stays open when run e did not take in the scope's
// latest carry: the stored items but those e settled (reported with
// CarriedFrom in a category other than timing_difference), then e's own
// timing differences, which replace a stored item of the same key.
func mergeCarry(e domain.ReconciliationCompleted, stored, own []domain.ReconcileItem) []domain.ReconcileItem {
	gone := map[string]bool{}
	for _, list := range e.Lists() {
		for _, it := range *list {
			if it.CarriedFrom != "" {
				gone[carryItemKey(it)] = true
			}
		}
	}
	for _, it := range own {
		gone[carryItemKey(it)] = true
	}
	var out []domain.ReconcileItem
	for _, it := range stored {
		if !gone[carryItemKey(it)] {
			out = append(out, it)
		}
	}
	return append(out, own...)
}

// carryItemKey identifies an item within its scope.
func carryItemKey(it domain.ReconcileItem) string {
	if it.PayoutID != "" {
		return it.PayoutID
	}
	return domain.NormalizeAccountNumber(it.AccountNumber) + "\x00" + it.BankTxnID
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

// BankAccountsOpen returns the accounts (normalised) on which bank runs
// left something for the account's next run to settle: timing differences
// still open, or a deposit recorded after the latest sequence the runs
// read the account's deposits as of, deposited from the earliest time they
// covered and before before (the next run, from before, compares it as
// recorded late).
func (s *Store) BankAccountsOpen(before time.Time) ([]string, error) {
	scope := []byte(carryKey(domain.ReconcileKindBank, ""))
	var (
		accounts []string
		recs     []carryRecord
	)
	err := s.view(func(tx *bbolt.Tx) error {
		carries, err := queryBucket(tx, bucketReconcileCarry)
		if err != nil {
			return err
		}
		c := carries.Cursor()
		for k, raw := c.Seek(scope); k != nil && bytes.HasPrefix(k, scope); k, raw = c.Next() {
			var rec carryRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			accounts, recs = append(accounts, string(k[len(scope):])), append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for i, account := range accounts {
		rec := recs[i]
		open := len(rec.Items) > 0
		if !open && rec.ComparedSeq > 0 && !rec.CoveredFrom.IsZero() {
			late, err := s.DepositsRecordedBetween(account, eventstore.Seq(rec.ComparedSeq), math.MaxUint64, rec.CoveredFrom, before)
			if err != nil {
				return nil, err
			}
			open = len(late) > 0
		}
		if open {
			out = append(out, account)
		}
	}
	return out, nil
}

// Carry returns what a scope's runs left for its next run: kind
// domain.ReconcileKindBank and an account number, or
// domain.ReconcileKindPayouts (account ignored). Nothing if no run covered
// the scope.
func (s *Store) Carry(kind, account string) (domain.ReconcileCarry, error) {
	var rec carryRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketReconcileCarry)
		if err != nil {
			return err
		}
		raw := b.Get([]byte(carryKey(kind, account)))
		if raw == nil {
			return nil
		}
		return json.Unmarshal(raw, &rec)
	})
	return domain.ReconcileCarry{Items: rec.Items, Base: rec.RunID, CoveredTo: rec.CoveredTo, CoveredFrom: rec.CoveredFrom, ComparedSeq: rec.ComparedSeq,
		Unrecorded: rec.Unrecorded}, err
}

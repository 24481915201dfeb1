package projections

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketReconcileRuns lists the reconciliation runs in the order they were
// recorded (bankbook.q.reconcile.list): seq(8) run_id → JSON of
// ReconcileRunSummary. The items stay in the event (bankbook.q.reconcile.get
// reads them from the stream).
var bucketReconcileRuns = []byte("reconcile_runs")

// bucketReconcileNightly holds how far the engine's nightly runs have
// covered, by kind ("bank", "payouts") → JSON of nightlyCovered, the
// latest end of a period a run of that kind by the actor "timer" covered.
var bucketReconcileNightly = []byte("reconcile_nightly")

type nightlyCovered struct {
	To time.Time `json:"to"` // inclusive
}

// ReconcileRunSummary is one run without its items (the wire type of
// package api).
type ReconcileRunSummary = api.ReconcileRunSummary

// applyReconciliations is the "reconciliations" projection: every
// reconcile.completed into bucketReconcileRuns (buckets[0]), and how far
// the nightly runs covered into bucketReconcileNightly (buckets[1]).
func applyReconciliations(buckets []*bbolt.Bucket, c eventstore.Commit, env eventstore.Envelope, ev domain.Event) error {
	run, ok := ev.(domain.ReconciliationCompleted)
	if !ok {
		return nil
	}
	k := binary.BigEndian.AppendUint64(nil, uint64(c.Seq))
	if err := putJSON(buckets[0], string(append(k, run.RunID...)), api.NewReconcileRunSummary(run, api.Seq(c.Seq))); err != nil {
		return err
	}
	if env.Actor != domain.ActorTimer || run.Period == nil {
		return nil
	}
	var cur nightlyCovered
	if _, err := getJSON(buckets[1], run.Kind, &cur); err != nil {
		return err
	}
	if !run.Period.To.After(cur.To) {
		return nil
	}
	return putJSON(buckets[1], run.Kind, nightlyCovered{To: run.Period.To})
}

// NightlyCovered returns the latest end (inclusive) of a period a
// reconciliation run of kind (domain.ReconcileKindBank,
// ReconcileKindPayouts) by the engine's nightly job (the actor "timer")
// covered; the zero time if it has none.
func (s *Store) NightlyCovered(kind string) (time.Time, error) {
	var cur nightlyCovered
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketReconcileNightly)
		if err != nil {
			return err
		}
		_, err = getJSON(b, kind, &cur)
		return err
	})
	return cur.To, err
}

// LatestReconcileRuns returns the most recently recorded run of each kind
// (domain.ReconcileKindBank, ReconcileKindPayouts) there is among the
// latest 1,000 runs: a /metrics scrape reads it, so it reads no further (a
// kind none of them has, a night's run and two bank runs a day for most of
// a year, has not run for long).
func (s *Store) LatestReconcileRuns() (map[string]ReconcileRunSummary, error) {
	kinds := []string{domain.ReconcileKindBank, domain.ReconcileKindPayouts}
	latest := map[string]ReconcileRunSummary{}
	cursor := ""
	for read := 0; read < 1_000 && len(latest) < len(kinds); {
		runs, next, err := s.ReconcileRuns(250, cursor)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if _, ok := latest[r.Kind]; !ok && slices.Contains(kinds, r.Kind) {
				latest[r.Kind] = r
			}
		}
		read += len(runs)
		if next == "" {
			break
		}
		cursor = next
	}
	return latest, nil
}

// ReconcileRuns returns up to limit runs, the most recently recorded first,
// after cursor ("" for the first page; a cursor that is not hex is
// ErrBadCursor, and any other is a position in the index to continue from),
// and the next page's cursor ("" at the end).
func (s *Store) ReconcileRuns(limit int, cursor string) ([]ReconcileRunSummary, string, error) {
	after, err := cursorAfter(cursor, nil)
	if err != nil {
		return nil, "", err
	}
	var (
		out  []ReconcileRunSummary
		next string
	)
	err = s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketReconcileRuns)
		if err != nil {
			return err
		}
		out, next, err = newestFirst(b, nil, after, max(limit, 1), true, func(k, v []byte) (ReconcileRunSummary, bool, error) {
			var r ReconcileRunSummary
			if err := json.Unmarshal(v, &r); err != nil {
				return r, false, fmt.Errorf("reconciliation run %x: %w", k, err)
			}
			return r, true, nil
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

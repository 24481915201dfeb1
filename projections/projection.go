package projections

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// ApplyFunc folds one event into a projection's buckets. buckets are the
// projection's own buckets inside the batch's write transaction, in the order
// of Projection.Buckets; a projection never reaches other buckets (through
// Bucket.Tx or otherwise), because another projection may be at a different
// checkpoint while this one is rebuilt.
//
// An ApplyFunc must depend only on the content of its buckets and on the
// commit, envelope and event (never on the clock, randomness or the instance
// ID), so that a rebuild writes the same bytes. An error aborts the whole
// batch.
type ApplyFunc func(buckets []*bbolt.Bucket, c eventstore.Commit, e eventstore.Envelope, ev domain.Event) error

// Projection is one registered read model: a name, a version, the top-level
// buckets it owns and how it folds events into them. Each projection has its
// own checkpoint in the file.
//
// Change Version whenever Apply would write different bytes for the same
// events (a new field, a new key layout, a bug fix that changes content): on
// the next Open the projection's buckets are dropped and the Runner rebuilds
// it from sequence 1, while the other projections keep theirs.
type Projection struct {
	// Name identifies the projection in the file ("orders"). It must not
	// change: a renamed projection is a new one, rebuilt from sequence 1.
	Name string
	// Version is the version of the projection's content, 1 or more.
	Version int
	// Buckets are the top-level buckets the projection owns, at least one.
	// No two projections share a bucket, and none is named "meta".
	Buckets []string
	// Apply folds one event into the buckets.
	Apply ApplyFunc
}

// DefaultProjections returns bankbook's read models, a new slice on every
// call (a caller may change its copy):
//
//	name      version  buckets
//	orders    7        orders, orders_open_by_amount, orders_by_status,
//	                   orders_by_depositor, orders_by_buyer_name
//	wallets   2        wallets, wallet_entries
//	ledger    1        ledger_balances, ledger_entries
//	deposits  4        deposits, orphans
//	candidates 5       candidate_orders, candidate_order_ids, candidate_orphans,
//	                   candidate_orphans_by_amount, candidate_refs,
//	                   candidate_closed_orders, candidate_closed_by_time
//	payouts   2        payouts, payouts_by_status
//	bills     3        bills, bill_payments, bills_current
//	links     2        links_by_distributor
//	store_payments 1   store_payments_by_distributor, store_payments_by_store
//	settlements 1      settlements
//	notifications 2    notifications, notifications_by_status,
//	                   notifications_by_recipient, notification_counts,
//	                   notifications_pending_by_recipient
//	deposit_index 2    deposits_by_account, deposits_by_txn, deposits_by_seq
//	payout_index 2     payouts_by_final, payouts_final_by_seq
//	reconciliations 3  reconcile_runs, reconcile_nightly
//	series    1        series_state, series_open, series_open_by_since,
//	                   series_points
//	reconcile_carry 7  reconcile_carry, reconcile_payout_runs,
//	                   reconcile_payouts_named
func DefaultProjections() []Projection {
	return []Projection{
		{Name: "orders", Version: 7, Buckets: []string{
			string(bucketOrders), string(bucketOpenByAmount), string(bucketOrdersByStatus), string(bucketOrdersByDepositor), string(bucketOrdersByBuyerName),
		}, Apply: applyOrders},
		{Name: "wallets", Version: 2, Buckets: []string{string(bucketWallets), string(bucketWalletEntries)}, Apply: applyWallets},
		{Name: "ledger", Version: 1, Buckets: []string{string(bucketLedgerBalances), string(bucketLedgerEntries)}, Apply: applyLedger},
		{Name: "deposits", Version: 4, Buckets: []string{string(bucketDeposits), string(bucketOrphans)}, Apply: applyDeposits},
		{Name: "candidates", Version: 5, Buckets: []string{
			string(bucketCandOrders), string(bucketCandOrderIDs), string(bucketCandOrphans), string(bucketCandByAmount), string(bucketCandRefs),
			string(bucketCandClosed), string(bucketCandClosedByTime),
		}, Apply: applyCandidates},
		{Name: "payouts", Version: 2, Buckets: []string{string(bucketPayouts), string(bucketPayoutsByStatus)}, Apply: applyPayouts},
		{Name: "bills", Version: 3, Buckets: []string{string(bucketBills), string(bucketBillPayments), string(bucketBillsCurrent)}, Apply: applyBills},
		{Name: "links", Version: 2, Buckets: []string{string(bucketLinks)}, Apply: applyLinks},
		{Name: "store_payments", Version: 1, Buckets: []string{string(bucketPaymentsByDistributor), string(bucketPaymentsByStore)}, Apply: applyStorePayments},
		{Name: "settlements", Version: 1, Buckets: []string{string(bucketSettlements)}, Apply: applySettlements},
		{Name: "notifications", Version: 2, Buckets: []string{
			string(bucketNotifications), string(bucketNotificationIndex), string(bucketNotificationRecipients), string(bucketNotificationCounts),
			string(bucketNotificationsPendingTo),
		}, Apply: applyNotifications},
		{Name: "deposit_index", Version: 2, Buckets: []string{string(bucketDepositsByAccount), string(bucketDepositsByTxn), string(bucketDepositsBySeq)}, Apply: applyDepositIndex},
		{Name: "payout_index", Version: 2, Buckets: []string{string(bucketPayoutsByFinal), string(bucketPayoutsFinalBySeq)}, Apply: applyPayoutIndex},
		{Name: "reconciliations", Version: 3, Buckets: []string{string(bucketReconcileRuns), string(bucketReconcileNightly)}, Apply: applyReconciliations},
		{Name: "series", Version: 1, Buckets: []string{
			string(bucketSeriesState), string(bucketSeriesOpen), string(bucketSeriesOpenBySince), string(bucketSeriesPoints),
		}, Apply: applySeries},
		{Name: "reconcile_carry", Version: 7, Buckets: []string{
			string(bucketReconcileCarry), string(bucketPayoutRunCovers), string(bucketPayoutsNamed),
		}, Apply: applyReconcileCarry},
	}
}

// Options configure Open, OpenReadOnly and Replay. A nil *Options means the
// defaults.
type Options struct {
	// Codec decodes event payloads. Default domain.Events().
	Codec *domain.Codec
	// Projections are the read models the file holds. Default
	// DefaultProjections(). Queries of this package's Store (Order, Wallet,
	// ...) need the default projections' buckets; a registry without them
	// serves only the queries whose buckets it has.
	Projections []Projection
	// Unsynced commits a writable file's batches without fsync, for the
	// embedded server's "fast" durability, which does not fsync the event
	// stream either. A process exit loses nothing; after a machine restart
	// the next Open fails with ErrDamaged so that the file is rebuilt from
	// the event log (unsynced.go). Ignored where the machine's boot ID
	// cannot be read: see Store.Unsynced.
	Unsynced bool
}

// withDefaults returns a copy of o (which may be nil) with the defaults
// filled in.
func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Codec == nil {
		out.Codec = domain.Events()
	}
	if out.Projections == nil {
		out.Projections = DefaultProjections()
	}
	out.Projections = slices.Clone(out.Projections)
	return out
}

// Validate reports every problem of the registry at once: empty or repeated
// names, versions below 1, projections without buckets or Apply, and buckets
// that are named "meta" or owned twice. Each problem matches
// ErrInvalidOptions.
func (o *Options) Validate() error {
	opts := o.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	names := map[string]bool{}
	owner := map[string]string{}
	for i, p := range opts.Projections {
		if p.Name == "" {
			bad("projection %d has no name", i)
		} else if names[p.Name] {
			bad("projection %s is registered twice", p.Name)
		}
		names[p.Name] = true
		if p.Version < 1 {
			bad("projection %s: version %d, want 1 or more", p.Name, p.Version)
		}
		if p.Apply == nil {
			bad("projection %s has no Apply", p.Name)
		}
		if len(p.Buckets) == 0 {
			bad("projection %s owns no bucket", p.Name)
		}
		for _, b := range p.Buckets {
			switch other, taken := owner[b]; {
			case b == "" || b == string(bucketMeta):
				bad("projection %s: bucket name %q is reserved", p.Name, b)
			case taken:
				bad("projection %s: bucket %s is owned by %s too", p.Name, b, other)
			}
			owner[b] = p.Name
		}
	}
	return errors.Join(errs...)
}

// ProjectionState is what the file says about one registered projection.
type ProjectionState struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Checkpoint is the stream sequence of the last commit the projection
	// has applied; 0 for one that was just (re)created.
	Checkpoint eventstore.Seq `json:"checkpoint"`
	// Reset says why this Store's Open dropped and recreated the
	// projection's buckets ("new to the file", "version 1 → 2"); "" when it
	// kept them.
	Reset string `json:"reset,omitempty"`
}

package projections

import "github.com/bankbook/bankbook/eventstore"

// SetAfterCommit installs a hook that runs after each batch is committed to
// bbolt and before Follow acknowledges it; an error from the hook is returned
// to Follow, so the batch is not acknowledged. Set it before Run.
func SetAfterCommit(r *Runner, hook func(eventstore.Seq) error) { r.afterCommit = hook }

// WalletSummary is what the "wallets" projection stores per user.
type WalletSummary = walletSummary

// What the "candidates" projection stores.
type (
	CandOrphan  = candOrphan
	RankedOrder = rankedOrder
)

package projections

import (
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/eventstore"
)

// SetAfterCommit installs a hook that runs after each batch is committed to
// bbolt and before Follow acknowledges it; an error from the hook is returned
// to Follow, so the batch is not acknowledged. Set it before Run.
func SetAfterCommit(r *Runner, hook func(eventstore.Seq) error) { r.afterCommit = hook }

// SetMaxPageBytes bounds the encoded items of a list's page to n bytes
// until the test ends.
func SetMaxPageBytes(t interface{ Cleanup(func()) }, n int) {
	was := maxPageBytes
	maxPageBytes = n
	t.Cleanup(func() { maxPageBytes = was })
}

// WalletSummary is what the "wallets" projection stores per user.
type WalletSummary = walletSummary

// What the "candidates" projection stores.
type (
	CandOrphan  = candOrphan
	RankedOrder = rankedOrder
)

// SetBootID makes the Store see id as the machine's boot ID until the test
// ends; "" makes it unreadable, as on a system without one.
func SetBootID(t interface{ Cleanup(func()) }, id string) {
	was := bootID
	bootID = func() (string, error) {
		if id == "" {
			return "", errors.New("no boot ID here")
		}
		return id, nil
	}
	t.Cleanup(func() { bootID = was })
}

// BucketLen counts the keys of a bucket of the file.
func BucketLen(s *Store, name string) (int, error) {
	n := 0
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(name))
		if b == nil {
			return fmt.Errorf("no bucket %s", name)
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// ApplyBatch applies batch in one write transaction, as the Runner does
// with each batch it takes.
func ApplyBatch(s *Store, batch []eventstore.Commit) error {
	_, err := s.applyBatch(batch)
	return err
}

// PagesWritten counts the pages bbolt has written to the file since it
// was opened.
func PagesWritten(s *Store) int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// PendingTo counts the entries of the pending-by-recipient index.
func PendingTo(s *Store) (int, error) {
	n := 0
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketNotificationsPendingTo)
		if err != nil {
			return err
		}
		n = b.Stats().KeyN
		return nil
	})
	return n, err
}

// HashRuns is how many times st has read its read models for Hash.
func HashRuns(st *Store) uint64 { return st.hashRuns.Load() }

// SetHashHook installs a hook each read of the read models for Hash runs
// first. Set it before calling Hash.
func SetHashHook(st *Store, hook func()) { st.hashHook = hook }

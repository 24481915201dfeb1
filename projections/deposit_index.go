package projections

import (
	"bytes"
	"encoding/json"
	"time"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

var (
	// bucketDepositsByAccount holds every recorded deposit by account and
	// time: normalised account NUL deposited_at (domain.TimeLayout) NUL
	// deposit_id → JSON of domain.RecordedDeposit.
	bucketDepositsByAccount = []byte("deposits_by_account")
	// bucketDepositsByTxn indexes them by the bank's transaction ID:
	// bank_txn_id NUL deposit_id → the key in bucketDepositsByAccount.
	bucketDepositsByTxn = []byte("deposits_by_txn")
)

// applyDepositIndex is the "deposit_index" projection, what bank
// reconciliation compares a statement with: every recorded deposit by
// account and time (buckets[0]) and by bank_txn_id (buckets[1]).
func applyDepositIndex(buckets []*bbolt.Bucket, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.DepositRecorded)
	if !ok {
		return nil
	}
	byAcct, byTxn := buckets[0], buckets[1]
	d := domain.RecordedDeposit{
		DepositID: string(e.DepositID), BankTxnID: e.BankTxnID, AccountNumber: e.AccountNumber, Amount: e.Amount,
		DepositedAt: e.DepositedAt.UTC(), RecordedAt: e.RecordedAt.UTC(),
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	key := depositIndexKey(d)
	if err := byAcct.Put(key, raw); err != nil {
		return err
	}
	return byTxn.Put([]byte(d.BankTxnID+"\x00"+d.DepositID), key)
}

func depositIndexKey(d domain.RecordedDeposit) []byte {
	return []byte(domain.NormalizeAccountNumber(d.AccountNumber) + "\x00" + domain.FormatTime(d.DepositedAt) + "\x00" + d.DepositID)
}

// DepositsOn returns the deposits recorded on account (compared
// normalised) deposited from from to to, both inclusive, oldest first.
func (s *Store) DepositsOn(account string, from, to time.Time) ([]domain.RecordedDeposit, error) {
	prefix := []byte(domain.NormalizeAccountNumber(account) + "\x00")
	start := append(bytes.Clone(prefix), domain.FormatTime(from)...)
	last := domain.FormatTime(to)
	out := []domain.RecordedDeposit{}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketDepositsByAccount)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			at, _, _ := bytes.Cut(k[len(prefix):], []byte{0})
			if string(at) > last {
				break
			}
			var d domain.RecordedDeposit
			if err := json.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// DepositsWithTxn returns every deposit recorded under one of the bank
// transaction IDs, on any account (more than one per ID only if the same
// ID arrived on several accounts).
func (s *Store) DepositsWithTxn(bankTxnIDs []string) ([]domain.RecordedDeposit, error) {
	out := []domain.RecordedDeposit{}
	err := s.view(func(tx *bbolt.Tx) error {
		byAcct, err := queryBucket(tx, bucketDepositsByAccount)
		if err != nil {
			return err
		}
		byTxn, err := queryBucket(tx, bucketDepositsByTxn)
		if err != nil {
			return err
		}
		c := byTxn.Cursor()
		for _, id := range bankTxnIDs {
			prefix := []byte(id + "\x00")
			for k, key := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, key = c.Next() {
				var d domain.RecordedDeposit
				if err := json.Unmarshal(byAcct.Get(key), &d); err != nil {
					return err
				}
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

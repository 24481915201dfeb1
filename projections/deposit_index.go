package projections

import (
	"bytes"
	"encoding/binary"
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
	// bucketDepositsBySeq indexes them by when they were recorded:
	// normalised account NUL seq(8) NUL deposit_id → the key in
	// bucketDepositsByAccount.
	bucketDepositsBySeq = []byte("deposits_by_seq")
)

// applyDepositIndex is the "deposit_index" projection, what bank
// reconciliation compares a statement with: every recorded deposit by
// account and time (buckets[0]), by bank_txn_id (buckets[1]) and by account
// and the sequence of its commit (buckets[2]).
func applyDepositIndex(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.DepositRecorded)
	if !ok {
		return nil
	}
	byAcct, byTxn, bySeq := buckets[0], buckets[1], buckets[2]
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
	if err := bySeq.Put(depositSeqKey(d.AccountNumber, c.Seq, d.DepositID), key); err != nil {
		return err
	}
	return byTxn.Put([]byte(d.BankTxnID+"\x00"+d.DepositID), key)
}

func depositSeqKey(account string, seq eventstore.Seq, depositID string) []byte {
	k := []byte(domain.NormalizeAccountNumber(account) + "\x00")
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	return append(append(k, 0), depositID...)
}

func depositIndexKey(d domain.RecordedDeposit) []byte {
	return []byte(domain.NormalizeAccountNumber(d.AccountNumber) + "\x00" + domain.FormatTime(d.DepositedAt) + "\x00" + d.DepositID)
}

// DepositsOn returns the deposits recorded on account (compared
// normalised) deposited from from to to, both inclusive, oldest first, and
// the sequence they are as of: every deposit recorded up to it is among
// them if deposited in that time, none recorded after it is.
func (s *Store) DepositsOn(account string, from, to time.Time) ([]domain.RecordedDeposit, eventstore.Seq, error) {
	prefix := []byte(domain.NormalizeAccountNumber(account) + "\x00")
	start := append(bytes.Clone(prefix), domain.FormatTime(from)...)
	last := domain.FormatTime(to)
	out := []domain.RecordedDeposit{}
	var asOf eventstore.Seq
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketDepositsByAccount)
		if err != nil {
			return err
		}
		asOf = s.bucketCheckpoint(tx, bucketDepositsByAccount)
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
	return out, asOf, err
}

// DepositAccountsIn returns the accounts (normalised) deposits were
// recorded on deposited from from and before to, with how many on each. It
// reads each account's deposits of that time only.
func (s *Store) DepositAccountsIn(from, to time.Time) (map[string]int, error) {
	first, end := domain.FormatTime(from), domain.FormatTime(to)
	out := map[string]int{}
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := queryBucket(tx, bucketDepositsByAccount)
		if err != nil {
			return err
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Seek(nextAccount(k)) {
			account, _, _ := bytes.Cut(k, []byte{0})
			prefix := append(bytes.Clone(account), 0)
			for k, _ := c.Seek(append(bytes.Clone(prefix), first...)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				at, _, _ := bytes.Cut(k[len(prefix):], []byte{0})
				if string(at) >= end {
					break
				}
				out[string(account)]++
			}
		}
		return nil
	})
	return out, err
}

// nextAccount is where the keys of the account after k's begin.
func nextAccount(k []byte) []byte {
	account, _, _ := bytes.Cut(k, []byte{0})
	return append(bytes.Clone(account), 1)
}

// DepositsRecordedBetween returns the deposits on account (compared
// normalised) whose commits are after after and at most upTo in the
// stream, and that were deposited from from and before before, in the
// order recorded.
func (s *Store) DepositsRecordedBetween(account string, after, upTo eventstore.Seq, from, before time.Time) ([]domain.RecordedDeposit, error) {
	prefix := []byte(domain.NormalizeAccountNumber(account) + "\x00")
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(after)+1)
	out := []domain.RecordedDeposit{}
	err := s.view(func(tx *bbolt.Tx) error {
		byAcct, err := queryBucket(tx, bucketDepositsByAccount)
		if err != nil {
			return err
		}
		bySeq, err := queryBucket(tx, bucketDepositsBySeq)
		if err != nil {
			return err
		}
		c := bySeq.Cursor()
		for k, key := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix) && len(k) >= len(prefix)+8; k, key = c.Next() {
			if eventstore.Seq(binary.BigEndian.Uint64(k[len(prefix):])) > upTo {
				break
			}
			var d domain.RecordedDeposit
			if err := json.Unmarshal(byAcct.Get(key), &d); err != nil {
				return err
			}
			if !d.DepositedAt.Before(from) && d.DepositedAt.Before(before) {
				out = append(out, d)
			}
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

package projections

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// The ledger: domain.Postings of every event, as per-account balances
// (debit-positive) and per-account entries.
var (
	bucketLedgerBalances = []byte("ledger_balances") // account → int64 balance (8 bytes, big-endian two's complement)
	bucketLedgerEntries  = []byte("ledger_entries")  // account 0x00 seq(8) version(4) posting(2) → LedgerEntry JSON
)

// LedgerEntry is one side of a posting on one account (the wire type of
// package api).
type LedgerEntry = api.LedgerEntry

// AccountBalance is one line of the trial balance.
type AccountBalance = api.AccountBalance

// applyLedger is the "ledger" projection: the postings of every event into
// bucketLedgerBalances (buckets[0]) and bucketLedgerEntries (buckets[1]).
func applyLedger(buckets []*bbolt.Bucket, c eventstore.Commit, e eventstore.Envelope, ev domain.Event) error {
	bal, ent := buckets[0], buckets[1]
	for i, p := range domain.Postings(ev) {
		if p.Amount <= 0 || p.Debit == "" || p.Credit == "" || p.Debit == p.Credit {
			return fmt.Errorf("%w: event %s: posting %+v", ErrInconsistent, e.EventID, p)
		}
		for _, side := range []struct {
			account string
			amount  int64
		}{{p.Debit, p.Amount}, {p.Credit, -p.Amount}} {
			if err := addBalance(bal, side.account, side.amount); err != nil {
				return err
			}
			entry, err := json.Marshal(LedgerEntry{
				Seq: api.Seq(c.Seq), At: domain.FormatTime(e.OccurredAt), Amount: side.amount,
				TxID: fmt.Sprintf("%s:%d", e.EventID, i), Memo: p.Memo,
			})
			if err != nil {
				return err
			}
			if err := ent.Put(entryKey(side.account, c.Seq, e.Version, i), entry); err != nil {
				return err
			}
		}
	}
	return nil
}

func addBalance(b *bbolt.Bucket, account string, delta int64) error {
	var cur int64
	if v := b.Get([]byte(account)); len(v) == 8 {
		cur = int64(binary.BigEndian.Uint64(v))
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(cur+delta))
	return b.Put([]byte(account), buf[:])
}

func entryKey(account string, seq eventstore.Seq, version, posting int) []byte {
	k := make([]byte, 0, len(account)+1+entryKeyRest)
	k = append(k, account...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	k = binary.BigEndian.AppendUint32(k, uint32(version))
	return binary.BigEndian.AppendUint16(k, uint16(posting))
}

// entryKeyRest is the length of an entry's key after its account and 0x00
// (seq, version, posting): what an account's page cursor holds.
const entryKeyRest = 8 + 4 + 2

// TrialBalance returns accounts' balances, the sum of all of them (0 unless
// there is a bug) and the stream sequence they are as of (the ledger
// projection's checkpoint), all from one read.
//
// It returns at most limit accounts (0: all) after cursor ("" for the
// first page), in account name order, and the cursor of the next page ("" at
// the end); total is the sum over every account, whatever the page.
func (s *Store) TrialBalance(limit int, cursor string) (accounts []AccountBalance, total int64, asOf eventstore.Seq, next string, err error) {
	accounts = []AccountBalance{}
	after, err := cursorAfter(cursor, nil)
	if err != nil {
		return nil, 0, 0, "", err
	}
	err = s.view(func(tx *bbolt.Tx) error {
		asOf = s.bucketCheckpoint(tx, bucketLedgerBalances)
		b, err := queryBucket(tx, bucketLedgerBalances)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			bal := int64(binary.BigEndian.Uint64(v))
			total += bal
			switch {
			case len(after) > 0 && bytes.Compare(k, after) <= 0:
			case limit > 0 && len(accounts) == limit:
				next = hex.EncodeToString([]byte(accounts[len(accounts)-1].Account))
			default:
				accounts = append(accounts, AccountBalance{Account: string(k), Balance: bal})
			}
			return nil
		})
	})
	return accounts, total, asOf, next, err
}

// Account returns an account's balance and up to limit entries, oldest
// first, starting after cursor ("" for the first page). next is the cursor of
// the following page, "" at the end.
func (s *Store) Account(account string, limit int, cursor string) (balance int64, entries []LedgerEntry, next string, err error) {
	entries = []LedgerEntry{}
	after, err := cursorAfter(cursor, sized(entryKeyRest))
	if err != nil {
		return 0, nil, "", err
	}
	err = s.view(func(tx *bbolt.Tx) error {
		bal, err := queryBucket(tx, bucketLedgerBalances)
		if err != nil {
			return err
		}
		ent, err := queryBucket(tx, bucketLedgerEntries)
		if err != nil {
			return err
		}
		if v := bal.Get([]byte(account)); len(v) == 8 {
			balance = int64(binary.BigEndian.Uint64(v))
		}
		prefix := append([]byte(account), 0)
		c := ent.Cursor()
		k, v := c.Seek(append(prefix, after...))
		if len(after) > 0 && bytes.Equal(k, append(prefix, after...)) {
			k, v = c.Next()
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(entries) == limit {
				next = hex.EncodeToString(last)
				return nil
			}
			var e LedgerEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			entries = append(entries, e)
			last = k[len(prefix):]
		}
		return nil
	})
	return balance, entries, next, err
}

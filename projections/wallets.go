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

// The wallets: a small summary per user, and each movement stored on its
// own, so a credit writes two small records whatever the wallet's history,
// and a page of movements reads only that page.
var (
	bucketWallets       = []byte("wallets")        // user_id → JSON of walletSummary
	bucketWalletEntries = []byte("wallet_entries") // user_id 0x00 seq(8) version(4) → JSON of WalletEntry
)

// WalletView is a wallet as bankbook.q.wallet.get shows it (the wire type of
// package api): the balance, one page of movements, oldest first, and the
// cursor of the next page. Seq is the stream sequence of the last commit
// applied to the wallet, 0 for a wallet without movements.
type WalletView = api.WalletView

// WalletEntry is one movement of a wallet.
type WalletEntry = api.WalletEntry

// walletSummary is what the "wallets" projection keeps per user beside the
// entries.
type walletSummary struct {
	UserID  string `json:"user_id"`
	Balance int64  `json:"balance"`
	// Entries is how many movements the wallet has.
	Entries int     `json:"entries"`
	Seq     api.Seq `json:"seq"`
}

// applyWallets is the "wallets" projection: wallet movements into
// bucketWallets (buckets[0], the summaries) and bucketWalletEntries
// (buckets[1], one record per movement).
func applyWallets(buckets []*bbolt.Bucket, c eventstore.Commit, env eventstore.Envelope, ev domain.Event) error {
	var user domain.UserID
	var entry WalletEntry
	switch e := ev.(type) {
	case domain.WalletCredited:
		user, entry = e.UserID, WalletEntry{At: domain.FormatTime(e.CreditedAt), Amount: e.Amount, Kind: e.Kind, Ref: e.Ref}
	case domain.WalletDebited:
		user, entry = e.UserID, WalletEntry{At: domain.FormatTime(e.DebitAt), Amount: -e.Amount, Kind: "withdrawal", Ref: domain.WithdrawalRef(e.PayoutID)}
	case domain.WalletSpent:
		user, entry = e.UserID, WalletEntry{At: domain.FormatTime(e.SpentAt), Amount: -e.Amount, Kind: "order_payment", Ref: domain.PaymentRef(e.OrderID)}
	default:
		return nil
	}
	sums, entries := buckets[0], buckets[1]
	sum := walletSummary{UserID: string(user)}
	if _, err := getJSON(sums, string(user), &sum); err != nil {
		return err
	}
	sum.Seq = api.Seq(c.Seq)
	sum.Balance += entry.Amount
	sum.Entries++
	if err := putJSON(sums, string(user), sum); err != nil {
		return err
	}
	raw, err := json.Marshal(entry)
	if err != nil {
		return err
	}
	return entries.Put(walletEntryKey(string(user), c.Seq, env.Version), raw)
}

// walletEntryKey is user 0x00 seq version: a wallet's entries are one
// contiguous, ordered range of the bucket. User IDs never contain 0x00
// (domain.ValidateID).
func walletEntryKey(user string, seq eventstore.Seq, version int) []byte {
	k := make([]byte, 0, len(user)+1+12)
	k = append(k, user...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(seq))
	return binary.BigEndian.AppendUint32(k, uint32(version))
}

// Wallet returns a user's balance and up to limit of its movements, oldest
// first, after cursor ("" for the first page); NextCursor is the following
// page's cursor, "" at the end. A user with no movements has an empty
// wallet at seq 0. The cost is that of one page, whatever the wallet's
// history. A limit below 1 means 1.
func (s *Store) Wallet(user string, limit int, cursor string) (WalletView, error) {
	v := WalletView{UserID: user, Entries: []WalletEntry{}}
	limit = max(limit, 1)
	after, err := cursorAfter(cursor, sized(12))
	if err != nil {
		return WalletView{}, err
	}
	err = s.view(func(tx *bbolt.Tx) error {
		sums, err := queryBucket(tx, bucketWallets)
		if err != nil {
			return err
		}
		entries, err := queryBucket(tx, bucketWalletEntries)
		if err != nil {
			return err
		}
		sum := walletSummary{UserID: user}
		if _, err := getJSON(sums, user, &sum); err != nil {
			return err
		}
		v.Balance, v.Seq = sum.Balance, sum.Seq
		prefix := append([]byte(user), 0)
		start := append(bytes.Clone(prefix), after...)
		c := entries.Cursor()
		k, raw := c.Seek(start)
		if len(after) > 0 && bytes.Equal(k, start) {
			k, raw = c.Next()
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			if len(v.Entries) == limit {
				v.NextCursor = hex.EncodeToString(last)
				return nil
			}
			var e WalletEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("wallet %s entry: %w", user, err)
			}
			v.Entries = append(v.Entries, e)
			last = k[len(prefix):]
		}
		return nil
	})
	if err != nil {
		return WalletView{}, err
	}
	return v, nil
}

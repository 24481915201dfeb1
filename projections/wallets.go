package projections

import (
	"encoding/json"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

var bucketWallets = []byte("wallets")

// WalletView is a wallet as bankbook.q.wallet.get shows it (the wire type of
// package api); Seq is the stream sequence of the last commit applied to the
// wallet, 0 for a wallet without movements.
type WalletView = api.WalletView

// WalletEntry is one movement of a wallet.
type WalletEntry = api.WalletEntry

// applyWallets is the "wallets" projection: wallet movements into
// bucketWallets (buckets[0]).
func applyWallets(buckets []*bbolt.Bucket, c eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	var user domain.UserID
	var entry WalletEntry
	switch e := ev.(type) {
	case domain.WalletCredited:
		user, entry = e.UserID, WalletEntry{At: domain.FormatTime(e.CreditedAt), Amount: e.Amount, Kind: e.Kind, Ref: e.Ref}
	case domain.WalletDebited:
		user, entry = e.UserID, WalletEntry{At: domain.FormatTime(e.DebitAt), Amount: -e.Amount, Kind: "withdrawal", Ref: "payout:" + string(e.PayoutID)}
	default:
		return nil
	}
	b := buckets[0]
	v, _, err := getWallet(b, string(user))
	if err != nil {
		return err
	}
	v.Seq = api.Seq(c.Seq)
	v.Balance += entry.Amount
	v.Entries = append(v.Entries, entry)
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(user), raw)
}

func getWallet(b *bbolt.Bucket, user string) (WalletView, bool, error) {
	v := WalletView{UserID: user, Entries: []WalletEntry{}}
	found, err := getJSON(b, user, &v)
	return v, found, err
}

// Wallet returns a user's wallet; a user with no movements has an empty one.
func (s *Store) Wallet(user string) (WalletView, error) {
	v := WalletView{UserID: user, Entries: []WalletEntry{}}
	_, err := lookup(s, bucketWallets, user, &v)
	return v, err
}

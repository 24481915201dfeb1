package projections

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// bucketOrphans holds the deposits that matched nothing and await an
// operator, keyed by deposited_at and deposit ID (oldest first).
var bucketOrphans = []byte("orphans")

// OrphanView is one deposit in the orphan queue (bankbook.q.deposit.orphans).
type OrphanView struct {
	DepositID     string   `json:"deposit_id"`
	BankTxnID     string   `json:"bank_txn_id"`
	AccountNumber string   `json:"account_number"`
	DepositorName string   `json:"depositor_name"`
	Amount        int64    `json:"amount"`
	DepositedAt   string   `json:"deposited_at"`
	Reason        string   `json:"reason"`
	OrderID       string   `json:"order_id,omitempty"` // the order the name belonged to, if any
	Candidates    []string `json:"candidates"`
}

type orphans struct{}

func (orphans) bucket() []byte { return bucketOrphans }

func (orphans) apply(tx *bbolt.Tx, _ eventstore.Commit, _ eventstore.Envelope, ev domain.Event) error {
	e, ok := ev.(domain.DepositRecorded)
	if !ok || e.Outcome != domain.OutcomeOrphaned {
		return nil
	}
	raw, err := json.Marshal(OrphanView{
		DepositID: string(e.DepositID), BankTxnID: e.BankTxnID, AccountNumber: e.AccountNumber,
		DepositorName: e.DepositorName, Amount: e.Amount, DepositedAt: domain.FormatTime(e.DepositedAt),
		Reason: string(e.Reason), OrderID: string(e.OrderID), Candidates: []string{},
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bucketOrphans).Put(orphanKey(e), raw)
}

func orphanKey(e domain.DepositRecorded) []byte {
	return []byte(domain.FormatTime(e.DepositedAt) + "|" + string(e.DepositID))
}

// Orphans returns up to limit orphan deposits, oldest first, after cursor
// ("" for the first page); next is the following page's cursor, "" at the end.
func (s *Store) Orphans(limit int, cursor string) ([]OrphanView, string, error) {
	out := []OrphanView{}
	after, err := hex.DecodeString(cursor)
	if err != nil {
		return nil, "", fmt.Errorf("%w: cursor", ErrBadCursor)
	}
	var next string
	err = s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketOrphans).Cursor()
		k, v := c.Seek(after)
		if len(after) > 0 && bytes.Equal(k, after) {
			k, v = c.Next()
		}
		var last []byte
		for ; k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = hex.EncodeToString(last)
				return nil
			}
			var o OrphanView
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			out = append(out, o)
			last = k
		}
		return nil
	})
	return out, next, err
}

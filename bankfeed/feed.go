package bankfeed

import (
	"fmt"
	"slices"
)

// feed is what a scan result holds for one account and its sub-accounts.
type feed struct {
	// txns are the account's and its sub-accounts' transactions, each
	// once, in the result's order.
	txns []Transaction
	// conflicts are rows that name a kept transaction's account and
	// bank_txn_id with other values: two different transactions under one
	// ID, each once.
	conflicts []Transaction
	// repeats counts the rows that repeated a kept transaction, others the
	// rows for other accounts (dropped), subs the kept transactions of a
	// sub-account.
	repeats, others, subs int
}

// selectFeed keeps the transactions of account (normalised) and of the
// numbers isSub accepts (nil: none), each once, and validates them: an
// invalid one is an error, since dropping it would hide a deposit. A
// transaction without an account number is kept, and fails validation.
func selectFeed(account string, isSub func(string) bool, ts []Transaction) (feed, error) {
	var f feed
	byID := make(map[string]int, len(ts))
	for _, t := range ts {
		sub := false
		if n := NormalizeAccountNumber(t.AccountNumber); n != "" && n != account {
			if isSub == nil || !isSub(n) {
				f.others++
				continue
			}
			sub = true
		}
		if err := t.Validate(); err != nil {
			return f, fmt.Errorf("bank_txn_id %q: %w", t.BankTxnID, err)
		}
		// Banks number transactions per account: one bank_txn_id on two
		// accounts of the feed is two transactions (as deposit IDs are).
		key := NormalizeAccountNumber(t.AccountNumber) + "\x00" + t.BankTxnID
		if i, ok := byID[key]; ok {
			if f.txns[i].Equal(t) || slices.ContainsFunc(f.conflicts, t.Equal) {
				f.repeats++
			} else {
				f.conflicts = append(f.conflicts, t)
			}
			continue
		}
		byID[key] = len(f.txns)
		f.txns = append(f.txns, t)
		if sub {
			f.subs++
		}
	}
	return f, nil
}

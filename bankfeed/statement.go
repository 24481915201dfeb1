package bankfeed

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// IncompleteError is Statement's answer while the bank does not yet vouch
// for the whole period: its data is complete up to CompleteUpTo (zero: no
// claim), before To.
type IncompleteError struct {
	CompleteUpTo, To time.Time
}

func (e *IncompleteError) Error() string {
	if e.CompleteUpTo.IsZero() {
		return fmt.Sprintf("the bank does not say its data is complete up to %s", e.To.UTC().Format(time.RFC3339Nano))
	}
	return fmt.Sprintf("the bank's data is complete up to %s, not yet up to %s",
		e.CompleteUpTo.UTC().Format(time.RFC3339Nano), e.To.UTC().Format(time.RFC3339Nano))
}

// Statement is the statement of account and its sub-accounts (the numbers
// isSub accepts; nil: none) for [from, to), read from src: every
// transaction deposited in that time, in deposit order (DepositedAt, then
// BankTxnID, then the other fields). It scans from from and needs the result complete up to to
// (the Source's promise); until the bank says so it is *IncompleteError.
// Repeats of a transaction are dropped, as the Scanner drops them; two
// different transactions under one account and bank_txn_id are both kept,
// for a reconciliation to report as a duplicate. An invalid transaction is
// an error.
func Statement(ctx context.Context, src Source, account string, isSub func(string) bool, from, to time.Time) ([]Transaction, error) {
	res, err := src.Scan(ctx, from)
	if err != nil {
		return nil, err
	}
	if res.CompleteUpTo.Before(to) {
		return nil, &IncompleteError{CompleteUpTo: res.CompleteUpTo, To: to}
	}
	f, err := selectFeed(NormalizeAccountNumber(account), isSub, res.Transactions)
	if err != nil {
		return nil, err
	}
	var out []Transaction
	for _, t := range append(f.txns, f.conflicts...) {
		if !t.DepositedAt.Before(from) && t.DepositedAt.Before(to) {
			t.DepositedAt = t.DepositedAt.UTC()
			out = append(out, t)
		}
	}
	// In an order the feed's does not change, so that the same period
	// read again is the same statement.
	slices.SortFunc(out, statementOrder)
	return out, nil
}

// statementOrder is deposit order, ties broken by every other field.
func statementOrder(a, b Transaction) int {
	return cmp.Or(byDepositOrder(a, b), cmp.Compare(a.AccountNumber, b.AccountNumber),
		cmp.Compare(a.Amount, b.Amount), cmp.Compare(a.DepositorName, b.DepositorName))
}

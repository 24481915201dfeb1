package domain

import (
	"strings"
	"time"
)

// ClearingItem is one open item of a clearing account: money the account
// holds for one deposit (AccountSuspense, keyed by deposit ID), one payout
// (AccountPayoutsPending, keyed by payout ID) or one wallet payment
// (AccountWalletPayments, keyed by order ID) until it moves on.
type ClearingItem struct {
	Account string
	Key     string
	Amount  int64
	// Since is when the money arrived (zero: the event's time).
	Since time.Time
	// Status says where the item stands: orphaned, reopened, requested.
	Status string
}

// ClearingMove is what one event does to the open items of the clearing
// accounts, the way its postings (Postings) move their money: it closes one
// item, opens one, or both (a deposit refunded to the bank leaves suspense
// for payouts pending). Note, when its Account is set, is an item the event
// leaves open but changes the status of (a resolution whose money moves with
// a later event, a failed payout not yet returned). The read models' ledger
// series and the audit's clearing check follow this one rule.
type ClearingMove struct {
	Close ClearingItem // Account and Key only
	Open  ClearingItem
	Note  ClearingItem // Account, Key and Status only
}

// Clearing returns ev's ClearingMove (the zero value for an event that
// moves no clearing money).
func Clearing(ev Event) ClearingMove {
	switch e := ev.(type) {
	case DepositRecorded:
		if e.Outcome == OutcomeOrphaned {
			return ClearingMove{Open: ClearingItem{Account: AccountSuspense, Key: string(e.DepositID), Amount: e.Amount, Since: e.DepositedAt, Status: "orphaned"}}
		}
	case DepositResolved:
		// Refunded to the bank, the money moves now; assigned to an order
		// or a wallet, it moves with the order.paid or wallet.credited that
		// follows.
		if e.Action == ResolveRefundToBank {
			return ClearingMove{
				Close: ClearingItem{Account: AccountSuspense, Key: string(e.DepositID)},
				Open:  ClearingItem{Account: AccountPayoutsPending, Key: string(e.PayoutID), Amount: e.Amount, Since: e.ResolvedAt, Status: "requested"},
			}
		}
		return ClearingMove{Note: ClearingItem{Account: AccountSuspense, Key: string(e.DepositID), Status: "resolved (" + e.Action + "), money not yet moved"}}
	case OrderPaid:
		switch e.FromAccount {
		case AccountSuspense:
			return ClearingMove{Close: ClearingItem{Account: AccountSuspense, Key: string(e.DepositID)}}
		case AccountWalletPayments:
			return ClearingMove{Close: ClearingItem{Account: AccountWalletPayments, Key: string(e.OrderID)}}
		}
	case WalletSpent:
		return ClearingMove{Open: ClearingItem{Account: AccountWalletPayments, Key: string(e.OrderID), Amount: e.Amount, Since: e.SpentAt, Status: "spent"}}
	case DepositReopened:
		return ClearingMove{
			Close: ClearingItem{Account: AccountPayoutsPending, Key: string(e.PayoutID)},
			Open:  ClearingItem{Account: AccountSuspense, Key: string(e.DepositID), Amount: e.Amount, Since: e.ReopenedAt, Status: "reopened"},
		}
	case WalletDebited:
		return ClearingMove{Open: ClearingItem{Account: AccountPayoutsPending, Key: string(e.PayoutID), Amount: e.Amount, Since: e.DebitAt, Status: "requested"}}
	case PayoutSettled:
		return ClearingMove{Close: ClearingItem{Account: AccountPayoutsPending, Key: string(e.PayoutID)}}
	case PayoutFailed:
		return ClearingMove{Note: ClearingItem{Account: AccountPayoutsPending, Key: string(e.PayoutID), Status: "failed, not yet returned"}}
	case WalletCredited:
		switch e.FromAccount {
		case AccountPayoutsPending: // a failed payout returned: its ref is "reversal:<payout>"
			return ClearingMove{Close: ClearingItem{Account: AccountPayoutsPending, Key: strings.TrimPrefix(e.Ref, ReversalRef(""))}}
		case AccountSuspense: // an orphan refunded to a wallet: its ref is the deposit
			return ClearingMove{Close: ClearingItem{Account: AccountSuspense, Key: e.Ref}}
		case AccountWalletPayments: // a payment the order did not take: its ref is PaymentReversalRef
			return ClearingMove{Close: ClearingItem{Account: AccountWalletPayments, Key: strings.TrimPrefix(e.Ref, PaymentReversalRef(""))}}
		}
	}
	return ClearingMove{}
}

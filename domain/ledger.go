package domain

import (
	"strconv"
	"strings"
	"unicode"
)

// Chart of accounts (DOMAIN.md §6). Amounts are minor units; balances are
// debit-positive: an account's balance is its debits minus its credits, so
// assets and expenses are positive, liabilities and revenue negative, and the
// sum over all accounts is always 0.
const (
	AccountPayableOrders = "liabilities:payable:orders"
	AccountSuspense      = "liabilities:suspense:unmatched"
	AccountBankFees      = "expenses:bank-fees"
	// AccountRevenueFees is the platform's revenue: the fees on store payments.
	AccountRevenueFees = "revenue:fees"
)

// AccountPayableDistributor is the liability account of what the engine
// owes a distributor: its stores' payments, net of the platform fee, until
// they are settled.
func AccountPayableDistributor(id DistributorID) string {
	return "liabilities:payable:distributor:" + string(id)
}

// AccountBank is the asset account of a bank account of the company.
func AccountBank(number string) string { return "assets:bank:" + NormalizeAccountNumber(number) }

// NormalizeAccountNumber is the form in which account numbers are compared:
// white space and hyphens removed ("123-456 789" and "123456789" are the
// same account), letters upper-cased. Banks and operators format the number
// of one account differently.
func NormalizeAccountNumber(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// AccountWallet is the liability account of a user's wallet.
func AccountWallet(user UserID) string { return "liabilities:wallet:" + string(user) }

// Posting moves Amount from Credit to Debit: one debit and one credit of the
// same amount, so every posting sums to zero.
type Posting struct {
	Debit  string `json:"debit"`
	Credit string `json:"credit"`
	Amount int64  `json:"amount"`
	Memo   string `json:"memo"`
}

// Postings returns the ledger postings of one event: a pure function, so
// the ledger can be rebuilt from the log at any time. Each money movement
// posts from exactly one event — the one that moves the money:
//
//	order.paid                    debit from_account (bank, suspense,     credit liabilities:payable:orders
//	                              or wallet payments)
//	wallet.spent                  debit liabilities:wallet:<user>         credit liabilities:wallet-payments:pending
//	wallet.credited               debit from_account                      credit liabilities:wallet:<user>
//	deposit.recorded (orphaned)   debit assets:bank:<account>             credit liabilities:suspense:unmatched
//	wallet.debited                debit liabilities:wallet:<user>         credit liabilities:payouts:pending
//	deposit.resolved (to bank)    debit liabilities:suspense:unmatched    credit liabilities:payouts:pending
//	payout.settled                debit liabilities:payouts:pending       credit assets:bank:<account>
//	                              debit expenses:bank-fees                credit assets:bank:<account>   (the fee)
//	deposit.reopened              debit liabilities:payouts:pending       credit liabilities:suspense:unmatched
//	store.payment_received        debit assets:bank:<collect_account>     credit liabilities:payable:distributor:<id>   (the amount)
//	                              debit liabilities:payable:distributor:<id>  credit revenue:fees                      (the fee)
//
// A dedicated account is a virtual sub-account of the collection account,
// a number that routes money into it, not a bank account of its own: a
// store payment posts its whole amount to the collection account in one
// entry, and the fee is then charged to the distributor, who is owed the
// net. A zero fee is not posted.
//
// A failed withdrawal returns through wallet.credited (payout_reversal,
// from payouts pending). Other events post nothing.
func Postings(e Event) []Posting {
	switch e := e.(type) {
	case WalletDebited:
		return []Posting{{Debit: AccountWallet(e.UserID), Credit: AccountPayoutsPending, Amount: e.Amount, Memo: "withdrawal " + string(e.PayoutID)}}
	case DepositResolved:
		if e.Action == ResolveRefundToBank {
			return []Posting{{Debit: AccountSuspense, Credit: AccountPayoutsPending, Amount: e.Amount, Memo: "orphan " + string(e.DepositID) + " refunded to the bank by " + string(e.PayoutID)}}
		}
	case PayoutSettled:
		ps := []Posting{{Debit: AccountPayoutsPending, Credit: AccountBank(e.BankAccount), Amount: e.Amount, Memo: "payout " + string(e.PayoutID) + " sent"}}
		if e.Fee > 0 {
			ps = append(ps, Posting{Debit: AccountBankFees, Credit: AccountBank(e.BankAccount), Amount: e.Fee, Memo: "firm-banking fee for " + string(e.PayoutID)})
		}
		return ps
	case DepositReopened:
		return []Posting{{Debit: AccountPayoutsPending, Credit: AccountSuspense, Amount: e.Amount, Memo: "refund " + string(e.PayoutID) + " failed: " + e.Reason}}
	case OrderPaid:
		by := "by " + string(e.DepositID)
		if e.DepositID == "" {
			by = "from the buyer's wallet"
		}
		return []Posting{{Debit: e.FromAccount, Credit: AccountPayableOrders, Amount: e.Amount, Memo: "order " + string(e.OrderID) + " paid " + by}}
	case WalletSpent:
		return []Posting{{Debit: AccountWallet(e.UserID), Credit: AccountWalletPayments, Amount: e.Amount, Memo: "order " + string(e.OrderID) + " paid from the wallet"}}
	case WalletCredited:
		return []Posting{{Debit: e.FromAccount, Credit: AccountWallet(e.UserID), Amount: e.Amount, Memo: e.Kind + " " + e.Ref}}
	case StorePaymentReceived:
		// The whole amount lands in the collection account and is owed to
		// the distributor (one bank entry per transfer); the platform's fee
		// is then charged to the distributor, who is owed the net.
		payable := AccountPayableDistributor(e.DistributorID)
		ps := []Posting{{Debit: AccountBank(e.CollectAccount), Credit: payable, Amount: e.Amount, Memo: "store " + string(e.StoreID) + " paid " + string(e.DepositID) + storePaymentBill(e)}}
		if e.Fee > 0 {
			ps = append(ps, Posting{Debit: payable, Credit: AccountRevenueFees, Amount: e.Fee, Memo: "fee on " + string(e.DepositID) + " (" + strconv.Itoa(e.FeeBps) + " bps)"})
		}
		return ps
	case DepositRecorded:
		if e.Outcome == OutcomeOrphaned {
			return []Posting{{Debit: AccountBank(e.Landed()), Credit: AccountSuspense, Amount: e.Amount, Memo: "orphan deposit " + string(e.DepositID) + " (" + string(e.Reason) + ")"}}
		}
	}
	return nil
}

// storePaymentBill is the end of a store payment's memo: the bill it went
// to, or that it was unbilled.
func storePaymentBill(e StorePaymentReceived) string {
	if e.BillID == "" {
		return " (unbilled)"
	}
	return " for " + e.BillID
}

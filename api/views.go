package api

import "github.com/bankbook/bankbook/domain"

// OrderView is an order as bankbook.q.order.get shows it. It is built from
// events only, so a replay rebuilds it byte for byte.
type OrderView struct {
	OrderID        string             `json:"order_id"`
	BuyerID        string             `json:"buyer_id"`
	BuyerName      string             `json:"buyer_name"`
	Amount         int64              `json:"amount"`
	Currency       string             `json:"currency"`
	Status         string             `json:"status"`
	DepositorName  string             `json:"depositor_name"`
	CollectAccount domain.BankAccount `json:"collect_account"`
	CancelWindowS  int64              `json:"cancel_window_s"`
	PaidAmount     int64              `json:"paid_amount"`
	// PaidFrom is "wallet" for an order its buyer paid from the wallet
	// (bankbook.cmd.order.pay_from_wallet); absent for one paid by a bank
	// transfer (its deposit is in DepositIDs) or not paid.
	PaidFrom string `json:"paid_from,omitempty"`
	// DepositIDs lists the deposits applied to the order (the one that paid
	// it, and any refunded to the buyer's wallet); never nil.
	DepositIDs []string `json:"deposit_ids"`
	// Refunds lists money returned for the order; never nil.
	Refunds      []Refund `json:"refunds"`
	CancelReason string   `json:"cancel_reason,omitempty"`
	// CancelAt is when a reserved cancellation becomes final.
	CancelAt string `json:"cancel_at,omitempty"`
	// ExpiresAt is the payment deadline: an order still awaiting its
	// deposit then expires. Absent on orders submitted before orders expired.
	ExpiresAt string `json:"expires_at,omitempty"`
	// SubmittedAt and UpdatedAt are event times in domain.TimeLayout.
	SubmittedAt string `json:"submitted_at"`
	UpdatedAt   string `json:"updated_at"`
	// ClosedAt is when the order left the open statuses (paid, cancelled,
	// expired; a paid order cancelled later: its cancellation), as
	// domain.Order.ClosedAt: the name grace counts from it. Absent while
	// it is open.
	ClosedAt string `json:"closed_at,omitempty"`
	// Version is the number of the order's events applied to the view.
	Version int `json:"version"`
	// Seq is the stream sequence of the last commit applied to the view.
	Seq Seq `json:"seq"`
}

// PaidFromWallet is OrderView.PaidFrom of an order paid from its buyer's
// wallet.
const PaidFromWallet = "wallet"

// OrphanView is one deposit as the read models hold it, and an entry of the
// orphan queue (bankbook.q.deposit.orphans).
type OrphanView struct {
	DepositID     string `json:"deposit_id"`
	BankTxnID     string `json:"bank_txn_id"`
	AccountNumber string `json:"account_number"`
	DepositorName string `json:"depositor_name"`
	Amount        int64  `json:"amount"`
	DepositedAt   string `json:"deposited_at"`
	Outcome       string `json:"outcome"`
	Reason        string `json:"reason,omitempty"`
	OrderID       string `json:"order_id,omitempty"` // the order it paid or the name belonged to, or the order an operator assigned it to
	// UserID is the wallet its money went to: the buyer's, for a deposit
	// refunded to the wallet, or the user's an operator refunded it to.
	UserID string `json:"user_id,omitempty"`
	// LandedOn is the collection account, for an orphan on a dedicated
	// account no store holds (domain.DepositRecorded.LandedOn).
	LandedOn string `json:"landed_on,omitempty"`
	// LinkID and BillID are a store payment's (distributor, store) link
	// and the bill it went to; BillID is absent for an unbilled payment.
	LinkID     string `json:"link_id,omitempty"`
	BillID     string `json:"bill_id,omitempty"`
	Resolution string `json:"resolution,omitempty"`
	// PayoutID is the payout of a refund to the bank (resolution
	// refund_to_bank).
	PayoutID string `json:"payout_id,omitempty"`
	// Candidates are the open orders the deposit most likely meant (in the
	// orphan queue only): same amount, closest name, closest in time.
	Candidates []string `json:"candidates"`
	// Seq is the stream sequence of the last commit applied to the view.
	Seq Seq `json:"seq"`
}

// Waiting reports whether the deposit waits in the orphan queue: orphaned
// and not (or no longer) resolved.
func (v OrphanView) Waiting() bool {
	return v.Outcome == string(domain.OutcomeOrphaned) && v.Resolution == ""
}

// OrphansReply is the reply of bankbook.q.deposit.orphans.
type OrphansReply struct {
	Deposits   []OrphanView `json:"deposits"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// WalletView is a wallet as bankbook.q.wallet.get shows it: the balance
// and one page of movements, oldest first.
type WalletView struct {
	UserID  string `json:"user_id"`
	Balance int64  `json:"balance"`
	// Entries is one page of the wallet's movements, oldest first; never
	// nil.
	Entries []WalletEntry `json:"entries"`
	// NextCursor asks for the following page; "" on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
	// Seq is the stream sequence of the last commit applied to the wallet.
	Seq Seq `json:"seq"`
}

// WalletEntry is one movement of a wallet.
type WalletEntry struct {
	At     string `json:"at"`
	Amount int64  `json:"amount"` // positive: credit to the user; negative: withdrawal
	Kind   string `json:"kind"`
	Ref    string `json:"ref"`
}

// PayoutView is a payout as bankbook.q.payout.get shows it.
type PayoutView struct {
	PayoutID string             `json:"payout_id"`
	Status   string             `json:"status"` // requested, settled, failed
	Amount   int64              `json:"amount"`
	To       domain.BankAccount `json:"to"`
	// Source is "wallet" (a withdrawal; SourceID is the user) or "deposit"
	// (an orphan refunded to the sender; SourceID is the deposit).
	Source      string `json:"source"`
	SourceID    string `json:"source_id"`
	PayFrom     string `json:"pay_from"`
	Fee         int64  `json:"fee"`
	ProviderRef string `json:"provider_ref,omitempty"`
	Failure     string `json:"failure,omitempty"`
	RequestedAt string `json:"requested_at"`
	UpdatedAt   string `json:"updated_at"`
	// Seq is the stream sequence of the last commit applied to the view.
	Seq Seq `json:"seq"`
}

// LedgerEntry is one side of a posting on one account.
type LedgerEntry struct {
	Seq    Seq    `json:"seq"`
	At     string `json:"at"`
	Amount int64  `json:"amount"` // debit positive, credit negative
	TxID   string `json:"tx_id"`  // the posting: <event id>:<posting index>
	Memo   string `json:"memo"`
}

// AccountBalance is one line of the trial balance.
type AccountBalance struct {
	Account string `json:"account"`
	Balance int64  `json:"balance"`
}

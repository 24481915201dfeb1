package api

import (
	"encoding/json"
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// The queries an operator's console reads through (issue 12): orders by ID,
// depositor name and status; payouts by status; reconciliation runs; and
// the history of the suspense and clearing accounts. Lists are newest
// first and paginated like PageRequest (limit 1–500, default 50).

// orderStatuses are the statuses an order can be in, in the order of its
// life.
var orderStatuses = []domain.OrderStatus{
	domain.StatusAwaitingDeposit, domain.StatusPaid, domain.StatusCancelReserved, domain.StatusCancelled, domain.StatusExpired,
}

// OrderSearchRequest is the body of bankbook.q.order.search. Every field
// given narrows the search (they combine with AND); none lists every order.
type OrderSearchRequest struct {
	// OrderID finds that one order (no cursor then: there is no next page).
	OrderID string `json:"order_id,omitempty"`
	// DepositorName finds the orders whose depositor name is this name once
	// both are normalised as the engine compares them (domain.NormalizeName:
	// case, width, white space and invisible characters do not matter).
	DepositorName string `json:"depositor_name,omitempty"`
	// BuyerName finds the orders whose buyer name is this name, normalised
	// the same way.
	BuyerName string `json:"buyer_name,omitempty"`
	// Status is awaiting_deposit, paid, cancel_reserved, cancelled or
	// expired.
	Status string `json:"status,omitempty"`
	PageRequest
}

// Validate checks the request fields.
func (q OrderSearchRequest) Validate() error {
	if q.OrderID != "" {
		if err := domain.ValidateID("order_id", q.OrderID); err != nil {
			return err
		}
		if q.Cursor != "" {
			return invalid("cursor", "is not used with order_id: a search by order_id has one page")
		}
	}
	for _, f := range [][2]string{{"depositor_name", q.DepositorName}, {"buyer_name", q.BuyerName}} {
		if f[1] == "" {
			continue
		}
		if err := domain.ValidateName(f[0], f[1]); err != nil {
			return err
		}
	}
	if q.Status != "" && !validOrderStatus(q.Status) {
		return invalid("status", "must be one of %s", orderStatusList())
	}
	return q.PageRequest.Validate()
}

func validOrderStatus(s string) bool {
	for _, st := range orderStatuses {
		if string(st) == s {
			return true
		}
	}
	return false
}

func orderStatusList() string {
	names := make([]string, len(orderStatuses))
	for i, s := range orderStatuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// OrderSearchReply is the reply of bankbook.q.order.search: one page of
// orders, newest submission first.
type OrderSearchReply struct {
	// Orders is never nil.
	Orders     []OrderView `json:"orders"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// PayoutListRequest is the body of bankbook.q.payout.list.
type PayoutListRequest struct {
	// Status is requested, settled or failed; "" for every payout.
	Status string `json:"status,omitempty"`
	PageRequest
}

// Validate checks the request fields.
func (q PayoutListRequest) Validate() error {
	switch domain.PayoutStatus(q.Status) {
	case "", domain.PayoutRequestedStatus, domain.PayoutSettledStatus, domain.PayoutFailedStatus:
	default:
		return invalid("status", "must be requested, settled or failed")
	}
	return q.PageRequest.Validate()
}

// PayoutListReply is the reply of bankbook.q.payout.list: one page of
// payouts, newest request first.
type PayoutListReply struct {
	// Payouts is never nil.
	Payouts    []PayoutView `json:"payouts"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ReconcileListRequest is the body of bankbook.q.reconcile.list.
type ReconcileListRequest struct {
	PageRequest
}

// ReconcileListReply is the reply of bankbook.q.reconcile.list: one page
// of runs, the most recently recorded first.
type ReconcileListReply struct {
	// Runs is never nil.
	Runs       []ReconcileRunSummary `json:"runs"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// ReconcileRunSummary is one reconciliation run without its items
// (bankbook.q.reconcile.get has them).
type ReconcileRunSummary struct {
	RunID      string `json:"run_id"`
	Kind       string `json:"kind"` // bank or payouts
	FileSHA256 string `json:"file_sha256"`
	// Lines is the number of lines of the input file.
	Lines       int    `json:"lines"`
	CompletedAt string `json:"completed_at"`
	// Counts has one entry per category (matched, missing_in_ledger,
	// missing_at_bank, amount_mismatch, duplicate, timing_difference),
	// 0 included.
	Counts map[string]int `json:"counts"`
	// Findings counts the items that need an operator (every category but
	// matched and timing_difference).
	Findings int `json:"findings"`
	// Seq is the stream sequence of the run's commit.
	Seq Seq `json:"seq"`
}

// NewReconcileRunSummary summarises a recorded run.
func NewReconcileRunSummary(run domain.ReconciliationCompleted, seq Seq) ReconcileRunSummary {
	return ReconcileRunSummary{
		RunID: string(run.RunID), Kind: run.Kind, FileSHA256: run.FileSHA256, Lines: run.Lines,
		CompletedAt: domain.FormatTime(run.CompletedAt), Counts: CountsByCategory(run.Counts),
		Findings: run.Counts.Findings(), Seq: seq,
	}
}

// CountsByCategory returns a run's counts keyed by their JSON names, so the
// categories are named in one place (domain.ReconcileCounts).
func CountsByCategory(c domain.ReconcileCounts) map[string]int {
	out := map[string]int{}
	raw, _ := json.Marshal(c)     // a struct of ints always marshals
	_ = json.Unmarshal(raw, &out) // and unmarshals into a map of ints
	return out
}

// Ledger series (bankbook.q.ledger.series): the history of an account that
// holds open items, money the engine holds until an operator or a provider
// clears it.

// SeriesAccounts returns the accounts bankbook.q.ledger.series follows: the
// suspense account (items keyed by deposit ID: orphan deposits), payouts
// pending (items keyed by payout ID: payouts requested and not settled) and
// wallet payments pending (items keyed by order ID: a wallet's payment of an
// order that the order has not taken or returned yet).
func SeriesAccounts() []string {
	return []string{domain.AccountSuspense, domain.AccountPayoutsPending, domain.AccountWalletPayments}
}

// Limits of bankbook.q.ledger.series.
const (
	// DefaultSeriesPoints and MaxSeriesPoints bound the points of a reply.
	DefaultSeriesPoints = 500
	MaxSeriesPoints     = 5000
	// MaxSeriesOpenItems bounds the open items of a reply (the oldest
	// first); OpenCount counts them all.
	MaxSeriesOpenItems = 1000
)

// LedgerSeriesRequest is the body of bankbook.q.ledger.series.
type LedgerSeriesRequest struct {
	// Account is one of SeriesAccounts().
	Account string `json:"account"`
	// Limit is the number of points: 1 to MaxSeriesPoints, 0 or absent for
	// DefaultSeriesPoints.
	Limit int `json:"limit,omitempty"`
	ReadAfter
}

// Validate checks the request fields.
func (q LedgerSeriesRequest) Validate() error {
	if err := domain.ValidateLedgerAccount("account", q.Account); err != nil {
		return err
	}
	if !IsSeriesAccount(q.Account) {
		return invalid("account", "must be an account that holds open items: %s", strings.Join(SeriesAccounts(), ", "))
	}
	if q.Limit < 0 || q.Limit > MaxSeriesPoints {
		return invalid("limit", "must be between 1 and %d (0 or absent: %d)", MaxSeriesPoints, DefaultSeriesPoints)
	}
	return nil
}

// PointLimit is Limit with the default applied.
func (q LedgerSeriesRequest) PointLimit() int {
	if q.Limit == 0 {
		return DefaultSeriesPoints
	}
	return q.Limit
}

// IsSeriesAccount reports whether account is one of SeriesAccounts().
func IsSeriesAccount(account string) bool {
	for _, a := range SeriesAccounts() {
		if a == account {
			return true
		}
	}
	return false
}

// LedgerSeriesReply is the reply of bankbook.q.ledger.series.
type LedgerSeriesReply struct {
	Account string `json:"account"`
	// Points are the account's most recent Limit points, oldest first: one
	// per commit that moved the account's money or opened or closed one of
	// its items. Never nil.
	Points []SeriesPoint `json:"points"`
	// OpenItems are the items open now, oldest first, at most
	// MaxSeriesOpenItems of them; never nil.
	OpenItems []OpenItem `json:"open_items"`
	// OpenCount counts every item open now.
	OpenCount int `json:"open_count"`
	// AsOfSeq is the stream sequence the series has applied: the account
	// has not changed since its last point up to this sequence.
	AsOfSeq Seq `json:"as_of_seq"`
}

// SeriesPoint is an account's state right after one commit.
type SeriesPoint struct {
	Seq Seq `json:"seq"`
	// At is the commit's event time.
	At string `json:"at"`
	// Balance is debit-positive, as in bankbook.q.ledger.account: these
	// liability accounts hold money as a negative balance, the sum of their
	// open items with the sign turned.
	Balance   int64 `json:"balance"`
	OpenCount int   `json:"open_count"`
	// OldestOpenSince is when the oldest open item was opened ("" when none
	// is open): the chart's age is At minus it.
	OldestOpenSince string `json:"oldest_open_since,omitempty"`
}

// OpenItem is money an account holds for one thing: an orphan deposit in
// suspense (Key: the deposit ID), a payout in payouts pending (Key: the
// payout ID).
type OpenItem struct {
	Key    string `json:"key"`
	Amount int64  `json:"amount"`
	// Since is when the item was opened: the deposit's time, the
	// resolution to the bank, the reopening, the withdrawal.
	Since string `json:"since"`
}

package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// MaxBulkBills is the most lines one bill.issue_bulk request may carry.
const MaxBulkBills = 1000

// MaxMemo is the longest bill memo, in characters.
const MaxMemo = 200

// LinkStoreRequest is the body of bankbook.cmd.store.link.
type LinkStoreRequest struct {
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	StoreName     string `json:"store_name"`
	// DistributorName is optional: the distributor as its stores know it,
	// which the store's messages name.
	DistributorName string `json:"distributor_name,omitempty"`
}

// Validate checks the request fields. The distributor name, when given, is
// checked as the store name is.
func (r LinkStoreRequest) Validate() error {
	errs := []error{
		domain.ValidateID("distributor_id", r.DistributorID),
		domain.ValidateID("store_id", r.StoreID),
		domain.ValidateText("store_name", r.StoreName, domain.MaxStoreNameLength),
	}
	if r.DistributorName != "" {
		errs = append(errs, domain.ValidateText("distributor_name", r.DistributorName, domain.MaxDistributorNameLength))
	}
	return first(errs)
}

// Canonical removes the store and distributor names' surrounding white
// space, as a bank account's bank and holder lose theirs (a blank
// distributor name is no distributor name).
func (r LinkStoreRequest) Canonical() LinkStoreRequest {
	r.StoreName = strings.TrimSpace(r.StoreName)
	r.DistributorName = strings.TrimSpace(r.DistributorName)
	return r
}

// LinkStoreReply is the reply of bankbook.cmd.store.link.
type LinkStoreReply struct {
	// Status is LinkStatusLinked.
	Status string `json:"status"`
	LinkedStore
	Written
}

// LinkedStore is a link as the engine holds it now: its store, its names and
// its dedicated account. store.link and store.rename answer it, and the
// store queries (StoreView).
type LinkedStore struct {
	LinkID        string `json:"link_id"`
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	StoreName     string `json:"store_name"`
	// DistributorName is absent when the link has none.
	DistributorName  string             `json:"distributor_name,omitempty"`
	DedicatedAccount domain.BankAccount `json:"dedicated_account"`
	LinkedAt         string             `json:"linked_at"`
}

// RenameStoreRequest is the body of bankbook.cmd.store.rename. A name
// left out stays as it is; at least one must be given. DistributorName ""
// (or blank) removes the link's distributor name.
type RenameStoreRequest struct {
	DistributorID   string  `json:"distributor_id"`
	StoreID         string  `json:"store_id"`
	StoreName       *string `json:"store_name,omitempty"`
	DistributorName *string `json:"distributor_name,omitempty"`
}

// Validate checks the request fields as store.link checks them.
func (r RenameStoreRequest) Validate() error {
	errs := []error{
		domain.ValidateID("distributor_id", r.DistributorID),
		domain.ValidateID("store_id", r.StoreID),
	}
	switch {
	case r.StoreName == nil && r.DistributorName == nil:
		errs = append(errs, invalid("store_name", "give store_name, distributor_name or both"))
	case r.StoreName != nil:
		errs = append(errs, domain.ValidateText("store_name", *r.StoreName, domain.MaxStoreNameLength))
	}
	if r.DistributorName != nil && strings.TrimSpace(*r.DistributorName) != "" {
		errs = append(errs, domain.ValidateText("distributor_name", *r.DistributorName, domain.MaxDistributorNameLength))
	}
	return first(errs)
}

// Canonical removes the names' surrounding white space, as the rename
// records them.
func (r RenameStoreRequest) Canonical() RenameStoreRequest {
	trim := func(p *string) *string {
		if p == nil {
			return nil
		}
		s := strings.TrimSpace(*p)
		return &s
	}
	r.StoreName, r.DistributorName = trim(r.StoreName), trim(r.DistributorName)
	return r
}

// RenameStoreReply is the reply of bankbook.cmd.store.rename: the link
// with its names now.
type RenameStoreReply struct {
	// Status is StoreStatusRenamed, or StoreStatusUnchanged when the link
	// had those names already (nothing was written).
	Status string `json:"status"`
	LinkedStore
	Written
}

// StoreView is one link of a distributor as bankbook.q.store.get and
// bankbook.q.store.list answer it.
type StoreView struct {
	LinkedStore
	// RenamedAt is when store.rename last changed a name; absent when
	// never.
	RenamedAt string `json:"renamed_at,omitempty"`
	// Seq is the stream sequence of the link's last change the view shows
	// (store.linked or store.renamed).
	Seq Seq `json:"seq"`
}

// GetStoreRequest is the body of bankbook.q.store.get.
type GetStoreRequest struct {
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	ReadAfter
}

// Validate checks the request fields.
func (r GetStoreRequest) Validate() error {
	return first([]error{domain.ValidateID("distributor_id", r.DistributorID), domain.ValidateID("store_id", r.StoreID)})
}

// StoreListRequest is the body of bankbook.q.store.list.
type StoreListRequest struct {
	DistributorID string `json:"distributor_id"`
	PageRequest
}

// Validate checks the request fields.
func (r StoreListRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	return r.PageRequest.Validate()
}

// StoreListReply is the reply of bankbook.q.store.list: the distributor's
// linked stores, by store_id.
type StoreListReply struct {
	Stores     []StoreView `json:"stores"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// BillLine is one bill to issue: a line of bill.issue_bulk, and the bill
// part of bill.issue.
type BillLine struct {
	StoreID  string `json:"store_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency,omitempty"`
	Memo     string `json:"memo,omitempty"`
}

// Validate checks the line's fields.
func (l BillLine) Validate() error {
	errs := []error{domain.ValidateID("store_id", l.StoreID)}
	if _, err := domain.NewMoney(l.Amount, l.Currency); err != nil {
		errs = append(errs, err)
	}
	if l.Memo != "" {
		errs = append(errs, domain.ValidateText("memo", l.Memo, MaxMemo))
	}
	return first(errs)
}

// Canonical writes the default currency as its absence and removes the
// memo's surrounding white space (a blank memo is no memo).
func (l BillLine) Canonical() BillLine {
	l.Currency = defaultCurrency(l.Currency)
	l.Memo = strings.TrimSpace(l.Memo)
	return l
}

// IssueBillRequest is the body of bankbook.cmd.bill.issue.
type IssueBillRequest struct {
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	Amount        int64  `json:"amount"`
	Currency      string `json:"currency,omitempty"`
	Memo          string `json:"memo,omitempty"`
}

// Line is the request's bill.
func (r IssueBillRequest) Line() BillLine {
	return BillLine{StoreID: r.StoreID, Amount: r.Amount, Currency: r.Currency, Memo: r.Memo}
}

// Validate checks the request fields.
func (r IssueBillRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	return r.Line().Validate()
}

// Canonical is the bill line's canonical form (BillLine.Canonical).
func (r IssueBillRequest) Canonical() IssueBillRequest {
	l := r.Line().Canonical()
	r.Currency, r.Memo = l.Currency, l.Memo
	return r
}

// IssueBillReply is the reply of bankbook.cmd.bill.issue.
type IssueBillReply struct {
	BillID           string             `json:"bill_id"`
	Status           string             `json:"status"`
	SupersededBillID string             `json:"superseded_bill_id,omitempty"`
	StoreID          string             `json:"store_id"`
	Amount           int64              `json:"amount"`
	DedicatedAccount domain.BankAccount `json:"dedicated_account"`
	IssuedAt         string             `json:"issued_at"`
	Written
}

// IssueBulkRequest is the body of bankbook.cmd.bill.issue_bulk.
type IssueBulkRequest struct {
	DistributorID string     `json:"distributor_id"`
	Bills         []BillLine `json:"bills"`
}

// Validate checks what concerns the whole request; each line is validated
// on its own and a bad line gets its own error in the reply.
func (r IssueBulkRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	if len(r.Bills) == 0 || len(r.Bills) > MaxBulkBills {
		return invalid("bills", "must hold 1 to %d lines, got %d", MaxBulkBills, len(r.Bills))
	}
	return nil
}

// Canonical writes every line's default currency as its absence.
func (r IssueBulkRequest) Canonical() IssueBulkRequest {
	lines := make([]BillLine, len(r.Bills))
	for i, l := range r.Bills {
		lines[i] = l.Canonical()
	}
	r.Bills = lines
	return r
}

// LineError is why one line of a bulk request was not done.
type LineError struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

// BulkResult is the outcome of one line of bill.issue_bulk, in request
// order: a bill, or an error.
type BulkResult struct {
	Line             int        `json:"line"`
	StoreID          string     `json:"store_id"`
	BillID           string     `json:"bill_id,omitempty"`
	Status           string     `json:"status,omitempty"`
	SupersededBillID string     `json:"superseded_bill_id,omitempty"`
	Seq              Seq        `json:"seq,omitempty"`
	Error            *LineError `json:"error,omitempty"`
}

// IssueBulkReply is the reply of bankbook.cmd.bill.issue_bulk. Its seq is
// the highest of the lines' commits.
type IssueBulkReply struct {
	Results []BulkResult `json:"results"`
	Issued  int          `json:"issued"`
	Failed  int          `json:"failed"`
	Written
}

// CancelBillRequest is the body of bankbook.cmd.bill.cancel.
type CancelBillRequest struct {
	BillID string `json:"bill_id"`
	Reason string `json:"reason,omitempty"`
}

// Validate checks the request fields.
func (r CancelBillRequest) Validate() error {
	if err := domain.ValidateID("bill_id", r.BillID); err != nil {
		return err
	}
	return domain.ValidateReason(r.Reason)
}

// Canonical removes the reason's surrounding white space, as the
// cancellation records it.
func (r CancelBillRequest) Canonical() CancelBillRequest {
	r.Reason = strings.TrimSpace(r.Reason)
	return r
}

// CancelBillReply is the reply of bankbook.cmd.bill.cancel.
type CancelBillReply struct {
	BillID string `json:"bill_id"`
	Status string `json:"status"`
	Written
}

// RemindUnpaidRequest is the body of bankbook.cmd.bill.remind_unpaid.
type RemindUnpaidRequest struct {
	DistributorID string `json:"distributor_id"`
	// StoreIDs, when given, are the only stores considered (1 to
	// MaxRemindStores, each once); absent (nil), every linked store is.
	// An empty list is sent as [], which is refused: omitempty would send
	// a selection that came out empty as no selection, every store.
	StoreIDs []string `json:"store_ids,omitzero"`
}

// MaxRemindStores is the most stores one remind_unpaid may name.
const MaxRemindStores = 1000

// Validate checks the request fields.
func (r RemindUnpaidRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	if r.StoreIDs == nil {
		return nil
	}
	if n := len(r.StoreIDs); n < 1 || n > MaxRemindStores {
		return invalid("store_ids", "must name 1 to %d stores, got %d (leave it out to remind every linked store)", MaxRemindStores, n)
	}
	seen := make(map[string]int, len(r.StoreIDs))
	for i, id := range r.StoreIDs {
		field := fmt.Sprintf("store_ids[%d]", i)
		if err := domain.ValidateID(field, id); err != nil {
			return err
		}
		if j, ok := seen[id]; ok {
			return invalid(field, "%s is named twice (store_ids[%d])", id, j)
		}
		seen[id] = i
	}
	return nil
}

// RemindUnpaidReply is the reply of bankbook.cmd.bill.remind_unpaid: the
// stores reminded, one reminder event each.
type RemindUnpaidReply struct {
	// Status is RemindStatusReminded, or RemindStatusNone when no store
	// had anything outstanding (nothing was written).
	Status   string   `json:"status"`
	Reminded []string `json:"reminded"`
	// PaymentsCountedTo is the bank scan's watermark the reminders were
	// decided at (the earliest, when a repeat finds reminders its first
	// attempt recorded): payments made after it were not counted. Absent
	// when no scan of the collection account has completed.
	PaymentsCountedTo string `json:"payments_counted_to,omitempty"`
	// NotReminded are the stores the request named (store_ids) that were
	// not reminded, each with why; absent without store_ids.
	NotReminded []NotReminded `json:"not_reminded,omitempty"`
	Written
}

// NotReminded is a store remind_unpaid named and did not remind: Reason is
// one of NotRemindedNotLinked, NotRemindedNoCurrentBill and
// NotRemindedNothingOutstanding.
type NotReminded struct {
	StoreID string `json:"store_id"`
	Reason  string `json:"reason"`
}

// Why a store remind_unpaid named was not reminded.
const (
	NotRemindedNotLinked          = "not_linked"
	NotRemindedNoCurrentBill      = "no_current_bill"
	NotRemindedNothingOutstanding = "nothing_outstanding"
)

// The statuses of store.link, store.rename and bill.remind_unpaid replies.
const (
	LinkStatusLinked     = "linked"
	StoreStatusRenamed   = "renamed"
	StoreStatusUnchanged = "unchanged"
	RemindStatusReminded = "reminded"
	RemindStatusNone     = "none"
)

// GetBillRequest is the body of bankbook.q.bill.get.
type GetBillRequest struct {
	BillID string `json:"bill_id"`
	ReadAfter
}

// Validate checks the request fields.
func (r GetBillRequest) Validate() error { return domain.ValidateID("bill_id", r.BillID) }

// BillPayment is one payment to a bill, or to a store (lists).
type BillPayment struct {
	DepositID      string `json:"deposit_id"`
	DistributorID  string `json:"distributor_id,omitempty"`
	StoreID        string `json:"store_id,omitempty"`
	BillID         string `json:"bill_id,omitempty"`
	Amount         int64  `json:"amount"`
	Fee            int64  `json:"fee"`
	Net            int64  `json:"net"`
	PaidAt         string `json:"paid_at"`
	SettlementDate string `json:"settlement_date"`
}

// BillView is a bill as bankbook.q.bill.get and bankbook.q.bill.active
// answer it.
type BillView struct {
	BillID        string `json:"bill_id"`
	LinkID        string `json:"link_id"`
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	// StoreName and DistributorName are the link's names when the bill
	// was issued (a rename since does not change them); DistributorName
	// is absent when it had none.
	StoreName        string             `json:"store_name"`
	DistributorName  string             `json:"distributor_name,omitempty"`
	Amount           int64              `json:"amount"`
	PaidAmount       int64              `json:"paid_amount"`
	Outstanding      int64              `json:"outstanding"`
	Status           string             `json:"status"`
	Memo             string             `json:"memo,omitempty"`
	DedicatedAccount domain.BankAccount `json:"dedicated_account"`
	IssuedAt         string             `json:"issued_at"`
	ClosedAt         string             `json:"closed_at,omitempty"`
	SupersededBy     string             `json:"superseded_by,omitempty"`
	// Payments are the bill's most recent MaxBillPayments payments, in
	// the order they were recorded; PaymentCount counts them all (the
	// rest: bankbook.q.payment.by_store, each with its bill_id).
	Payments     []BillPayment `json:"payments"`
	PaymentCount int           `json:"payment_count"`
	Seq          Seq           `json:"seq"`
}

// MaxBillPayments is how many payments a BillView carries at most.
const MaxBillPayments = 100

// ActiveBillsRequest is the body of bankbook.q.bill.active.
type ActiveBillsRequest struct {
	DistributorID string `json:"distributor_id"`
	PageRequest
}

// Validate checks the request fields.
func (r ActiveBillsRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	return r.PageRequest.Validate()
}

// ActiveBillsReply is the reply of bankbook.q.bill.active: the distributor's
// current bills (active, partially paid or paid, not yet superseded).
type ActiveBillsReply struct {
	Bills      []BillView `json:"bills"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// BillListRequest is the body of bankbook.q.bill.list.
type BillListRequest struct {
	DistributorID string `json:"distributor_id"`
	StoreID       string `json:"store_id"`
	PageRequest
}

// Validate checks the request fields.
func (r BillListRequest) Validate() error {
	if err := first([]error{domain.ValidateID("distributor_id", r.DistributorID), domain.ValidateID("store_id", r.StoreID)}); err != nil {
		return err
	}
	return r.PageRequest.Validate()
}

// BillListReply is the reply of bankbook.q.bill.list: every bill of a
// store's link, current, expired or cancelled, newest first.
type BillListReply struct {
	Bills      []BillView `json:"bills"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// PaymentsByDistributorRequest is the body of bankbook.q.payment.by_distributor.
type PaymentsByDistributorRequest struct {
	DistributorID string `json:"distributor_id"`
	// From and To bound paid_at: From inclusive, To exclusive (RFC 3339).
	From *time.Time `json:"from,omitempty"`
	To   *time.Time `json:"to,omitempty"`
	PageRequest
}

// Validate checks the request fields.
func (r PaymentsByDistributorRequest) Validate() error {
	if err := domain.ValidateID("distributor_id", r.DistributorID); err != nil {
		return err
	}
	if r.From != nil && r.To != nil && !r.To.After(*r.From) {
		return invalid("to", "must be after from")
	}
	return r.PageRequest.Validate()
}

// PaymentsByStoreRequest is the body of bankbook.q.payment.by_store.
type PaymentsByStoreRequest struct {
	StoreID string `json:"store_id"`
	PageRequest
}

// Validate checks the request fields.
func (r PaymentsByStoreRequest) Validate() error {
	if err := domain.ValidateID("store_id", r.StoreID); err != nil {
		return err
	}
	return r.PageRequest.Validate()
}

// PaymentsReply is the reply of the payment lists, oldest first.
type PaymentsReply struct {
	Payments   []BillPayment `json:"payments"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// SettlementRequest is the body of bankbook.q.settlement.expected.
type SettlementRequest struct {
	DistributorID string `json:"distributor_id"`
	ReadAfter
}

// Validate checks the request fields.
func (r SettlementRequest) Validate() error {
	return domain.ValidateID("distributor_id", r.DistributorID)
}

// Settlement is what a distributor is paid on one date.
type Settlement struct {
	Date     string `json:"date"`
	Gross    int64  `json:"gross"`
	Fee      int64  `json:"fee"`
	Net      int64  `json:"net"`
	Payments int    `json:"payments"`
}

// SettlementReply is the reply of bankbook.q.settlement.expected, by date.
type SettlementReply struct {
	DistributorID string       `json:"distributor_id"`
	Settlements   []Settlement `json:"settlements"`
}

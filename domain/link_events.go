package domain

import "time"

// The events of the link aggregate. Each carries everything a message about
// it needs (who, how much, which account to pay), so notifications render
// them without reading a projection.

// StoreLinked records that a (distributor, store) pair got its dedicated
// account: a virtual sub-account of the collection account whose number
// never changes.
type StoreLinked struct {
	LinkID        string        `json:"link_id"`
	DistributorID DistributorID `json:"distributor_id"`
	StoreID       StoreID       `json:"store_id"`
	StoreName     string        `json:"store_name"`
	// DistributorName is the distributor's name as its stores know it,
	// which the store's messages name; absent when the link was made
	// without one.
	DistributorName  string      `json:"distributor_name,omitempty"`
	DedicatedAccount BankAccount `json:"dedicated_account"`
	LinkedAt         time.Time   `json:"linked_at"`
}

// EventType implements Event.
func (StoreLinked) EventType() string { return "store.linked" }

// StoreRenamed records new names for a link: the store's, the
// distributor's, or both. StoreName and DistributorName are the names from
// now on (DistributorName absent: the link has none any more); the Previous
// ones are those they replace. The events written after it carry the new
// names, so the store's messages use them; a bill keeps the names it was
// issued with.
type StoreRenamed struct {
	LinkID                  string        `json:"link_id"`
	DistributorID           DistributorID `json:"distributor_id"`
	StoreID                 StoreID       `json:"store_id"`
	StoreName               string        `json:"store_name"`
	DistributorName         string        `json:"distributor_name,omitempty"`
	PreviousStoreName       string        `json:"previous_store_name"`
	PreviousDistributorName string        `json:"previous_distributor_name,omitempty"`
	RenamedAt               time.Time     `json:"renamed_at"`
}

// EventType implements Event.
func (StoreRenamed) EventType() string { return "store.renamed" }

// BillIssued records a bill: an amount the distributor typed, for the store
// to pay to its dedicated account. It becomes the store's current bill; a
// bill that was current expires in the same commit (BillExpired, written
// first) and is named in SupersededBillID.
type BillIssued struct {
	LinkID           string        `json:"link_id"`
	BillID           string        `json:"bill_id"`
	DistributorID    DistributorID `json:"distributor_id"`
	StoreID          StoreID       `json:"store_id"`
	StoreName        string        `json:"store_name"`
	DistributorName  string        `json:"distributor_name,omitempty"`
	Amount           int64         `json:"amount"`
	Memo             string        `json:"memo,omitempty"`
	DedicatedAccount BankAccount   `json:"dedicated_account"`
	IssuedAt         time.Time     `json:"issued_at"`
	SupersededBillID string        `json:"superseded_bill_id,omitempty"`
}

// EventType implements Event.
func (BillIssued) EventType() string { return "bill.issued" }

// BillExpired records that a current bill was superseded by the next bill
// for its store. PaidAmount and Outstanding are the bill's figures at that
// moment; later payments go to the new bill.
type BillExpired struct {
	LinkID        string        `json:"link_id"`
	BillID        string        `json:"bill_id"`
	DistributorID DistributorID `json:"distributor_id"`
	StoreID       StoreID       `json:"store_id"`
	SupersededBy  string        `json:"superseded_by"`
	Amount        int64         `json:"amount"`
	PaidAmount    int64         `json:"paid_amount"`
	Outstanding   int64         `json:"outstanding"`
	ExpiredAt     time.Time     `json:"expired_at"`
}

// EventType implements Event.
func (BillExpired) EventType() string { return "bill.expired" }

// BillCancelled records that the distributor cancelled the current bill.
// The store has no current bill afterwards: its payments are unbilled until
// the next bill. StoreName and IssuedAt (the store's, and when the bill was
// issued) are what the store's message says; cancellations recorded before
// they were carried have neither, and tell the store nothing.
// DistributorName, the link's, is absent when the link has none.
type BillCancelled struct {
	LinkID          string        `json:"link_id"`
	BillID          string        `json:"bill_id"`
	DistributorID   DistributorID `json:"distributor_id"`
	StoreID         StoreID       `json:"store_id"`
	StoreName       string        `json:"store_name,omitempty"`
	DistributorName string        `json:"distributor_name,omitempty"`
	Reason          string        `json:"reason,omitempty"`
	Amount          int64         `json:"amount"`
	PaidAmount      int64         `json:"paid_amount"`
	IssuedAt        time.Time     `json:"issued_at,omitzero"`
	CancelledAt     time.Time     `json:"cancelled_at"`
}

// EventType implements Event.
func (BillCancelled) EventType() string { return "bill.cancelled" }

// StorePaymentReceived records a transfer a store made to its dedicated
// account, whatever its amount. The platform fee (FeeBps of Amount, floor)
// and the settlement date were fixed when it was recorded, so a rebuild
// never depends on the configuration of the day. With a current bill, the
// Bill* fields give the bill's figures after this payment; without one
// (BillID empty) the payment is unbilled.
type StorePaymentReceived struct {
	LinkID          string        `json:"link_id"`
	DepositID       DepositID     `json:"deposit_id"`
	DistributorID   DistributorID `json:"distributor_id"`
	StoreID         StoreID       `json:"store_id"`
	StoreName       string        `json:"store_name"`
	DistributorName string        `json:"distributor_name,omitempty"`
	Amount          int64         `json:"amount"`
	Fee             int64         `json:"fee"`
	Net             int64         `json:"net"`
	FeeBps          int           `json:"fee_bps"`
	// SettlementDate is when the distributor is paid Net: YYYY-MM-DD, a
	// date in Asia/Seoul (SettlementDate).
	SettlementDate string    `json:"settlement_date"`
	PaidAt         time.Time `json:"paid_at"`
	// CollectAccount is the number of the collection account the money
	// landed in (the dedicated account is a virtual sub-account of it).
	CollectAccount   string      `json:"collect_account"`
	DedicatedAccount BankAccount `json:"dedicated_account"`
	BillID           string      `json:"bill_id,omitempty"`
	BillAmount       int64       `json:"bill_amount,omitempty"`
	BillPaidAmount   int64       `json:"bill_paid_amount,omitempty"`
	// BillOutstanding is omitted when 0 (a bill paid in full, or overpaid).
	BillOutstanding int64      `json:"bill_outstanding,omitempty"`
	BillStatus      BillStatus `json:"bill_status,omitempty"`
}

// EventType implements Event.
func (StorePaymentReceived) EventType() string { return "store.payment_received" }

// BillReminded records a reminder to a store that its current bill has an
// outstanding balance.
type BillReminded struct {
	LinkID           string        `json:"link_id"`
	BillID           string        `json:"bill_id"`
	DistributorID    DistributorID `json:"distributor_id"`
	StoreID          StoreID       `json:"store_id"`
	StoreName        string        `json:"store_name"`
	DistributorName  string        `json:"distributor_name,omitempty"`
	Amount           int64         `json:"amount"`
	PaidAmount       int64         `json:"paid_amount"`
	Outstanding      int64         `json:"outstanding"`
	DedicatedAccount BankAccount   `json:"dedicated_account"`
	RemindedAt       time.Time     `json:"reminded_at"`
	// PaymentsCountedTo is the bank scan's watermark when the reminder was
	// decided: every payment made before it was counted, one made after
	// it may not have been. Zero when no scan had completed (and in
	// reminders recorded before it was kept).
	PaymentsCountedTo time.Time `json:"payments_counted_to,omitzero"`
}

// EventType implements Event.
func (BillReminded) EventType() string { return "bill.reminded" }

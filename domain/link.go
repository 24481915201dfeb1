package domain

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AggregateLink is the aggregate type name of links: one per (distributor,
// store) pair, with ID LinkID(distributor, store). A link is the
// consistency boundary of its store's bills: issuing, cancelling, paying and
// reminding are each one optimistic append on it, so a store never has two
// current bills.
const AggregateLink = "link"

// RecentDeposits is how many of its latest payments a link remembers by
// deposit ID, so that a retried payment is recognised without an unbounded
// set. An older deposit is recognised by the deposit aggregate, which is
// written after the payment.
const RecentDeposits = 64

// RecentCancels is how many of its latest cancelled bills a link remembers,
// to tell a cancelled bill from an expired one in a refusal.
const RecentCancels = 32

// RecentEnded is how many of its latest bills no longer current (expired
// or cancelled) a link remembers, with when each ended, so that a payment
// recorded late (a scan's lag, an import) goes to the bill that was current
// when it was paid.
const RecentEnded = 8

// CurrentBill is the bill a store pays now: the latest one issued, until
// it is superseded by the next or cancelled. Its ID is "" when there is
// none.
type CurrentBill struct {
	ID         string
	Amount     int64
	PaidAmount int64
	Memo       string
	IssuedAt   time.Time
}

// Status is the bill's status: active, partially paid or paid.
func (b CurrentBill) Status() BillStatus { return BillStatusOf(b.Amount, b.PaidAmount) }

// Outstanding is what remains to pay (0 once paid in full or overpaid).
func (b CurrentBill) Outstanding() int64 { return BillOutstanding(b.Amount, b.PaidAmount) }

// endedBill is a bill that stopped being current: expired or cancelled at
// endedAt, with what was paid to it.
type endedBill struct {
	bill    CurrentBill
	status  BillStatus
	endedAt time.Time
}

// recentPayment is a payment a link remembers: its deposit and the bill it
// went to ("" when unbilled).
type recentPayment struct {
	deposit DepositID
	bill    string
}

// Link is the state of one (distributor, store) link. It is bounded: it
// holds the current bill only, counts and totals of the rest, and rings of
// the last RecentDeposits payments, RecentCancels cancellations and
// RecentEnded bills no longer current, so a link with any number of bills
// and payments loads in the same time from a snapshot. Link is a value: its
// rings are arrays, so Apply, which works on a copy, never changes the
// state it was given.
type Link struct {
	ID            string
	DistributorID DistributorID
	StoreID       StoreID
	StoreName     string // as first linked or last renamed: linking again does not rename
	// DistributorName is the distributor's name as first linked or last
	// renamed ("" when the link has none): the store's messages name it.
	DistributorName  string
	DedicatedAccount BankAccount
	LinkedAt         time.Time
	// BillsIssued counts bills issued; the next is BillID(ID, BillsIssued+1).
	BillsIssued    int
	BillsCancelled int
	Current        CurrentBill
	// Payments counts the payments received, billed or not; PaidTotal sums them.
	Payments  int
	PaidTotal int64
	// Version counts the events applied; 0 means the link does not exist.
	Version int

	// BillsEnded counts the bills that stopped being current.
	BillsEnded int

	recent    [RecentDeposits]recentPayment // payment i is at recent[i % RecentDeposits]
	cancelled [RecentCancels]int            // cancellation i's bill number is at cancelled[i % RecentCancels]
	ended     [RecentEnded]endedBill        // ended bill i is at ended[i % RecentEnded]
}

// Exists reports whether the pair has been linked.
func (l Link) Exists() bool { return l.Version > 0 }

// HasCurrentBill reports whether the store has a current bill.
func (l Link) HasCurrentBill() bool { return l.Current.ID != "" }

// PaymentApplied reports whether deposit is one of the link's last
// RecentDeposits payments, and the bill it went to ("" when unbilled).
func (l Link) PaymentApplied(deposit DepositID) (billID string, ok bool) {
	for _, p := range l.recent {
		if p.deposit == deposit && deposit != "" {
			return p.bill, true
		}
	}
	return "", false
}

// BillStatus is the status of bill n of the link (1 ≤ n ≤ BillsIssued):
// the current bill's, or, for a bill no longer current, cancelled or
// expired. The link remembers its last RecentCancels cancellations only: an
// older bill cancelled before them is reported expired. ok is false for a
// bill never issued.
func (l Link) BillStatus(n int) (status BillStatus, ok bool) {
	switch {
	case n < 1 || n > l.BillsIssued:
		return "", false
	case BillID(l.ID, n) == l.Current.ID:
		return l.Current.Status(), true
	case n == l.BillsIssued:
		// The latest bill stops being current only when it is cancelled.
		return BillStatusCancelled, true
	}
	for i := max(0, l.BillsCancelled-RecentCancels); i < l.BillsCancelled; i++ {
		if l.cancelled[i%RecentCancels] == n {
			return BillStatusCancelled, true
		}
	}
	return BillStatusExpired, true
}

// Apply returns the state after e. It never fails and never changes l.
func (l Link) Apply(e Event) Link {
	switch e := e.(type) {
	case StoreLinked:
		l.ID, l.DistributorID, l.StoreID, l.StoreName, l.DistributorName = e.LinkID, e.DistributorID, e.StoreID, e.StoreName, e.DistributorName
		l.DedicatedAccount, l.LinkedAt = e.DedicatedAccount, e.LinkedAt
	case StoreRenamed:
		l.StoreName, l.DistributorName = e.StoreName, e.DistributorName
	case BillIssued:
		l.BillsIssued++
		l.Current = CurrentBill{ID: e.BillID, Amount: e.Amount, Memo: e.Memo, IssuedAt: e.IssuedAt}
	case BillExpired:
		l = l.endCurrent(e.BillID, BillStatusExpired, e.ExpiredAt)
	case BillCancelled:
		l = l.endCurrent(e.BillID, BillStatusCancelled, e.CancelledAt)
		_, n, _ := parseBillID(e.BillID)
		l.cancelled[l.BillsCancelled%RecentCancels] = n
		l.BillsCancelled++
	case StorePaymentReceived:
		l.recent[l.Payments%RecentDeposits] = recentPayment{deposit: e.DepositID, bill: e.BillID}
		l.Payments++
		l.PaidTotal += e.Amount
		switch {
		case e.BillID == "":
		case e.BillID == l.Current.ID:
			l.Current.PaidAmount += e.Amount
		default:
			for i := max(0, l.BillsEnded-RecentEnded); i < l.BillsEnded; i++ {
				if b := &l.ended[i%RecentEnded]; b.bill.ID == e.BillID {
					b.bill.PaidAmount += e.Amount
				}
			}
		}
	case BillReminded:
	}
	l.Version++
	return l
}

// endCurrent returns l with its current bill, if it is id, ended (expired
// or cancelled at at) and remembered among the ended bills.
func (l Link) endCurrent(id string, status BillStatus, at time.Time) Link {
	if l.Current.ID != id || id == "" {
		return l
	}
	l.ended[l.BillsEnded%RecentEnded] = endedBill{bill: l.Current, status: status, endedAt: at}
	l.BillsEnded++
	l.Current = CurrentBill{}
	return l
}

// billAt returns the bill that was current at t, and its status now: the
// current bill from its issue on; before that, the ended bill current then
// among the last RecentEnded. ok is false when no bill was current at t
// (after a cancel, before the first bill) or the link no longer remembers
// that far back.
func (l Link) billAt(t time.Time) (b CurrentBill, status BillStatus, ok bool) {
	if l.Current.ID != "" && !t.Before(l.Current.IssuedAt) {
		return l.Current, l.Current.Status(), true
	}
	for i := l.BillsEnded - 1; i >= max(0, l.BillsEnded-RecentEnded); i-- {
		e := l.ended[i%RecentEnded]
		switch {
		case !t.Before(e.endedAt):
			return CurrentBill{}, "", false // after it ended, before the next was issued
		case !t.Before(e.bill.IssuedAt):
			return e.bill, e.status, true
		}
	}
	return CurrentBill{}, "", false
}

// linkJSON is the JSON form of a Link (aggregate snapshots store it). The
// rings are lists, oldest first; their positions follow from the counts.
type linkJSON struct {
	ID               string           `json:"id"`
	DistributorID    DistributorID    `json:"distributor_id"`
	StoreID          StoreID          `json:"store_id"`
	StoreName        string           `json:"store_name"`
	DistributorName  string           `json:"distributor_name,omitempty"`
	DedicatedAccount BankAccount      `json:"dedicated_account"`
	LinkedAt         time.Time        `json:"linked_at"`
	BillsIssued      int              `json:"bills_issued"`
	BillsCancelled   int              `json:"bills_cancelled"`
	Current          *currentBillJSON `json:"current,omitempty"`
	Payments         int              `json:"payments"`
	PaidTotal        int64            `json:"paid_total"`
	RecentPayments   []recentPayJSON  `json:"recent_payments"`
	RecentCancelled  []int            `json:"recent_cancelled_bills"`
	BillsEnded       int              `json:"bills_ended"`
	RecentEnded      []endedBillJSON  `json:"recent_ended_bills"`
	Version          int              `json:"version"`
}

type endedBillJSON struct {
	currentBillJSON
	Status  BillStatus `json:"status"`
	EndedAt time.Time  `json:"ended_at"`
}

type currentBillJSON struct {
	ID         string    `json:"id"`
	Amount     int64     `json:"amount"`
	PaidAmount int64     `json:"paid_amount"`
	Memo       string    `json:"memo,omitempty"`
	IssuedAt   time.Time `json:"issued_at"`
}

type recentPayJSON struct {
	DepositID DepositID `json:"deposit_id"`
	BillID    string    `json:"bill_id,omitempty"`
}

// MarshalJSON encodes the whole state, the rings included, so that
// UnmarshalJSON restores an equal Link.
func (l Link) MarshalJSON() ([]byte, error) {
	v := linkJSON{
		ID: l.ID, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: l.StoreName, DistributorName: l.DistributorName,
		DedicatedAccount: l.DedicatedAccount, LinkedAt: l.LinkedAt,
		BillsIssued: l.BillsIssued, BillsCancelled: l.BillsCancelled,
		Payments: l.Payments, PaidTotal: l.PaidTotal, Version: l.Version,
		RecentPayments:  []recentPayJSON{},
		RecentCancelled: []int{},
		BillsEnded:      l.BillsEnded,
		RecentEnded:     []endedBillJSON{},
	}
	if l.HasCurrentBill() {
		c := currentBillJSON(l.Current)
		v.Current = &c
	}
	for i := max(0, l.Payments-RecentDeposits); i < l.Payments; i++ {
		p := l.recent[i%RecentDeposits]
		v.RecentPayments = append(v.RecentPayments, recentPayJSON{DepositID: p.deposit, BillID: p.bill})
	}
	for i := max(0, l.BillsCancelled-RecentCancels); i < l.BillsCancelled; i++ {
		v.RecentCancelled = append(v.RecentCancelled, l.cancelled[i%RecentCancels])
	}
	for i := max(0, l.BillsEnded-RecentEnded); i < l.BillsEnded; i++ {
		e := l.ended[i%RecentEnded]
		v.RecentEnded = append(v.RecentEnded, endedBillJSON{currentBillJSON: currentBillJSON(e.bill), Status: e.status, EndedAt: e.endedAt})
	}
	return json.Marshal(v)
}

// UnmarshalJSON restores a Link that MarshalJSON encoded.
func (l *Link) UnmarshalJSON(b []byte) error {
	var v linkJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if n := len(v.RecentPayments); n != min(v.Payments, RecentDeposits) {
		return fmt.Errorf("link %s: %d recent payments for %d payments", v.ID, n, v.Payments)
	}
	if n := len(v.RecentCancelled); n != min(v.BillsCancelled, RecentCancels) {
		return fmt.Errorf("link %s: %d recent cancellations for %d cancelled bills", v.ID, n, v.BillsCancelled)
	}
	if n := len(v.RecentEnded); n != min(v.BillsEnded, RecentEnded) {
		return fmt.Errorf("link %s: %d recent ended bills for %d ended", v.ID, n, v.BillsEnded)
	}
	*l = Link{
		ID: v.ID, DistributorID: v.DistributorID, StoreID: v.StoreID, StoreName: v.StoreName, DistributorName: v.DistributorName,
		DedicatedAccount: v.DedicatedAccount, LinkedAt: v.LinkedAt,
		BillsIssued: v.BillsIssued, BillsCancelled: v.BillsCancelled, BillsEnded: v.BillsEnded,
		Payments: v.Payments, PaidTotal: v.PaidTotal, Version: v.Version,
	}
	if c := v.Current; c != nil {
		l.Current = CurrentBill(*c)
	}
	first := v.BillsEnded - len(v.RecentEnded)
	for i, e := range v.RecentEnded {
		l.ended[(first+i)%RecentEnded] = endedBill{bill: CurrentBill(e.currentBillJSON), status: e.Status, endedAt: e.EndedAt}
	}
	first = v.Payments - len(v.RecentPayments)
	for i, p := range v.RecentPayments {
		l.recent[(first+i)%RecentDeposits] = recentPayment{deposit: p.DepositID, bill: p.BillID}
	}
	first = v.BillsCancelled - len(v.RecentCancelled)
	for i, n := range v.RecentCancelled {
		l.cancelled[(first+i)%RecentCancels] = n
	}
	return nil
}

// StoreNotLinked is ErrStoreNotLinked for the pair (distributor, store),
// which its details name.
func StoreNotLinked(distributor, store string) error {
	return ErrStoreNotLinked.With("", map[string]any{"distributor_id": distributor, "store_id": store})
}

// LinkStore asks to link a (distributor, store) pair. Account is the
// dedicated account the caller allocated for LinkID (the same number on
// every retry).
type LinkStore struct {
	LinkID        string
	DistributorID DistributorID
	StoreID       StoreID
	StoreName     string
	// DistributorName is optional: the distributor as its stores know it,
	// which their messages name (a store buys from several distributors
	// and has one channel). Its surrounding white space is removed; blank
	// is none.
	DistributorName string
	Account         BankAccount
	Now             time.Time
}

// DecideLink links a pair the first time. Linking a pair already linked
// needs nothing (no events): the link keeps its dedicated account and its
// store and distributor names (a different name, or a distributor name for
// a link made without one, is not an update: DecideRename is; the reply
// shows the names on record).
func DecideLink(l Link, c LinkStore) ([]Event, error) {
	if err := ValidateID("distributor_id", string(c.DistributorID)); err != nil {
		return nil, err
	}
	if err := ValidateID("store_id", string(c.StoreID)); err != nil {
		return nil, err
	}
	if err := ValidateText("store_name", c.StoreName, MaxStoreNameLength); err != nil {
		return nil, err
	}
	distName := strings.TrimSpace(c.DistributorName)
	if distName != "" {
		if err := ValidateText("distributor_name", distName, MaxDistributorNameLength); err != nil {
			return nil, err
		}
	}
	if c.LinkID != LinkID(c.DistributorID, c.StoreID) {
		return nil, Invalid("link_id", "is not the link of distributor_id and store_id")
	}
	if l.Exists() {
		return nil, nil
	}
	if NormalizeAccountNumber(c.Account.Number) == "" {
		return nil, Invalid("dedicated_account", "is required")
	}
	return []Event{StoreLinked{
		LinkID: c.LinkID, DistributorID: c.DistributorID, StoreID: c.StoreID, StoreName: c.StoreName, DistributorName: distName,
		DedicatedAccount: c.Account, LinkedAt: c.Now,
	}}, nil
}

// RenameStore asks to change a link's names. A nil name stays as it is;
// DistributorName "" (or blank) removes the distributor name. Both are
// trimmed and checked as DecideLink checks them.
type RenameStore struct {
	StoreName       *string
	DistributorName *string
	Now             time.Time
}

// DecideRename renames a linked store, its distributor, or both:
// store.renamed with the names from then on. Names the link already has
// need nothing (no events). Neither name given is invalid_input; an
// unlinked pair is ErrStoreNotLinked.
func DecideRename(l Link, c RenameStore) ([]Event, error) {
	if c.StoreName == nil && c.DistributorName == nil {
		return nil, Invalid("store_name", "give store_name, distributor_name or both")
	}
	var storeName, distName string
	if c.StoreName != nil {
		storeName = strings.TrimSpace(*c.StoreName)
		if err := ValidateText("store_name", storeName, MaxStoreNameLength); err != nil {
			return nil, err
		}
	}
	if c.DistributorName != nil {
		distName = strings.TrimSpace(*c.DistributorName)
		if distName != "" {
			if err := ValidateText("distributor_name", distName, MaxDistributorNameLength); err != nil {
				return nil, err
			}
		}
	}
	if !l.Exists() {
		return nil, ErrStoreNotLinked.With("", nil)
	}
	if c.StoreName == nil {
		storeName = l.StoreName
	}
	if c.DistributorName == nil {
		distName = l.DistributorName
	}
	if storeName == l.StoreName && distName == l.DistributorName {
		return nil, nil
	}
	return []Event{StoreRenamed{
		LinkID: l.ID, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: storeName, DistributorName: distName,
		PreviousStoreName: l.StoreName, PreviousDistributorName: l.DistributorName, RenamedAt: c.Now,
	}}, nil
}

// IssueBill asks to issue a bill to the link's store. Amount is what the
// distributor typed: nothing computes or checks it beyond its range.
type IssueBill struct {
	Amount int64
	Memo   string
	Now    time.Time
}

// DecideIssueBill issues bill BillID(l.ID, l.BillsIssued+1). A current bill
// (active, partially paid or paid) expires in the same commit, before the
// new bill: [bill.expired, bill.issued], or [bill.issued] alone. The
// amount must be between 1 and MaxAmount; the memo, trimmed, is optional.
// An unlinked pair is refused with ErrStoreNotLinked.
func DecideIssueBill(l Link, c IssueBill) ([]Event, error) {
	if _, err := NewMoney(c.Amount, ""); err != nil {
		return nil, err
	}
	memo := strings.TrimSpace(c.Memo)
	if memo != "" {
		if err := ValidateText("memo", memo, MaxMemoLength); err != nil {
			return nil, err
		}
	}
	if !l.Exists() {
		return nil, ErrStoreNotLinked.With("", nil)
	}
	id := BillID(l.ID, l.BillsIssued+1)
	issued := BillIssued{
		LinkID: l.ID, BillID: id, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: l.StoreName, DistributorName: l.DistributorName,
		Amount: c.Amount, Memo: memo, DedicatedAccount: l.DedicatedAccount, IssuedAt: c.Now,
	}
	if !l.HasCurrentBill() {
		return []Event{issued}, nil
	}
	old := l.Current
	issued.SupersededBillID = old.ID
	return []Event{
		BillExpired{
			LinkID: l.ID, BillID: old.ID, DistributorID: l.DistributorID, StoreID: l.StoreID, SupersededBy: id,
			Amount: old.Amount, PaidAmount: old.PaidAmount, Outstanding: old.Outstanding(), ExpiredAt: c.Now,
		},
		issued,
	}, nil
}

// CancelBill asks to cancel a bill.
type CancelBill struct {
	BillID string
	Reason string
	Now    time.Time
}

// DecideCancelBill cancels the store's current bill, whatever it has been
// paid. A bill ID that names no bill of this link is ErrBillNotFound (404);
// a bill no longer current (expired, or cancelled already) is ErrWrongState
// (409) with details bill_id and status.
func DecideCancelBill(l Link, c CancelBill) ([]Event, error) {
	linkID, n, err := ParseBillID(c.BillID)
	if err != nil {
		return nil, err
	}
	if !l.Exists() || linkID != l.ID || n > l.BillsIssued {
		return nil, ErrBillNotFound.With("", map[string]any{"bill_id": c.BillID})
	}
	if err := ValidateReason(c.Reason); err != nil {
		return nil, err
	}
	if c.BillID != l.Current.ID {
		status, _ := l.BillStatus(n)
		return nil, ErrWrongState.With("bill is "+string(status)+"; only the current bill can be cancelled",
			map[string]any{"bill_id": c.BillID, "status": string(status)})
	}
	return []Event{BillCancelled{
		LinkID: l.ID, BillID: c.BillID, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: l.StoreName, DistributorName: l.DistributorName,
		Reason: strings.TrimSpace(c.Reason), Amount: l.Current.Amount, PaidAmount: l.Current.PaidAmount,
		IssuedAt: l.Current.IssuedAt, CancelledAt: c.Now,
	}}, nil
}

// StorePayment is a transfer to the link's dedicated account. The caller
// has validated the deposit (an amount between 1 and MaxAmount). FeeBps,
// SettlementDays and Holidays are the engine's configuration at the time:
// the fee and the settlement date they give are recorded in the event.
type StorePayment struct {
	DepositID DepositID
	Amount    int64
	// PaidAt is when the store transferred (the bank's time); zero means
	// Now, and so does a time after Now (a bank clock ahead of ours).
	PaidAt time.Time
	// CollectAccount is the number of the collection account the dedicated
	// account is a virtual sub-account of: the money lands there.
	CollectAccount string
	FeeBps         int
	SettlementDays int
	Holidays       Holidays
	Now            time.Time
}

// DecideStorePayment records a payment of any amount: it goes to the
// current bill (which becomes partially paid, or paid — overpayment
// included), or, without one, it is unbilled. Fee and net are computed
// here (Fee), and the settlement date (SettlementDate of PaidAt, but not
// before the business day it is recorded on, both on c.Holidays). A deposit
// among the link's last RecentDeposits payments needs nothing (no events;
// PaymentApplied tells which bill it went to). A payment to an unlinked
// pair is ErrStoreNotLinked. Nothing is refused for its amount.
func DecideStorePayment(l Link, c StorePayment) ([]Event, error) {
	if c.FeeBps < 0 || c.FeeBps > MaxFeeBps {
		return nil, Invalid("fee_bps", "must be between 0 and %d", MaxFeeBps)
	}
	if c.SettlementDays < 0 {
		return nil, Invalid("settlement_days", "must not be negative")
	}
	if !l.Exists() {
		return nil, ErrStoreNotLinked.With("", map[string]any{"deposit_id": string(c.DepositID)})
	}
	if _, ok := l.PaymentApplied(c.DepositID); ok {
		return nil, nil
	}
	paidAt := c.PaidAt
	if paidAt.IsZero() || paidAt.After(c.Now) {
		// Not later than its recording: a bank clock ahead of ours must not
		// put a payment after the end of a bill it was recorded to (a
		// cancellation or a new bill in the minutes between).
		paidAt = c.Now
	}
	fee := Fee(c.Amount, c.FeeBps)
	// A payment recorded late (a statement imported days after) cannot be
	// settled before it is known: on its recording's business day at the
	// earliest.
	settle := max(SettlementDate(paidAt, c.SettlementDays, c.Holidays), SettlementDate(c.Now, 0, c.Holidays))
	e := StorePaymentReceived{
		LinkID: l.ID, DepositID: c.DepositID, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: l.StoreName, DistributorName: l.DistributorName,
		Amount: c.Amount, Fee: fee, Net: c.Amount - fee, FeeBps: c.FeeBps, SettlementDate: settle,
		PaidAt: paidAt, CollectAccount: c.CollectAccount, DedicatedAccount: l.DedicatedAccount,
	}
	// The bill current when the store paid, which a late recording (the
	// scan's lag) may find expired or cancelled since.
	if b, status, ok := l.billAt(paidAt); ok {
		b.PaidAmount += c.Amount
		e.BillID, e.BillAmount, e.BillPaidAmount = b.ID, b.Amount, b.PaidAmount
		e.BillOutstanding, e.BillStatus = b.Outstanding(), status
		if status.Current() {
			e.BillStatus = b.Status()
		}
	}
	return []Event{e}, nil
}

// Remind asks to remind the link's store of its outstanding balance.
type Remind struct {
	Now time.Time
	// PaymentsCountedTo is the collection account's scan watermark (zero:
	// none yet), which the reminder records and its message states.
	PaymentsCountedTo time.Time
}

// DecideRemind reminds the store when its current bill has an outstanding
// balance; with no current bill, a bill paid in full, or no link, it needs
// nothing (no events). It never refuses.
func DecideRemind(l Link, c Remind) ([]Event, error) {
	b := l.Current
	if !l.Exists() || b.ID == "" || b.Outstanding() == 0 {
		return nil, nil
	}
	return []Event{BillReminded{
		LinkID: l.ID, BillID: b.ID, DistributorID: l.DistributorID, StoreID: l.StoreID, StoreName: l.StoreName, DistributorName: l.DistributorName,
		Amount: b.Amount, PaidAmount: b.PaidAmount, Outstanding: b.Outstanding(), DedicatedAccount: l.DedicatedAccount,
		RemindedAt: c.Now, PaymentsCountedTo: c.PaymentsCountedTo,
	}}, nil
}

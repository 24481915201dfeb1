package domain_test

import (
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// senderAccount is the account an orphan is refunded to.
var senderAccount = domain.BankAccount{Bank: "우리은행", Number: "1002-123-456789", Holder: "박지훈"}

// givenDeposit folds events into a Deposit, the way the command layer rebuilds it.
func givenDeposit(events ...domain.Event) domain.Deposit {
	var d domain.Deposit
	for _, e := range events {
		d = d.Apply(e)
	}
	return d
}

// orphanRecorded is dep_1: 15000 under a name no order holds.
func orphanRecorded() domain.DepositRecorded {
	return domain.DepositRecorded{
		DepositID: "dep_1", BankTxnID: "txn-1", AccountNumber: collect.Number, DepositorName: "박지훈",
		Amount: 15000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: t0.Add(time.Second),
	}
}

// matchedRecorded is dep_1 having paid order o-1.
func matchedRecorded() domain.DepositRecorded {
	r := orphanRecorded()
	r.DepositorName, r.Outcome, r.Reason, r.OrderID, r.UserID = "김민수042", domain.OutcomeMatched, "", "o-1", "u-1"
	return r
}

func resolvedToOrder(id domain.OrderID) domain.DepositResolved {
	return domain.DepositResolved{DepositID: "dep_1", Action: domain.ResolveAssignOrder, Amount: 15000, OrderID: id, ResolvedAt: t0.Add(time.Hour)}
}

func resolvedToWallet(u domain.UserID) domain.DepositResolved {
	return domain.DepositResolved{DepositID: "dep_1", Action: domain.ResolveRefundToWallet, Amount: 15000, UserID: u, ResolvedAt: t0.Add(time.Hour)}
}

func resolvedToBank(id domain.PayoutID, to domain.BankAccount) domain.DepositResolved {
	return domain.DepositResolved{DepositID: "dep_1", Action: domain.ResolveRefundToBank, Amount: 15000, PayoutID: id, To: &to, ResolvedAt: t0.Add(time.Hour)}
}

func reopened(id domain.PayoutID) domain.DepositReopened {
	return domain.DepositReopened{DepositID: "dep_1", Amount: 15000, PayoutID: id, Reason: "account closed", ReopenedAt: t0.Add(2 * time.Hour)}
}

func TestNewDepositID(t *testing.T) {
	id := domain.NewDepositID("123-456-789", "txn-1")
	if !regexp.MustCompile(`^dep_[0-9a-f]{32}$`).MatchString(string(id)) {
		t.Fatalf("NewDepositID = %q, want dep_ and 32 hex digits", id)
	}
	if err := domain.ValidateID("deposit_id", string(id)); err != nil {
		t.Fatalf("a deposit ID is not a valid ID: %v", err)
	}
	tests := []struct {
		name    string
		account string
		txn     string
		same    bool
	}{
		{"same account and transaction", "123-456-789", "txn-1", true},
		{"account written without hyphens", "123456789", "txn-1", true},
		{"account written with spaces", " 123 456 789 ", "txn-1", true},
		{"another transaction", "123-456-789", "txn-2", false},
		{"another account", "123-456-780", "txn-1", false},
		{"transaction ID is case-sensitive", "123-456-789", "TXN-1", false},
		// The separator keeps account and transaction apart.
		{"digits moved from account to transaction", "123-456-78", "9txn-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.NewDepositID(tt.account, tt.txn); (got == id) != tt.same {
				t.Errorf("NewDepositID(%q, %q) = %q; same as %q: %v, want %v", tt.account, tt.txn, got, id, got == id, tt.same)
			}
		})
	}
}

func TestDepositApply(t *testing.T) {
	bank := senderAccount
	recorded := domain.Deposit{
		ID: "dep_1", BankTxnID: "txn-1", AccountNumber: collect.Number, DepositorName: "박지훈", Amount: 15000, DepositedAt: t0,
		Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName, RecordedAt: t0.Add(time.Second), Version: 1,
	}
	with := func(f func(*domain.Deposit)) domain.Deposit {
		d := recorded
		f(&d)
		return d
	}
	tests := []struct {
		name           string
		given          []domain.Event
		want           domain.Deposit
		wantUnresolved bool
	}{
		{"zero deposit", nil, domain.Deposit{}, false},
		{"orphan recorded", []domain.Event{orphanRecorded()}, recorded, true},
		{
			"matched recorded", []domain.Event{matchedRecorded()},
			with(func(d *domain.Deposit) {
				d.DepositorName, d.Outcome, d.Reason, d.OrderID, d.UserID = "김민수042", domain.OutcomeMatched, "", "o-1", "u-1"
				d.RecordedOrderID, d.RecordedUserID = "o-1", "u-1"
			}), false,
		},
		{
			"resolved to an order", []domain.Event{orphanRecorded(), resolvedToOrder("o-2")},
			with(func(d *domain.Deposit) { d.Resolution, d.OrderID, d.Version = domain.ResolveAssignOrder, "o-2", 2 }), false,
		},
		{
			"resolved to a wallet", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")},
			with(func(d *domain.Deposit) { d.Resolution, d.UserID, d.Version = domain.ResolveRefundToWallet, "u-2", 2 }), false,
		},
		{
			"resolved to the bank", []domain.Event{orphanRecorded(), resolvedToBank("po_1", bank)},
			with(func(d *domain.Deposit) {
				d.Resolution, d.PayoutID, d.To, d.Version = domain.ResolveRefundToBank, "po_1", &bank, 2
			}), false,
		},
		{
			"reopened after a failed refund to the bank", []domain.Event{orphanRecorded(), resolvedToBank("po_1", bank), reopened("po_1")},
			with(func(d *domain.Deposit) { d.Version = 3 }), true,
		},
		{
			"resolved to the bank again after a reopen", []domain.Event{orphanRecorded(), resolvedToBank("po_1", bank), reopened("po_1"), resolvedToBank("po_2", bank)},
			with(func(d *domain.Deposit) {
				d.Resolution, d.PayoutID, d.To, d.Version = domain.ResolveRefundToBank, "po_2", &bank, 4
			}), false,
		},
		{
			// An amount_mismatch orphan names its order; a resolution to a
			// wallet keeps it.
			"amount mismatch orphan resolved to a wallet keeps its order",
			[]domain.Event{func() domain.Event {
				r := orphanRecorded()
				r.Reason, r.OrderID = domain.ReasonAmountMismatch, "o-1"
				return r
			}(), resolvedToWallet("u-2")},
			with(func(d *domain.Deposit) {
				d.Reason, d.OrderID, d.Resolution, d.UserID, d.Version = domain.ReasonAmountMismatch, "o-1", domain.ResolveRefundToWallet, "u-2", 2
				d.RecordedOrderID = "o-1"
			}), false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := givenDeposit(tt.given...)
			if !reflect.DeepEqual(d, tt.want) {
				t.Fatalf("state\n got %#v\nwant %#v", d, tt.want)
			}
			if d.Unresolved() != tt.wantUnresolved {
				t.Errorf("Unresolved() = %v, want %v", d.Unresolved(), tt.wantUnresolved)
			}
			if d.Exists() != (len(tt.given) > 0) {
				t.Errorf("Exists() = %v with %d events", d.Exists(), len(tt.given))
			}
		})
	}
}

func TestDecideRecord(t *testing.T) {
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.DepositRecorded
		then  []domain.Event
	}{
		{"first sight records it", nil, orphanRecorded(), []domain.Event{orphanRecorded()}},
		{"a matched deposit is recorded as decided", nil, matchedRecorded(), []domain.Event{matchedRecorded()}},
		{"a repeat needs nothing", []domain.Event{orphanRecorded()}, orphanRecorded(), nil},
		{"a repeat with another outcome needs nothing", []domain.Event{orphanRecorded()}, matchedRecorded(), nil},
		{"a repeat after a resolution needs nothing", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")}, orphanRecorded(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideRecord(givenDeposit(tt.given...), tt.when)
			if err != nil {
				t.Fatalf("DecideRecord: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
		})
	}
}

// TestDecideRecordUnknownOutcome: a deposit is recorded with what happened
// to its money, or not at all: an outcome no posting rule knows would leave
// the money nowhere in the ledger.
func TestDecideRecordUnknownOutcome(t *testing.T) {
	for _, outcome := range []domain.DepositOutcome{"", "pending", "refunded_to_bank"} {
		t.Run("outcome "+string(outcome), func(t *testing.T) {
			r := orphanRecorded()
			r.Outcome = outcome
			events, err := domain.DecideRecord(domain.Deposit{}, r)
			if err == nil {
				t.Fatalf("DecideRecord with outcome %q = %#v, want an error", outcome, events)
			}
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
		})
	}
}

// TestDepositLanded: a refund to the bank pays from the company account the
// money is in, which for a deposit to a dedicated account no store holds is
// the collection account it landed on, not the number the sender wrote.
func TestDepositLanded(t *testing.T) {
	unheld := orphanRecorded()
	unheld.AccountNumber, unheld.LandedOn, unheld.Reason = "5001000007", collect.Number, domain.ReasonUnknownAccount
	tests := []struct {
		name  string
		given domain.DepositRecorded
		want  string
	}{
		{"on the collection account", orphanRecorded(), collect.Number},
		{"on a dedicated account no store holds", unheld, collect.Number},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := givenDeposit(tt.given).Landed(); got != tt.want {
				t.Fatalf("Landed() = %q, want %q", got, tt.want)
			}
			if got := tt.given.Landed(); got != tt.want {
				t.Fatalf("DepositRecorded.Landed() = %q, want %q (the deposit and its event disagree)", got, tt.want)
			}
		})
	}
}

func TestDecideResolve(t *testing.T) {
	sameReformatted := senderAccount
	sameReformatted.Number = "1002 123456 789"
	amountMismatch := orphanRecorded()
	amountMismatch.Reason, amountMismatch.OrderID = domain.ReasonAmountMismatch, "o-1"
	// withAmount is r as the decision records it: with the deposit's amount,
	// whatever the command said.
	withAmount := func(r domain.DepositResolved, amount int64) domain.DepositResolved {
		r.Amount = amount
		return r
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.DepositResolved
		then  []domain.Event
	}{
		{"assign an orphan to an order", []domain.Event{orphanRecorded()}, resolvedToOrder("o-2"), []domain.Event{resolvedToOrder("o-2")}},
		{"refund an orphan to a wallet", []domain.Event{orphanRecorded()}, resolvedToWallet("u-2"), []domain.Event{resolvedToWallet("u-2")}},
		{"refund an orphan to the bank", []domain.Event{orphanRecorded()}, resolvedToBank("po_1", senderAccount), []domain.Event{resolvedToBank("po_1", senderAccount)}},
		{"the amount is the deposit's, not the command's", []domain.Event{orphanRecorded()}, withAmount(resolvedToWallet("u-2"), 1), []domain.Event{resolvedToWallet("u-2")}},
		{"the amount is filled in when the command has none", []domain.Event{orphanRecorded()}, withAmount(resolvedToOrder("o-2"), 0), []domain.Event{resolvedToOrder("o-2")}},
		{"an amount mismatch orphan assigned to its own order", []domain.Event{amountMismatch}, resolvedToOrder("o-1"), []domain.Event{resolvedToOrder("o-1")}},
		{"resolve again after a failed refund to the bank", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount), reopened("po_1")}, resolvedToWallet("u-2"), []domain.Event{resolvedToWallet("u-2")}},
		{"refund to the same bank account again after a reopen is a new payout", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount), reopened("po_1")}, resolvedToBank("po_2", senderAccount), []domain.Event{resolvedToBank("po_2", senderAccount)}},

		{"the same order again needs nothing", []domain.Event{orphanRecorded(), resolvedToOrder("o-2")}, resolvedToOrder("o-2"), nil},
		{"the same wallet again needs nothing", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")}, resolvedToWallet("u-2"), nil},
		{"the same bank account again needs nothing", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToBank("po_9", senderAccount), nil},
		{"the same bank account written differently needs nothing", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToBank("po_9", sameReformatted), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := givenDeposit(tt.given...)
			events, err := domain.DecideResolve(d, tt.when)
			if err != nil {
				t.Fatalf("DecideResolve: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				if e.EventType() != "deposit.resolved" {
					t.Errorf("EventType = %q, want deposit.resolved", e.EventType())
				}
				if after := d.Apply(e); after.Unresolved() || after.Resolution != tt.when.Action {
					t.Errorf("after the resolution: Unresolved %v, Resolution %q; want false, %q", after.Unresolved(), after.Resolution, tt.when.Action)
				}
			}
		})
	}
}

func TestDecideResolveRefused(t *testing.T) {
	other := senderAccount
	other.Number = "1002-123-000000"
	// The same number at another bank is another account; to another
	// holder, a refund the provider checks against someone else.
	otherBank, otherHolder := senderAccount, senderAccount
	otherBank.Bank, otherHolder.Holder = senderAccount.Bank+"2", senderAccount.Holder+"씨"
	refunded := matchedRecorded()
	refunded.Outcome = domain.OutcomeRefundedToWallet
	tests := []struct {
		name    string
		given   []domain.Event
		when    domain.DepositResolved
		want    *domain.Error
		kind    domain.Kind
		details map[string]any
	}{
		{
			"unknown deposit", nil, resolvedToWallet("u-2"), domain.ErrDepositNotFound, domain.KindNotFound,
			map[string]any{"deposit_id": "dep_1"},
		},
		{
			"a matched deposit", []domain.Event{matchedRecorded()}, resolvedToWallet("u-2"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "matched", "resolution": ""},
		},
		{
			// The order it paid is not a resolution to repeat.
			"a matched deposit assigned to the order it paid", []domain.Event{matchedRecorded()}, resolvedToOrder("o-1"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "matched", "resolution": ""},
		},
		{
			"a deposit refunded to a wallet", []domain.Event{refunded}, resolvedToBank("po_1", senderAccount), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "refunded_to_wallet", "resolution": ""},
		},
		{
			"resolved to an order, then to a wallet", []domain.Event{orphanRecorded(), resolvedToOrder("o-2")}, resolvedToWallet("u-2"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "assign_order"},
		},
		{
			"resolved to an order, then to another order", []domain.Event{orphanRecorded(), resolvedToOrder("o-2")}, resolvedToOrder("o-3"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "assign_order"},
		},
		{
			"resolved to a wallet, then to another wallet", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")}, resolvedToWallet("u-3"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "refund_to_wallet"},
		},
		{
			"resolved to the bank, then to another bank account", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToBank("po_2", other), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "refund_to_bank"},
		},
		{
			"resolved to the bank, then to the same number at another bank", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToBank("po_2", otherBank), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "refund_to_bank"},
		},
		{
			"resolved to the bank, then to the same account of another holder", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToBank("po_2", otherHolder), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "refund_to_bank"},
		},
		{
			"resolved to the bank, then to a wallet while the payout is out", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}, resolvedToWallet("u-2"), domain.ErrNotOrphan, domain.KindConflict,
			map[string]any{"deposit_id": "dep_1", "outcome": "orphaned", "resolution": "refund_to_bank"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideResolve(givenDeposit(tt.given...), tt.when)
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if !reflect.DeepEqual(de.Details, tt.details) {
				t.Errorf("details = %#v, want %#v", de.Details, tt.details)
			}
		})
	}
	if domain.ErrNotOrphan.Details != nil || domain.ErrDepositNotFound.Details != nil {
		t.Error("a sentinel was mutated")
	}
}

func TestDecideReopen(t *testing.T) {
	toBank := []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.DepositReopened
		then  []domain.Event
	}{
		{"the refund to the bank failed", toBank, reopened("po_1"), []domain.Event{reopened("po_1")}},
		{"the second refund to the bank failed", append(toBank, reopened("po_1"), resolvedToBank("po_2", senderAccount)), reopened("po_2"), []domain.Event{reopened("po_2")}},

		{"reopened already needs nothing", append(toBank, reopened("po_1")), reopened("po_1"), nil},
		{"another payout needs nothing", toBank, reopened("po_2"), nil},
		{"the first payout after a second refund needs nothing", append(toBank, reopened("po_1"), resolvedToBank("po_2", senderAccount)), reopened("po_1"), nil},
		{"an unresolved orphan needs nothing", []domain.Event{orphanRecorded()}, reopened("po_1"), nil},
		{"an orphan resolved to a wallet needs nothing", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")}, reopened("po_1"), nil},
		{"an orphan resolved to an order needs nothing", []domain.Event{orphanRecorded(), resolvedToOrder("o-2")}, reopened("po_1"), nil},
		{"a matched deposit needs nothing", []domain.Event{matchedRecorded()}, reopened("po_1"), nil},
		{"an unknown deposit needs nothing", nil, reopened("po_1"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := givenDeposit(tt.given...)
			events, err := domain.DecideReopen(d, tt.when)
			if err != nil {
				t.Fatalf("DecideReopen: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				if e.EventType() != "deposit.reopened" {
					t.Errorf("EventType = %q, want deposit.reopened", e.EventType())
				}
				// Then the deposit is back in the orphan queue.
				after := d.Apply(e)
				if !after.Unresolved() || after.PayoutID != "" || after.To != nil {
					t.Errorf("after the reopen: Unresolved %v, PayoutID %q, To %v; want true, \"\", nil", after.Unresolved(), after.PayoutID, after.To)
				}
			}
		})
	}
}

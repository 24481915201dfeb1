package domain_test

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// payee is the bank account withdrawals in these tests are sent to.
var payee = domain.BankAccount{Bank: "신한은행", Number: "110-123-456789", Holder: "김민수"}

// givenWallet folds events into a Wallet, the way the command layer rebuilds it.
func givenWallet(events ...domain.Event) domain.Wallet {
	var w domain.Wallet
	for _, e := range events {
		w = w.Apply(e)
	}
	return w
}

// credited is a wallet credit of amount to u-1 under ref.
func credited(amount int64, ref string) domain.WalletCredited {
	return domain.WalletCredited{UserID: "u-1", Amount: amount, Kind: domain.CreditDepositRefund, Ref: ref, FromAccount: domain.AccountBank(collect.Number), CreditedAt: t0}
}

// debited is a withdrawal of amount from u-1 for payout id.
func debited(amount int64, id domain.PayoutID) domain.WalletDebited {
	return domain.WalletDebited{UserID: "u-1", Amount: amount, PayoutID: id, To: payee, DebitAt: t0}
}

func TestWalletApply(t *testing.T) {
	tests := []struct {
		name        string
		given       []domain.Event
		wantBalance int64
		wantVersion int
		credited    []string // refs Credited must report
		notCredited []string // refs Credited must not report
	}{
		{name: "zero wallet", notCredited: []string{"dep_1", ""}},
		{
			name:  "one credit",
			given: []domain.Event{credited(15000, "dep_1")}, wantBalance: 15000, wantVersion: 1,
			credited: []string{"dep_1"}, notCredited: []string{"dep_2"},
		},
		{
			name:  "two credits add up",
			given: []domain.Event{credited(15000, "dep_1"), credited(5000, "order:o-1")}, wantBalance: 20000, wantVersion: 2,
			credited: []string{"dep_1", "order:o-1"},
		},
		{
			name:  "a debit lowers the balance and is remembered as payout:<id>",
			given: []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1")}, wantBalance: 11000, wantVersion: 2,
			credited: []string{"dep_1", "payout:po_1"}, notCredited: []string{"po_1", "reversal:po_1"},
		},
		{
			name:  "a reversal gives a failed withdrawal back",
			given: []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1"), credited(4000, "reversal:po_1")}, wantBalance: 15000, wantVersion: 3,
			credited: []string{"dep_1", "payout:po_1", "reversal:po_1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := givenWallet(tt.given...)
			if w.Balance != tt.wantBalance {
				t.Errorf("Balance = %d, want %d", w.Balance, tt.wantBalance)
			}
			if w.Version != tt.wantVersion {
				t.Errorf("Version = %d, want %d", w.Version, tt.wantVersion)
			}
			if len(tt.given) > 0 && w.UserID != "u-1" {
				t.Errorf("UserID = %q, want u-1", w.UserID)
			}
			for _, ref := range tt.credited {
				if !w.Credited(ref) {
					t.Errorf("Credited(%q) = false, want true", ref)
				}
			}
			for _, ref := range tt.notCredited {
				if w.Credited(ref) {
					t.Errorf("Credited(%q) = true, want false", ref)
				}
			}
		})
	}
}

// TestWalletApplyDoesNotShareRefs: Apply returns a new state; the state it
// was applied to must not see the later credits and debits.
func TestWalletApplyDoesNotShareRefs(t *testing.T) {
	before := givenWallet(credited(15000, "dep_1"))
	afterCredit := before.Apply(credited(1000, "dep_2"))
	afterDebit := before.Apply(debited(1000, "po_1"))

	if before.Credited("dep_2") || before.Credited("payout:po_1") {
		t.Fatal("applying to a wallet changed the refs of the state it was applied to")
	}
	if afterCredit.Credited("payout:po_1") {
		t.Fatal("two states derived from one wallet share their refs")
	}
	if !afterCredit.Credited("dep_2") || !afterDebit.Credited("payout:po_1") {
		t.Fatal("the derived states lost their own refs")
	}
	if before.Balance != 15000 || before.Version != 1 {
		t.Fatalf("before = balance %d version %d, want 15000 and 1", before.Balance, before.Version)
	}
}

func TestDecideCredit(t *testing.T) {
	cmd := func(amount int64, ref string) domain.CreditWallet {
		return domain.CreditWallet{UserID: "u-1", Amount: amount, Kind: domain.CreditOrphanRefund, Ref: ref, FromAccount: domain.AccountSuspense, Now: t0}
	}
	event := func(amount int64, ref string) domain.WalletCredited {
		return domain.WalletCredited{UserID: "u-1", Amount: amount, Kind: domain.CreditOrphanRefund, Ref: ref, FromAccount: domain.AccountSuspense, CreditedAt: t0}
	}
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.CreditWallet
		then  []domain.Event
	}{
		{"first credit creates the wallet", nil, cmd(15000, "dep_1"), []domain.Event{event(15000, "dep_1")}},
		{"a credit of another ref", []domain.Event{credited(15000, "dep_1")}, cmd(3000, "dep_2"), []domain.Event{event(3000, "dep_2")}},
		{"the largest amount", nil, cmd(domain.MaxAmount, "dep_1"), []domain.Event{event(domain.MaxAmount, "dep_1")}},
		{"the same ref again needs nothing", []domain.Event{credited(15000, "dep_1")}, cmd(15000, "dep_1"), nil},
		{"the same ref with another amount needs nothing", []domain.Event{credited(15000, "dep_1")}, cmd(9999, "dep_1"), nil},
		{"a reversal of a withdrawn payout is a new ref", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1")}, cmd(4000, "reversal:po_1"), []domain.Event{event(4000, "reversal:po_1")}},
		{"a credit does not need a balance", []domain.Event{credited(4000, "dep_1"), debited(4000, "po_1")}, cmd(1, "dep_2"), []domain.Event{event(1, "dep_2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := givenWallet(tt.given...)
			events, err := domain.DecideCredit(w, tt.when)
			if err != nil {
				t.Fatalf("DecideCredit: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				if e.EventType() != "wallet.credited" {
					t.Errorf("EventType = %q, want wallet.credited", e.EventType())
				}
				after := w.Apply(e)
				if after.Balance != w.Balance+tt.when.Amount || !after.Credited(tt.when.Ref) {
					t.Errorf("after the credit: balance %d credited %v, want %d and true", after.Balance, after.Credited(tt.when.Ref), w.Balance+tt.when.Amount)
				}
			}
		})
	}
}

func TestDecideCreditInvalidAmount(t *testing.T) {
	tests := []struct {
		name   string
		given  []domain.Event
		amount int64
	}{
		{"zero", nil, 0},
		{"negative", nil, -1},
		{"above MaxAmount", nil, domain.MaxAmount + 1},
		// The amount is checked before the ref: a bad command is refused
		// even when its ref was credited already.
		{"zero for a ref already credited", []domain.Event{credited(15000, "dep_1")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := givenWallet(tt.given...)
			events, err := domain.DecideCredit(w, domain.CreditWallet{UserID: "u-1", Amount: tt.amount, Kind: domain.CreditDepositRefund, Ref: "dep_1", Now: t0})
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if de.Details["field"] != "amount" {
				t.Errorf("details = %v, want field amount", de.Details)
			}
		})
	}
}

func TestDecideWithdraw(t *testing.T) {
	later := t0.Add(time.Hour)
	cmd := func(amount int64, id domain.PayoutID) domain.Withdraw {
		return domain.Withdraw{UserID: "u-1", Amount: amount, PayoutID: id, To: payee, Now: later}
	}
	event := func(amount int64, id domain.PayoutID) domain.WalletDebited {
		return domain.WalletDebited{UserID: "u-1", Amount: amount, PayoutID: id, To: payee, DebitAt: later}
	}
	tests := []struct {
		name        string
		given       []domain.Event
		when        domain.Withdraw
		then        []domain.Event
		wantBalance int64 // after the events
	}{
		{"part of the balance", []domain.Event{credited(15000, "dep_1")}, cmd(4000, "po_1"), []domain.Event{event(4000, "po_1")}, 11000},
		{"the whole balance", []domain.Event{credited(15000, "dep_1")}, cmd(15000, "po_1"), []domain.Event{event(15000, "po_1")}, 0},
		{"a second payout from what is left", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1")}, cmd(11000, "po_2"), []domain.Event{event(11000, "po_2")}, 0},
		{"the same payout again needs nothing", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1")}, cmd(4000, "po_1"), nil, 11000},
		// A repeat is not refused for want of funds: the money already left.
		{"the same payout again after it emptied the wallet", []domain.Event{credited(15000, "dep_1"), debited(15000, "po_1")}, cmd(15000, "po_1"), nil, 0},
		{"after a reversal the money can be withdrawn again", []domain.Event{credited(15000, "dep_1"), debited(15000, "po_1"), credited(15000, "reversal:po_1")}, cmd(15000, "po_2"), []domain.Event{event(15000, "po_2")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := givenWallet(tt.given...)
			events, err := domain.DecideWithdraw(w, tt.when)
			if err != nil {
				t.Fatalf("DecideWithdraw: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				if e.EventType() != "wallet.debited" {
					t.Errorf("EventType = %q, want wallet.debited", e.EventType())
				}
				w = w.Apply(e)
			}
			if w.Balance != tt.wantBalance {
				t.Errorf("balance after = %d, want %d", w.Balance, tt.wantBalance)
			}
			if w.Balance < 0 {
				t.Errorf("wallet went negative: %d", w.Balance)
			}
		})
	}
}

// TestDecideWithdrawMinimum: below Min a withdrawal is refused, naming
// the minimum; at Min it is made; a payout debited before Min rose is
// still answered as done.
func TestDecideWithdrawMinimum(t *testing.T) {
	w := givenWallet(credited(15000, "dep_1"), debited(500, "po_0"))
	withdraw := func(amount int64, id domain.PayoutID) domain.Withdraw {
		return domain.Withdraw{UserID: "u-1", Amount: amount, PayoutID: id, To: payee, Now: t0, Min: 1000}
	}
	events, err := domain.DecideWithdraw(w, withdraw(999, "po_1"))
	de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
	if events != nil || !reflect.DeepEqual(de.Details, map[string]any{"field": "amount", "min": int64(1000)}) {
		t.Errorf("999 with a minimum of 1000: events %#v, details %#v", events, de.Details)
	}
	if events, err := domain.DecideWithdraw(w, withdraw(1000, "po_1")); err != nil || len(events) != 1 {
		t.Errorf("1000 with a minimum of 1000: %#v, %v; want one debit", events, err)
	}
	if events, err := domain.DecideWithdraw(w, withdraw(500, "po_0")); err != nil || events != nil {
		t.Errorf("a repeat of a payout made before the minimum: %#v, %v; want nothing to do", events, err)
	}
}

func TestDecideWithdrawRefused(t *testing.T) {
	tests := []struct {
		name    string
		given   []domain.Event
		amount  int64
		want    *domain.Error
		kind    domain.Kind
		details map[string]any
	}{
		{"empty wallet", nil, 1, domain.ErrInsufficientFunds, domain.KindRule, map[string]any{"balance": int64(0), "amount": int64(1)}},
		{"one more than the balance", []domain.Event{credited(15000, "dep_1")}, 15001, domain.ErrInsufficientFunds, domain.KindRule, map[string]any{"balance": int64(15000), "amount": int64(15001)}},
		{"another payout after the balance was withdrawn", []domain.Event{credited(15000, "dep_1"), debited(15000, "po_0")}, 1, domain.ErrInsufficientFunds, domain.KindRule, map[string]any{"balance": int64(0), "amount": int64(1)}},
		{"zero amount", []domain.Event{credited(15000, "dep_1")}, 0, domain.ErrInvalidInput, domain.KindInvalid, map[string]any{"field": "amount"}},
		{"negative amount", []domain.Event{credited(15000, "dep_1")}, -100, domain.ErrInvalidInput, domain.KindInvalid, map[string]any{"field": "amount"}},
		{"above MaxAmount", []domain.Event{credited(domain.MaxAmount, "dep_1"), credited(domain.MaxAmount, "dep_2")}, domain.MaxAmount + 1, domain.ErrInvalidInput, domain.KindInvalid, map[string]any{"field": "amount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := givenWallet(tt.given...)
			events, err := domain.DecideWithdraw(w, domain.Withdraw{UserID: "u-1", Amount: tt.amount, PayoutID: "po_1", To: payee, Now: t0})
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if !reflect.DeepEqual(de.Details, tt.details) {
				t.Errorf("details = %#v, want %#v", de.Details, tt.details)
			}
		})
	}
	if domain.ErrInsufficientFunds.Details != nil {
		t.Errorf("sentinel ErrInsufficientFunds was mutated: %v", domain.ErrInsufficientFunds.Details)
	}
}

// TestWalletNeverNegative is a property test: whatever sequence of credits
// and withdrawals is decided, the wallet's balance is never below zero and
// always equals the credits minus the debits that were decided.
func TestWalletNeverNegative(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for run := 0; run < 200; run++ {
		var w domain.Wallet
		var credits, debits int64
		for step := 0; step < 50; step++ {
			amount := r.Int64N(20000) + 1
			// Refs and payout IDs repeat now and then, as redelivery does.
			id := strconv.Itoa(r.IntN(30))
			var events []domain.Event
			var err error
			if r.IntN(2) == 0 {
				events, err = domain.DecideCredit(w, domain.CreditWallet{UserID: "u-1", Amount: amount, Kind: domain.CreditDepositRefund, Ref: "dep_" + id, Now: t0})
			} else {
				events, err = domain.DecideWithdraw(w, domain.Withdraw{UserID: "u-1", Amount: amount, PayoutID: domain.PayoutID("po_" + id), To: payee, Now: t0})
				if err != nil {
					requireDomainError(t, err, domain.ErrInsufficientFunds, domain.KindRule)
					if amount <= w.Balance {
						t.Fatalf("seed %d: withdrawal of %d refused with a balance of %d", seed, amount, w.Balance)
					}
					continue
				}
			}
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			for _, e := range events {
				switch e := e.(type) {
				case domain.WalletCredited:
					credits += e.Amount
				case domain.WalletDebited:
					debits += e.Amount
				}
				w = w.Apply(e)
			}
			if w.Balance < 0 {
				t.Fatalf("seed %d run %d step %d: balance %d < 0", seed, run, step, w.Balance)
			}
			if w.Balance != credits-debits {
				t.Fatalf("seed %d run %d step %d: balance %d, want credits %d - debits %d", seed, run, step, w.Balance, credits, debits)
			}
		}
	}
}

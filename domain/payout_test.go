package domain_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// givenPayout folds events into a Payout, the way the command layer rebuilds it.
func givenPayout(events ...domain.Event) domain.Payout {
	var p domain.Payout
	for _, e := range events {
		p = p.Apply(e)
	}
	return p
}

// payoutRequested is po_1: a withdrawal of 4000 by u-1.
func payoutRequested() domain.PayoutRequested {
	return domain.PayoutRequested{
		PayoutID: "po_1", Amount: 4000, To: payee, PayFrom: collect.Number, Source: domain.PayoutFromWallet, SourceID: "u-1",
		FromAccount: domain.AccountWallet("u-1"), RequestedAt: t0,
	}
}

func payoutSettled(fee int64) domain.PayoutSettled {
	return domain.PayoutSettled{PayoutID: "po_1", Amount: 4000, Fee: fee, BankAccount: collect.Number, ProviderRef: "fb-1", SettledAt: t0.Add(time.Minute)}
}

func payoutFailed() domain.PayoutFailed {
	return domain.PayoutFailed{PayoutID: "po_1", Reason: "account closed", FailedAt: t0.Add(time.Minute)}
}

func TestPayoutApply(t *testing.T) {
	requested := domain.Payout{
		ID: "po_1", Amount: 4000, To: payee, PayFrom: collect.Number, Source: domain.PayoutFromWallet, SourceID: "u-1",
		FromAccount: domain.AccountWallet("u-1"), Status: domain.PayoutRequestedStatus, Version: 1,
	}
	with := func(f func(*domain.Payout)) domain.Payout {
		p := requested
		f(&p)
		return p
	}
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.Payout
	}{
		{"zero payout", nil, domain.Payout{}},
		{"requested", []domain.Event{payoutRequested()}, requested},
		{"settled with a fee", []domain.Event{payoutRequested(), payoutSettled(500)}, with(func(p *domain.Payout) {
			p.Status, p.Fee, p.Version = domain.PayoutSettledStatus, 500, 2
		})},
		{"settled without a fee", []domain.Event{payoutRequested(), payoutSettled(0)}, with(func(p *domain.Payout) {
			p.Status, p.Version = domain.PayoutSettledStatus, 2
		})},
		{"failed", []domain.Event{payoutRequested(), payoutFailed()}, with(func(p *domain.Payout) {
			p.Status, p.Reason, p.Version = domain.PayoutFailedStatus, "account closed", 2
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := givenPayout(tt.given...); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("state\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecideRequestPayout(t *testing.T) {
	again := payoutRequested()
	again.Amount = 9999 // a repeat is not compared with the first request
	tests := []struct {
		name  string
		given []domain.Event
		when  domain.PayoutRequested
		then  []domain.Event
	}{
		{"a new payout is requested", nil, payoutRequested(), []domain.Event{payoutRequested()}},
		{"requested already needs nothing", []domain.Event{payoutRequested()}, payoutRequested(), nil},
		{"requested already with other fields needs nothing", []domain.Event{payoutRequested()}, again, nil},
		{"settled needs nothing", []domain.Event{payoutRequested(), payoutSettled(500)}, payoutRequested(), nil},
		{"failed needs nothing", []domain.Event{payoutRequested(), payoutFailed()}, payoutRequested(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideRequestPayout(givenPayout(tt.given...), tt.when)
			if err != nil {
				t.Fatalf("DecideRequestPayout: %v", err)
			}
			if !reflect.DeepEqual(events, tt.then) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.then)
			}
			for _, e := range events {
				if e.EventType() != "payout.requested" {
					t.Errorf("EventType = %q, want payout.requested", e.EventType())
				}
			}
		})
	}
}

func TestDecidePayoutResult(t *testing.T) {
	tests := []struct {
		name       string
		given      []domain.Event
		when       domain.Event
		then       []domain.Event
		wantStatus domain.PayoutStatus // after the events
	}{
		{"settled", []domain.Event{payoutRequested()}, payoutSettled(500), []domain.Event{payoutSettled(500)}, domain.PayoutSettledStatus},
		{"failed", []domain.Event{payoutRequested()}, payoutFailed(), []domain.Event{payoutFailed()}, domain.PayoutFailedStatus},
		{"settled again needs nothing", []domain.Event{payoutRequested(), payoutSettled(500)}, payoutSettled(500), nil, domain.PayoutSettledStatus},
		{"failed again needs nothing", []domain.Event{payoutRequested(), payoutFailed()}, payoutFailed(), nil, domain.PayoutFailedStatus},
		// The first final answer stands.
		{"failed after settled needs nothing", []domain.Event{payoutRequested(), payoutSettled(500)}, payoutFailed(), nil, domain.PayoutSettledStatus},
		{"settled after failed needs nothing", []domain.Event{payoutRequested(), payoutFailed()}, payoutSettled(500), nil, domain.PayoutFailedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := givenPayout(tt.given...)
			events, err := domain.DecidePayoutResult(p, tt.when)
			if err != nil {
				t.Fatalf("DecidePayoutResult: %v", err)
			}
			thenPayout(t, p, events, tt.then, tt.wantStatus)
		})
	}
}

func TestDecidePayoutResultUnknownPayout(t *testing.T) {
	for _, result := range []domain.Event{payoutSettled(500), payoutFailed()} {
		t.Run(result.EventType(), func(t *testing.T) {
			events, err := domain.DecidePayoutResult(domain.Payout{}, result)
			requireDomainError(t, err, domain.ErrPayoutNotFound, domain.KindNotFound)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
		})
	}
}

func TestValidateBankAccount(t *testing.T) {
	valid := domain.BankAccount{Bank: "신한은행", Number: "110-123-456789", Holder: "김민수"}
	with := func(f func(*domain.BankAccount)) domain.BankAccount {
		a := valid
		f(&a)
		return a
	}
	tests := []struct {
		name    string
		account domain.BankAccount
		field   string // "" means valid
	}{
		{name: "valid", account: valid},
		{name: "digits only", account: with(func(a *domain.BankAccount) { a.Number = "110123456789" })},
		{name: "one digit", account: with(func(a *domain.BankAccount) { a.Number = "7" })},
		{name: "number of 32 characters", account: with(func(a *domain.BankAccount) { a.Number = strings.Repeat("1", 32) })},
		{name: "bank of 64 runes", account: with(func(a *domain.BankAccount) { a.Bank = strings.Repeat("은", 64) })},
		{name: "holder of 64 runes", account: with(func(a *domain.BankAccount) { a.Holder = strings.Repeat("김", 64) })},

		{name: "no bank", account: with(func(a *domain.BankAccount) { a.Bank = "" }), field: "bank_account.bank"},
		{name: "bank of 65 runes", account: with(func(a *domain.BankAccount) { a.Bank = strings.Repeat("은", 65) }), field: "bank_account.bank"},
		{name: "no number", account: with(func(a *domain.BankAccount) { a.Number = "" }), field: "bank_account.number"},
		{name: "number of 33 characters", account: with(func(a *domain.BankAccount) { a.Number = strings.Repeat("1", 33) }), field: "bank_account.number"},
		{name: "number with letters", account: with(func(a *domain.BankAccount) { a.Number = "110-ABC-456789" }), field: "bank_account.number"},
		{name: "number with a dot", account: with(func(a *domain.BankAccount) { a.Number = "110.123.456789" }), field: "bank_account.number"},
		{name: "number with full-width digits", account: with(func(a *domain.BankAccount) { a.Number = "１１０１２３" }), field: "bank_account.number"},
		{name: "no holder", account: with(func(a *domain.BankAccount) { a.Holder = "" }), field: "bank_account.holder"},
		{name: "holder of 65 runes", account: with(func(a *domain.BankAccount) { a.Holder = strings.Repeat("김", 65) }), field: "bank_account.holder"},
		{name: "all fields missing reports the bank first", account: domain.BankAccount{}, field: "bank_account.bank"},

		{name: "number of hyphens only", account: with(func(a *domain.BankAccount) { a.Number = "---" }), field: "bank_account.number"},
		{name: "number ending in a hyphen", account: with(func(a *domain.BankAccount) { a.Number = "1-" }), field: "bank_account.number"},
		{name: "number starting with a hyphen", account: with(func(a *domain.BankAccount) { a.Number = "-110123" }), field: "bank_account.number"},
		{name: "number with a double hyphen", account: with(func(a *domain.BankAccount) { a.Number = "110--123" }), field: "bank_account.number"},
		{name: "number of spaces only", account: with(func(a *domain.BankAccount) { a.Number = "   " }), field: "bank_account.number"},

		// Firm banking refuses these: the API must too (issue 7).
		{name: "digits with spaces (not canonical)", account: with(func(a *domain.BankAccount) { a.Number = "110 123 456789" }), field: "bank_account.number"},
		{name: "digits with a tab", account: with(func(a *domain.BankAccount) { a.Number = "1\t2" }), field: "bank_account.number"},
		{name: "blank bank", account: with(func(a *domain.BankAccount) { a.Bank = "   " }), field: "bank_account.bank"},
		{name: "bank with surrounding space", account: with(func(a *domain.BankAccount) { a.Bank = " 신한은행" }), field: "bank_account.bank"},
		{name: "bank with a newline", account: with(func(a *domain.BankAccount) { a.Bank = "신한\n은행" }), field: "bank_account.bank"},
		{name: "holder with a control character", account: with(func(a *domain.BankAccount) { a.Holder = "김\x07민수" }), field: "bank_account.holder"},
		{name: "holder with a bidi override", account: with(func(a *domain.BankAccount) { a.Holder = "김\u202e민수" }), field: "bank_account.holder"},
		{name: "holder with a zero-width space", account: with(func(a *domain.BankAccount) { a.Holder = "김\u200b민수" }), field: "bank_account.holder"},
		{name: "holder with a line separator", account: with(func(a *domain.BankAccount) { a.Holder = "김\u2028민수" }), field: "bank_account.holder"},
		{name: "holder with a variation selector", account: with(func(a *domain.BankAccount) { a.Holder = "김\ufe0f민수" }), field: "bank_account.holder"},
		{name: "holder with the grapheme joiner", account: with(func(a *domain.BankAccount) { a.Holder = "김\u034f" }), field: "bank_account.holder"},
		{name: "bank with a Hangul filler", account: with(func(a *domain.BankAccount) { a.Bank = "신한\u3164은행" }), field: "bank_account.bank"},
		{name: "holder not UTF-8", account: with(func(a *domain.BankAccount) { a.Holder = "\xff" }), field: "bank_account.holder"},
		{name: "blank holder", account: with(func(a *domain.BankAccount) { a.Holder = " " }), field: "bank_account.holder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateBankAccount("bank_account", tt.account)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateBankAccount(%+v) = %v, want nil", tt.account, err)
				}
				return
			}
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if de.Details["field"] != tt.field {
				t.Errorf("details = %v, want field %s", de.Details, tt.field)
			}
		})
	}
}

// CanonicalBankAccount turns what people write into what firm banking
// takes: grouping spaces out of the number, white space around bank and
// holder. Whatever it cannot make canonical still fails ValidateBankAccount.
func TestCanonicalBankAccount(t *testing.T) {
	tests := []struct {
		in, want domain.BankAccount
		valid    bool
	}{
		{domain.BankAccount{Bank: "신한은행", Number: "110 123 456789", Holder: "김민수"}, domain.BankAccount{Bank: "신한은행", Number: "110123456789", Holder: "김민수"}, true},
		{domain.BankAccount{Bank: " 신한은행 ", Number: "110-123-456789", Holder: "김민수\t"}, domain.BankAccount{Bank: "신한은행", Number: "110-123-456789", Holder: "김민수"}, true},
		{domain.BankAccount{Bank: "KB", Number: "1 2", Holder: "a"}, domain.BankAccount{Bank: "KB", Number: "12", Holder: "a"}, true},
		{domain.BankAccount{Bank: "KB", Number: "110 - 123", Holder: "a"}, domain.BankAccount{Bank: "KB", Number: "110-123", Holder: "a"}, true},
		{domain.BankAccount{Bank: "KB", Number: "   ", Holder: "a"}, domain.BankAccount{Bank: "KB", Number: "", Holder: "a"}, false},
		{domain.BankAccount{Bank: "KB", Number: "- - -", Holder: "a"}, domain.BankAccount{Bank: "KB", Number: "---", Holder: "a"}, false},
		{domain.BankAccount{Bank: "KB", Number: "1\t2", Holder: "a"}, domain.BankAccount{Bank: "KB", Number: "1\t2", Holder: "a"}, false},
		{domain.BankAccount{Bank: "  ", Number: "1", Holder: "a"}, domain.BankAccount{Bank: "", Number: "1", Holder: "a"}, false},
		{domain.BankAccount{Bank: "KB", Number: "1", Holder: "a\u202eb"}, domain.BankAccount{Bank: "KB", Number: "1", Holder: "a\u202eb"}, false},
	}
	for _, tt := range tests {
		got := domain.CanonicalBankAccount(tt.in)
		if got != tt.want {
			t.Errorf("CanonicalBankAccount(%+q) = %+q, want %+q", tt.in, got, tt.want)
		}
		if again := domain.CanonicalBankAccount(got); again != got {
			t.Errorf("CanonicalBankAccount is not idempotent on %+q: %+q", got, again)
		}
		if err := domain.ValidateBankAccount("a", got); (err == nil) != tt.valid {
			t.Errorf("ValidateBankAccount(%+q) = %v, want valid %v", got, err, tt.valid)
		}
	}
}

func TestDecideResolvePayout(t *testing.T) {
	settle := func(fee int64, ref string) domain.ResolvePayout {
		return domain.ResolvePayout{Outcome: domain.PayoutSettledStatus, Fee: fee, ProviderRef: ref, Reason: "provider statement", Now: t0.Add(time.Hour)}
	}
	fail := func(forced bool) domain.ResolvePayout {
		return domain.ResolvePayout{Outcome: domain.PayoutFailedStatus, Reason: "provider says not sent", Forced: forced, Now: t0.Add(time.Hour)}
	}
	tests := []struct {
		name       string
		given      []domain.Event
		when       domain.ResolvePayout
		then       []domain.Event
		wantStatus domain.PayoutStatus // after the events
	}{
		{
			// The amount and the account paid from are the payout's, not
			// the operator's: the ledger credits the account that paid.
			"settled by an operator", []domain.Event{payoutRequested()}, settle(500, "fb-9"),
			[]domain.Event{domain.PayoutSettled{PayoutID: "po_1", Amount: 4000, Fee: 500, BankAccount: collect.Number, ProviderRef: "fb-9", SettledAt: t0.Add(time.Hour), Source: domain.PayoutFromWallet, SourceID: "u-1"}},
			domain.PayoutSettledStatus,
		},
		{
			"settled without a fee", []domain.Event{payoutRequested()}, settle(0, ""),
			[]domain.Event{domain.PayoutSettled{PayoutID: "po_1", Amount: 4000, BankAccount: collect.Number, SettledAt: t0.Add(time.Hour), Source: domain.PayoutFromWallet, SourceID: "u-1"}},
			domain.PayoutSettledStatus,
		},
		{
			"failed by an operator says so", []domain.Event{payoutRequested()}, fail(false),
			[]domain.Event{domain.PayoutFailed{PayoutID: "po_1", Reason: "operator: provider says not sent", FailedAt: t0.Add(time.Hour)}},
			domain.PayoutFailedStatus,
		},
		{
			"failed by force says it was forced", []domain.Event{payoutRequested()}, fail(true),
			[]domain.Event{domain.PayoutFailed{PayoutID: "po_1", Reason: "operator (forced): provider says not sent", FailedAt: t0.Add(time.Hour)}},
			domain.PayoutFailedStatus,
		},
		// A repeat of the result it has needs nothing, whatever its details.
		{"settled again needs nothing", []domain.Event{payoutRequested(), payoutSettled(500)}, settle(500, "fb-1"), nil, domain.PayoutSettledStatus},
		{"settled again with another fee needs nothing", []domain.Event{payoutRequested(), payoutSettled(500)}, settle(900, "fb-2"), nil, domain.PayoutSettledStatus},
		{"failed again needs nothing", []domain.Event{payoutRequested(), payoutFailed()}, fail(false), nil, domain.PayoutFailedStatus},
		{"failed again by force needs nothing", []domain.Event{payoutRequested(), payoutFailed()}, fail(true), nil, domain.PayoutFailedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := givenPayout(tt.given...)
			events, err := domain.DecideResolvePayout(p, tt.when)
			if err != nil {
				t.Fatalf("DecideResolvePayout: %v", err)
			}
			thenPayout(t, p, events, tt.then, tt.wantStatus)
		})
	}
}

// TestDecideResolvePayoutRefused: an operator cannot turn a payout's final
// result into the other one (a settled payout failed would return money the
// provider sent; a failed one settled would take from the bank money that
// went back to its source), nor resolve a payout never requested.
func TestDecideResolvePayoutRefused(t *testing.T) {
	settle := domain.ResolvePayout{Outcome: domain.PayoutSettledStatus, Fee: 500, Reason: "provider statement", Now: t0.Add(time.Hour)}
	fail := domain.ResolvePayout{Outcome: domain.PayoutFailedStatus, Reason: "provider says not sent", Now: t0.Add(time.Hour)}
	forced := fail
	forced.Forced = true
	tests := []struct {
		name        string
		given       []domain.Event
		when        domain.ResolvePayout
		want        *domain.Error
		kind        domain.Kind
		wantDetails map[string]any
	}{
		{"settled, unknown payout", nil, settle, domain.ErrPayoutNotFound, domain.KindNotFound, nil},
		{"failed, unknown payout", nil, fail, domain.ErrPayoutNotFound, domain.KindNotFound, nil},
		{"failed after settled", []domain.Event{payoutRequested(), payoutSettled(500)}, fail, domain.ErrPayoutFinal, domain.KindConflict, map[string]any{"status": "settled"}},
		{"failed by force after settled", []domain.Event{payoutRequested(), payoutSettled(500)}, forced, domain.ErrPayoutFinal, domain.KindConflict, map[string]any{"status": "settled"}},
		{"settled after failed", []domain.Event{payoutRequested(), payoutFailed()}, settle, domain.ErrPayoutFinal, domain.KindConflict, map[string]any{"status": "failed"}},
		{"an outcome that is no result", []domain.Event{payoutRequested()}, domain.ResolvePayout{Outcome: "cancelled", Now: t0}, domain.ErrInvalidInput, domain.KindInvalid, map[string]any{"field": "outcome"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideResolvePayout(givenPayout(tt.given...), tt.when)
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if tt.wantDetails != nil && !reflect.DeepEqual(de.Details, tt.wantDetails) {
				t.Errorf("details = %#v, want %#v", de.Details, tt.wantDetails)
			}
		})
	}
}

// thenPayout checks that a decision on p made events (want), and that p
// has wantStatus once they are applied.
func thenPayout(t *testing.T, p domain.Payout, events, want []domain.Event, wantStatus domain.PayoutStatus) {
	t.Helper()
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events\n got %#v\nwant %#v", events, want)
	}
	for _, e := range events {
		p = p.Apply(e)
	}
	if p.Status != wantStatus {
		t.Errorf("status after = %q, want %q", p.Status, wantStatus)
	}
}

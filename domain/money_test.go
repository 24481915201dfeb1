package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func TestNewMoney(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		currency string
		want     domain.Money
		wantErr  *domain.Error
	}{
		{name: "one won", amount: 1, currency: "KRW", want: domain.Money{Amount: 1, Currency: domain.KRW}},
		{name: "empty currency means KRW", amount: 15000, currency: "", want: domain.Money{Amount: 15000, Currency: domain.KRW}},
		{name: "maximum 10^15", amount: 1_000_000_000_000_000, currency: "KRW", want: domain.Money{Amount: domain.MaxAmount, Currency: domain.KRW}},
		{name: "zero", amount: 0, currency: "KRW", wantErr: domain.ErrInvalidInput},
		{name: "negative", amount: -1, currency: "KRW", wantErr: domain.ErrInvalidInput},
		{name: "most negative", amount: -1 << 63, currency: "KRW", wantErr: domain.ErrInvalidInput},
		{name: "10^15+1", amount: 1_000_000_000_000_001, currency: "KRW", wantErr: domain.ErrInvalidInput},
		{name: "USD", amount: 100, currency: "USD", wantErr: domain.ErrUnsupportedCurrency},
		{name: "lower-case krw", amount: 100, currency: "krw", wantErr: domain.ErrUnsupportedCurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := domain.NewMoney(tt.amount, tt.currency)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("NewMoney(%d, %q) = %v", tt.amount, tt.currency, err)
				}
				if got != tt.want {
					t.Fatalf("NewMoney(%d, %q) = %v, want %v", tt.amount, tt.currency, got, tt.want)
				}
				return
			}
			de := requireDomainError(t, err, tt.wantErr, domain.KindInvalid)
			if got != (domain.Money{}) {
				t.Errorf("money = %v on error, want zero", got)
			}
			wantField := "amount"
			if tt.wantErr == domain.ErrUnsupportedCurrency {
				wantField = "currency"
			}
			if de.Details["field"] != wantField {
				t.Errorf("details = %v, want field %s", de.Details, wantField)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	m := domain.Money{Amount: 15000, Currency: domain.KRW}
	if got := m.String(); got != "15000 KRW" {
		t.Errorf("String() = %q, want %q", got, "15000 KRW")
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"letters digits dash underscore", "abc-DEF_123", true},
		{"one character", "a", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"dot", "a.b", false},
		{"star", "a*", false},
		{"greater than", ">", false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"unicode letter", "주문1", false},
		{"latin with accent", "café", false},
		{"NUL", "a\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateID("order_id", tt.id)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if de.Details["field"] != "order_id" {
				t.Errorf("details = %v, want field order_id", de.Details)
			}
		})
	}
}

func TestFormatTime(t *testing.T) {
	seoul := time.FixedZone("KST", 9*60*60)
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{"whole second keeps fraction", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "2025-01-02T03:04:05.000000Z"},
		{"converted to UTC", time.Date(2025, 1, 2, 9, 0, 0, 123_456_789, seoul), "2025-01-02T00:00:00.123456Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.FormatTime(tt.in)
			if got != tt.want {
				t.Fatalf("FormatTime = %q, want %q", got, tt.want)
			}
			back, err := time.Parse(time.RFC3339Nano, got)
			if err != nil {
				t.Fatalf("output is not RFC 3339: %v", err)
			}
			if !back.Equal(tt.in.Truncate(time.Microsecond)) {
				t.Errorf("parsed %v, want %v", back, tt.in.Truncate(time.Microsecond))
			}
		})
	}
}

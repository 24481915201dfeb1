package domain_test

import (
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func TestSettlementDate(t *testing.T) {
	kst := time.FixedZone("KST", 9*60*60)
	seoul := func(day, hour, minute int) time.Time { return time.Date(2025, 3, day, hour, minute, 0, 0, kst) }
	// March 2025: Mon 10, Tue 11, Wed 12, Thu 13, Fri 14, Sat 15, Sun 16,
	// Mon 17, Tue 18, Wed 19, Thu 20, Fri 21, Sat 22, Sun 23, Mon 24.
	tests := []struct {
		name   string
		paidAt time.Time
		days   int
		want   string
	}{
		{"Monday D+1", seoul(10, 10, 0), 1, "2025-03-11"},
		{"Thursday D+1", seoul(13, 10, 0), 1, "2025-03-14"},
		{"Friday D+1 skips the weekend", seoul(14, 10, 0), 1, "2025-03-17"},
		{"Friday D+2", seoul(14, 10, 0), 2, "2025-03-18"},
		{"Saturday D+1: its business day is Monday", seoul(15, 10, 0), 1, "2025-03-18"},
		{"Sunday D+1", seoul(16, 23, 59), 1, "2025-03-18"},
		{"Friday D+0", seoul(14, 10, 0), 0, "2025-03-14"},
		{"Saturday D+0 settles on Monday", seoul(15, 10, 0), 0, "2025-03-17"},
		{"Wednesday D+5 crosses a weekend", seoul(12, 10, 0), 5, "2025-03-19"},
		{"Friday D+6 crosses two weekends", seoul(14, 10, 0), 6, "2025-03-24"},
		{"negative days count as 0", seoul(13, 10, 0), -3, "2025-03-13"},
		// The date is Seoul's, not UTC's.
		{"Friday 23:30 UTC is Saturday 08:30 in Seoul", time.Date(2025, 3, 14, 23, 30, 0, 0, time.UTC), 1, "2025-03-18"},
		{"Thursday 15:00 UTC is Friday 00:00 in Seoul", time.Date(2025, 3, 13, 15, 0, 0, 0, time.UTC), 1, "2025-03-17"},
		{"Thursday 14:59 UTC is still Thursday in Seoul", time.Date(2025, 3, 13, 14, 59, 59, 0, time.UTC), 1, "2025-03-14"},
		{"across the year", time.Date(2025, 12, 31, 10, 0, 0, 0, kst), 1, "2026-01-01"},
		{"across February of a leap year", time.Date(2028, 2, 28, 10, 0, 0, 0, kst), 1, "2028-02-29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.SettlementDate(tt.paidAt, tt.days, domain.Holidays{}); got != tt.want {
				t.Errorf("SettlementDate(%s, %d) = %s, want %s (%s)", tt.paidAt, tt.days, got, tt.want, tt.paidAt.In(kst).Weekday())
			}
		})
	}
}

// TestSettlementDateIsABusinessDay: for every hour of four weeks and 0–10
// business days, the settlement date is a weekday, never before the
// payment's Seoul date, and one more business day never settles earlier.
func TestSettlementDateIsABusinessDay(t *testing.T) {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	for h := range 28 * 24 {
		paidAt := start.Add(time.Duration(h) * time.Hour)
		paidDate := paidAt.In(domain.Seoul()).Format(domain.DateLayout)
		prev := ""
		for days := range 11 {
			got := domain.SettlementDate(paidAt, days, domain.Holidays{})
			d, err := time.Parse(domain.DateLayout, got)
			if err != nil {
				t.Fatalf("SettlementDate(%s, %d) = %q: %v", paidAt, days, got, err)
			}
			if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
				t.Fatalf("SettlementDate(%s, %d) = %s, a %s", paidAt, days, got, wd)
			}
			if got < paidDate || got <= prev {
				t.Fatalf("SettlementDate(%s, %d) = %s: before the payment's date %s or not after D+%d %s", paidAt, days, got, paidDate, days-1, prev)
			}
			prev = got
		}
	}
}

func TestSeoul(t *testing.T) {
	_, offset := time.Date(2025, 7, 1, 0, 0, 0, 0, domain.Seoul()).Zone()
	if offset != 9*60*60 {
		t.Errorf("Seoul offset = %ds, want +09:00", offset)
	}
}

func TestFee(t *testing.T) {
	tests := []struct {
		name   string
		amount int64
		bps    int
		want   int64
	}{
		{"no fee", 15_000, 0, 0},
		{"1%", 15_000, 100, 150},
		{"2.5%, rounded down", 40_001, 250, 1_000},
		{"rounded down to 0", 39, 250, 0},
		{"0.01% of 9999", 9_999, 1, 0},
		{"0.01% of 10000", 10_000, 1, 1},
		{"100%", 15_000, 10_000, 15_000},
		{"the largest amount at 100%: no overflow", domain.MaxAmount, 10_000, domain.MaxAmount},
		{"the largest amount at 99.99%", domain.MaxAmount, 9_999, 999_900_000_000_000},
		{"the largest amount less one at 33.33%", domain.MaxAmount - 1, 3_333, 333_299_999_999_999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.Fee(tt.amount, tt.bps); got != tt.want {
				t.Errorf("Fee(%d, %d) = %d, want %d", tt.amount, tt.bps, got, tt.want)
			}
		})
	}
}

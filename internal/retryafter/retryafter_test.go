package retryafter_test

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/retryafter"
)

var now = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"5", 5 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0.165", 165 * time.Millisecond, true},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"1e300", time.Duration(math.MaxInt64), true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true}, // in the past
		{now.Add(5 * time.Second).Format(time.RFC850), 5 * time.Second, true},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := retryafter.Parse(tc.in, now)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Parse(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Time
		d      time.Duration
		asDate bool
		want   string
	}{
		{"whole seconds", now, 3 * time.Second, false, "3"},
		{"rounded up", now, 300 * time.Millisecond, false, "1"},
		{"zero", now, 0, false, "0"},
		{"date", now, 1500 * time.Millisecond, true, "Sat, 14 Mar 2026 09:00:02 GMT"},
		{"date from mid-second", now.Add(300 * time.Millisecond), 700 * time.Millisecond, true, "Sat, 14 Mar 2026 09:00:01 GMT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := retryafter.Format(tc.at, tc.d, tc.asDate)
			if got != tc.want {
				t.Fatalf("Format(%v) = %q, want %q", tc.d, got, tc.want)
			}
			if d, ok := retryafter.Parse(got, tc.at.Truncate(time.Second)); !ok || d < tc.d {
				t.Fatalf("Parse(%q) = %v, %v; want at least %v", got, d, ok, tc.d)
			}
		})
	}
}

package engine

import (
	"strings"
	"testing"
	"time"
)

// A nightly run's period is the day before it in its zone, the run's
// time of day to the same time the day before (23 or 25 hours where the
// clocks change), and the next run is the first such time after a moment.
func TestNightlySchedule(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	n, _, err := parseNightly("03:00", "Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ now, want time.Time }{
		{time.Date(2026, 12, 7, 2, 59, 59, 0, seoul), time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)},
		{time.Date(2026, 12, 7, 3, 0, 0, 0, seoul), time.Date(2026, 12, 8, 3, 0, 0, 0, seoul)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, seoul), time.Date(2027, 1, 1, 3, 0, 0, 0, seoul)},
		// The same instant in UTC: the zone decides the day.
		{time.Date(2026, 12, 6, 17, 59, 0, 0, time.UTC), time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)},
	} {
		if got, err := n.next(c.now); err != nil || !got.Equal(c.want) {
			t.Errorf("next after %s: %s, %v; want %s", c.now, got, err, c.want)
		}
	}
	if from, err := n.prev(time.Date(2026, 12, 7, 3, 0, 0, 0, seoul)); err != nil || !from.Equal(time.Date(2026, 12, 6, 3, 0, 0, 0, seoul)) {
		t.Errorf("prev: %s, %v", from, err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	n, _, err = parseNightly("02:30:15", "America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// The clocks went back an hour on 2026-11-01: that day had 25 hours.
	to := time.Date(2026, 11, 1, 2, 30, 15, 0, ny)
	if from, err := n.prev(to); err != nil || to.Sub(from) != 25*time.Hour {
		t.Errorf("the day the clocks went back: from %s to %s (%v), %v", from, to, to.Sub(from), err)
	}
	for _, c := range []struct{ at, zone, want string }{
		{"3:00", "Asia/Seoul", "HH:MM"},
		{"24:00", "Asia/Seoul", "HH:MM"},
		{"03:00:00:00", "Asia/Seoul", "HH:MM"},
		{"tonight", "Asia/Seoul", "HH:MM"},
		{"03:00", "Mars/Olympus", "IANA"},
		{"03:00", "", "IANA"},
	} {
		if _, _, err := parseNightly(c.at, c.zone); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q in %q: %v, want %q", c.at, c.zone, err, c.want)
		}
	}
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.ReconcilePayoutsAt = "03:00"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "needs a firm-banking provider") {
		t.Errorf("without a provider: %v", err)
	}
	cfg.BankSim = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("with the simulated one: %v", err)
	}
}

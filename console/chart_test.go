package console

import (
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

// A series is drawn inside the chart's box: the balance held (a liability's
// credit balance reads positive) and the oldest open item's age, scaled to
// their maxima.
func TestDrawChart(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	pts := []api.SeriesPoint{
		{Seq: 1, At: at(0), Balance: -1000, OpenCount: 1, OldestOpenSince: at(0)},
		{Seq: 2, At: at(time.Hour), Balance: -3000, OpenCount: 2, OldestOpenSince: at(0)},
		{Seq: 3, At: at(2 * time.Hour), Balance: 0, OpenCount: 0},
	}
	ch := drawChart("liabilities:suspense:unmatched", pts, t0.Add(3*time.Hour))
	if ch.TestID != "chart-liabilities-suspense-unmatched" || ch.MaxBalance != 3000 || ch.LastHeld != 0 || ch.LastOpen != 0 || ch.MaxAge != "1h" || ch.LastAge != "" {
		t.Errorf("chart %+v", ch)
	}
	want := "4.0,92.0 300.0,4.0 596.0,136.0"
	if ch.BalancePoints != want {
		t.Errorf("balance points %q, want %q", ch.BalancePoints, want)
	}
	if got := strings.Fields(ch.AgePoints); len(got) != 3 || got[1] != "300.0,4.0" {
		t.Errorf("age points %q", ch.AgePoints)
	}
	if empty := drawChart("liabilities:payouts:pending", nil, t0); empty.Points != 0 || empty.BalancePoints != "" {
		t.Errorf("empty chart %+v", empty)
	}
	one := drawChart("liabilities:payouts:pending", pts[:1], t0.Add(90*time.Minute))
	if one.BalancePoints != "300.0,4.0" || one.LastAge != "1h30m" || one.MaxAge != "1h30m" || one.Debit {
		t.Errorf("one point: %+v", one)
	}
	// A liability in debit (more went out than came in) does not read as
	// money held: it reads negative, is drawn at zero, and is flagged.
	debit := drawChart("liabilities:suspense:unmatched", append(pts[:2:2], api.SeriesPoint{Seq: 4, At: at(3 * time.Hour), Balance: 500}), t0.Add(4*time.Hour))
	if debit.MaxBalance != 3000 || debit.LastHeld != -500 || debit.MinHeld != -500 || !debit.Debit {
		t.Errorf("debit chart %+v", debit)
	}
	if got := strings.Fields(debit.BalancePoints); len(got) != 3 || got[2] != "596.0,136.0" {
		t.Errorf("debit balance points %q", debit.BalancePoints)
	}
	if ch.Debit || ch.MinHeld != 0 {
		t.Errorf("a chart never in debit is flagged: %+v", ch)
	}
}

// Durations read as an operator writes them: no zero tails.
func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", time.Second: "1s",
		time.Hour + time.Second: "1h0m1s", 0: "0s", 5 * time.Minute: "5m",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

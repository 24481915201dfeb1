package console

import (
	"fmt"
	"strings"
	"time"

	"github.com/bankbook/bankbook/api"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600, 140
	chartPad       = 4
)

// chart is one account's series drawn as two inline SVG polylines: the
// balance (shown as the amount held: the charted accounts are liabilities,
// so their credit balance reads positive) and the age of its oldest open
// item. A debit balance (money out of the account that never came in)
// reads negative, is drawn at zero, and is flagged.
type chart struct {
	Account string
	TestID  string
	// Width and Height are the SVG viewBox.
	Width, Height int
	// BalancePoints and AgePoints are polyline "x,y x,y" lists.
	BalancePoints string
	AgePoints     string
	// Max labels of each line's scale; Last the latest values.
	MaxBalance int64
	// LastHeld is the latest balance held (the balance with a liability's
	// sign turned); negative if the account is in debit, and then Debit
	// is set. MinHeld is the lowest held, to flag a debit in the past.
	LastHeld, MinHeld int64
	Debit             bool
	MaxAge            string
	LastAge           string
	LastOpen          int
	Points            int
	From, To          string
	// OpenItems are the items open now (oldest first); OpenCount counts all.
	OpenItems []api.OpenItem
	OpenCount int
	Err       *errView
}

// drawChart scales the points into the chart's box. The x axis is the
// points' order (one per commit that moved the account).
func drawChart(account string, pts []api.SeriesPoint, now time.Time) chart {
	ch := chart{Account: account, TestID: "chart-" + strings.NewReplacer(":", "-").Replace(account), Width: chartW, Height: chartH, Points: len(pts)}
	if len(pts) == 0 {
		return ch
	}
	held := make([]int64, len(pts))
	ages := make([]time.Duration, len(pts))
	var maxAge time.Duration
	for i, p := range pts {
		held[i] = -p.Balance
		ch.MaxBalance = max(ch.MaxBalance, held[i])
		ch.MinHeld = min(ch.MinHeld, held[i])
		if p.OldestOpenSince != "" {
			since, err1 := time.Parse(time.RFC3339Nano, p.OldestOpenSince)
			at, err2 := time.Parse(time.RFC3339Nano, p.At)
			if err1 == nil && err2 == nil && at.After(since) {
				ages[i] = at.Sub(since)
			}
		}
		maxAge = max(maxAge, ages[i])
	}
	last := pts[len(pts)-1]
	ch.LastHeld, ch.LastOpen = held[len(held)-1], last.OpenCount
	ch.Debit = ch.MinHeld < 0
	if last.OldestOpenSince != "" {
		if since, err := time.Parse(time.RFC3339Nano, last.OldestOpenSince); err == nil && now.After(since) {
			ch.LastAge = roundAge(now.Sub(since))
			// The item open now has aged since the last commit: the scale
			// (and its label, "max") takes its age now too, so that it
			// never reads less than "now".
			maxAge = max(maxAge, now.Sub(since))
		}
	}
	ch.MaxAge = roundAge(maxAge)
	ch.From, ch.To = ts(pts[0].At), ts(last.At)
	x := func(i int) float64 {
		if len(pts) == 1 {
			return chartW / 2
		}
		return chartPad + float64(i)*(chartW-2*chartPad)/float64(len(pts)-1)
	}
	y := func(v, maxV float64) float64 {
		if maxV <= 0 {
			return chartH - chartPad
		}
		return chartH - chartPad - v/maxV*(chartH-2*chartPad)
	}
	var b, a strings.Builder
	for i := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(float64(max(held[i], 0)), float64(ch.MaxBalance)))
		fmt.Fprintf(&a, "%.1f,%.1f ", x(i), y(float64(ages[i]), float64(maxAge)))
	}
	ch.BalancePoints, ch.AgePoints = strings.TrimSpace(b.String()), strings.TrimSpace(a.String())
	return ch
}

// shortDuration shows a duration without its zero tails ("24h", "1h30m",
// "90s" as "1m30s", "1s"), as an operator writes it on the command line.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s") // "24h0m0s" → "24h0m"
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m") // "24h0m" → "24h"
	}
	return s
}

// roundAge shows a duration to the minute ("3h12m", "2h", "0m").
func roundAge(d time.Duration) string {
	d = d.Round(time.Minute)
	if d == 0 {
		return "0m"
	}
	return shortDuration(d)
}

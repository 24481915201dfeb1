package firmbanking

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
)

// TestReport: the report holds the transfers that became final in the
// period asked for, settled and failed, in the dialect `reconcile payouts`
// reads; it is fetched with retries, and an answer too large is refused
// rather than read in part.
func TestReport(t *testing.T) {
	h := newHarness(t, FakeOptions{SettleAfter: time.Minute, Fee: 500, FailAccounts: []string{"444-000-444"}})
	ctx := context.Background()
	for _, id := range []string{"P-1", "P-2"} {
		mustSend(t, h.client, transfer(id))
	}
	closed := transfer("P-3")
	closed.To.Number = "444-000-444"
	mustSend(t, h.client, closed)
	h.fake.Advance(time.Hour)
	mustSend(t, h.client, transfer("P-late")) // final an hour later than the others

	data, err := h.client.Report(ctx, t0, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	req, err := api.ParsePayoutReport(data)
	if err != nil {
		t.Fatalf("report %q: %v", data, err)
	}
	if len(req.Lines) != 3 {
		t.Fatalf("report %q: %d lines, want P-1, P-2 and P-3", data, len(req.Lines))
	}
	want := map[string]api.PayoutReportLine{
		"P-1": {PayoutID: "P-1", Status: "settled", Amount: 50000, Fee: 500, SettledAt: t0.Add(time.Minute)},
		"P-2": {PayoutID: "P-2", Status: "settled", Amount: 50000, Fee: 500, SettledAt: t0.Add(time.Minute)},
		"P-3": {PayoutID: "P-3", Status: "failed", Amount: 50000, Fee: 0, SettledAt: t0.Add(time.Minute)},
	}
	for _, l := range req.Lines {
		if w, ok := want[l.PayoutID]; !ok || l.Status != w.Status || l.Amount != w.Amount || l.Fee != w.Fee || !l.SettledAt.Equal(w.SettledAt) {
			t.Errorf("line %+v, want %+v", l, w)
		}
	}
	// Not in any report while pending; the period is half open: P-late,
	// final at t0+1h1m, is in the next one.
	if data, err := h.client.Report(ctx, t0.Add(30*time.Minute), t0.Add(2*time.Hour)); err != nil || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("a pending transfer reported: %q, %v", data, err)
	}
	h.fake.Advance(time.Minute)
	if data, err := h.client.Report(ctx, t0.Add(30*time.Minute), t0.Add(61*time.Minute+time.Nanosecond)); err != nil || !strings.Contains(string(data), "P-late,settled") || strings.Count(string(data), "\n") != 2 {
		t.Fatalf("the next period: %q, %v", data, err)
	}
	if data, err := h.client.Report(ctx, t0.Add(30*time.Minute), t0.Add(61*time.Minute)); err != nil || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("a period ending at P-late's time: %q, %v", data, err)
	}
	// Transient failures are retried.
	h.fake.FailNext(2)
	if _, err := h.client.Report(ctx, t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("after two 503s: %v", err)
	}
	if _, err := h.client.Report(ctx, t0, t0); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("an empty period: %v", err)
	}
}

func TestReportTooLarge(t *testing.T) {
	h := newHarnessBehind(t, FakeOptions{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/reports/") {
				w.Header().Set("Content-Type", "text/csv")
				_, _ = w.Write([]byte(strings.Join(api.PayoutReportColumns, ",") + "\n"))
				line := []byte("P-1,settled,1000,0,2026-03-14T09:00:00Z\n")
				for n := 0; n <= maxReport/len(line); n++ {
					if _, err := w.Write(line); err != nil {
						return
					}
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	if _, err := h.client.Report(context.Background(), t0, t0.Add(time.Hour)); !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a report over 16 MiB: %v", err)
	}
}

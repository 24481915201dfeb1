package firmbanking

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestSendRefusalsMatchErrRefused: a transfer that can never be sent as it
// is — invalid before sending, or answered 400 — matches ErrRefused, and
// nothing is sent under its ID.
func TestSendRefusalsMatchErrRefused(t *testing.T) {
	tests := []struct {
		name     string
		transfer func() Transfer
		wantIs   []error
		wantReqs int
	}{
		{
			name:     "invalid before sending",
			transfer: func() Transfer { tr := transfer("P-1"); tr.To.Number = "12ab"; return tr },
			wantIs:   []error{ErrInvalidTransfer},
			wantReqs: 0,
		},
		{
			name:     "the provider answers 400",
			transfer: func() Transfer { tr := transfer("P-1"); tr.To.Number = "999-999"; return tr },
			wantIs:   []error{ErrPermanent},
			wantReqs: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, FakeOptions{RefuseAccounts: []string{"999-999"}})
			tr := tc.transfer()
			_, err := h.client.Send(context.Background(), tr)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("Send error = %v, want ErrRefused", err)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("a refusal must not match ErrUnavailable: %v", err)
			}
			if n := h.fake.Requests(); n != tc.wantReqs {
				t.Errorf("Requests = %d, want %d (no retries)", n, tc.wantReqs)
			}
			wantSleeps(t, h)
			wantSent(t, h.fake)
			if _, ok := h.fake.Result(tr.ID); ok {
				t.Errorf("the provider holds a transfer %s after refusing it", tr.ID)
			}
			// Settle passes the refusal on: no polling, nothing pending.
			if _, err := h.settler().settle(context.Background(), h.client, tr, Backoff{}); !errors.Is(err, ErrRefused) || errors.Is(err, ErrPending) {
				t.Errorf("Settle error = %v, want ErrRefused", err)
			}
		})
	}
}

// TestOtherFailuresAreNotRefusals: answers that are about the caller, the
// ID or the provider's health — or a 400 to a Status, after the transfer was
// accepted — never match ErrRefused: the transfer may be fine, or even sent.
func TestOtherFailuresAreNotRefusals(t *testing.T) {
	t.Run("wrong token", func(t *testing.T) {
		h := newHarness(t, FakeOptions{})
		h.client.Token = "wrong"
		if _, err := h.client.Send(context.Background(), transfer("P-1")); !errors.Is(err, ErrPermanent) || errors.Is(err, ErrRefused) {
			t.Fatalf("Send error = %v, want ErrPermanent and not ErrRefused", err)
		}
	})
	t.Run("ID reused for a different transfer", func(t *testing.T) {
		h := newHarness(t, FakeOptions{})
		mustSend(t, h.client, transfer("P-1"))
		tr := transfer("P-1")
		tr.Amount++
		if _, err := h.client.Send(context.Background(), tr); !errors.Is(err, ErrIdempotencyMismatch) || errors.Is(err, ErrRefused) {
			t.Fatalf("Send error = %v, want ErrIdempotencyMismatch and not ErrRefused", err)
		}
	})
	t.Run("provider unavailable", func(t *testing.T) {
		h := newHarness(t, FakeOptions{})
		h.fake.FailNext(5)
		if _, err := h.client.Send(context.Background(), transfer("P-1")); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRefused) {
			t.Fatalf("Send error = %v, want ErrUnavailable and not ErrRefused", err)
		}
	})
	t.Run("400 to a status poll", func(t *testing.T) {
		h := newHarnessBehind(t, FakeOptions{SettleAfter: time.Hour}, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					http.Error(w, `{"error":"bad_request","message":"confused proxy"}`, http.StatusBadRequest)
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		_, err := h.settler().settle(context.Background(), h.client, transfer("P-1"), Backoff{})
		if !errors.Is(err, ErrPermanent) || errors.Is(err, ErrRefused) {
			t.Fatalf("Settle error = %v, want ErrPermanent and not ErrRefused: the transfer was accepted", err)
		}
		wantSent(t, h.fake, "P-1")
	})
}

package firmbanking

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSettle(t *testing.T) {
	s := time.Second
	tests := []struct {
		name       string
		opts       FakeOptions
		number     string // receiving account; "" keeps the default
		prepare    func(h *harness, st *settler)
		want       Result // ProviderRef is not compared
		wantSleeps []time.Duration
	}{
		{
			name:       "pending, then settled after SettleAfter",
			opts:       FakeOptions{Fee: 500, SettleAfter: 5 * s},
			want:       Result{ID: "P-1", Status: StatusSettled, Fee: 500},
			wantSleeps: []time.Duration{s, 2 * s, 4 * s}, // pending at 1s and 3s, settled at 7s
		},
		{
			name:       "polls are capped at Max",
			opts:       FakeOptions{Fee: 500, SettleAfter: 30 * s},
			want:       Result{ID: "P-1", Status: StatusSettled, Fee: 500},
			wantSleeps: []time.Duration{s, 2 * s, 4 * s, 8 * s, 8 * s, 8 * s}, // 31s
		},
		{
			name:   "failed account is a failed result",
			opts:   FakeOptions{Fee: 500, SettleAfter: 2 * s, FailAccounts: []string{"999-999"}},
			number: "999-999",
			want:   Result{ID: "P-1", Status: StatusFailed, Reason: "account_closed"},
			// pending at 1s, failed at 3s
			wantSleeps: []time.Duration{s, 2 * s},
		},
		{
			name: "instant provider needs no polling",
			opts: FakeOptions{Fee: 500},
			want: Result{ID: "P-1", Status: StatusSettled, Fee: 500},
		},
		{
			name: "Status outages do not stop the polling",
			opts: FakeOptions{Fee: 500, SettleAfter: 2 * s},
			// From the first poll on, 3 requests fail: the first poll's
			// 2 attempts, then the second poll's first attempt.
			prepare: func(h *harness, st *settler) {
				h.client.MaxAttempts = 2
				next, polls := st.sleep, 0
				st.sleep = func(ctx context.Context, d time.Duration) error {
					if polls++; polls == 1 {
						h.fake.FailNext(3)
					}
					return next(ctx, d)
				}
			},
			want:       Result{ID: "P-1", Status: StatusSettled, Fee: 500},
			wantSleeps: []time.Duration{s, 100 * time.Millisecond, 2 * s, 100 * time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			st := h.settler()
			if tc.prepare != nil {
				tc.prepare(h, &st)
			}
			tr := transfer("P-1")
			if tc.number != "" {
				tr.To.Number = tc.number
			}

			res, err := st.settle(context.Background(), h.client, tr, Backoff{Initial: s, Max: 8 * s, Factor: 2})
			if err != nil {
				t.Fatalf("Settle: %v", err)
			}
			res.ProviderRef = ""
			if res != tc.want {
				t.Fatalf("Settle = %+v, want %+v", res, tc.want)
			}
			wantSleeps(t, h, tc.wantSleeps...)
			if tc.want.Status == StatusSettled {
				wantSent(t, h.fake, "P-1")
			} else {
				wantSent(t, h.fake)
			}
		})
	}
}

func TestSettleContextEndsWhilePending(t *testing.T) {
	h := newHarness(t, FakeOptions{Fee: 500, SettleAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := h.settler()
	waits := 0
	st.sleep = func(ctx context.Context, d time.Duration) error {
		if waits++; waits > 3 {
			cancel() // the worker is shutting down
		}
		return h.sleep(ctx, d)
	}

	res, err := st.settle(ctx, h.client, transfer("P-1"), Backoff{Initial: time.Second, Factor: 2})
	if !errors.Is(err, ErrPending) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Settle error = %v, want ErrPending wrapping context.Canceled", err)
	}
	if res.ID != "P-1" || res.Status != StatusPending {
		t.Fatalf("Settle = %+v, want the pending result", res)
	}

	// Later, another Settle of the same transfer finds it settled; the money
	// went out once.
	h.fake.Advance(time.Hour)
	res, err = h.settler().settle(context.Background(), h.client, transfer("P-1"), Backoff{})
	if err != nil || res.Status != StatusSettled || res.Fee != 500 {
		t.Fatalf("second Settle = %+v, %v; want settled", res, err)
	}
	wantSent(t, h.fake, "P-1")
}

func TestSettleDeadlineWhilePending(t *testing.T) {
	h := newHarness(t, FakeOptions{SettleAfter: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()

	// Real waits: the poll outlasts the deadline.
	res, err := Settle(ctx, h.client, transfer("P-1"), Backoff{Initial: time.Minute})
	if !errors.Is(err, ErrPending) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Settle error = %v, want ErrPending wrapping the deadline", err)
	}
	if res.Status != StatusPending {
		t.Fatalf("Settle = %+v, want pending", res)
	}
}

func TestSettleErrorsThatAreNotPending(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(h *harness)
		tr      Transfer
		poll    Backoff
		wantIs  error
	}{
		{
			name: "Send unavailable: outcome unknown",
			prepare: func(h *harness) {
				h.client.MaxAttempts = 2
				h.fake.FailNext(10)
			},
			tr:     transfer("P-1"),
			wantIs: ErrUnavailable,
		},
		{
			name:    "Send refused",
			prepare: func(h *harness) { h.client.Token = "wrong" },
			tr:      transfer("P-1"),
			wantIs:  ErrPermanent,
		},
		{
			name:   "invalid transfer",
			tr:     Transfer{ID: "P-1"},
			wantIs: ErrInvalidTransfer,
		},
		{
			name:   "invalid backoff",
			tr:     transfer("P-1"),
			poll:   Backoff{Factor: 0.5},
			wantIs: ErrInvalidConfig,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, FakeOptions{SettleAfter: time.Hour})
			if tc.prepare != nil {
				tc.prepare(h)
			}
			_, err := h.settler().settle(context.Background(), h.client, tc.tr, tc.poll)
			if !errors.Is(err, tc.wantIs) || errors.Is(err, ErrPending) {
				t.Fatalf("Settle error = %v, want %v and not ErrPending", err, tc.wantIs)
			}
		})
	}
}

func TestSettleStopsOnPermanentStatusError(t *testing.T) {
	h := newHarness(t, FakeOptions{SettleAfter: time.Hour})
	st := h.settler()
	st.sleep = func(ctx context.Context, d time.Duration) error {
		h.client.Token = "revoked" // the token is revoked mid-way
		return h.sleep(ctx, d)
	}
	res, err := st.settle(context.Background(), h.client, transfer("P-1"), Backoff{})
	if !errors.Is(err, ErrPermanent) || errors.Is(err, ErrPending) {
		t.Fatalf("Settle error = %v, want ErrPermanent", err)
	}
	if res.Status != StatusPending {
		t.Fatalf("Settle = %+v, want the last known (pending) result", res)
	}
}

func TestBackoff(t *testing.T) {
	s := time.Second
	tests := []struct {
		name    string
		b       Backoff
		want    []time.Duration
		wantErr string
	}{
		{name: "defaults", b: Backoff{}, want: []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute}},
		{name: "factor 1.5", b: Backoff{Initial: 2 * s, Max: 10 * s, Factor: 1.5}, want: []time.Duration{2 * s, 3 * s, 4500 * time.Millisecond, 6750 * time.Millisecond, 10 * s}},
		{name: "constant", b: Backoff{Initial: 5 * s, Max: 5 * s, Factor: 1}, want: []time.Duration{5 * s, 5 * s, 5 * s}},
		{name: "Max below Initial", b: Backoff{Initial: 5 * s, Max: s}, wantErr: "max"},
		{name: "negative Initial", b: Backoff{Initial: -s}, wantErr: "initial"},
		{name: "factor below 1", b: Backoff{Factor: 0.5}, wantErr: "factor"},
		{name: "NaN factor", b: Backoff{Factor: math.NaN()}, wantErr: "factor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Validate()
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate = %v, want ErrInvalidConfig about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for n, want := range tc.want {
				if got := tc.b.Delay(n); got != want {
					t.Errorf("Delay(%d) = %v, want %v", n, got, want)
				}
			}
			if got := tc.b.Delay(10_000); got != tc.b.withDefaults().Max {
				t.Errorf("Delay(10000) = %v, want Max", got)
			}
		})
	}
}

func TestHalfJitterStaysInRange(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, time.Millisecond, time.Minute} {
		for range 1000 {
			if got := halfJitter(d); got < d/2 || got > d {
				t.Fatalf("halfJitter(%v) = %v, out of [%v, %v]", d, got, d/2, d)
			}
		}
	}
}

// statusThrottled passes sends on, and answers every status check with a
// request to come back in wait, as Client does for a Retry-After past the
// deadline; it counts the checks.
type statusThrottled struct {
	Provider
	wait   time.Duration
	checks int
	second func() // called at the second check
}

func (p *statusThrottled) Status(context.Context, string) (Result, error) {
	if p.checks++; p.checks == 2 {
		p.second()
	}
	return Result{}, &ThrottledError{Wait: p.wait, Err: ErrUnavailable}
}

// TestSettleStopsWhenTheStatusIsThrottled: a provider that asks for a wait
// past the deadline is not polled again; the result is pending, and the
// error says how long the provider asked to wait.
func TestSettleStopsWhenTheStatusIsThrottled(t *testing.T) {
	h := newHarness(t, FakeOptions{SettleAfter: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &statusThrottled{Provider: h.client, wait: time.Minute, second: cancel} // a second check ends the polling
	res, err := h.settler().settle(ctx, p, transfer("P-1"), Backoff{Initial: time.Second, Factor: 2})
	throttled, ok := errors.AsType[*ThrottledError](err)
	if !errors.Is(err, ErrPending) || !ok || throttled.Wait != time.Minute {
		t.Fatalf("Settle error = %v, want ErrPending holding the provider's wait of 1m", err)
	}
	if res.ID != "P-1" || res.Status != StatusPending {
		t.Fatalf("Settle = %+v, want the pending result", res)
	}
	if p.checks != 1 {
		t.Fatalf("status asked %d times, want 1: the provider asked to wait", p.checks)
	}
}

package httpretry_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/httpretry"
)

// recorder records the waits Do asks for instead of sleeping.
type recorder struct{ waits []time.Duration }

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.waits = append(r.waits, d)
	return ctx.Err()
}

// policy is a deterministic policy: no jitter, waits recorded.
func policy(r *recorder, attempts int) httpretry.Policy {
	return httpretry.Policy{
		MaxAttempts: attempts,
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  time.Second,
		Jitter:      func(c time.Duration) time.Duration { return c },
		Sleep:       r.sleep,
	}
}

var errFlaky = errors.New("flaky")

// failing returns an attempt that fails with fail(n) for the first k
// attempts and then answers n.
func failing(k int, fail func(n int) error) (func(context.Context, int) (int, error), *int) {
	calls := 0
	return func(_ context.Context, n int) (int, error) {
		calls++
		if n <= k {
			return 0, fail(n)
		}
		return n, nil
	}, &calls
}

func TestDo(t *testing.T) {
	retry := func(int) error { return httpretry.Retry(errFlaky) }
	tests := []struct {
		name      string
		attempts  int
		failures  int
		fail      func(n int) error
		wantN     int
		wantErr   error
		wantWaits []time.Duration
	}{
		{name: "first attempt succeeds", attempts: 3, wantN: 1},
		{name: "backoff doubles up to the cap", attempts: 6, failures: 5, fail: retry, wantN: 6,
			wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second}},
		{name: "Retry-After replaces the backoff", attempts: 3, failures: 2,
			fail: func(n int) error { return httpretry.RetryAfter(errFlaky, time.Duration(n)*time.Minute) }, wantN: 3,
			wantWaits: []time.Duration{time.Minute, 2 * time.Minute}},
		{name: "a zero Retry-After retries at once", attempts: 2, failures: 1,
			fail: func(int) error { return httpretry.RetryAfter(errFlaky, 0) }, wantN: 2, wantWaits: []time.Duration{0}},
		{name: "an unmarked error is final", attempts: 5, failures: 5,
			fail: func(int) error { return errFlaky }, wantErr: errFlaky},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			attempt, calls := failing(tc.failures, tc.fail)
			n, err := httpretry.Do(t.Context(), policy(r, tc.attempts), attempt)
			if err != tc.wantErr || n != tc.wantN {
				t.Fatalf("Do = %d, %v; want %d, %v", n, err, tc.wantN, tc.wantErr)
			}
			if !slices.Equal(r.waits, tc.wantWaits) {
				t.Fatalf("waits = %v, want %v", r.waits, tc.wantWaits)
			}
			if want := max(tc.wantN, 1); *calls != want {
				t.Fatalf("%d attempts, want %d", *calls, want)
			}
		})
	}
}

// giveUp runs Do and requires a *GiveUpError for reason.
func giveUp(t *testing.T, err error, reason httpretry.Reason, attempts int) *httpretry.GiveUpError {
	t.Helper()
	var g *httpretry.GiveUpError
	if !errors.As(err, &g) {
		t.Fatalf("err = %v, want a *GiveUpError", err)
	}
	if g.Reason != reason || g.Attempts != attempts {
		t.Fatalf("gave up: %v after %d attempts; want %v after %d (%v)", g.Reason, g.Attempts, reason, attempts, err)
	}
	if !errors.Is(err, errFlaky) || g.Last != errFlaky {
		t.Fatalf("err = %v, want it to carry the last attempt's error unmarked", err)
	}
	return g
}

func TestDoGivesUp(t *testing.T) {
	t.Run("attempts exhausted", func(t *testing.T) {
		r := &recorder{}
		attempt, calls := failing(100, func(int) error { return httpretry.Retry(errFlaky) })
		_, err := httpretry.Do(t.Context(), policy(r, 3), attempt)
		giveUp(t, err, httpretry.Exhausted, 3)
		if *calls != 3 || len(r.waits) != 2 {
			t.Fatalf("%d attempts, waits %v; want 3 attempts and 2 waits", *calls, r.waits)
		}
	})
	t.Run("zero policy tries once", func(t *testing.T) {
		attempt, calls := failing(100, func(int) error { return httpretry.Retry(errFlaky) })
		_, err := httpretry.Do(t.Context(), httpretry.Policy{}, attempt)
		giveUp(t, err, httpretry.Exhausted, 1)
		if *calls != 1 {
			t.Fatalf("%d attempts, want 1", *calls)
		}
	})
	t.Run("Retry-After beyond MaxRetryAfter", func(t *testing.T) {
		r := &recorder{}
		p := policy(r, 5)
		p.MaxRetryAfter = time.Minute
		attempt, _ := failing(100, func(int) error { return httpretry.RetryAfter(errFlaky, time.Hour) })
		_, err := httpretry.Do(t.Context(), p, attempt)
		if g := giveUp(t, err, httpretry.RetryAfterTooLong, 1); g.Wait != time.Hour || len(r.waits) != 0 {
			t.Fatalf("Wait = %v, waits %v; want 1h and no wait taken", g.Wait, r.waits)
		}
	})
	t.Run("next wait past the deadline", func(t *testing.T) {
		r := &recorder{}
		p := policy(r, 5)
		p.StopBeforeDeadline = true
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		attempt, _ := failing(100, func(int) error { return httpretry.RetryAfter(errFlaky, 2*time.Hour) })
		_, err := httpretry.Do(ctx, p, attempt)
		if g := giveUp(t, err, httpretry.PastDeadline, 1); g.Wait != 2*time.Hour || len(r.waits) != 0 {
			t.Fatalf("Wait = %v, waits %v; want 2h and no wait taken", g.Wait, r.waits)
		}
	})
	t.Run("deadline ignored without StopBeforeDeadline", func(t *testing.T) {
		r := &recorder{}
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		attempt, _ := failing(1, func(int) error { return httpretry.RetryAfter(errFlaky, 2*time.Hour) })
		if _, err := httpretry.Do(ctx, policy(r, 5), attempt); err != nil || len(r.waits) != 1 {
			t.Fatalf("Do err %v, waits %v; want success after one wait", err, r.waits)
		}
	})
	t.Run("context ended during an attempt", func(t *testing.T) {
		r := &recorder{}
		ctx, cancel := context.WithCancelCause(t.Context())
		stop := errors.New("shutting down")
		calls := 0
		_, err := httpretry.Do(ctx, policy(r, 5), func(context.Context, int) (int, error) {
			calls++
			cancel(stop)
			return 0, httpretry.Retry(errFlaky)
		})
		if g := giveUp(t, err, httpretry.Canceled, 1); g.Err != stop || !errors.Is(err, stop) {
			t.Fatalf("Err = %v, want the context's cause", g.Err)
		}
		if calls != 1 || len(r.waits) != 0 {
			t.Fatalf("%d attempts, waits %v; want 1 and none", calls, r.waits)
		}
	})
	t.Run("wait interrupted", func(t *testing.T) {
		p := policy(&recorder{}, 5)
		stop := errors.New("stop")
		p.Sleep = func(context.Context, time.Duration) error { return stop }
		attempt, _ := failing(100, func(int) error { return httpretry.Retry(errFlaky) })
		_, err := httpretry.Do(t.Context(), p, attempt)
		if g := giveUp(t, err, httpretry.Interrupted, 1); g.Err != stop || g.Wait != 100*time.Millisecond {
			t.Fatalf("Err %v, Wait %v; want the sleep's error and the 100ms wait", g.Err, g.Wait)
		}
	})
	t.Run("real wait cut short by the context", func(t *testing.T) {
		p := policy(&recorder{}, 5)
		p.Sleep = nil
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		attempt, _ := failing(100, func(int) error { return httpretry.RetryAfter(errFlaky, time.Hour) })
		_, err := httpretry.Do(ctx, p, attempt)
		giveUp(t, err, httpretry.Interrupted, 1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
}

func TestIsRetry(t *testing.T) {
	if !httpretry.IsRetry(httpretry.Retry(errFlaky)) || !httpretry.IsRetry(httpretry.RetryAfter(errFlaky, time.Second)) {
		t.Fatal("marked errors are not recognised")
	}
	if httpretry.IsRetry(errFlaky) || httpretry.IsRetry(nil) {
		t.Fatal("an unmarked error is recognised")
	}
	if !errors.Is(httpretry.Retry(errFlaky), errFlaky) {
		t.Fatal("a marked error hides its cause")
	}
}

func TestExpDelay(t *testing.T) {
	tests := []struct {
		name          string
		base, ceiling time.Duration
		factor        float64
		n             int
		want          time.Duration
	}{
		{"first", time.Second, time.Minute, 2, 0, time.Second},
		{"third", time.Second, time.Minute, 2, 2, 4 * time.Second},
		{"capped", time.Second, time.Minute, 2, 10, time.Minute},
		{"huge n does not overflow", time.Second, time.Minute, 2, math.MaxInt, time.Minute},
		{"factor 1.5", time.Second, time.Minute, 1.5, 2, 2250 * time.Millisecond},
		{"zero base", 0, time.Minute, 2, 5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := httpretry.ExpDelay(tc.base, tc.ceiling, tc.factor, tc.n); got != tc.want {
				t.Fatalf("ExpDelay = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFullJitterStaysInRange(t *testing.T) {
	for _, c := range []time.Duration{0, 1, 7, time.Millisecond, time.Hour} {
		for range 1000 {
			if d := httpretry.FullJitter(c); d < 0 || d > c {
				t.Fatalf("FullJitter(%v) = %v, out of [0, %v]", c, d, c)
			}
		}
	}
}

func TestSleep(t *testing.T) {
	if err := httpretry.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("stop")
	cancel(stop)
	if err := httpretry.Sleep(ctx, time.Hour); err != stop {
		t.Fatalf("Sleep on an ended context = %v, want its cause", err)
	}
	if err := httpretry.Sleep(ctx, 0); err != stop {
		t.Fatalf("Sleep(0) on an ended context = %v, want its cause", err)
	}
}

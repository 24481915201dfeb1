package firmbanking

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func TestClientSendPendingThenSettledWithFee(t *testing.T) {
	h := newHarness(t, FakeOptions{Fee: 500, SettleAfter: 10 * time.Minute})

	res := mustSend(t, h.client, transfer("P-1"))
	if res.ID != "P-1" || res.Status != StatusPending || res.Fee != 0 || res.ProviderRef == "" {
		t.Fatalf("Send = %+v, want pending without fee, with a provider ref", res)
	}
	if got := mustStatus(t, h.client, "P-1"); got != res {
		t.Fatalf("Status before SettleAfter = %+v, want %+v", got, res)
	}

	h.fake.Advance(10 * time.Minute)
	got := mustStatus(t, h.client, "P-1")
	want := Result{ID: "P-1", Status: StatusSettled, Fee: 500, ProviderRef: res.ProviderRef}
	if got != want {
		t.Fatalf("Status after SettleAfter = %+v, want %+v", got, want)
	}
	wantSent(t, h.fake, "P-1")
	if fees := h.fake.FeesCharged(); fees != 500 {
		t.Fatalf("FeesCharged = %d, want 500", fees)
	}
	wantSleeps(t, h)
}

func TestClientSendIsIdempotent(t *testing.T) {
	h := newHarness(t, FakeOptions{Fee: 500, SettleAfter: time.Minute})

	first := mustSend(t, h.client, transfer("P-1"))
	again := mustSend(t, h.client, transfer("P-1"))
	if again != first {
		t.Fatalf("resend = %+v, want %+v", again, first)
	}
	h.fake.Advance(time.Minute)
	late := mustSend(t, h.client, transfer("P-1"))
	if late.Status != StatusSettled || late.Fee != 500 || late.ProviderRef != first.ProviderRef {
		t.Fatalf("resend after settlement = %+v, want the settled result", late)
	}
	wantSent(t, h.fake, "P-1")
	if fees := h.fake.FeesCharged(); fees != 500 {
		t.Fatalf("FeesCharged = %d, want one fee", fees)
	}
}

func TestClientPermanentErrorsAreNotRetried(t *testing.T) {
	tests := []struct {
		name       string
		prepare    func(t *testing.T, h *harness)
		send       Transfer
		wantStatus int
		wantIs     []error
		wantReqs   int
		wantSent   []string
	}{
		{
			name: "same ID different body is 422",
			prepare: func(t *testing.T, h *harness) {
				mustSend(t, h.client, transfer("P-1"))
			},
			send: func() Transfer {
				tr := transfer("P-1")
				tr.Amount++
				return tr
			}(),
			wantStatus: http.StatusUnprocessableEntity,
			wantIs:     []error{ErrPermanent, ErrIdempotencyMismatch},
			wantReqs:   2,
			wantSent:   []string{"P-1"},
		},
		{
			name:       "wrong token is 401",
			prepare:    func(t *testing.T, h *harness) { h.client.Token = "wrong" },
			send:       transfer("P-1"),
			wantStatus: http.StatusUnauthorized,
			wantIs:     []error{ErrPermanent},
			wantReqs:   1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, FakeOptions{})
			tc.prepare(t, h)

			_, err := h.client.Send(context.Background(), tc.send)
			var pe *PermanentError
			if !errors.As(err, &pe) || pe.Status != tc.wantStatus {
				t.Fatalf("Send error = %v, want *PermanentError with status %d", err, tc.wantStatus)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if errors.Is(err, ErrUnavailable) {
				t.Errorf("a permanent error must not match ErrUnavailable: %v", err)
			}
			if n := h.fake.Requests(); n != tc.wantReqs {
				t.Errorf("Requests = %d, want %d (no retries)", n, tc.wantReqs)
			}
			wantSleeps(t, h)
			wantSent(t, h.fake, tc.wantSent...)
			if len(tc.wantSent) > 0 && h.fake.Sent()[0] != transfer("P-1") {
				t.Errorf("the first transfer with the ID must stand, Sent = %+v", h.fake.Sent())
			}
		})
	}
}

func TestClientRetriesTransientFailures(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name        string
		opts        FakeOptions
		maxAttempts int
		prepare     func(t *testing.T, h *harness)
		wantSleeps  []time.Duration
		wantErr     error // nil: Send succeeds
	}{
		{
			name:       "503 retried with backoff then succeeds",
			prepare:    func(t *testing.T, h *harness) { h.fake.FailNext(2) },
			wantSleeps: []time.Duration{100 * ms, 200 * ms},
		},
		{
			name:        "backoff doubles up to MaxBackoff",
			maxAttempts: 7,
			prepare:     func(t *testing.T, h *harness) { h.fake.FailNext(6) },
			wantSleeps:  []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second},
		},
		{
			name: "429 Retry-After in seconds is honoured",
			opts: FakeOptions{RateLimit: 1},
			prepare: func(t *testing.T, h *harness) {
				mustSend(t, h.client, transfer("P-0")) // uses up this second
			},
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name: "429 Retry-After as an HTTP date is honoured",
			opts: FakeOptions{RateLimit: 1, RetryAfterDate: true},
			prepare: func(t *testing.T, h *harness) {
				h.fake.Advance(250 * ms)
				mustSend(t, h.client, transfer("P-0"))
			},
			wantSleeps: []time.Duration{750 * ms},
		},
		{
			name:        "MaxAttempts exhausted is ErrUnavailable",
			maxAttempts: 3,
			prepare:     func(t *testing.T, h *harness) { h.fake.FailNext(10) },
			wantSleeps:  []time.Duration{100 * ms, 200 * ms},
			wantErr:     ErrUnavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.opts)
			if tc.maxAttempts != 0 {
				h.client.MaxAttempts = tc.maxAttempts
			}
			tc.prepare(t, h)
			before := h.fake.Requests()

			res, err := h.client.Send(context.Background(), transfer("P-1"))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Send error = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "503") {
					t.Errorf("error %q does not name the last cause", err)
				}
				wantSent(t, h.fake)
			} else {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if res.ID != "P-1" || !res.Status.Valid() {
					t.Fatalf("Send = %+v", res)
				}
			}
			wantSleeps(t, h, tc.wantSleeps...)
			if n := h.fake.Requests() - before; n != len(tc.wantSleeps)+1 {
				t.Errorf("Send made %d requests, want %d", n, len(tc.wantSleeps)+1)
			}
		})
	}
}

// The classic lost response: the provider processes the transfer, the
// answer never arrives before the client's timeout, and the client retries.
func TestClientLostResponseDoesNotSendTwice(t *testing.T) {
	h := newHarness(t, FakeOptions{Fee: 500})
	h.client.Timeout = 200 * time.Millisecond
	h.fake.HangNext(1, 10*time.Second)

	start := time.Now()
	res := mustSend(t, h.client, transfer("P-1"))
	if res.Status != StatusSettled || res.Fee != 500 {
		t.Fatalf("Send = %+v, want settled", res)
	}
	if n := h.fake.Requests(); n != 2 {
		t.Fatalf("Requests = %d, want 2 (a timed-out attempt and its retry)", n)
	}
	wantSleeps(t, h, 100*time.Millisecond)
	wantSent(t, h.fake, "P-1")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v: the client did not time out", el)
	}
}

// An error from Send is not "not sent": the money may have left, and a later
// Send with the same ID finds out without sending again.
func TestClientGaveUpButMoneyWasSent(t *testing.T) {
	h := newHarness(t, FakeOptions{})
	h.client.Timeout = 100 * time.Millisecond
	h.client.MaxAttempts = 1
	h.fake.HangNext(1, 10*time.Second)

	_, err := h.client.Send(context.Background(), transfer("P-1"))
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send error = %v, want ErrUnavailable wrapping the attempt timeout", err)
	}
	wantSent(t, h.fake, "P-1")

	res := mustSend(t, h.client, transfer("P-1"))
	if res.Status != StatusSettled {
		t.Fatalf("later Send = %+v, want settled", res)
	}
	wantSent(t, h.fake, "P-1")
}

// A refusal after an attempt whose answer was lost is no refusal: the lost
// attempt was accepted (the account is refused only since), so Send says
// the outcome is unknown (ErrUnavailable), not ErrRefused, which would have
// the payout failed and its money returned while it goes out.
func TestClientRefusalAfterALostAnswerIsUnknown(t *testing.T) {
	h := newHarness(t, FakeOptions{})
	h.client.Timeout = 200 * time.Millisecond
	h.fake.HangNext(1, 10*time.Second)
	sleep := h.client.sleep
	h.client.sleep = func(ctx context.Context, d time.Duration) error {
		h.fake.RefuseAccount(transfer("P-1").To.Number) // between the two attempts
		return sleep(ctx, d)
	}
	_, err := h.client.Send(context.Background(), transfer("P-1"))
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrNotTaken) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Send error = %v, want ErrUnavailable, neither ErrRefused nor ErrNotTaken", err)
	}
	wantSent(t, h.fake, "P-1")
	// A refusal with no such attempt before it is one.
	if _, err := h.client.Send(context.Background(), transfer("P-1")); !errors.Is(err, ErrRefused) {
		t.Fatalf("a later Send: %v, want ErrRefused", err)
	}
	// So is one after a 429: the provider did not act on that attempt.
	h2 := newHarness(t, FakeOptions{RateLimit: 1})
	h2.fake.RefuseAccount(transfer("P-2").To.Number)
	if _, err := h2.client.Status(context.Background(), "P-0"); !errors.Is(err, ErrUnknownTransfer) { // uses this second's one request
		t.Fatalf("status: %v", err)
	}
	if _, err := h2.client.Send(context.Background(), transfer("P-2")); !errors.Is(err, ErrRefused) {
		t.Fatalf("a refusal after a 429: %v, want ErrRefused", err)
	}
	if n := h2.fake.Requests(); n != 3 {
		t.Fatalf("%d requests, want 3 (the status, the throttled send and the refused one)", n)
	}
}

// A Send none of whose attempts the provider may have acted on matches
// ErrNotTaken: refused, throttled on every attempt, refused with another
// 4xx (a wrong token); one after a 5xx does not.
func TestClientSendsTheProviderDidNotActOnAreNotTaken(t *testing.T) {
	h := newHarness(t, FakeOptions{RateLimit: 1})
	if _, err := h.client.Status(context.Background(), "P-0"); !errors.Is(err, ErrUnknownTransfer) { // this second's one request
		t.Fatalf("status: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond) // shorter than the Retry-After
	defer cancel()
	_, err := h.client.Send(ctx, transfer("P-1"))
	if _, ok := errors.AsType[*ThrottledError](err); !ok || !errors.Is(err, ErrNotTaken) {
		t.Fatalf("a throttled Send: %v, want a ThrottledError that matches ErrNotTaken", err)
	}
	h.fake.RefuseAccount(transfer("P-2").To.Number)
	h.sleep(context.Background(), time.Second) // the next second: not throttled
	if _, err := h.client.Send(context.Background(), transfer("P-2")); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotTaken) {
		t.Fatalf("a refused Send: %v, want ErrRefused and ErrNotTaken", err)
	}
	h.sleep(context.Background(), time.Second)
	h.client.Token = "wrong"
	if _, err := h.client.Send(context.Background(), transfer("P-1")); !errors.Is(err, ErrPermanent) || errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotTaken) {
		t.Fatalf("a Send with a wrong token: %v, want ErrPermanent and ErrNotTaken, not ErrRefused", err)
	}
	wantSent(t, h.fake)
	var n atomic.Int32 // a 500 (processed, for all the client knows), then a 401
	h2 := newHarnessBehind(t, FakeOptions{}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) {
			case 1:
				next.ServeHTTP(httptest.NewRecorder(), r)
				w.WriteHeader(http.StatusInternalServerError)
			default:
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
	})
	if _, err := h2.client.Send(context.Background(), transfer("P-3")); !errors.Is(err, ErrPermanent) || errors.Is(err, ErrNotTaken) {
		t.Fatalf("a 401 after a 500: %v, want ErrPermanent, not ErrNotTaken", err)
	}
	wantSent(t, h2.fake, "P-3")
}

// A garbled 2xx (say, a proxy truncating the body) is a lost answer too.
func TestClientRetriesGarbledSuccess(t *testing.T) {
	var garbled atomic.Bool
	proxy := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if garbled.CompareAndSwap(false, true) {
				w = truncating{w}
			}
			next.ServeHTTP(w, r)
		})
	}
	h := newHarnessBehind(t, FakeOptions{}, proxy)

	res := mustSend(t, h.client, transfer("P-1"))
	if res.Status != StatusSettled {
		t.Fatalf("Send = %+v, want settled", res)
	}
	wantSleeps(t, h, 100*time.Millisecond)
	wantSent(t, h.fake, "P-1")
}

// truncating drops the second half of each write.
type truncating struct{ http.ResponseWriter }

func (w truncating) Write(b []byte) (int, error) {
	_, err := w.ResponseWriter.Write(b[:len(b)/2])
	return len(b), err
}

func TestClientFailedAccountIsDefinitive(t *testing.T) {
	h := newHarness(t, FakeOptions{Fee: 500, SettleAfter: time.Hour, FailAccounts: []string{"999-000-111"}})
	tr := transfer("P-1")
	tr.To.Number = "999-000-111"

	if res := mustSend(t, h.client, tr); res.Status != StatusPending {
		t.Fatalf("Send = %+v, want pending", res)
	}
	h.fake.Advance(time.Hour)
	res := mustStatus(t, h.client, "P-1")
	if res.Status != StatusFailed || res.Reason != "account_closed" || res.Fee != 0 {
		t.Fatalf("Status = %+v, want failed with reason and no fee", res)
	}
	if again := mustSend(t, h.client, tr); again != res {
		t.Fatalf("resend = %+v, want the same failed result %+v", again, res)
	}
	wantSent(t, h.fake)
	if fees := h.fake.FeesCharged(); fees != 0 {
		t.Fatalf("FeesCharged = %d, want 0", fees)
	}
}

func TestClientStatusOfUnknownTransfer(t *testing.T) {
	h := newHarness(t, FakeOptions{})
	_, err := h.client.Status(context.Background(), "never-sent")
	if !errors.Is(err, ErrUnknownTransfer) {
		t.Fatalf("Status error = %v, want ErrUnknownTransfer", err)
	}
	if n := h.fake.Requests(); n != 1 {
		t.Fatalf("Requests = %d, want 1 (a 404 is not retried)", n)
	}
}

func TestClientRejectsInvalidInputWithoutRequests(t *testing.T) {
	h := newHarness(t, FakeOptions{})
	tr := transfer("P-1")
	tr.Amount = 0
	if _, err := h.client.Send(context.Background(), tr); !errors.Is(err, ErrInvalidTransfer) || !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("Send error = %v, want ErrInvalidTransfer and domain.ErrInvalidInput", err)
	}
	if _, err := h.client.Status(context.Background(), "../etc"); !errors.Is(err, ErrInvalidTransfer) {
		t.Fatalf("Status error = %v, want ErrInvalidTransfer", err)
	}
	h.client.BaseURL = ""
	if _, err := h.client.Send(context.Background(), transfer("P-1")); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Send error = %v, want ErrInvalidConfig", err)
	}
	if n := h.fake.Requests(); n != 0 {
		t.Fatalf("Requests = %d, want 0", n)
	}
}

func TestClientContext(t *testing.T) {
	t.Run("deadline before Retry-After gives up at once", func(t *testing.T) {
		h := newHarness(t, FakeOptions{RateLimit: 1})
		mustSend(t, h.client, transfer("P-0"))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()

		_, err := h.client.Send(ctx, transfer("P-1"))
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "429") {
			t.Fatalf("Send error = %v, want ErrUnavailable after a 429", err)
		}
		// The wait the provider asked for goes to the caller.
		if th, ok := errors.AsType[*ThrottledError](err); !ok || th.Wait < time.Second {
			t.Fatalf("Send error = %#v, want a *ThrottledError with the provider's Retry-After (1s or more)", err)
		}
		wantSleeps(t, h)
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		h := newHarness(t, FakeOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		h.client.sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			return ctx.Err()
		}
		h.fake.FailNext(1)

		_, err := h.client.Send(ctx, transfer("P-1"))
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Send error = %v, want context.Canceled with the last cause", err)
		}
		if errors.Is(err, ErrPermanent) {
			t.Fatalf("a cancelled call is not permanent: %v", err)
		}
	})
}

func TestClientValidate(t *testing.T) {
	tests := []struct {
		name    string
		client  Client
		wantErr string // substring; "" means valid
	}{
		{name: "defaults", client: Client{BaseURL: "https://fb.example/v1", Token: "t"}},
		{name: "trailing slash", client: Client{BaseURL: "http://127.0.0.1:8080/", Token: "t"}},
		{name: "no base URL", client: Client{Token: "t"}, wantErr: "base URL is required"},
		{name: "relative base URL", client: Client{BaseURL: "/v1", Token: "t"}, wantErr: "absolute"},
		{name: "ftp base URL", client: Client{BaseURL: "ftp://fb.example", Token: "t"}, wantErr: "absolute"},
		{name: "query in base URL", client: Client{BaseURL: "https://fb.example?x=1", Token: "t"}, wantErr: "query"},
		{name: "no token", client: Client{BaseURL: "https://fb.example"}, wantErr: "token is required"},
		{name: "multi-line token", client: Client{BaseURL: "https://fb.example", Token: "a\nb"}, wantErr: "single line"},
		{name: "negative timeout", client: Client{BaseURL: "https://fb.example", Token: "t", Timeout: -1}, wantErr: "timeout"},
		{name: "negative attempts", client: Client{BaseURL: "https://fb.example", Token: "t", MaxAttempts: -1}, wantErr: "max attempts"},
		{name: "max below base", client: Client{BaseURL: "https://fb.example", Token: "t", BaseBackoff: time.Second, MaxBackoff: time.Millisecond}, wantErr: "max backoff"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.client.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("reports every problem", func(t *testing.T) {
		err := (&Client{Timeout: -1}).Validate()
		for _, want := range []string{"base URL", "token", "timeout"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Validate = %v, want it to mention %q", err, want)
			}
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := t0
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{in: "", wantOK: false},
		{in: "0", want: 0, wantOK: true},
		{in: "3", want: 3 * time.Second, wantOK: true},
		{in: " 120 ", want: 2 * time.Minute, wantOK: true},
		{in: "0.165", want: 165 * time.Millisecond, wantOK: true},
		{in: "-1", wantOK: false},
		{in: "NaN", wantOK: false},
		{in: "1e12", want: 24 * time.Hour, wantOK: true},
		{in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, wantOK: true},
		{in: now.Add(-time.Minute).Format(http.TimeFormat), want: 0, wantOK: true},
		{in: now.Add(5 * time.Second).Format(time.RFC850), want: 5 * time.Second, wantOK: true},
		{in: "soon", wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tc.in, now)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// A Retry-After on a 500 is not a "come back then": the retry follows the
// backoff. (Only 429 and 503 carry one that is honoured.)
func TestRetryAfterOnlyOn429And503(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"P-1","status":"pending","fee":0,"provider_ref":"FB1"}`))
	}))
	t.Cleanup(srv.Close)
	var slept []time.Duration
	c := &Client{BaseURL: srv.URL, Token: "t",
		sleep:  func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil },
		jitter: func(d time.Duration) time.Duration { return d }}
	if _, err := c.Send(context.Background(), transfer("P-1")); err != nil {
		t.Fatal(err)
	}
	if len(slept) != 1 || slept[0] >= 30*time.Second {
		t.Fatalf("slept %v, want one backoff, not the 500's Retry-After", slept)
	}
}

// TestClientDoesNotFollowRedirects: a provider URL that redirects is a
// wrong URL. Followed, a 307 or 308 sends the transfer, with its
// Idempotency-Key, to wherever the redirect points, and a 301, 302 or 303
// asks that place with a GET; either answer could be taken for the
// provider's. The redirect is a refusal (*PermanentError with its status),
// and the place it points to is never asked.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			elsewhere := newHarness(t, FakeOptions{})
			h := newHarnessBehind(t, FakeOptions{}, func(http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, elsewhere.srv.URL+r.URL.Path, status)
				})
			})
			_, err := h.client.Send(context.Background(), transfer("P-1"))
			if pe, ok := errors.AsType[*PermanentError](err); !ok || pe.Status != status || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Send through a redirect: %v, want a *PermanentError with status %d", err, status)
			}
			if _, err := h.client.Status(context.Background(), "P-1"); err == nil {
				t.Fatal("Status through a redirect answered")
			}
			if n := elsewhere.fake.Requests(); n != 0 {
				t.Fatalf("the redirect was followed: %d request(s) where it points", n)
			}
		})
	}
}

// TestClientMakesTheProvidersWordsSafe: a provider's reference and failure
// reason are recorded (payout.settled, payout.failed) and printed by the
// CLI: kept without control characters, and no longer than
// maxProviderText.
func TestClientMakesTheProvidersWordsSafe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"P-1","status":"failed","fee":0,"provider_ref":"` + strings.Repeat("R", 1000) + `","reason":"account\u001b[2Jclosed\u202e"}`))
	}))
	t.Cleanup(srv.Close)
	c := &Client{BaseURL: srv.URL, Token: token}
	res, err := c.Status(context.Background(), "P-1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(res.Reason, "\x1b\u202e") || !strings.HasPrefix(res.Reason, "account") || len(res.ProviderRef) > maxProviderText+len("…") {
		t.Fatalf("reason %q, reference of %d bytes", res.Reason, len(res.ProviderRef))
	}
}

package bankfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "s3cret"

// newFake serves a FakeProvider over bank on a test server.
func newFake(t *testing.T, bank *SimBank, opts FakeOptions) (*FakeProvider, *httptest.Server) {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	p := NewFakeProvider(bank, opts)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// sleeps records the waits an HTTPSource asks for; each wait also moves
// clock (when set) instead of taking time.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
	clock *testClock
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	if s.clock != nil {
		s.clock.Advance(d)
	}
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// newSource returns an HTTPSource for url whose waits are recorded, with a
// jitter of exactly one half.
func newSource(url string, clock *testClock) (*HTTPSource, *sleeps) {
	sl := &sleeps{clock: clock}
	src := &HTTPSource{
		URL:         url,
		Token:       testToken,
		Timeout:     2 * time.Second,
		MaxAttempts: 4,
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  time.Second,
		sleep:       sl.sleep,
		jitter:      func() float64 { return 0.5 },
	}
	if clock != nil {
		src.now = clock.Now
	}
	return src, sl
}

func TestHTTPSourceHappyPath(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{Lag: time.Minute})
	a := transfer(t, bank, "김민수042", 35000, collect)
	clock.Advance(30 * time.Second)
	b := transfer(t, bank, "Kim, \"Minsu\"", 1200, "999-000")
	clock.Advance(90 * time.Second) // a and b visible; c not yet
	transfer(t, bank, "late", 1, collect)

	p, srv := newFake(t, bank, FakeOptions{Now: clock.Now})
	src, sl := newSource(srv.URL, clock)
	res, err := src.Scan(context.Background(), time.Time{})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if !res.CompleteUpTo.Equal(t0.Add(time.Minute)) {
		t.Errorf("CompleteUpTo = %v, want now−lag = %v", res.CompleteUpTo, t0.Add(time.Minute))
	}
	got := map[string]Transaction{}
	for _, x := range res.Transactions {
		got[x.BankTxnID] = x
	}
	if len(got) != 2 || !got[a.BankTxnID].Equal(a) || !got[b.BankTxnID].Equal(b) {
		t.Fatalf("transactions = %+v, want %+v and %+v", res.Transactions, a, b)
	}
	if p.Requests() != 1 || len(sl.get()) != 0 {
		t.Errorf("requests = %d, waits = %v; want one request and no wait", p.Requests(), sl.get())
	}

	// A per-account endpoint.
	_, srv2 := newFake(t, bank, FakeOptions{Account: "999000", Now: clock.Now})
	src2, _ := newSource(srv2.URL, clock)
	res, err = src2.Scan(context.Background(), time.Time{})
	if err != nil || len(res.Transactions) != 1 || res.Transactions[0].BankTxnID != b.BankTxnID {
		t.Fatalf("per-account Scan = %v, %v; want only %s", ids(res.Transactions), err, b.BankTxnID)
	}
}

func TestHTTPSourceRequest(t *testing.T) {
	since := time.Date(2024, 5, 1, 9, 20, 0, 123456789, time.FixedZone("KST", 9*3600))
	var gotQuery, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotAuth = r.URL.RawQuery, r.Header.Get("Authorization")
		fmt.Fprint(w, `{"transactions":[],"complete_up_to":"2024-05-01T00:30:00Z","next":"ignored"}`)
	}))
	t.Cleanup(srv.Close)
	src, _ := newSource(srv.URL+"/scan?account=123", nil)
	res, err := src.Scan(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	if want := "account=123&since=2024-05-01T00%3A20%3A00.123456789Z"; gotQuery != want {
		t.Errorf("query = %q, want %q", gotQuery, want)
	}
	if gotAuth != "Bearer "+testToken {
		t.Errorf("Authorization = %q", gotAuth)
	}
	if len(res.Transactions) != 0 || !res.CompleteUpTo.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("result = %+v", res)
	}
}

func TestHTTPSourcePermanentErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		token  string
		status int // injected with FailNext when not 0
		is     error
	}{
		{"wrong token", "wrong", 0, ErrUnauthorized},
		{"blank token", "", 0, ErrUnauthorized},
		{"forbidden", testToken, http.StatusForbidden, ErrUnauthorized},
		{"bad request", testToken, http.StatusBadRequest, nil},
		{"not found", testToken, http.StatusNotFound, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
			if tc.status != 0 {
				p.FailNext(5, tc.status, 0)
			}
			src, sl := newSource(srv.URL, clock)
			src.Token = tc.token
			if tc.token == "" {
				src.Token = " " // passes Validate, fails at the provider
			}
			_, err := src.Scan(context.Background(), time.Time{})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *StatusError", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if errors.Is(err, ErrGaveUp) {
				t.Errorf("err = %v; a permanent error is not a give-up", err)
			}
			if p.Requests() != 1 || len(sl.get()) != 0 {
				t.Errorf("requests = %d, waits = %v; want no retry", p.Requests(), sl.get())
			}
		})
	}
}

func TestHTTPSourceHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		date    bool
		advance time.Duration // position of the clock within its second
		want    time.Duration
	}{
		{"seconds", false, 0, time.Second},
		{"seconds, rounded up", false, 300 * time.Millisecond, time.Second},
		{"HTTP date", true, 0, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			clock.Advance(tc.advance)
			bank := newBank(t, clock, SimOptions{})
			transfer(t, bank, "A", 1000, collect)
			p, srv := newFake(t, bank, FakeOptions{RateLimit: 2, HTTPDateRetryAfter: tc.date, Now: clock.Now})
			src, sl := newSource(srv.URL, clock)
			for i := range 2 {
				if _, err := src.Scan(context.Background(), time.Time{}); err != nil {
					t.Fatalf("scan %d within the limit: %v", i, err)
				}
			}
			res, err := src.Scan(context.Background(), time.Time{}) // 429, wait, retry
			if err != nil || len(res.Transactions) != 1 {
				t.Fatalf("rate-limited Scan = %v, %v", res, err)
			}
			if got := sl.get(); !slices.Equal(got, []time.Duration{tc.want}) {
				t.Errorf("waits = %v, want [%v] (the Retry-After)", got, tc.want)
			}
			if p.Requests() != 4 {
				t.Errorf("requests = %d, want 4", p.Requests())
			}
		})
	}
}

func TestHTTPSourceRetryAfterTooLong(t *testing.T) {
	clock := newClock()
	p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
	p.FailNext(1, http.StatusServiceUnavailable, 10*time.Minute)
	src, sl := newSource(srv.URL, clock)
	src.MaxRetryAfter = time.Minute
	_, err := src.Scan(context.Background(), time.Time{})
	var se *StatusError
	if !errors.Is(err, ErrGaveUp) || !errors.As(err, &se) || se.RetryAfter != 10*time.Minute {
		t.Fatalf("err = %v; want ErrGaveUp wrapping a 503 that asks for 10m", err)
	}
	if p.Requests() != 1 || len(sl.get()) != 0 {
		t.Errorf("requests = %d, waits = %v; want one request, no wait", p.Requests(), sl.get())
	}
}

func TestHTTPSourceRetries5xx(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	transfer(t, bank, "A", 1000, collect)
	p, srv := newFake(t, bank, FakeOptions{Now: clock.Now})
	p.FailNext(2, http.StatusBadGateway, 0)
	src, sl := newSource(srv.URL, clock)
	res, err := src.Scan(context.Background(), time.Time{})
	if err != nil || len(res.Transactions) != 1 {
		t.Fatalf("Scan = %v, %v", res, err)
	}
	// Full jitter (fixed at ½ here) of 100ms, then of 200ms.
	if got, want := sl.get(), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if p.Requests() != 3 {
		t.Errorf("requests = %d, want 3", p.Requests())
	}
}

func TestHTTPSourceSimulatedOutage(t *testing.T) {
	clock := newClock()
	bank := newBank(t, clock, SimOptions{})
	bank.FailNext(1)
	p, srv := newFake(t, bank, FakeOptions{Now: clock.Now})
	src, sl := newSource(srv.URL, clock)
	if _, err := src.Scan(context.Background(), time.Time{}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got := sl.get(); !slices.Equal(got, []time.Duration{time.Second}) || p.Requests() != 2 {
		t.Errorf("waits = %v, requests = %d; want the 503's Retry-After of 1s, then success", got, p.Requests())
	}
}

func TestHTTPSourceAttemptTimeout(t *testing.T) {
	clock := newClock()
	p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
	p.HangNext(1, time.Hour)
	src, sl := newSource(srv.URL, clock)
	src.Timeout = 100 * time.Millisecond
	start := time.Now()
	if _, err := src.Scan(context.Background(), time.Time{}); err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if p.Requests() != 2 || len(sl.get()) != 1 {
		t.Errorf("requests = %d, waits = %v; want a timed-out attempt and one retry", p.Requests(), sl.get())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Scan took %v; the attempt timeout did not cut the hang", d)
	}
}

func TestHTTPSourceGivesUp(t *testing.T) {
	t.Run("5xx", func(t *testing.T) {
		clock := newClock()
		p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
		p.FailNext(100, http.StatusInternalServerError, 0)
		src, sl := newSource(srv.URL, clock)
		src.MaxAttempts = 3
		_, err := src.Scan(context.Background(), time.Time{})
		var se *StatusError
		if !errors.Is(err, ErrGaveUp) || !errors.As(err, &se) || se.StatusCode != 500 {
			t.Fatalf("err = %v; want ErrGaveUp wrapping the last 500", err)
		}
		if !strings.Contains(err.Error(), "after 3 attempts") {
			t.Errorf("err = %q does not say how many attempts", err)
		}
		if p.Requests() != 3 || len(sl.get()) != 2 {
			t.Errorf("requests = %d, waits = %v; want 3 and 2", p.Requests(), sl.get())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		src, sl := newSource(url, nil)
		_, err := src.Scan(context.Background(), time.Time{})
		if !errors.Is(err, ErrGaveUp) {
			t.Fatalf("err = %v; want ErrGaveUp", err)
		}
		if got := sl.get(); len(got) != 3 {
			t.Errorf("waits = %v; want 3 (4 attempts)", got)
		}
	})
	t.Run("backoff is capped", func(t *testing.T) {
		clock := newClock()
		p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
		p.FailNext(100, http.StatusServiceUnavailable, 0)
		src, sl := newSource(srv.URL, clock)
		src.MaxAttempts = 8
		src.jitter = func() float64 { return 0.999 }
		if _, err := src.Scan(context.Background(), time.Time{}); !errors.Is(err, ErrGaveUp) {
			t.Fatalf("err = %v", err)
		}
		for i, w := range sl.get() {
			ceiling := min(src.BaseBackoff<<i, src.MaxBackoff)
			if w < 0 || w >= ceiling {
				t.Errorf("wait %d = %v, want in [0, %v)", i, w, ceiling)
			}
		}
	})
}

// A bank's scan API may take a key in the URL's query. Errors name the
// endpoint without it: they reach the log and /readyz.
func TestHTTPSourceErrorsLeaveOutTheQuery(t *testing.T) {
	const key = "k3y-in-query"
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		src, _ := newSource(base+"/scan?apikey="+key, nil)
		_, err := src.Scan(context.Background(), time.Time{})
		if !errors.Is(err, ErrGaveUp) {
			t.Fatalf("err = %v; want ErrGaveUp", err)
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "since=") {
			t.Errorf("err = %q names the query", err)
		}
		if !strings.Contains(err.Error(), base+"/scan") {
			t.Errorf("err = %q does not name the endpoint", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		clock := newClock()
		p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
		p.HangNext(100, time.Hour)
		src, _ := newSource(srv.URL+"?apikey="+key, clock)
		src.Timeout = 50 * time.Millisecond
		src.MaxAttempts = 2
		_, err := src.Scan(context.Background(), time.Time{})
		if !errors.Is(err, ErrGaveUp) {
			t.Fatalf("err = %v; want ErrGaveUp", err)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("err = %q names the query", err)
		}
	})
}

func TestHTTPSourceStopsWithContext(t *testing.T) {
	clock := newClock()
	p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
	p.FailNext(100, http.StatusTooManyRequests, 30*time.Second)
	src, _ := newSource(srv.URL, clock)
	src.sleep = nil // the real wait, cut short by the context
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := src.Scan(ctx, time.Time{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Scan took %v", d)
	}
}

func TestHTTPSourceBadResponses(t *testing.T) {
	const ok = `"complete_up_to":"2024-05-01T00:30:00Z"`
	const txn = `{"bank_txn_id":"T-1","account_number":"123","depositor_name":"Kim","amount":1000,"deposited_at":"2024-05-01T00:00:00Z"}`
	for _, tc := range []struct{ name, body string }{
		{"not JSON", `<html>maintenance</html>`},
		{"truncated", `{"transactions":[` + txn},
		{"trailing garbage", `{"transactions":[],` + ok + `} {}`},
		{"missing complete_up_to", `{"transactions":[` + txn + `]}`},
		{"amount as a decimal", `{"transactions":[` + strings.Replace(txn, "1000", "1000.5", 1) + `],` + ok + `}`},
		{"amount as a string", `{"transactions":[` + strings.Replace(txn, "1000", `"1000"`, 1) + `],` + ok + `}`},
		{"zero amount", `{"transactions":[` + txn + `,` + strings.Replace(txn, "1000", "0", 1) + `],` + ok + `}`},
		{"empty id", `{"transactions":[` + strings.Replace(txn, `"T-1"`, `""`, 1) + `],` + ok + `}`},
		{"no deposited_at", `{"transactions":[` + strings.Replace(txn, `,"deposited_at":"2024-05-01T00:00:00Z"`, "", 1) + `],` + ok + `}`},
		{"time without offset", `{"transactions":[` + strings.Replace(txn, "00:00:00Z", "00:00:00", 1) + `],` + ok + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests++
				fmt.Fprint(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			src, _ := newSource(srv.URL, nil)
			res, err := src.Scan(context.Background(), time.Time{})
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("err = %v, want ErrBadResponse", err)
			}
			if res.Transactions != nil || requests != 1 {
				t.Errorf("result = %+v after %d requests; want nothing, no retry", res, requests)
			}
		})
	}
}

func TestHTTPSourceValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  HTTPSource
		ok   bool
	}{
		{"minimal", HTTPSource{URL: "https://scan.example/v1", Token: "t"}, true},
		{"no url", HTTPSource{Token: "t"}, false},
		{"relative url", HTTPSource{URL: "/v1/scan", Token: "t"}, false},
		{"ftp url", HTTPSource{URL: "ftp://scan.example", Token: "t"}, false},
		{"no token", HTTPSource{URL: "https://scan.example"}, false},
		{"token with a newline", HTTPSource{URL: "https://scan.example", Token: "t\nX-Evil: 1"}, false},
		{"negative timeout", HTTPSource{URL: "https://scan.example", Token: "t", Timeout: -1}, false},
		{"negative attempts", HTTPSource{URL: "https://scan.example", Token: "t", MaxAttempts: -1}, false},
		{"base above max backoff", HTTPSource{URL: "https://scan.example", Token: "t", BaseBackoff: time.Minute, MaxBackoff: time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.src.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if _, err := tc.src.Scan(context.Background(), time.Time{}); err == nil {
					t.Fatal("Scan with an invalid configuration succeeded")
				}
			}
		})
	}
	d := (&HTTPSource{MaxBackoff: 100 * time.Millisecond}).withDefaults()
	if d.BaseBackoff != 100*time.Millisecond || d.Timeout != DefaultHTTPTimeout || d.MaxAttempts != DefaultHTTPMaxAttempts {
		t.Errorf("defaults = %+v", d)
	}
}

func TestFakeProvider(t *testing.T) {
	clock := newClock()
	p, srv := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{RateLimit: 2, Now: clock.Now})
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const q = "?since=2024-05-01T00:00:00Z"
	for _, tc := range []struct {
		name, path, token string
		advance           time.Duration
		status            int
		retryAfter        string
	}{
		{"no token", q, "", 0, 401, ""},
		{"first", q, testToken, 0, 200, ""},
		{"second", q, testToken, 0, 200, ""},
		{"over the limit", q, testToken, 400 * time.Millisecond, 429, "1"},
		{"next window", q, testToken, 600 * time.Millisecond, 200, ""},
		{"since missing", "", testToken, 0, 400, ""},
		{"since malformed", "?since=yesterday", testToken, time.Second, 400, ""},
	} {
		clock.Advance(tc.advance)
		resp := get(tc.path, tc.token)
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retryAfter {
			t.Errorf("%s: %d Retry-After %q, want %d %q", tc.name, resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retryAfter)
		}
	}
	if p.Requests() != 7 {
		t.Errorf("Requests() = %d, want 7", p.Requests())
	}
}

func FuzzDecodeScanResponse(f *testing.F) {
	f.Add([]byte(`{"transactions":[{"bank_txn_id":"T-1","account_number":"123","depositor_name":"김민수042","amount":1000,"deposited_at":"2024-05-01T09:00:00+09:00"}],"complete_up_to":"2024-05-01T00:30:00Z"}`))
	f.Add([]byte(`{"transactions":null,"complete_up_to":"2024-05-01T00:30:00.5Z"}`))
	f.Add([]byte(`{"transactions":[{"amount":1e3}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := DecodeScanResponse(body)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) || res.Transactions != nil {
				t.Fatalf("failure %v returned %+v", err, res)
			}
			return
		}
		if res.CompleteUpTo.IsZero() {
			t.Fatal("accepted an answer without complete_up_to")
		}
		for _, x := range res.Transactions {
			if err := x.Validate(); err != nil {
				t.Fatalf("accepted %+v: %v", x, err)
			}
		}
		again, err := json.Marshal(ScanResponse(res))
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		res2, err := DecodeScanResponse(again)
		if err != nil || !res2.CompleteUpTo.Equal(res.CompleteUpTo) || !slices.EqualFunc(res2.Transactions, res.Transactions, Transaction.Equal) {
			t.Fatalf("round trip: %+v, %v; want %+v", res2, err, res)
		}
	})
}

// TestHTTPSourceDoesNotFollowRedirects: a scan URL that redirects is a
// wrong URL; followed, the engine would read whatever feed the redirect
// points to as its bank's. The redirect is a *StatusError with its status,
// not retried, and the place it points to is never asked.
func TestHTTPSourceDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			clock := newClock()
			elsewhere, other := newFake(t, newBank(t, clock, SimOptions{}), FakeOptions{Now: clock.Now})
			redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other.URL+r.URL.RequestURI(), status)
			}))
			t.Cleanup(redirect.Close)
			src, sl := newSource(redirect.URL, clock)
			_, err := src.Scan(context.Background(), time.Time{})
			if se, ok := errors.AsType[*StatusError](err); !ok || se.StatusCode != status || errors.Is(err, ErrGaveUp) {
				t.Fatalf("Scan through a redirect: %v, want a *StatusError with status %d", err, status)
			}
			if n := elsewhere.Requests(); n != 0 || len(sl.get()) != 0 {
				t.Fatalf("the redirect was followed (%d requests where it points) or retried (%v)", n, sl.get())
			}
		})
	}
}

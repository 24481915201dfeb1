package firmbanking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/internal/testenv"
)

// post sends a raw POST /transfers to the harness's server.
func post(t *testing.T, h *harness, key string, body any, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	code, header, b, err := tryPost(h, key, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return code, header, b
}

// tryPost is post for goroutines other than the test's.
func tryPost(h *harness, key string, body any, hdr ...string) (int, http.Header, []byte, error) {
	data, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		data = string(b)
	}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/transfers", strings.NewReader(data))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

func get(t *testing.T, h *harness, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e fakeError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error
}

func TestFakeWireContract(t *testing.T) {
	tr := transfer("P-1")
	tests := []struct {
		name     string
		call     func(t *testing.T, h *harness) (int, http.Header, []byte)
		want     int
		wantCode string
	}{
		{name: "new transfer is 202", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "P-1", tr)
		}, want: 202},
		{name: "repeat is 200 and marked replayed", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			post(t, h, "P-1", tr)
			code, hdr, body := post(t, h, "P-1", tr)
			if hdr.Get("Idempotent-Replayed") != "true" {
				t.Errorf("repeat lacks Idempotent-Replayed")
			}
			return code, hdr, body
		}, want: 200},
		{name: "missing Idempotency-Key", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "", tr)
		}, want: 400, wantCode: "bad_idempotency_key"},
		{name: "Idempotency-Key differs from id", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "P-2", tr)
		}, want: 400, wantCode: "bad_idempotency_key"},
		{name: "unknown field", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "P-1", `{"id":"P-1","amount":1,"to":{"bank":"KB","number":"1","holder":"a"},"currency":"USD"}`)
		}, want: 400, wantCode: "bad_request"},
		{name: "trailing data", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "P-1", `{"id":"P-1","amount":1,"to":{"bank":"KB","number":"1","holder":"a"}} {}`)
		}, want: 400, wantCode: "bad_request"},
		{name: "invalid transfer", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			bad := tr
			bad.Amount = -5
			return post(t, h, "P-1", bad)
		}, want: 400, wantCode: "bad_request"},
		{name: "same ID different body", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			post(t, h, "P-1", tr)
			other := tr
			other.To.Number = "111-222"
			return post(t, h, "P-1", other)
		}, want: 422, wantCode: "idempotency_mismatch"},
		{name: "no token", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return post(t, h, "P-1", tr, "Authorization", "")
		}, want: 401, wantCode: "unauthorized"},
		{name: "status of a known transfer", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			post(t, h, "P-1", tr)
			return get(t, h, http.MethodGet, "/transfers/P-1")
		}, want: 200},
		{name: "status of an unknown transfer", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return get(t, h, http.MethodGet, "/transfers/P-9")
		}, want: 404, wantCode: "unknown_transfer"},
		{name: "GET /transfers", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return get(t, h, http.MethodGet, "/transfers")
		}, want: 405, wantCode: "method_not_allowed"},
		{name: "DELETE a transfer", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return get(t, h, http.MethodDelete, "/transfers/P-1")
		}, want: 405, wantCode: "method_not_allowed"},
		{name: "unknown route", call: func(t *testing.T, h *harness) (int, http.Header, []byte) {
			return get(t, h, http.MethodGet, "/accounts")
		}, want: 404, wantCode: "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, FakeOptions{})
			code, hdr, body := tc.call(t, h)
			if code != tc.want {
				t.Fatalf("status %d, want %d (%s)", code, tc.want, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.wantCode != "" {
				if got := errorCode(t, body); got != tc.wantCode {
					t.Fatalf("error code %q, want %q", got, tc.wantCode)
				}
				return
			}
			if _, err := decodeResult(body, "P-1"); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
		})
	}
}

func TestFakeTokenOptional(t *testing.T) {
	f := NewFakeService(FakeOptions{})
	req, _ := http.NewRequest(http.MethodGet, "/transfers/P-1", nil)
	rec := httptest.NewRecorder()
	f.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404 without a token configured", rec.Code)
	}
}

func TestFakeRateLimitWindow(t *testing.T) {
	h := newHarness(t, FakeOptions{RateLimit: 3})
	for i := range 3 {
		if code, _, _ := get(t, h, http.MethodGet, "/transfers/P-1"); code != 404 {
			t.Fatalf("request %d: status %d, want 404", i, code)
		}
	}
	tests := []struct {
		advance    time.Duration
		want       int
		retryAfter string
	}{
		{0, 429, "1"},
		{500 * time.Millisecond, 429, "1"}, // half a second left rounds up
		{500 * time.Millisecond, 404, ""},  // a new second
	}
	for _, tc := range tests {
		h.fake.Advance(tc.advance)
		code, hdr, body := get(t, h, http.MethodGet, "/transfers/P-1")
		if code != tc.want || hdr.Get("Retry-After") != tc.retryAfter {
			t.Fatalf("after %v: status %d Retry-After %q, want %d %q (%s)", tc.advance, code, hdr.Get("Retry-After"), tc.want, tc.retryAfter, body)
		}
	}
}

func TestFakeFailRateIsSeeded(t *testing.T) {
	codes := func(seed uint64) []int {
		h := newHarness(t, FakeOptions{FailRate: 0.5, Seed: seed})
		var out []int
		for range 40 {
			code, _, _ := get(t, h, http.MethodGet, "/transfers/P-1")
			out = append(out, code)
		}
		return out
	}
	a, b := codes(7), codes(7)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different failures:\n%v\n%v", a, b)
	}
	if !slices.Contains(a, 503) || !slices.Contains(a, 404) {
		t.Fatalf("FailRate 0.5 gave %v, want both 503 and 404", a)
	}
}

// While a slow transfer is processed, a repeat with the same ID is told 409
// in_progress (and the client retries it), never processed a second time.
func TestFakeInProgressConflict(t *testing.T) {
	h := newHarness(t, FakeOptions{Latency: 300 * time.Millisecond})
	tr := transfer("P-1")

	type answer struct {
		code int
		err  error
	}
	first := make(chan answer, 1)
	go func() {
		code, _, _, err := tryPost(h, "P-1", tr)
		first <- answer{code, err}
	}()
	testenv.CheckFor(t, 5*time.Second, func() error {
		h.fake.mu.Lock()
		defer h.fake.mu.Unlock()
		if !h.fake.inflight["P-1"] {
			return errors.New("the first request is not being processed yet")
		}
		return nil
	})
	code, _, body := post(t, h, "P-1", tr)
	if code != http.StatusConflict || errorCode(t, body) != "in_progress" {
		t.Fatalf("concurrent repeat: %d %s, want 409 in_progress", code, body)
	}
	if a := <-first; a.err != nil || a.code != http.StatusAccepted {
		t.Fatalf("first: %d %v, want 202", a.code, a.err)
	}
	if code, _, _ := post(t, h, "P-1", tr); code != http.StatusOK {
		t.Fatalf("later repeat: %d, want 200", code)
	}
	wantSent(t, h.fake, "P-1")
}

func TestConcurrentSendsOfOneID(t *testing.T) {
	tests := []struct {
		name    string
		latency time.Duration
	}{
		{name: "instant provider"},
		{name: "slow provider answers 409 in progress", latency: 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, FakeOptions{Fee: 500, Latency: tc.latency})
			h.client.sleep, h.client.jitter = nil, nil // really wait, so the slow request can finish
			h.client.BaseBackoff = time.Millisecond
			h.client.MaxBackoff = 10 * time.Millisecond
			h.client.MaxAttempts = 1000

			const n = 50
			results := make([]Result, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					results[i], errs[i] = h.client.Send(context.Background(), transfer("P-1"))
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("Send %d: %v", i, errs[i])
				}
				if results[i] != results[0] {
					t.Fatalf("Send %d = %+v, Send 0 = %+v", i, results[i], results[0])
				}
			}
			wantSent(t, h.fake, "P-1")
			if fees := h.fake.FeesCharged(); fees != 500 {
				t.Fatalf("FeesCharged = %d, want one fee", fees)
			}
			t.Logf("%d requests for %d sends", h.fake.Requests(), n)
		})
	}
}

func TestFakeSentKeepsAcceptanceOrder(t *testing.T) {
	h := newHarness(t, FakeOptions{FailAccounts: []string{"000-000"}})
	for i := range 5 {
		tr := transfer(fmt.Sprintf("P-%d", i))
		if i == 2 {
			tr.To.Number = "000-000"
		}
		mustSend(t, h.client, tr)
	}
	wantSent(t, h.fake, "P-0", "P-1", "P-3", "P-4")
	if r, ok := h.fake.Result("P-2"); !ok || r.Status != StatusFailed {
		t.Fatalf("Result(P-2) = %+v, %v; want failed", r, ok)
	}
	if _, ok := h.fake.Result("P-9"); ok {
		t.Fatal("Result of an unknown ID reported ok")
	}
}

// Code used only by tests: a fake account-scan provider. It lives in a _test.go
// file so that it is not compiled into the bankbook binary.

package bankfeed

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bankbook/bankbook/internal/retryafter"
	"github.com/bankbook/bankbook/internal/simlimit"
)

// FakeOptions configures a FakeProvider.
type FakeOptions struct {
	// Token is the bearer token every request must carry (401 otherwise).
	// "" disables authentication.
	Token string
	// Account, when set, restricts answers to that account, like a
	// provider endpoint per account. "" serves every account of the bank.
	Account string
	// SubAccounts, with Account, adds the numbers it accepts (normalised)
	// to the answers: the feed of an account with its virtual accounts.
	SubAccounts func(number string) bool
	// RateLimit is how many requests are served per second of the clock
	// (fixed one-second windows); the rest get 429 with a Retry-After up to
	// the end of the window. 0 means no limit.
	RateLimit int
	// HTTPDateRetryAfter makes the fake write Retry-After as an HTTP date
	// rather than as seconds (both forms occur in the wild).
	HTTPDateRetryAfter bool
	// Now is the provider's clock for rate limiting; nil means time.Now.
	Now func() time.Time
}

// FakeProvider is a fake HTTP account-scan service backed by a SimBank, for
// this package's tests. It speaks HTTPSource's wire contract and
// behaves like a real provider: it refuses a missing or wrong bearer token
// with 401, rate-limits with 429 and Retry-After, maps a SimBank outage
// (SimBank.FailNext) to 503 with Retry-After, inherits the bank's lag,
// overlap and duplicates, and can be told to answer errors (FailNext) or to
// hang (HangNext). It is safe for concurrent use.
type FakeProvider struct {
	bank  *SimBank
	opts  FakeOptions
	match func(normalised string) bool // nil: every account

	limit *simlimit.Limiter // RateLimit

	mu             sync.Mutex
	requests       int
	failN          int
	failStatus     int
	failRetryAfter time.Duration
	hangN          int
	hangFor        time.Duration
}

// NewFakeProvider returns a fake account-scan service over bank.
func NewFakeProvider(bank *SimBank, opts FakeOptions) *FakeProvider {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &FakeProvider{bank: bank, opts: opts, limit: simlimit.NewFixed(opts.RateLimit, time.Second)}
	if opts.Account != "" {
		p.match = bank.SourceWith(opts.Account, opts.SubAccounts).(simSource).match
	}
	return p
}

// FailNext makes the next n requests (after authentication and rate
// limiting) answer status, with a Retry-After of retryAfter when it is
// positive. n ≤ 0 cancels pending failures.
func (p *FakeProvider) FailNext(n, status int, retryAfter time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failN, p.failStatus, p.failRetryAfter = max(n, 0), status, retryAfter
}

// HangNext makes the next n requests (after authentication and rate
// limiting) hang for d, or until the client gives up, before being served
// normally.
func (p *FakeProvider) HangNext(n int, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hangN, p.hangFor = max(n, 0), d
}

// Requests returns how many requests the fake has received.
func (p *FakeProvider) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// ServeHTTP implements http.Handler.
func (p *FakeProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()

	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		fakeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	if p.opts.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(p.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="account-scan"`)
			fakeError(w, http.StatusUnauthorized, "invalid or missing bearer token")
			return
		}
	}

	now := p.opts.Now()
	allowed, limited := p.limit.Allow(now)
	p.mu.Lock()
	var hang, fail time.Duration = -1, -1
	failStatus := 0
	if allowed && p.hangN > 0 {
		p.hangN--
		hang = p.hangFor
	}
	if allowed && p.failN > 0 {
		p.failN--
		failStatus, fail = p.failStatus, p.failRetryAfter
	}
	p.mu.Unlock()

	if !allowed {
		p.setRetryAfter(w, now, limited)
		fakeJSON(w, http.StatusTooManyRequests, map[string]any{
			"error":   true,
			"message": fmt.Sprintf("Too many requests (limit: %d;w=1, remaining: 0, retry_after: %.3fs).", p.opts.RateLimit, limited.Seconds()),
			"code":    429001,
		})
		return
	}
	if hang >= 0 {
		t := time.NewTimer(hang)
		select {
		case <-r.Context().Done():
			t.Stop()
			return // the client gave up; nobody reads an answer
		case <-t.C:
		}
	}
	if failStatus != 0 {
		if fail > 0 {
			p.setRetryAfter(w, now, fail)
		}
		fakeError(w, failStatus, "injected failure")
		return
	}

	sinceText := r.URL.Query().Get("since")
	if sinceText == "" {
		fakeError(w, http.StatusBadRequest, "query parameter since is required")
		return
	}
	since, err := time.Parse(time.RFC3339Nano, sinceText)
	if err != nil {
		fakeError(w, http.StatusBadRequest, "since must be an RFC 3339 time")
		return
	}
	res, err := p.bank.scan(r.Context(), since, p.match)
	switch {
	case errors.Is(err, ErrOutage):
		p.setRetryAfter(w, now, time.Second)
		fakeError(w, http.StatusServiceUnavailable, "scan service unavailable, try again later")
		return
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return
	case err != nil:
		fakeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	txns := res.Transactions
	if txns == nil {
		txns = []Transaction{}
	}
	fakeJSON(w, http.StatusOK, ScanResponse{Transactions: txns, CompleteUpTo: res.CompleteUpTo})
}

// setRetryAfter writes a Retry-After header for a wait of d: whole seconds
// rounded up, or an HTTP date.
func (p *FakeProvider) setRetryAfter(w http.ResponseWriter, now time.Time, d time.Duration) {
	w.Header().Set("Retry-After", retryafter.Format(now, d, p.opts.HTTPDateRetryAfter))
}

func fakeError(w http.ResponseWriter, status int, msg string) {
	fakeJSON(w, status, map[string]any{"error": true, "message": msg})
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package bankfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bankbook/bankbook/internal/httpretry"
	"github.com/bankbook/bankbook/internal/nofollow"
	"github.com/bankbook/bankbook/internal/retryafter"
)

// Defaults of HTTPSource.
const (
	DefaultHTTPTimeout       = 30 * time.Second
	DefaultHTTPMaxAttempts   = 5
	DefaultHTTPBaseBackoff   = 500 * time.Millisecond
	DefaultHTTPMaxBackoff    = 30 * time.Second
	DefaultHTTPMaxRetryAfter = 2 * time.Minute
	// MaxResponseBytes bounds the body of a scan answer.
	MaxResponseBytes = 64 << 20
)

// ScanResponse is the JSON body of a successful account-scan answer: the
// wire contract of HTTPSource (see the package documentation).
type ScanResponse struct {
	Transactions []Transaction `json:"transactions"`
	CompleteUpTo time.Time     `json:"complete_up_to"`
}

// HTTPSource is a Source that polls an account-scan provider over HTTP:
// GET {URL}?since=<RFC 3339 UTC, nanoseconds> with Authorization: Bearer
// <Token>, answered by a ScanResponse. Zero-valued fields take the defaults
// above. A provider whose API differs gets a small translation service (or
// a Source of its own) in front of this contract.
//
// Each attempt has its own Timeout. Network errors, timeouts, 408, 429 and
// 5xx are retried with exponential backoff and full jitter, up to
// MaxAttempts attempts; a Retry-After header (delay-seconds or HTTP date) on
// a retried answer is honoured instead of the backoff. Any other status is a
// permanent *StatusError, returned at once. A 200 whose body is malformed or
// carries an invalid transaction is ErrBadResponse: nothing of it is
// returned.
type HTTPSource struct {
	// URL is the scan endpoint, http or https. A query it carries (an
	// account parameter, say) is kept. HTTPSource filters nothing: when the
	// Scanner has sub-accounts, the endpoint must be the account's feed
	// with its virtual accounts, or the transfers to them never arrive.
	URL string
	// Token is sent as a bearer token. Required.
	Token string
	// Client sends the requests; nil means http.DefaultClient. Its own
	// Timeout, if any, applies on top of Timeout; its CheckRedirect does
	// not: a redirect is never followed.
	Client *http.Client
	// Timeout bounds each attempt, reading the body included.
	Timeout time.Duration
	// MaxAttempts is how many requests one Scan sends at most.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the wait before retry n (n ≥ 1): a
	// random duration in [0, min(MaxBackoff, BaseBackoff·2^(n−1))).
	BaseBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured within a Scan. A
	// provider asking for more ends the Scan with a *WaitError (matching
	// ErrGaveUp), and Scanner.Run scans again once that wait has passed.
	MaxRetryAfter time.Duration

	// Test hooks; nil means the real thing.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64 // in [0, 1)
	now    func() time.Time
}

// Validate checks the configuration (after defaults).
func (s *HTTPSource) Validate() error {
	var errs []error
	if s.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else if u, err := url.Parse(s.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q must be an absolute http or https URL", s.URL))
	}
	if s.Token == "" {
		errs = append(errs, errors.New("token is required"))
	} else if strings.ContainsAny(s.Token, "\r\n") {
		errs = append(errs, errors.New("token must be one line"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", s.Timeout}, {"base backoff", s.BaseBackoff}, {"max backoff", s.MaxBackoff}, {"max retry-after", s.MaxRetryAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, d.v))
		}
	}
	if s.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts must not be negative, got %d", s.MaxAttempts))
	}
	if s.BaseBackoff > 0 && s.MaxBackoff > 0 && s.BaseBackoff > s.MaxBackoff {
		errs = append(errs, fmt.Errorf("base backoff %v exceeds max backoff %v", s.BaseBackoff, s.MaxBackoff))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy with every zero field set to its default.
func (s *HTTPSource) withDefaults() HTTPSource {
	c := *s
	c.Client = nofollow.Client(c.Client) // a redirect is a *StatusError, never followed
	if c.Timeout == 0 {
		c.Timeout = DefaultHTTPTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultHTTPMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultHTTPBaseBackoff
		if c.MaxBackoff > 0 {
			c.BaseBackoff = min(c.BaseBackoff, c.MaxBackoff)
		}
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(DefaultHTTPMaxBackoff, c.BaseBackoff)
	}
	if c.MaxRetryAfter == 0 {
		c.MaxRetryAfter = DefaultHTTPMaxRetryAfter
	}
	if c.jitter == nil {
		c.jitter = rand.Float64
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Scan implements Source.
func (s *HTTPSource) Scan(ctx context.Context, since time.Time) (ScanResult, error) {
	if err := s.Validate(); err != nil {
		return ScanResult{}, fmt.Errorf("http source: %w", err)
	}
	c := s.withDefaults()
	u, _ := url.Parse(c.URL) // checked by Validate
	q := u.Query()
	q.Set("since", since.UTC().Format(time.RFC3339Nano))
	u.RawQuery = q.Encode()
	endpoint := u.String()

	policy := httpretry.Policy{
		MaxAttempts:   c.MaxAttempts,
		BaseBackoff:   c.BaseBackoff,
		MaxBackoff:    c.MaxBackoff,
		MaxRetryAfter: c.MaxRetryAfter,
		Jitter:        func(ceiling time.Duration) time.Duration { return time.Duration(c.jitter() * float64(ceiling)) },
		Sleep:         c.sleep,
	}
	res, err := httpretry.Do(ctx, policy, func(ctx context.Context, _ int) (ScanResult, error) {
		res, err := c.attempt(ctx, endpoint)
		if err != nil && ctx.Err() != nil {
			return res, httpretry.Retry(err) // Do reports the context's end
		}
		return res, err
	})
	var giveUp *httpretry.GiveUpError
	if !errors.As(err, &giveUp) {
		if err != nil {
			return ScanResult{}, fmt.Errorf("scan %s: %w", c.redacted(u), err)
		}
		return res, nil
	}
	last := giveUp.Last
	switch giveUp.Reason {
	case httpretry.Canceled:
		return ScanResult{}, fmt.Errorf("scan %s: %w", c.redacted(u), ctx.Err())
	case httpretry.RetryAfterTooLong:
		return ScanResult{}, &WaitError{Wait: giveUp.Wait, Err: fmt.Errorf("scan %s: %w: the provider asks to wait %v, more than %v: %w",
			c.redacted(u), ErrGaveUp, giveUp.Wait, c.MaxRetryAfter, last)}
	case httpretry.Interrupted:
		waitErr := giveUp.Err
		if ctx.Err() != nil {
			waitErr = ctx.Err()
		}
		return ScanResult{}, fmt.Errorf("scan %s: %w (while waiting to retry after: %w)", c.redacted(u), waitErr, last)
	}
	return ScanResult{}, fmt.Errorf("scan %s: %w after %d attempts: %w", c.redacted(u), ErrGaveUp, giveUp.Attempts, last)
}

// redacted is the endpoint without its query, for error messages.
func (s *HTTPSource) redacted(u *url.URL) string {
	v := *u
	v.RawQuery = ""
	v.User = nil
	return v.String()
}

// attempt sends one request. An error worth retrying is marked with
// httpretry.Retry, or httpretry.RetryAfter when the provider said how long
// to wait.
func (s *HTTPSource) attempt(ctx context.Context, endpoint string) (ScanResult, error) {
	actx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, endpoint, nil)
	if err != nil {
		return ScanResult{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		// The client's error quotes the whole URL, and a bank's API may
		// take its key in the query.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			ue.URL = s.redacted(req.URL)
		}
		return ScanResult{}, httpretry.Retry(fmt.Errorf("request: %w", err))
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		se := &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		if !se.Temporary() {
			return ScanResult{}, se
		}
		if d, ok := retryafter.Parse(resp.Header.Get("Retry-After"), s.now()); ok {
			se.RetryAfter = d
			return ScanResult{}, httpretry.RetryAfter(se, d)
		}
		return ScanResult{}, httpretry.Retry(se)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return ScanResult{}, httpretry.Retry(fmt.Errorf("read response: %w", err))
	}
	if len(body) > MaxResponseBytes {
		return ScanResult{}, fmt.Errorf("%w: body exceeds %d bytes", ErrBadResponse, MaxResponseBytes)
	}
	return DecodeScanResponse(body)
}

// DecodeScanResponse parses and checks a ScanResponse body: complete_up_to
// is required and every transaction must pass Validate. Unknown fields are
// ignored. Any problem is ErrBadResponse, and nothing is returned.
func DecodeScanResponse(body []byte) (ScanResult, error) {
	var wire ScanResponse
	if err := json.Unmarshal(body, &wire); err != nil {
		return ScanResult{}, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if wire.CompleteUpTo.IsZero() {
		return ScanResult{}, fmt.Errorf("%w: complete_up_to is missing", ErrBadResponse)
	}
	for i := range wire.Transactions {
		t := &wire.Transactions[i]
		if err := t.Validate(); err != nil {
			return ScanResult{}, fmt.Errorf("%w: transaction %d (bank_txn_id %q): %w", ErrBadResponse, i, t.BankTxnID, err)
		}
		t.DepositedAt = t.DepositedAt.UTC()
	}
	return ScanResult{Transactions: wire.Transactions, CompleteUpTo: wire.CompleteUpTo.UTC()}, nil
}

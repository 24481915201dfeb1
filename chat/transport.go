package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bankbook/bankbook/internal/outside"
	"github.com/bankbook/bankbook/internal/retryafter"
)

// DefaultTimeout bounds one HTTP request of an adapter, response included.
const DefaultTimeout = 5 * time.Second

// maxBody bounds how much of a response body is read.
const maxBody = 4 << 20

// maxErrBody bounds how much of an error body is kept in errors.
const maxErrBody = 512

// transport makes one HTTP request at a time, without retries, and
// classifies the answers.
type transport struct {
	client    *http.Client
	timeout   time.Duration
	userAgent string
	auth      func(h http.Header)
	now       func() time.Time
}

// response is an HTTP answer. bodyErr says the body broke off after the
// status line (the request was answered; only the body is incomplete).
type response struct {
	status  int
	header  http.Header
	body    []byte
	bodyErr error
}

// do sends one request with t.timeout, and returns the answer whatever its
// status. Its error, when no answer came, matches ErrUnavailable, and also
// ErrTimeout when the request had been written (the provider may have acted
// on it); the cause (context.DeadlineExceeded, a net error) is wrapped too.
func (t *transport) do(ctx context.Context, method, rawURL string, body []byte, header http.Header) (response, error) {
	rctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var wrote atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, rawURL, rd)
	if err != nil {
		return response{}, fmt.Errorf("%w: build request: %w", ErrInvalidConfig, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", t.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if t.auth != nil {
		t.auth(req.Header)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		if wrote.Load() {
			return response{}, fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrTimeout, err)
		}
		return response{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	r := response{status: resp.StatusCode, header: resp.Header, body: data}
	if err != nil {
		r.bodyErr = fmt.Errorf("%w: %w: read %s answer (http %d): %w", ErrUnavailable, ErrTimeout, method, resp.StatusCode, err)
	}
	return r, nil
}

// success reports whether r is a 2xx answer.
func (r response) success() bool { return r.status >= 200 && r.status <= 299 }

// failure classifies a non-2xx answer: *RateLimitedError for 429,
// ErrUnavailable for 408, 409, 425 and 5xx (with ErrServerError for 5xx),
// *RejectedError otherwise (a 3xx with where it points).
func (r response) failure(now time.Time) error {
	switch {
	case r.status == http.StatusTooManyRequests:
		return &RateLimitedError{RetryAfter: retryAfterOf(r.header, r.body, now), Body: snippet(r.body)}
	case r.status >= 500 && r.status <= 599:
		return fmt.Errorf("%w: %w: http %d %s: %s", ErrUnavailable, ErrServerError, r.status, http.StatusText(r.status), snippet(r.body))
	case transientStatus(r.status):
		return fmt.Errorf("%w: http %d %s: %s", ErrUnavailable, r.status, http.StatusText(r.status), snippet(r.body))
	}
	if r.status >= 300 && r.status <= 399 {
		// Never followed (nofollow): the URL is not where the provider
		// takes requests.
		msg := "a redirect, not followed"
		if loc := r.header.Get("Location"); loc != "" {
			msg += ", to " + snippet([]byte(loc))
		}
		return &RejectedError{Status: r.status, Message: msg}
	}
	code, msg := errorBody(r.body)
	return &RejectedError{Status: r.status, Code: code, Message: msg}
}

// transientStatus reports whether an answer with this status is worth
// another try later (429 aside).
func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly:
		return true
	}
	return code >= 500 && code <= 599
}

// errorBody reads an error body: Sendbird's {"error":true,"code":400201,
// "message":"..."} or any JSON object with "code" and "message"; a body
// without a message gives its start.
func errorBody(body []byte) (code int, msg string) {
	var b struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &b) == nil {
		switch c := b.Code.(type) {
		case float64:
			if c == math.Trunc(c) && math.Abs(c) < 1<<31 {
				code = int(c)
			}
		case string:
			code, _ = strconv.Atoi(c)
		}
		if b.Message != "" {
			return code, outside.Text(b.Message, maxErrBody)
		}
	}
	return code, snippet(body)
}

// retryAfterOf is how long a 429 asks to wait: X-RateLimit-RetryAfter
// (Sendbird), else Retry-After (RFC 9110), else the "retry_after: 0.165s"
// of Sendbird's message, else DefaultRetryAfter; at most MaxRetryAfter.
func retryAfterOf(h http.Header, body []byte, now time.Time) time.Duration {
	d, ok := parseRateLimitRetryAfter(h.Get("X-RateLimit-RetryAfter"), now)
	if !ok {
		d, ok = retryafter.Parse(h.Get("Retry-After"), now)
	}
	if !ok {
		d, ok = bodyRetryAfter(body)
	}
	if !ok {
		d = DefaultRetryAfter
	}
	return min(d, MaxRetryAfter)
}

// parseRateLimitRetryAfter reads X-RateLimit-RetryAfter. Sendbird documents
// the header without its unit; its messages give the wait in seconds with a
// fraction ("retry_after: 0.069786548614502s"), so a number is seconds (a
// trailing "s" tolerated). Other services send the same header as an
// absolute Unix time, so a number of at least 1e9 is read as Unix seconds,
// and of at least 1e12 as Unix milliseconds. An HTTP date is accepted too.
func parseRateLimitRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "s")
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return retryafter.Parse(v, now)
	}
	switch {
	case math.IsNaN(f) || f < 0:
		return 0, false
	case f >= 1e12:
		return untilUnix(f/1e3, now), true
	case f >= 1e9:
		return untilUnix(f, now), true
	}
	return time.Duration(f * float64(time.Second)), true
}

// untilUnix is the wait from now until a Unix time in seconds (0 if past),
// saturating instead of overflowing.
func untilUnix(secs float64, now time.Time) time.Duration {
	wait := secs - float64(now.UnixNano())/1e9
	if wait <= 0 {
		return 0
	}
	if wait >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(wait * float64(time.Second))
}

var bodyRetryAfterRE = regexp.MustCompile(`retry_after: ?([0-9]+(?:\.[0-9]+)?)s`)

// bodyRetryAfter finds Sendbird's "retry_after: 0.165s" in a 429 body.
func bodyRetryAfter(body []byte) (time.Duration, bool) {
	m := bodyRetryAfterRE.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	// The pattern admits only decimals: ParseFloat can only overflow (+Inf).
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	if f > float64(MaxRetryAfter/time.Second) {
		return MaxRetryAfter, true
	}
	return time.Duration(f * float64(time.Second)), true
}

// snippet is the start of a body, for errors and logs.
func snippet(b []byte) string { return outside.Snippet(b, maxErrBody) }

// validateBaseURL checks an adapter's URL: absolute http(s), no query or
// fragment.
func validateBaseURL(what, raw string) error {
	if raw == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalidConfig, what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, what, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %s %q must be an absolute http or https URL", ErrInvalidConfig, what, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: %s %q must not have a query or fragment", ErrInvalidConfig, what, raw)
	}
	return nil
}

// validateToken checks a credential that goes into a header.
func validateToken(what, tok string, required bool) error {
	if tok == "" {
		if required {
			return fmt.Errorf("%w: %s is required", ErrInvalidConfig, what)
		}
		return nil
	}
	if strings.ContainsAny(tok, "\r\n") {
		return fmt.Errorf("%w: %s must be a single line", ErrInvalidConfig, what)
	}
	return nil
}

// flexID is an ID that a JSON answer may give as a string or as a number;
// anything else reads as "".
type flexID string

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (f *flexID) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		*f = flexID(n)
	}
	return nil
}

// idleConnsPerHost is how many idle connections to the provider a client
// keeps: more than the dispatchers of one process (4 by default), so that
// a send rarely pays for a new connection (a TLS handshake) after its slot,
// which the limiter's margin does not cover. Go's default keeps 2.
const idleConnsPerHost = 16

// newClient is the HTTP client of an adapter given none.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = idleConnsPerHost
	return &http.Client{Transport: t}
}

package firmbanking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bankbook/bankbook/internal/httpretry"
	"github.com/bankbook/bankbook/internal/nofollow"
	"github.com/bankbook/bankbook/internal/outside"
	"github.com/bankbook/bankbook/internal/retryafter"
)

// Client defaults, used for zero fields.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxAttempts = 5
	DefaultBaseBackoff = 200 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
)

// maxBody bounds how much of a response body is read; maxReport, of a
// report.
const (
	maxBody   = 1 << 20
	maxReport = 16 << 20
)

// maxErrBody bounds how much of an error body is kept in errors.
const maxErrBody = 512

// Client is a Provider that speaks the HTTP wire contract described in the
// package documentation. Zero fields take the defaults above; the zero HTTP
// means http.DefaultClient. A Client is safe for concurrent use and must not
// be modified while in use.
type Client struct {
	// BaseURL is the API root, e.g. "https://firmbank.example/v1". Required.
	BaseURL string
	// Token is sent as "Authorization: Bearer <Token>". Required.
	Token string
	// HTTP sends the requests. Its own Timeout, if any, also applies; its
	// CheckRedirect does not: a redirect is never followed.
	HTTP *http.Client
	// Timeout bounds one attempt, response body included.
	Timeout time.Duration
	// MaxAttempts is how many times one call is tried before it fails with
	// ErrUnavailable.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the delay before retry n (1-based):
	// a uniformly random duration in [0, min(MaxBackoff, BaseBackoff·2ⁿ⁻¹)]
	// ("full jitter"). A Retry-After header replaces it.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration

	// Test hooks; nil means the real thing.
	sleep  func(ctx context.Context, d time.Duration) error // waits between attempts
	jitter func(ceiling time.Duration) time.Duration        // picks a delay in [0, ceiling]
	now    func() time.Time                                 // resolves Retry-After dates
}

var _ Provider = (*Client)(nil)

// withDefaults returns a copy of c with zero fields filled in.
func (c *Client) withDefaults() Client {
	d := *c
	d.HTTP = nofollow.Client(d.HTTP) // a redirect is a refusal (PermanentError), never followed
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	if d.BaseBackoff == 0 {
		d.BaseBackoff = DefaultBaseBackoff
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = max(DefaultMaxBackoff, d.BaseBackoff)
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// Validate reports every problem with c (after defaults), each matching
// ErrInvalidConfig.
func (c *Client) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if d.BaseURL == "" {
		bad("base URL is required")
	} else if u, err := url.Parse(d.BaseURL); err != nil {
		bad("base URL: %v", err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("base URL %q must be an absolute http or https URL", d.BaseURL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("base URL %q must not have a query or fragment", d.BaseURL)
	}
	if d.Token == "" {
		bad("token is required")
	} else if strings.ContainsAny(d.Token, "\r\n") {
		bad("token must be a single line")
	}
	if d.Timeout < 0 {
		bad("timeout %v must not be negative", d.Timeout)
	}
	if d.MaxAttempts < 0 {
		bad("max attempts %d must not be negative", d.MaxAttempts)
	}
	if d.BaseBackoff < 0 {
		bad("base backoff %v must not be negative", d.BaseBackoff)
	}
	if d.MaxBackoff < d.BaseBackoff {
		bad("max backoff %v must not be less than base backoff %v", d.MaxBackoff, d.BaseBackoff)
	}
	return errors.Join(errs...)
}

// Send implements Provider: POST {BaseURL}/transfers with Idempotency-Key
// t.ID, retried on transient failures. Errors: ErrInvalidConfig (nothing
// sent); ErrRefused, the transfer can never be sent as it is (nothing sent):
// it matches ErrInvalidTransfer when t failed Validate, or ErrPermanent for
// a 400 answer; ErrPermanent (any other 4xx: refused, but the transfer
// itself may be fine, e.g. a wrong token, or a 422 ErrIdempotencyMismatch);
// anything else (ErrUnavailable, the context's error) means the outcome is
// unknown: the transfer may have been accepted, so retry later with the
// same ID. Every error of a Send none of whose attempts may have been
// acted on (each refused or throttled, or none made) matches ErrNotTaken
// (NotTaken).
func (c *Client) Send(ctx context.Context, t Transfer) (Result, error) {
	if err := t.Validate(); err != nil {
		return Result{}, &refusal{err}
	}
	if err := c.Validate(); err != nil {
		return Result{}, &notTaken{err}
	}
	body, err := json.Marshal(t)
	if err != nil {
		return Result{}, fmt.Errorf("firmbanking: encode transfer: %w", err)
	}
	cfg := c.withDefaults()
	var unknown bool
	res, err := cfg.do(ctx, request{
		op:      "send",
		id:      t.ID,
		method:  http.MethodPost,
		path:    "/transfers",
		body:    body,
		ok:      []int{http.StatusOK, http.StatusCreated, http.StatusAccepted},
		unknown: &unknown,
	})
	if err != nil && refuses(err) {
		if unknown {
			// An earlier attempt of this call may have been accepted
			// (a 5xx, a timeout, a lost answer): the refusal says nothing
			// of it, so the outcome is unknown, not refused.
			return Result{}, fmt.Errorf("%w: send %q: refused after an attempt whose outcome is unknown (the provider may have accepted it): %v", ErrUnavailable, t.ID, err)
		}
		return Result{}, &refusal{err}
	}
	if err != nil && !unknown {
		return Result{}, &notTaken{err}
	}
	return res, err
}

// Status implements Provider: GET {BaseURL}/transfers/{id}, retried on
// transient failures. A 404 is ErrUnknownTransfer.
func (c *Client) Status(ctx context.Context, id string) (Result, error) {
	if err := ValidateID(id); err != nil {
		return Result{}, err
	}
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	cfg := c.withDefaults()
	return cfg.do(ctx, request{
		op:       "status",
		id:       id,
		method:   http.MethodGet,
		path:     "/transfers/" + url.PathEscape(id),
		ok:       []int{http.StatusOK},
		notFound: true,
	})
}

// request is one logical call, tried up to MaxAttempts times.
type request struct {
	op, id, method, path string
	body                 []byte
	ok                   []int // success statuses
	notFound             bool  // 404 means ErrUnknownTransfer
	// unknown, if not nil, is set when an attempt ended in a way that
	// says nothing of whether the provider acted on it (an error worth
	// retrying: a 5xx, a timeout, a lost answer).
	unknown *bool
	// raw, if not nil, receives a success's body as it is (a report),
	// which must not exceed maxReport, instead of its decoded Result.
	raw *[]byte
}

// do runs r with retries. c has its defaults set.
func (c Client) do(ctx context.Context, r request) (Result, error) {
	policy := httpretry.Policy{
		MaxAttempts:        c.MaxAttempts,
		BaseBackoff:        c.BaseBackoff,
		MaxBackoff:         c.MaxBackoff,
		StopBeforeDeadline: true,
		Jitter:             c.jitter,
		Sleep:              c.sleep,
	}
	res, err := httpretry.Do(ctx, policy, func(ctx context.Context, _ int) (Result, error) {
		res, err := c.attempt(ctx, r)
		if r.unknown != nil && err != nil && httpretry.IsRetry(err) && !errors.Is(err, errNotProcessed) {
			*r.unknown = true
		}
		return res, err
	})
	var giveUp *httpretry.GiveUpError
	if !errors.As(err, &giveUp) {
		if err != nil {
			return Result{}, fmt.Errorf("%w (%s %q)", err, r.op, r.id)
		}
		return res, nil
	}
	last := giveUp.Last
	switch giveUp.Reason {
	case httpretry.Canceled, httpretry.Interrupted:
		return Result{}, fmt.Errorf("firmbanking: %s %q: %w (last error: %w)", r.op, r.id, giveUp.Err, last)
	case httpretry.PastDeadline:
		err := fmt.Errorf("%w: %s %q: next attempt in %v is past the context deadline: %w", ErrUnavailable, r.op, r.id, giveUp.Wait, last)
		if giveUp.Asked {
			return Result{}, &ThrottledError{Wait: giveUp.Wait, Err: err}
		}
		return Result{}, err
	}
	return Result{}, fmt.Errorf("%w: %s %q: gave up after %d attempts: %w", ErrUnavailable, r.op, r.id, giveUp.Attempts, last)
}

// attempt makes one HTTP request. An error marked by httpretry.Retry or
// httpretry.RetryAfter is worth retrying; any other error is final.
func (c Client) attempt(ctx context.Context, r request) (Result, error) {
	actx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, strings.TrimSuffix(c.BaseURL, "/")+r.path, body)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if r.raw != nil {
		req.Header.Set("Accept", "text/csv")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", "bankbook-firmbanking")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", r.id)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Result{}, httpretry.Retry(err)
	}
	defer resp.Body.Close()
	limit := int64(maxBody)
	if r.raw != nil {
		limit = maxReport + 1
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		// The provider may have acted on the request; only the answer is lost.
		return Result{}, httpretry.Retry(fmt.Errorf("read response (http %d): %w", resp.StatusCode, err))
	}

	code := resp.StatusCode
	switch {
	case slices.Contains(r.ok, code) && r.raw != nil:
		if len(data) > maxReport {
			return Result{}, fmt.Errorf("%w: the answer is larger than %d bytes", ErrPermanent, maxReport)
		}
		*r.raw = data
		return Result{}, nil
	case slices.Contains(r.ok, code):
		res, err := decodeResult(data, r.id)
		if err != nil {
			// A garbled success (say, a truncating proxy): asking again is safe.
			return Result{}, httpretry.Retry(fmt.Errorf("http %d: %w", code, err))
		}
		return res, nil
	case code == http.StatusNotFound && r.notFound:
		return Result{}, ErrUnknownTransfer
	case retryable(code):
		var err error = &answerError{status: code, body: snippet(data)}
		if code == http.StatusTooManyRequests {
			// Throttled: the provider did not act on the request.
			err = fmt.Errorf("%w: %w", errNotProcessed, err)
		}
		// Retry-After means "come back then" on a 429 or a 503 (RFC 9110);
		// other answers are retried with backoff.
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now()); ok {
				return Result{}, httpretry.RetryAfter(err, d)
			}
		}
		return Result{}, httpretry.Retry(err)
	default:
		return Result{}, &PermanentError{Status: code, Body: snippet(data)}
	}
}

// errNotProcessed marks an attempt the provider answered without acting on
// it (429): unlike a 5xx or a timeout, it says nothing may have been sent.
var errNotProcessed = errors.New("not processed")

// retryable reports whether an HTTP status is worth another attempt.
func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500 && code <= 599
}

// decodeResult parses a success body about transfer id.
func decodeResult(data []byte, id string) (Result, error) {
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		return Result{}, fmt.Errorf("decode result: %w", err)
	}
	if err := res.check(id); err != nil {
		return Result{}, fmt.Errorf("decode result: %w", err)
	}
	// The provider's own words are recorded and shown as they are, but no
	// longer than maxProviderText and without control characters.
	res.ProviderRef, res.Reason = outside.Text(res.ProviderRef, maxProviderText), outside.Text(res.Reason, maxProviderText)
	return res, nil
}

// maxProviderText is the most of a provider's reference or failure reason
// the engine keeps, in bytes.
const maxProviderText = 256

// parseRetryAfter is retryafter.Parse, capped at a day.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	d, ok := retryafter.Parse(v, now)
	return min(d, 24*time.Hour), ok
}

func snippet(b []byte) string { return outside.Snippet(b, maxErrBody) }

package chat

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// answer is what a scripted provider answers to every request.
type answer struct {
	status int
	header map[string]string
	body   string
}

// scripted serves a over real loopback HTTP.
func scripted(t *testing.T, a answer) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// adapters returns both adapters pointed at url.
func adapters(t *testing.T, url string) []Provider {
	t.Helper()
	sb, err := NewSendbird(SendbirdConfig{URL: url, Token: "t", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wh, err := NewWebhook(WebhookConfig{URL: url, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return []Provider{sb, wh}
}

func TestErrorClassification(t *testing.T) {
	const limited = `{"error":true,"message":"Too many requests (scope: user, limit: 5;w=1, remaining: 0, retry_after: 0.165s, reset: 1.965s).","code":500910}`
	type want struct {
		ok          bool
		ref         string
		retryAfter  time.Duration // a *RateLimitedError
		rejected    *RejectedError
		unavailable bool
		inDoubt     bool // ErrServerError: the message may have been stored
	}
	tests := []struct {
		name string
		a    answer
		want want
	}{
		{"200 with a message", answer{200, nil, `{"message_id":42,"id":42}`}, want{ok: true, ref: "42"}},
		{"200 garbled: stored all the same", answer{200, nil, `<html>`}, want{ok: true}},
		{"201 empty", answer{201, nil, ``}, want{ok: true}},
		{"429 X-RateLimit-RetryAfter", answer{429, map[string]string{"X-RateLimit-RetryAfter": "0.165"}, limited}, want{retryAfter: 165 * time.Millisecond}},
		{"429 Retry-After", answer{429, map[string]string{"Retry-After": "2"}, `{}`}, want{retryAfter: 2 * time.Second}},
		{"429 both: the precise one wins", answer{429, map[string]string{"X-RateLimit-RetryAfter": "0.5", "Retry-After": "1"}, limited}, want{retryAfter: 500 * time.Millisecond}},
		{"429 the body only", answer{429, nil, limited}, want{retryAfter: 165 * time.Millisecond}},
		{"429 nothing", answer{429, nil, `Too Many Requests`}, want{retryAfter: DefaultRetryAfter}},
		{"429 unreadable header, Retry-After", answer{429, map[string]string{"X-RateLimit-RetryAfter": "soon", "Retry-After": "3"}, ``}, want{retryAfter: 3 * time.Second}},
		{"429 absurd wait capped", answer{429, map[string]string{"X-RateLimit-RetryAfter": "86400"}, ``}, want{retryAfter: MaxRetryAfter}},
		{"400 Sendbird error", answer{400, nil, `{"error":true,"message":"Invalid value: \"user_id\".","code":400111}`},
			want{rejected: &RejectedError{Status: 400, Code: 400111, Message: `Invalid value: "user_id".`}}},
		{"401 wrong token", answer{401, nil, `{"error":true,"message":"Invalid value: \"Api-Token\".","code":400401}`},
			want{rejected: &RejectedError{Status: 401, Code: 400401, Message: `Invalid value: "Api-Token".`}}},
		{"403 string code", answer{403, nil, `{"code":"403100","message":"forbidden"}`}, want{rejected: &RejectedError{Status: 403, Code: 403100, Message: "forbidden"}}},
		{"404 plain text", answer{404, nil, "no such hook\n"}, want{rejected: &RejectedError{Status: 404, Message: "no such hook"}}},
		{"422 no body", answer{422, nil, ``}, want{rejected: &RejectedError{Status: 422}}},
		{"500", answer{500, nil, `{"error":true,"message":"Internal server error.","code":500901}`}, want{unavailable: true, inDoubt: true}},
		{"502", answer{502, nil, `bad gateway`}, want{unavailable: true, inDoubt: true}},
		{"503", answer{503, map[string]string{"Retry-After": "5"}, ``}, want{unavailable: true, inDoubt: true}},
		{"504", answer{504, nil, `gateway timeout`}, want{unavailable: true, inDoubt: true}},
		{"408", answer{408, nil, ``}, want{unavailable: true}},
		{"409", answer{409, nil, `{"error":"in_progress"}`}, want{unavailable: true}},
		{"425", answer{425, nil, ``}, want{unavailable: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := scripted(t, tc.a)
			for _, p := range adapters(t, srv.URL) {
				r, err := p.Send(context.Background(), message("ntf_1", "store_1"))
				w := tc.want
				switch {
				case w.ok:
					if err != nil || r.Ref != w.ref {
						t.Fatalf("%s: Send = %+v, %v; want ref %q", p.Name(), r, err, w.ref)
					}
				case w.retryAfter != 0:
					rl, ok := errors.AsType[*RateLimitedError](err)
					if !ok || rl.RetryAfter != w.retryAfter || !errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable) || Permanent(err) {
						t.Fatalf("%s: Send = %v, want a *RateLimitedError after %v", p.Name(), err, w.retryAfter)
					}
				case w.rejected != nil:
					rej, ok := errors.AsType[*RejectedError](err)
					if !ok || *rej != *w.rejected || !errors.Is(err, ErrRejected) || !Permanent(err) {
						t.Fatalf("%s: Send = %v, want %+v", p.Name(), err, w.rejected)
					}
				case w.unavailable:
					if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || Permanent(err) ||
						errors.Is(err, ErrServerError) != w.inDoubt || MayHaveStored(err) != w.inDoubt {
						t.Fatalf("%s: Send = %v, want ErrUnavailable without ErrTimeout, in doubt %v", p.Name(), err, w.inDoubt)
					}
				}
			}
		})
	}
}

// TestConnectionErrors: a request that never left is not in doubt; one the
// provider read and then dropped is.
func TestConnectionErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close()
		for _, p := range adapters(t, url) {
			_, err := p.Send(context.Background(), message("ntf_1", "store_1"))
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) || MayHaveStored(err) {
				t.Fatalf("%s: Send = %v, want ErrUnavailable without ErrTimeout", p.Name(), err)
			}
		}
	})
	t.Run("dropped after the request was read", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(srv.Close)
		for _, p := range adapters(t, srv.URL) {
			_, err := p.Send(context.Background(), message("ntf_1", "store_1"))
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeout) || !MayHaveStored(err) {
				t.Fatalf("%s: Send = %v, want ErrUnavailable and ErrTimeout", p.Name(), err)
			}
		}
	})
}

func TestRetryAfterOf(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		body   string
		want   time.Duration
	}{
		{"seconds with a fraction", map[string]string{"X-RateLimit-RetryAfter": "0.165"}, "", 165 * time.Millisecond},
		{"seconds with an s", map[string]string{"X-RateLimit-RetryAfter": "2s"}, "", 2 * time.Second},
		{"zero", map[string]string{"X-RateLimit-RetryAfter": "0"}, "", 0},
		{"Unix seconds", map[string]string{"X-RateLimit-RetryAfter": "1773478803"}, "", 3 * time.Second},
		{"Unix seconds past", map[string]string{"X-RateLimit-RetryAfter": "1773478700"}, "", 0},
		{"Unix milliseconds", map[string]string{"X-RateLimit-RetryAfter": "1773478800250"}, "", 250 * time.Millisecond},
		{"an HTTP date", map[string]string{"X-RateLimit-RetryAfter": "Sat, 14 Mar 2026 09:00:04 GMT"}, "", 4 * time.Second},
		{"negative: next source", map[string]string{"X-RateLimit-RetryAfter": "-1", "Retry-After": "7"}, "", 7 * time.Second},
		{"Retry-After date", map[string]string{"Retry-After": "Sat, 14 Mar 2026 09:00:05 GMT"}, "", 5 * time.Second},
		{"body", nil, `{"message":"Too many requests (scope: app, limit: 10;w=1, remaining: 0, retry_after: 0.069786548614502s, reset: 0.96978664398193s)"}`, 69786548 * time.Nanosecond},
		{"body too long", nil, `retry_after: 99999999999999999999999999999999999999999999s`, MaxRetryAfter},
		{"nothing", nil, `{}`, DefaultRetryAfter},
		{"infinite", map[string]string{"X-RateLimit-RetryAfter": "Inf"}, "", MaxRetryAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := retryAfterOf(h, []byte(tc.body), now); got != tc.want {
				t.Fatalf("retryAfterOf = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzRetryAfterOf: any header or body gives a wait in [0, MaxRetryAfter].
func FuzzRetryAfterOf(f *testing.F) {
	f.Add("0.165", "", "")
	f.Add("1773478803", "2", "retry_after: 1.5s")
	f.Add("NaN", "Sat, 14 Mar 2026 09:00:05 GMT", "")
	f.Add("-0", "-3", "retry_after: .5s")
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, x, ra, body string) {
		h := http.Header{"X-Ratelimit-Retryafter": {x}, "Retry-After": {ra}}
		if d := retryAfterOf(h, []byte(body), now); d < 0 || d > MaxRetryAfter {
			t.Fatalf("retryAfterOf(%q, %q, %q) = %v", x, ra, body, d)
		}
	})
}

func TestPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&RateLimitedError{RetryAfter: time.Second}, false},
		{ErrUnavailable, false},
		{errors.Join(ErrUnavailable, ErrTimeout), false},
		{&RejectedError{Status: 400}, true},
		{ErrInvalidMessage, true},
		{ErrInvalidConfig, true},
	}
	for _, tc := range tests {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRedirectsAreNotFollowed: a provider URL that answers with a redirect
// (an http:// URL moved to https://, a path without its trailing slash)
// is not followed. Followed, a 301, 302 or 303 turns the POST into a GET
// without the message, whose 200 read as the message delivered: it was
// recorded sent and never arrived. And the token went to wherever the
// redirect pointed. The answer is a refusal that names the status and
// where it points, but for a webhook receiver's 303 See Other, which says
// it took the POST and points to its result: the message is taken, and
// the result not fetched.
func TestRedirectsAreNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var moved atomic.Int64
			mux := http.NewServeMux()
			mux.HandleFunc("/moved/", func(w http.ResponseWriter, r *http.Request) {
				moved.Add(1)
				_, _ = w.Write([]byte(`{"messages":[],"id":"1"}`))
			})
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/moved"+r.URL.Path, status)
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			for _, p := range adapters(t, srv.URL) {
				_, err := p.Send(context.Background(), message("ntf_1", "store_1"))
				if p.Name() == "webhook" && status == http.StatusSeeOther {
					if err != nil {
						t.Fatalf("webhook: a 303 after the POST: %v, want the message taken", err)
					}
					continue
				}
				rej, ok := errors.AsType[*RejectedError](err)
				if !ok || rej.Status != status || !strings.Contains(rej.Message, "/moved/") || !Permanent(err) || MayHaveStored(err) {
					t.Fatalf("%s: Send = %v, want a refusal with status %d naming where it points", p.Name(), err, status)
				}
			}
			sb := adapters(t, srv.URL)[0]
			if _, _, err := sb.Delivered(context.Background(), message("ntf_1", "store_1"), time.Now()); err == nil {
				t.Fatalf("%s: Delivered through a redirect answered, want an error", sb.Name())
			}
			if n := moved.Load(); n != 0 {
				t.Fatalf("the redirect was followed %d time(s)", n)
			}
		})
	}
}

// TestProviderTextIsMadeSafe: what a provider writes in an error (its
// message, its body) is kept and shown (a notification's last_error, the
// CLI, the logs) without control characters: a terminal escape in it does
// not reach an operator's terminal.
func TestProviderTextIsMadeSafe(t *testing.T) {
	for _, body := range []string{
		`{"error":true,"code":400201,"message":"bad\u001b]0;owned\u0007channel"}`,
		"bad\x1b]0;owned\x07channel",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(body))
		}))
		for _, p := range adapters(t, srv.URL) {
			_, err := p.Send(context.Background(), message("ntf_1", "store_1"))
			if err == nil || strings.ContainsAny(err.Error(), "\x1b\x07") || !strings.Contains(err.Error(), "owned") {
				t.Errorf("%s: %q, want the provider's words without control characters", p.Name(), err)
			}
		}
		srv.Close()
	}
}

package firmbanking

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/bankbook/bankbook/internal/httpretry"
	"github.com/bankbook/bankbook/internal/retryafter"
)

// Webhook delivery by the fake, as real providers deliver: at least once,
// again after no answer or an answer the Client would retry (retryable)
// with a growing wait (or the receiver's Retry-After), and given up on any
// other. A 409 is given up too: WebhookReceiver answers it to a result
// that contradicts the record, which is mended by hand, not by delivering
// it again.
const (
	fakeHookFirstRetry = time.Second
	fakeHookMaxRetry   = time.Hour
	fakeHookTimeout    = 10 * time.Second
)

// hookState is the delivery of one transfer's webhook.
type hookState struct {
	delivered bool
	gaveUp    bool
	attempts  int       // failed ones
	next      time.Time // wall clock: not before
}

// WebhookStats counts the fake's webhook deliveries.
type WebhookStats struct {
	// Delivered counts the events a receiver answered 2xx, once each.
	Delivered int
	// Posts counts every POST made, repeats and failures included.
	Posts int
	// Failed counts posts that failed (a non-2xx answer or no answer).
	Failed int
	// GivenUp counts the events the fake stopped delivering (4xx).
	GivenUp int
}

// SetWebhook makes the fake post signed webhooks to url, with secret, from
// now on (FakeOptions.WebhookURL and WebhookSecret).
func (s *FakeService) SetWebhook(url, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.WebhookURL, s.opts.WebhookSecret = url, secret
}

// WebhookStats reports the deliveries so far.
func (s *FakeService) WebhookStats() WebhookStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hookStats
}

// DeliverWebhooks posts, once, the webhook of every transfer that is final
// on the fake's clock and not delivered yet, unless a failed delivery of it
// asked to wait longer; with WebhookRepeat it posts each delivered event
// that many times more. It returns how many were delivered now. Without a
// WebhookURL it does nothing.
func (s *FakeService) DeliverWebhooks(ctx context.Context) int {
	type due struct {
		id   string
		body []byte
		url  string
		key  []byte
	}
	var todo []due
	s.mu.Lock()
	url, secret, repeat := s.opts.WebhookURL, []byte(s.opts.WebhookSecret), s.opts.WebhookRepeat
	wall := time.Now()
	for _, id := range s.order {
		ft := s.transfers[id]
		res := s.resultLocked(ft)
		h := s.hooks[id]
		if url == "" || !res.Status.Final() || h != nil && (h.delivered || h.gaveUp || wall.Before(h.next)) {
			continue
		}
		typ := EventTransferSettled
		if res.Status == StatusFailed {
			typ = EventTransferFailed
		}
		body, _ := json.Marshal(WebhookEvent{EventID: "evt_" + ft.ref, Type: typ, CreatedAt: ft.accepted.Add(s.opts.SettleAfter).UTC(), Transfer: res})
		todo = append(todo, due{id: id, body: body, url: url, key: secret})
	}
	s.mu.Unlock()

	delivered := 0
	for _, d := range todo {
		code, wait := s.postHook(ctx, d.url, d.key, d.body)
		s.mu.Lock()
		h := s.hooks[d.id]
		if h == nil {
			h = &hookState{}
			s.hooks[d.id] = h
		}
		switch {
		case code >= 200 && code < 300:
			h.delivered = true
			s.hookStats.Delivered++
			delivered++
		case code == 0 || retryable(code) && code != http.StatusConflict:
			h.next = time.Now().Add(max(wait, httpretry.ExpDelay(fakeHookFirstRetry, fakeHookMaxRetry, 2, h.attempts)))
			h.attempts++
		default:
			h.gaveUp = true
			s.hookStats.GivenUp++
		}
		s.mu.Unlock()
		if code >= 200 && code < 300 {
			for range repeat {
				s.postHook(ctx, d.url, d.key, d.body)
			}
		}
	}
	return delivered
}

// postHook posts one signed webhook, and returns the answer's status (0
// without one) and the Retry-After it asked for.
func (s *FakeService) postHook(ctx context.Context, url string, secret, body []byte) (int, time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, fakeHookTimeout)
	defer cancel()
	s.mu.Lock()
	s.hookStats.Posts++
	s.mu.Unlock()
	code, wait := 0, time.Duration(0)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(SignatureHeader, SignWebhook(secret, time.Now(), body))
		var resp *http.Response
		if resp, err = http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			resp.Body.Close()
			code = resp.StatusCode
			wait, _ = retryafter.Parse(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	if code < 200 || code >= 300 {
		s.mu.Lock()
		s.hookStats.Failed++
		s.mu.Unlock()
	}
	return code, wait
}

// RunWebhooks calls DeliverWebhooks every interval until ctx ends.
func (s *FakeService) RunWebhooks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.DeliverWebhooks(ctx)
		}
	}
}

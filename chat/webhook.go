package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bankbook/bankbook/internal/nofollow"
)

// WebhookConfig configures a webhook adapter. Zero fields take the defaults
// documented on them.
type WebhookConfig struct {
	// URL receives the messages (POST). Required.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Timeout bounds each HTTP request, response included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client of the adapter's own.
	// Its CheckRedirect does not apply: a redirect is never followed.
	Client *http.Client
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Client == nil {
		c.Client = newClient()
	}
	return c
}

// Validate reports every problem with c (after defaults), each matching
// ErrInvalidConfig.
func (c WebhookConfig) Validate() error {
	d := c.withDefaults()
	var errs []error
	if err := validateBaseURL("webhook URL", d.URL); err != nil {
		errs = append(errs, err)
	}
	if err := validateToken("webhook token", d.Token, false); err != nil {
		errs = append(errs, err)
	}
	if d.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: timeout %v must not be negative", ErrInvalidConfig, d.Timeout))
	}
	return errors.Join(errs...)
}

// Webhook is a Provider that POSTs each message as JSON to one URL:
//
//	POST {URL}
//	Idempotency-Key: <notification id>
//	Authorization: Bearer <token>          (when a token is set)
//	Content-Type: application/json; charset=utf-8
//
//	{"notification_id":"ntf_…","kind":"bill_issued","recipient":"store:st_1",
//	 "message":"[청구서] …","data":{"amount":"150000","notification_id":"ntf_…"}}
//
// Any 2xx is delivered; a JSON answer's "id" (or "message_id"), if any, is
// the Receipt's Ref. Other answers are classified as for Sendbird (429 with
// X-RateLimit-RetryAfter or Retry-After, 408/409/425/5xx transient, other
// 4xx refused). A receiver cannot be asked what it got, so Delivered answers
// ErrCannotCheck and a message in doubt is sent again: receivers must
// dedupe on the Idempotency-Key (the same in every repeat). It is safe for
// concurrent use.
type Webhook struct {
	cfg WebhookConfig
	t   transport
}

var _ Provider = (*Webhook)(nil)

// NewWebhook returns a webhook adapter, or an error matching
// ErrInvalidConfig.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	token := cfg.Token
	return &Webhook{cfg: cfg, t: transport{
		client:    nofollow.Client(cfg.Client),
		timeout:   cfg.Timeout,
		userAgent: "bankbook-chat",
		auth: func(h http.Header) {
			if token != "" {
				h.Set("Authorization", "Bearer "+token)
			}
		},
		now: time.Now,
	}}, nil
}

// Name implements Provider: "webhook".
func (w *Webhook) Name() string { return "webhook" }

// WebhookPayload is the JSON body a Webhook posts.
type WebhookPayload struct {
	NotificationID string            `json:"notification_id"`
	Kind           string            `json:"kind"`
	Recipient      string            `json:"recipient"`
	Message        string            `json:"message"`
	Data           map[string]string `json:"data"`
}

// Send implements Provider: one POST to the URL.
func (w *Webhook) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := m.Validate(); err != nil {
		return Receipt{}, err
	}
	body, err := json.Marshal(WebhookPayload{
		NotificationID: m.ID,
		Kind:           m.Kind,
		Recipient:      m.Recipient,
		Message:        m.Text,
		Data:           m.data(),
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("chat: encode message %q: %w", m.ID, err)
	}
	resp, err := w.t.do(ctx, http.MethodPost, w.cfg.URL, body, http.Header{"Idempotency-Key": {m.ID}})
	if err != nil {
		return Receipt{}, fmt.Errorf("send %q to %q: %w", m.ID, m.Recipient, err)
	}
	if resp.status == http.StatusSeeOther {
		// The receiver took the POST and points to its result (RFC 9110
		// 15.4.4), which is not fetched: the message is taken. Any other
		// redirect is a refusal (failure): a 301, 307 or 308 says the
		// message went nowhere, and a 302 cannot tell.
		return Receipt{}, nil
	}
	if !resp.success() {
		return Receipt{}, fmt.Errorf("send %q to %q: %w", m.ID, m.Recipient, resp.failure(w.t.now()))
	}
	var out struct {
		ID        flexID `json:"id"`
		MessageID flexID `json:"message_id"`
	}
	if resp.bodyErr != nil || json.Unmarshal(resp.body, &out) != nil {
		return Receipt{}, nil
	}
	if out.ID != "" {
		return Receipt{Ref: string(out.ID)}, nil
	}
	return Receipt{Ref: string(out.MessageID)}, nil
}

// Delivered implements Provider: a webhook cannot be asked, so always
// ErrCannotCheck (after checking m).
func (w *Webhook) Delivered(_ context.Context, m Message, _ time.Time) (Receipt, bool, error) {
	if err := m.Validate(); err != nil {
		return Receipt{}, false, err
	}
	return Receipt{}, false, fmt.Errorf("%w: %q: a webhook receiver cannot be asked; it dedupes on the Idempotency-Key", ErrCannotCheck, m.ID)
}

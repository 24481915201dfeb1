package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bankbook/bankbook/internal/nofollow"
)

// DefaultSenderID is the Sendbird user_id messages are sent as.
const DefaultSenderID = "bankbook"

// SendbirdConfig configures a Sendbird adapter. Zero fields take the
// defaults documented on them.
type SendbirdConfig struct {
	// URL is the API root, without /v3: "https://api-{application_id}.sendbird.com",
	// or a simulator's "http://127.0.0.1:8090". Required.
	URL string
	// Token is the application's API token, sent as the Api-Token header.
	// Required.
	Token string
	// SenderID is the user_id the messages are sent as, and the member of
	// the channels the adapter creates. The user must exist in the
	// application (the adapter creates no users). Default DefaultSenderID.
	SenderID string
	// Timeout bounds each HTTP request, response included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client of the adapter's own.
	// Its own Timeout, if any, also applies; its CheckRedirect does not:
	// a redirect is never followed.
	Client *http.Client
	// ChannelURL maps a recipient to its channel_url. nil means the
	// recipient itself, as API.md names channels; use SafeChannelURL against
	// the real service, whose channel creation refuses a colon.
	ChannelURL func(recipient string) (string, error)
}

func (c SendbirdConfig) withDefaults() SendbirdConfig {
	if c.SenderID == "" {
		c.SenderID = DefaultSenderID
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Client == nil {
		c.Client = newClient()
	}
	if c.ChannelURL == nil {
		c.ChannelURL = sameChannel
	}
	c.URL = strings.TrimSuffix(c.URL, "/")
	return c
}

// Validate reports every problem with c (after defaults), each matching
// ErrInvalidConfig.
func (c SendbirdConfig) Validate() error {
	d := c.withDefaults()
	var errs []error
	if err := validateBaseURL("sendbird URL", d.URL); err != nil {
		errs = append(errs, err)
	} else if strings.HasSuffix(d.URL, "/v3") {
		errs = append(errs, fmt.Errorf("%w: sendbird URL %q: give the root, without /v3", ErrInvalidConfig, c.URL))
	}
	if err := validateToken("sendbird API token", d.Token, true); err != nil {
		errs = append(errs, err)
	}
	if strings.ContainsAny(d.SenderID, "\r\n") {
		errs = append(errs, fmt.Errorf("%w: sender ID must be a single line", ErrInvalidConfig))
	}
	if d.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: timeout %v must not be negative", ErrInvalidConfig, d.Timeout))
	}
	return errors.Join(errs...)
}

// Sendbird is a Provider that speaks Sendbird's Platform API (v3), or a
// compatible service such as Sim. It is safe for concurrent use.
type Sendbird struct {
	cfg SendbirdConfig
	t   transport
	// maxPages bounds the pages of messages Delivered reads.
	maxPages int
}

var _ Provider = (*Sendbird)(nil)

// deliveredPage is how many messages Delivered asks for at a time: the
// most Sendbird's next_limit allows.
const deliveredPage = 200

// deliveredPages is how many pages Delivered reads before giving up with
// ErrCannotCheck.
const deliveredPages = 5

// NewSendbird returns a Sendbird adapter, or an error matching
// ErrInvalidConfig.
func NewSendbird(cfg SendbirdConfig) (*Sendbird, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	token := cfg.Token
	return &Sendbird{
		cfg: cfg,
		t: transport{
			client:    nofollow.Client(cfg.Client),
			timeout:   cfg.Timeout,
			userAgent: "bankbook-chat",
			auth:      func(h http.Header) { h.Set("Api-Token", token) },
			now:       time.Now,
		},
		maxPages: deliveredPages,
	}, nil
}

// Name implements Provider: "sendbird".
func (s *Sendbird) Name() string { return "sendbird" }

// sendbirdMessage is the body of "send a message" (a text message).
type sendbirdMessage struct {
	MessageType string `json:"message_type"`
	UserID      string `json:"user_id"`
	Message     string `json:"message"`
	CustomType  string `json:"custom_type,omitempty"`
	Data        string `json:"data"`
}

// sendbirdChannel is the body of "create a group channel".
type sendbirdChannel struct {
	ChannelURL string   `json:"channel_url"`
	Name       string   `json:"name"`
	UserIDs    []string `json:"user_ids"`
}

// sendbirdMessageOut is the part of a message object the adapter reads.
type sendbirdMessageOut struct {
	MessageID flexID `json:"message_id"`
	CreatedAt int64  `json:"created_at"`
	Data      string `json:"data"`
}

// Send implements Provider: POST {URL}/v3/group_channels/{channel_url}/messages.
// When the channel does not exist (HTTP 400, code 400201) it creates it
// (POST {URL}/v3/group_channels, the sender as its only member; a channel
// that meanwhile appeared, code 400202, will do) and answers
// ErrChannelCreated: the message was not stored, and the caller sends it
// again in a slot of its own, so a provider that counts the refused send
// too is never asked twice in one slot. No retries.
func (s *Sendbird) Send(ctx context.Context, m Message) (Receipt, error) {
	if err := m.Validate(); err != nil {
		return Receipt{}, err
	}
	channel, err := s.cfg.ChannelURL(m.Recipient)
	if err != nil {
		return Receipt{}, err
	}
	body, err := json.Marshal(sendbirdMessage{
		MessageType: "MESG",
		UserID:      s.cfg.SenderID,
		Message:     m.Text,
		CustomType:  m.Kind,
		Data:        m.dataJSON(),
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("chat: encode message %q: %w", m.ID, err)
	}
	rec, err := s.post(ctx, channel, body)
	if rej, ok := errors.AsType[*RejectedError](err); ok && rej.Code == CodeResourceNotFound {
		if err := s.createChannel(ctx, channel, m.Recipient); err != nil {
			return Receipt{}, fmt.Errorf("send %q: create channel %q: %w", m.ID, channel, err)
		}
		return Receipt{}, fmt.Errorf("send %q: %w: %q", m.ID, ErrChannelCreated, channel)
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("send %q to %q: %w", m.ID, channel, err)
	}
	return rec, nil
}

// post sends one message request.
func (s *Sendbird) post(ctx context.Context, channel string, body []byte) (Receipt, error) {
	resp, err := s.t.do(ctx, http.MethodPost, s.messagesURL(channel), body, nil)
	if err != nil {
		return Receipt{}, err
	}
	if !resp.success() {
		return Receipt{}, resp.failure(s.t.now())
	}
	// A 2xx is a stored message, whatever its body says: a garbled or
	// broken body only loses the message_id.
	var out sendbirdMessageOut
	if resp.bodyErr == nil && json.Unmarshal(resp.body, &out) == nil {
		return Receipt{Ref: string(out.MessageID)}, nil
	}
	return Receipt{}, nil
}

// createChannel creates the group channel for a recipient.
func (s *Sendbird) createChannel(ctx context.Context, channel, recipient string) error {
	body, err := json.Marshal(sendbirdChannel{ChannelURL: channel, Name: recipient, UserIDs: []string{s.cfg.SenderID}})
	if err != nil {
		return fmt.Errorf("chat: encode channel: %w", err)
	}
	resp, err := s.t.do(ctx, http.MethodPost, s.cfg.URL+"/v3/group_channels", body, nil)
	if err != nil {
		return err
	}
	if resp.success() {
		return nil
	}
	err = resp.failure(s.t.now())
	if rej, ok := errors.AsType[*RejectedError](err); ok && rej.Code == CodeResourceAlreadyExists {
		return nil
	}
	return err
}

// Delivered implements Provider: it lists the channel's messages from
// since (GET {URL}/v3/group_channels/{channel_url}/messages?message_ts=
// <since, Unix ms>&prev_limit=0&next_limit=200&include=true, then page by
// page from the last message_id) and looks for a data.notification_id equal
// to m.ID. A channel that does not exist (400201) holds no message: false.
// After 5 full pages (1,000 messages) without it: ErrCannotCheck.
func (s *Sendbird) Delivered(ctx context.Context, m Message, since time.Time) (Receipt, bool, error) {
	if err := m.Validate(); err != nil {
		return Receipt{}, false, err
	}
	channel, err := s.cfg.ChannelURL(m.Recipient)
	if err != nil {
		return Receipt{}, false, err
	}
	q := url.Values{
		"message_ts": {strconv.FormatInt(max(since.UnixMilli(), 0), 10)},
		"prev_limit": {"0"},
		"next_limit": {strconv.Itoa(deliveredPage)},
		"include":    {"true"},
	}
	for range s.maxPages {
		page, err := s.list(ctx, channel, q)
		if rej, ok := errors.AsType[*RejectedError](err); ok && rej.Code == CodeResourceNotFound {
			return Receipt{}, false, nil
		}
		if err != nil {
			return Receipt{}, false, fmt.Errorf("check %q in %q: %w", m.ID, channel, err)
		}
		for _, msg := range page {
			if notificationID(msg.Data) == m.ID {
				return Receipt{Ref: string(msg.MessageID)}, true, nil
			}
		}
		if len(page) < deliveredPage {
			return Receipt{}, false, nil
		}
		q = url.Values{
			"message_id": {string(page[len(page)-1].MessageID)},
			"prev_limit": {"0"},
			"next_limit": {strconv.Itoa(deliveredPage)},
			"include":    {"false"},
		}
	}
	return Receipt{}, false, fmt.Errorf("%w: %q: more than %d messages in %q since %s",
		ErrCannotCheck, m.ID, s.maxPages*deliveredPage, channel, since.UTC().Format(time.RFC3339Nano))
}

// list reads one page of a channel's messages.
func (s *Sendbird) list(ctx context.Context, channel string, q url.Values) ([]sendbirdMessageOut, error) {
	resp, err := s.t.do(ctx, http.MethodGet, s.messagesURL(channel)+"?"+q.Encode(), nil, nil)
	if err != nil {
		return nil, err
	}
	if !resp.success() {
		return nil, resp.failure(s.t.now())
	}
	if resp.bodyErr != nil {
		return nil, resp.bodyErr
	}
	var out struct {
		Messages []sendbirdMessageOut `json:"messages"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("%w: decode messages: %w", ErrUnavailable, err)
	}
	return out.Messages, nil
}

func (s *Sendbird) messagesURL(channel string) string {
	return s.cfg.URL + "/v3/group_channels/" + url.PathEscape(channel) + "/messages"
}

// notificationID is the notification_id of a message's data, "" if it has
// none (data that is not a JSON object, or other senders' messages).
func notificationID(data string) string {
	var d map[string]any
	if json.Unmarshal([]byte(data), &d) != nil {
		return ""
	}
	id, _ := d[DataNotificationID].(string)
	return id
}

package api

import (
	"strings"

	"github.com/bankbook/bankbook/domain"
)

// Notification statuses as the API shows them.
const (
	NotificationPending = "pending" // not delivered yet: waiting for its turn, or retried after a failure
	NotificationSent    = "sent"    // the provider accepted it
	NotificationDead    = "dead"    // given up on; bankbook.cmd.notify.redrive brings it back
)

// NotificationView is one notification as bankbook.q.notify.list shows it.
type NotificationView struct {
	NotificationID string `json:"notification_id"`
	Kind           string `json:"kind"`
	Recipient      string `json:"recipient"`
	Status         string `json:"status"`
	// Attempts counts the sends tried, over every redrive.
	Attempts  int    `json:"attempts"`
	CreatedAt string `json:"created_at"`
	SentAt    string `json:"sent_at,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Message is the text the recipient sees.
	Message string `json:"message"`
	// RetryAt is when a failed notification is tried again.
	RetryAt string `json:"retry_at,omitempty"`
	// SourceEventID is the event that called for the message.
	SourceEventID string `json:"source_event_id"`
	Seq           Seq    `json:"seq"`
}

// NotifyListRequest is the body of bankbook.q.notify.list: notifications
// in the order they were created, of one status and one recipient when
// given.
type NotifyListRequest struct {
	Status    string `json:"status,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	PageRequest
	ReadAfter
}

// Validate checks the request fields.
func (r NotifyListRequest) Validate() error {
	switch r.Status {
	case "", NotificationPending, NotificationSent, NotificationDead:
	default:
		return invalid("status", "must be pending, sent or dead")
	}
	if r.Recipient != "" {
		if err := ValidateRecipient("recipient", r.Recipient); err != nil {
			return err
		}
	}
	return r.PageRequest.Validate()
}

// ValidateRecipient checks a recipient: store:<store_id>,
// distributor:<distributor_id> or user:<buyer_id>, the ID valid as any.
func ValidateRecipient(field, recipient string) error {
	kind, id, ok := strings.Cut(recipient, ":")
	switch {
	case !ok:
		return invalid(field, "must be store:<store_id>, distributor:<distributor_id> or user:<buyer_id>")
	case kind != "store" && kind != "distributor" && kind != "user":
		return invalid(field, "must start with store:, distributor: or user:")
	}
	return domain.ValidateID(field, id)
}

// NotifyListReply is the reply of bankbook.q.notify.list.
type NotifyListReply struct {
	Notifications []NotificationView `json:"notifications"`
	NextCursor    string             `json:"next_cursor,omitempty"`
}

// NotifyRedriveRequest is the body of bankbook.cmd.notify.redrive.
type NotifyRedriveRequest struct {
	NotificationID string `json:"notification_id"`
	Reason         string `json:"reason,omitempty"`
}

// Validate checks the request fields.
func (r NotifyRedriveRequest) Validate() error {
	if err := domain.ValidateID("notification_id", r.NotificationID); err != nil {
		return err
	}
	return domain.ValidateReason(r.Reason)
}

// Canonical removes the reason's surrounding white space, as the redrive
// records it.
func (r NotifyRedriveRequest) Canonical() NotifyRedriveRequest {
	r.Reason = strings.TrimSpace(r.Reason)
	return r
}

// NotifyRedriveReply is the reply of bankbook.cmd.notify.redrive: the
// notification is pending again, and its attempts start over.
type NotifyRedriveReply struct {
	NotificationID string `json:"notification_id"`
	Status         string `json:"status"`
	Written
}

// NotifyLimiterReply is the reply of bankbook.q.notify.limiter: the shared
// limit every dispatcher of every instance keeps to.
type NotifyLimiterReply struct {
	Scope    string  `json:"scope"`
	RatePerS float64 `json:"rate_per_s"`
	Burst    int     `json:"burst"`
	// PausedUntil is set while a provider's 429 holds every dispatcher.
	PausedUntil string `json:"paused_until,omitempty"`
	// Pending counts the notifications waiting to be sent.
	Pending int `json:"pending"`
}

// SimChatMessagesRequest is the body of bankbook.sim.chat.messages.
type SimChatMessagesRequest struct {
	Channel string `json:"channel,omitempty"`
	// Limit keeps the latest Limit messages (1 to MaxSimChatMessages; 0:
	// every one), so that a long run's record fits in a reply.
	Limit int `json:"limit,omitempty"`
	// From, when set, pages from the oldest instead: the messages from the
	// From-th (1: the oldest), at most Limit of them (0:
	// MaxSimChatMessages).
	From int `json:"from,omitempty"`
}

// MaxSimChatMessages is the most messages one bankbook.sim.chat.messages
// limit asks for.
const MaxSimChatMessages = 1000

// Validate checks the request fields.
func (r SimChatMessagesRequest) Validate() error {
	if r.Limit < 0 || r.Limit > MaxSimChatMessages {
		return invalid("limit", "must be between 1 and %d (0 or absent: every message)", MaxSimChatMessages)
	}
	if r.From < 0 {
		return invalid("from", "must be 1 or more (absent: the latest messages)")
	}
	if r.Channel != "" && !safeChannelURL(r.Channel) {
		return ValidateRecipient("channel", r.Channel)
	}
	return nil
}

// safeChannelURL reports whether channel is a channel_url that
// chat.SafeChannelURL makes of a recipient (an engine with
// --chat-safe-channels sends to those): "bb_" and at most 100 letters,
// digits and underscores in all.
func safeChannelURL(channel string) bool {
	if !strings.HasPrefix(channel, "bb_") || len(channel) > 100 {
		return false
	}
	for _, c := range []byte(channel) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// SimChatMessage is one message the fake chat provider accepted.
type SimChatMessage struct {
	Channel    string `json:"channel"`
	CustomType string `json:"custom_type"`
	Message    string `json:"message"`
	Data       string `json:"data"`
	ReceivedAt string `json:"received_at"`
}

// SimChatMessagesReply is the reply of bankbook.sim.chat.messages: what the
// fake chat provider accepted, oldest first, and how many requests it
// refused with 429.
type SimChatMessagesReply struct {
	Messages []SimChatMessage `json:"messages"`
	// Total counts the messages accepted (for the channel), Messages the
	// latest Limit of them (or the page From asked for).
	Total   int `json:"total"`
	Refused int `json:"refused"`
}

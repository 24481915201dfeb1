package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"
)

// DataNotificationID is the key of Message.Data, as sent, that carries the
// message's ID: the adapters add it, and Delivered looks for it.
const DataNotificationID = "notification_id"

// Message is one message to one recipient.
type Message struct {
	// ID identifies the message (bankbook's notification ID). It travels
	// in the data as "notification_id", so a receiver can tell a repeat and
	// Delivered can find it. Required.
	ID string
	// Kind is the message's kind ("bill_issued"): Sendbird's custom_type.
	Kind string
	// Recipient is who receives it ("store:st_1"): Sendbird's channel_url.
	// Required.
	Recipient string
	// Text is the message shown. Required.
	Text string
	// Data holds fields a client app shows (amount, bill_id, account ...).
	// The adapters add DataNotificationID = ID to what they send.
	Data map[string]string
}

// Validate reports whether m can be sent; errors match ErrInvalidMessage.
func (m Message) Validate() error {
	switch {
	case m.ID == "":
		return fmt.Errorf("%w: no ID", ErrInvalidMessage)
	case m.Recipient == "":
		return fmt.Errorf("%w %q: no recipient", ErrInvalidMessage, m.ID)
	case m.Text == "":
		return fmt.Errorf("%w %q: no text", ErrInvalidMessage, m.ID)
	}
	return nil
}

// data is m.Data with DataNotificationID set to m.ID (a value of that key
// in m.Data is replaced).
func (m Message) data() map[string]string {
	d := make(map[string]string, len(m.Data)+1)
	maps.Copy(d, m.Data)
	d[DataNotificationID] = m.ID
	return d
}

// dataJSON is m.data() as a JSON object, keys sorted.
func (m Message) dataJSON() string {
	b, err := json.Marshal(m.data())
	if err != nil { // a map[string]string always encodes
		panic(fmt.Sprintf("chat: encode data: %v", err))
	}
	return string(b)
}

// Receipt is the provider's acknowledgement of a message.
type Receipt struct {
	// Ref is the provider's ID of the message (Sendbird's message_id), ""
	// when the provider gives none.
	Ref string
}

// Provider sends messages to recipients through a chat service.
// Implementations are safe for concurrent use.
type Provider interface {
	// Name names the provider ("sendbird", "webhook") for logs and limiter
	// scopes.
	Name() string
	// Send makes one attempt to deliver m: one request (Sendbird: up to
	// three for a recipient without a channel), no retries of its own.
	// The errors say what became of m (see the package's error values).
	Send(ctx context.Context, m Message) (Receipt, error)
	// Delivered reports whether a message carrying m.ID as its
	// notification_id reached m.Recipient at or after since (on the
	// provider's clock: pass a margin). ErrCannotCheck when the provider
	// cannot tell; other errors as for Send.
	Delivered(ctx context.Context, m Message, since time.Time) (Receipt, bool, error)
}

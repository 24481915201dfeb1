package domain

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Event is a fact that happened to an aggregate. Its EventType is the stable
// name under which it is stored ("order.submitted"); its fields are the
// payload, encoded as JSON.
type Event interface {
	EventType() string
}

// ErrUnknownEventType is returned when decoding a type no Codec registered.
var ErrUnknownEventType = errors.New("unknown event type")

// Upcaster rewrites the JSON payload of one schema version into the next.
type Upcaster func(data json.RawMessage) (json.RawMessage, error)

type eventType struct {
	version int
	decode  func(json.RawMessage) (Event, error)
}

type upcastKey struct {
	eventType string
	from      int
}

// Codec maps event types to Go types and schema versions, and upcasts
// payloads written under an older schema version before decoding them.
// A Codec is built once at start-up and is read-only afterwards, so it is
// safe for concurrent use.
type Codec struct {
	types     map[string]eventType
	upcasters map[upcastKey]Upcaster
}

// NewCodec returns an empty Codec.
func NewCodec() *Codec {
	return &Codec{types: map[string]eventType{}, upcasters: map[upcastKey]Upcaster{}}
}

// Register adds event type E at its current schema version.
func Register[E Event](c *Codec, version int) {
	var zero E
	c.types[zero.EventType()] = eventType{version: version, decode: func(data json.RawMessage) (Event, error) {
		var e E
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		return e, nil
	}}
}

// AddUpcaster registers up to turn version from of eventType into version from+1.
func (c *Codec) AddUpcaster(eventType string, from int, up Upcaster) {
	c.upcasters[upcastKey{eventType, from}] = up
}

// Version returns the current schema version of eventType.
func (c *Codec) Version(eventType string) (int, bool) {
	t, ok := c.types[eventType]
	return t.version, ok
}

// Encode returns the type name, current schema version and JSON payload of e.
func (c *Codec) Encode(e Event) (string, int, json.RawMessage, error) {
	t, ok := c.types[e.EventType()]
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: %s", ErrUnknownEventType, e.EventType())
	}
	data, err := json.Marshal(e)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), t.version, data, nil
}

// Upcast brings a stored payload of eventType at version up to the current
// version, applying each registered upcaster in turn. A payload already at
// the current version, or of a type this Codec does not know (written by a
// newer engine), is returned unchanged; Decode reports unknown types.
func (c *Codec) Upcast(eventType string, version int, data json.RawMessage) (json.RawMessage, int, error) {
	t, ok := c.types[eventType]
	if !ok {
		return data, version, nil
	}
	if version > t.version {
		return nil, 0, fmt.Errorf("%s schema version %d is newer than this engine's %d", eventType, version, t.version)
	}
	for v := version; v < t.version; v++ {
		up, ok := c.upcasters[upcastKey{eventType, v}]
		if !ok {
			return nil, 0, fmt.Errorf("no upcaster for %s from schema version %d", eventType, v)
		}
		var err error
		if data, err = up(data); err != nil {
			return nil, 0, fmt.Errorf("upcast %s from version %d: %w", eventType, v, err)
		}
	}
	return data, t.version, nil
}

// Decode upcasts a stored payload and decodes it into its registered Go type.
func (c *Codec) Decode(eventType string, version int, data json.RawMessage) (Event, error) {
	if _, ok := c.types[eventType]; !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownEventType, eventType)
	}
	data, _, err := c.Upcast(eventType, version, data)
	if err != nil {
		return nil, err
	}
	e, err := c.types[eventType].decode(data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

// Events returns a Codec with every bankbook event registered at its
// current schema version, together with the upcasters of older versions.
func Events() *Codec {
	c := NewCodec()
	Register[OrderSubmitted](c, 1)
	Register[OrderCancelled](c, 1)
	Register[OrderCancelReserved](c, 1)
	Register[OrderPaid](c, 1)
	Register[OrderRefunded](c, 1)
	Register[OrderExpired](c, 1)
	Register[DepositRecorded](c, 1)
	Register[WalletCredited](c, 1)
	Register[WalletDebited](c, 1)
	Register[WalletSpent](c, 1)
	Register[DepositResolved](c, 1)
	Register[DepositReopened](c, 1)
	Register[PayoutRequested](c, 1)
	Register[PayoutSettled](c, 1)
	Register[PayoutFailed](c, 1)
	Register[StoreLinked](c, 1)
	Register[StoreRenamed](c, 1)
	Register[BillIssued](c, 1)
	Register[BillExpired](c, 1)
	Register[BillCancelled](c, 1)
	Register[StorePaymentReceived](c, 1)
	Register[BillReminded](c, 1)
	Register[NotificationCreated](c, 1)
	Register[NotificationAttempted](c, 1)
	Register[NotificationSent](c, 1)
	Register[NotificationFailed](c, 1)
	Register[NotificationDeadLettered](c, 1)
	Register[NotificationRedriven](c, 1)
	Register[ReconciliationCompleted](c, 1)
	return c
}

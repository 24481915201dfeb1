package domain_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func TestEventsRoundTrip(t *testing.T) {
	c := domain.Events()
	tests := []struct {
		name     string
		event    domain.Event
		wantType string
	}{
		{"order submitted", submitted(), "order.submitted"},
		{"order cancelled with reason", domain.OrderCancelled{OrderID: "o-1", Reason: "forgot an option", CancelledAt: t0}, "order.cancelled"},
		{"order cancelled without reason", domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0}, "order.cancelled"},
		{"order submitted with a payment deadline", submittedWithDeadline(), "order.submitted"},
		{"order expired", domain.OrderExpired{OrderID: "o-1", ExpiresAt: t0, ExpiredAt: t0.Add(time.Minute)}, "order.expired"},
		{"store linked", linked(), "store.linked"},
		{"store renamed", renamed("행복식당 본점", "한울유통", "행복식당", ""), "store.renamed"},
		{"store renamed, its distributor name removed", renamed("행복식당", "", "행복식당", "한울유통"), "store.renamed"},
		{"bill issued", billIssued(), "bill.issued"},
		{"bill issued superseding another", domain.BillIssued{LinkID: lnk, BillID: bill(2), DistributorID: distributor, StoreID: store, StoreName: "행복식당", Amount: 1, DedicatedAccount: dedicated, IssuedAt: t0, SupersededBillID: bill(1)}, "bill.issued"},
		{"bill expired", billExpired(), "bill.expired"},
		{"bill cancelled", billCancelled(), "bill.cancelled"},
		{"store payment received on a bill", billedPayment(), "store.payment_received"},
		{"store payment received, unbilled", unbilledPayment(), "store.payment_received"},
		{"bill reminded", billReminded(), "bill.reminded"},
		{"order cancelled with its buyer", orderCancelled(), "order.cancelled"},
		{"order expired with its buyer", orderExpired(), "order.expired"},
		{"wallet credited with its order", refundCredited(domain.CreditOrderRefund, "order:o-1", "o-1"), "wallet.credited"},
		{"notification created", ntfCreated(), "notification.created"},
		{"notification created without data", domain.NotificationCreated{NotificationID: ntfID, Kind: "k", Recipient: "r", Message: "m", SourceEventID: "e", SourceType: "t", CreatedAt: t0}, "notification.created"},
		{"notification attempted", ntfAttempted(1), "notification.attempted"},
		{"notification sent", ntfSent(1), "notification.sent"},
		{"notification sent, confirmed by a check", domain.NotificationSent{NotificationID: ntfID, Attempt: 2, ConfirmedByCheck: true, SentAt: t0}, "notification.sent"},
		{"notification failed", ntfFailed(1, false), "notification.failed"},
		{"notification failed for good", ntfFailed(1, true), "notification.failed"},
		{"notification throttled", ntfThrottled(1), "notification.failed"},
		{"notification dead-lettered", ntfDead(3), "notification.dead_lettered"},
		{"notification redriven", ntfRedriven(), "notification.redriven"},
		{"notification redriven without a reason", domain.NotificationRedriven{NotificationID: ntfID, RedrivenAt: t0}, "notification.redriven"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, version, data, err := c.Encode(tt.event)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if typ != tt.wantType || version != 1 {
				t.Fatalf("Encode type/version = %q/%d, want %q/1", typ, version, tt.wantType)
			}
			if v, ok := c.Version(typ); !ok || v != version {
				t.Fatalf("Version(%q) = %d, %v; want %d, true", typ, v, ok, version)
			}
			got, err := c.Decode(typ, version, data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.event) {
				t.Fatalf("round trip\n got %#v\nwant %#v", got, tt.event)
			}
		})
	}
}

func TestEventsWireFormat(t *testing.T) {
	_, _, data, err := domain.Events().Encode(submitted())
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatalf("payload is not a JSON object: %v", err)
	}
	for _, k := range []string{"order_id", "buyer_id", "buyer_name", "amount", "depositor_name", "collect_account", "cancel_window_s", "submitted_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("payload %s lacks field %q", data, k)
		}
	}
	if fields["submitted_at"] != "2025-03-14T09:26:53.589Z" {
		t.Errorf("submitted_at = %v, want RFC 3339 UTC", fields["submitted_at"])
	}
}

// TestLinkEventsWireFormat: the link events carry the fields of
// docs/events.md under those names, optional ones only when set.
func TestLinkEventsWireFormat(t *testing.T) {
	tests := []struct {
		event  domain.Event
		fields []string
		absent []string
	}{
		{linked(), []string{"link_id", "distributor_id", "store_id", "store_name", "dedicated_account", "linked_at"}, nil},
		{billIssued(), []string{"link_id", "bill_id", "distributor_id", "store_id", "store_name", "amount", "memo", "dedicated_account", "issued_at"}, []string{"superseded_bill_id"}},
		{billExpired(), []string{"link_id", "bill_id", "distributor_id", "store_id", "superseded_by", "amount", "paid_amount", "outstanding", "expired_at"}, nil},
		{billCancelled(), []string{"link_id", "bill_id", "distributor_id", "store_id", "store_name", "reason", "amount", "paid_amount", "issued_at", "cancelled_at"}, nil},
		{domain.BillCancelled{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, Amount: 50_000, CancelledAt: t0},
			[]string{"link_id", "bill_id", "distributor_id", "store_id", "amount", "paid_amount", "cancelled_at"}, []string{"store_name", "reason", "issued_at"}},
		{billedPayment(), []string{"link_id", "deposit_id", "distributor_id", "store_id", "store_name", "amount", "fee", "net", "fee_bps", "settlement_date", "paid_at", "collect_account", "dedicated_account", "bill_id", "bill_amount", "bill_paid_amount", "bill_outstanding", "bill_status"}, nil},
		{unbilledPayment(), []string{"fee", "net", "fee_bps", "settlement_date"}, []string{"bill_id", "bill_amount", "bill_paid_amount", "bill_outstanding", "bill_status"}},
		{billReminded(), []string{"link_id", "bill_id", "distributor_id", "store_id", "store_name", "amount", "paid_amount", "outstanding", "dedicated_account", "reminded_at"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.event.EventType(), func(t *testing.T) {
			_, _, data, err := domain.Events().Encode(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]any
			if err := json.Unmarshal(data, &fields); err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.fields {
				if _, ok := fields[k]; !ok {
					t.Errorf("payload %s lacks %q", data, k)
				}
			}
			for _, k := range tt.absent {
				if _, ok := fields[k]; ok {
					t.Errorf("payload %s has %q", data, k)
				}
			}
			if tt.absent == nil && len(fields) != len(tt.fields) { // every field is listed
				t.Errorf("payload %s has %d fields, want %d", data, len(fields), len(tt.fields))
			}
		})
	}
	_, _, data, _ := domain.Events().Encode(billedPayment())
	if !strings.Contains(string(data), `"settlement_date":"2025-03-17"`) || !strings.Contains(string(data), `"dedicated_account":{"bank":"KB","number":"5001000042","holder":"bankbook"}`) {
		t.Errorf("store.payment_received payload %s", data)
	}
}

func TestCodecUnknownType(t *testing.T) {
	c := domain.Events()
	t.Run("decode", func(t *testing.T) {
		_, err := c.Decode("order.teleported", 1, json.RawMessage(`{}`))
		if !errors.Is(err, domain.ErrUnknownEventType) {
			t.Fatalf("Decode of unknown type: err = %v, want ErrUnknownEventType", err)
		}
	})
	t.Run("upcast passes an unknown type through", func(t *testing.T) {
		// A newer engine may have written it; Upcast leaves it, Decode reports it.
		data, version, err := c.Upcast("order.teleported", 7, json.RawMessage(`{"x":1}`))
		if err != nil || version != 7 || string(data) != `{"x":1}` {
			t.Fatalf("Upcast of unknown type = %s, %d, %v; want the payload unchanged", data, version, err)
		}
	})
	t.Run("encode", func(t *testing.T) {
		_, _, _, err := domain.NewCodec().Encode(submitted())
		if !errors.Is(err, domain.ErrUnknownEventType) {
			t.Fatalf("Encode of unregistered type: err = %v, want ErrUnknownEventType", err)
		}
	})
	t.Run("version", func(t *testing.T) {
		if _, ok := c.Version("order.teleported"); ok {
			t.Fatal("Version of unknown type reports ok")
		}
	})
}

// widgetMoved is a test event whose schema went through three versions:
//
//	v1 {"where": "A"}
//	v2 {"to": "A"}              (field renamed)
//	v3 {"to": "A", "by": "?"}   (field added)
type widgetMoved struct {
	To string `json:"to"`
	By string `json:"by"`
}

func (widgetMoved) EventType() string { return "widget.moved" }

// appendStep returns an upcaster that records its step in the "trail" field,
// so the test can see which upcasters ran in which order.
func appendStep(step string, rewrite func(map[string]any)) domain.Upcaster {
	return func(data json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, err
		}
		trail, _ := m["trail"].(string)
		m["trail"] = trail + step
		rewrite(m)
		return json.Marshal(m)
	}
}

// widgetCodec registers widgetMoved at version 3 with upcasters 1→2 and 2→3.
func widgetCodec(t *testing.T) *domain.Codec {
	t.Helper()
	c := domain.NewCodec()
	domain.Register[widgetMoved](c, 3)
	// Registered out of order on purpose: the codec must apply them by version.
	c.AddUpcaster("widget.moved", 2, appendStep("2>3", func(m map[string]any) {
		if _, ok := m["to"]; !ok {
			panic("2→3 ran before 1→2")
		}
		m["by"] = "unknown"
	}))
	c.AddUpcaster("widget.moved", 1, appendStep("1>2", func(m map[string]any) {
		m["to"] = m["where"]
		delete(m, "where")
	}))
	return c
}

func TestCodecUpcastChain(t *testing.T) {
	tests := []struct {
		name      string
		version   int
		data      string
		wantTrail string
		want      widgetMoved
	}{
		{"from v1 applies 1→2 then 2→3", 1, `{"where":"A"}`, "1>22>3", widgetMoved{To: "A", By: "unknown"}},
		{"from v2 applies only 2→3", 2, `{"to":"B"}`, "2>3", widgetMoved{To: "B", By: "unknown"}},
		{"current version is unchanged", 3, `{"to":"C","by":"kim"}`, "", widgetMoved{To: "C", By: "kim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := widgetCodec(t)
			data, version, err := c.Upcast("widget.moved", tt.version, json.RawMessage(tt.data))
			if err != nil {
				t.Fatalf("Upcast: %v", err)
			}
			if version != 3 {
				t.Errorf("Upcast version = %d, want 3", version)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("upcast payload: %v", err)
			}
			trail, _ := m["trail"].(string)
			if trail != tt.wantTrail {
				t.Errorf("upcasters ran %q, want %q", trail, tt.wantTrail)
			}
			if tt.version == 3 && string(data) != tt.data {
				t.Errorf("payload at current version changed: %s", data)
			}

			e, err := c.Decode("widget.moved", tt.version, json.RawMessage(tt.data))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if e != tt.want {
				t.Errorf("Decode = %#v, want %#v", e, tt.want)
			}
		})
	}
}

func TestCodecUpcastErrors(t *testing.T) {
	failing := errors.New("corrupt v1 payload")
	tests := []struct {
		name    string
		codec   func(t *testing.T) *domain.Codec
		version int
		data    string
		wantIs  error
		wantMsg string
	}{
		{
			name: "missing upcaster",
			codec: func(t *testing.T) *domain.Codec {
				c := domain.NewCodec()
				domain.Register[widgetMoved](c, 3)
				c.AddUpcaster("widget.moved", 2, appendStep("2>3", func(map[string]any) {}))
				return c
			},
			version: 1, data: `{"where":"A"}`, wantMsg: "no upcaster",
		},
		{
			name: "missing upcaster for version 0", codec: widgetCodec,
			version: 0, data: `{}`, wantMsg: "no upcaster",
		},
		{
			name: "stored version newer than the engine's", codec: widgetCodec,
			version: 4, data: `{"to":"A"}`, wantMsg: "newer",
		},
		{
			name: "upcaster fails",
			codec: func(t *testing.T) *domain.Codec {
				c := widgetCodec(t)
				c.AddUpcaster("widget.moved", 1, func(json.RawMessage) (json.RawMessage, error) { return nil, failing })
				return c
			},
			version: 1, data: `{"where":"A"}`, wantIs: failing,
		},
		{
			name: "payload does not fit the type", codec: widgetCodec,
			version: 3, data: `{"to":42}`, wantMsg: "decode widget.moved",
		},
		{
			name: "payload is not JSON", codec: widgetCodec,
			version: 3, data: `not json`, wantMsg: "decode widget.moved",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := tt.codec(t).Decode("widget.moved", tt.version, json.RawMessage(tt.data))
			if err == nil {
				t.Fatalf("Decode = %#v, want an error", e)
			}
			if e != nil {
				t.Errorf("Decode returned event %#v with error", e)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
			}
			if errors.Is(err, domain.ErrUnknownEventType) {
				t.Errorf("err = %v matches ErrUnknownEventType for a registered type", err)
			}
		})
	}
}

func TestEventsRegistersEveryEvent(t *testing.T) {
	c := domain.Events()
	for _, e := range []domain.Event{
		domain.OrderSubmitted{}, domain.OrderCancelled{}, domain.OrderExpired{},
		domain.StoreLinked{}, domain.BillIssued{}, domain.BillExpired{}, domain.BillCancelled{}, domain.StorePaymentReceived{}, domain.BillReminded{},
		domain.NotificationCreated{}, domain.NotificationAttempted{}, domain.NotificationSent{}, domain.NotificationFailed{}, domain.NotificationDeadLettered{}, domain.NotificationRedriven{},
	} {
		if _, ok := c.Version(e.EventType()); !ok {
			t.Errorf("Events() does not register %s", e.EventType())
		}
	}
}

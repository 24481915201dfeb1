package domain_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// namedLinkCmd links the pair with a distributor name.
func namedLinkCmd() domain.LinkStore {
	c := linkCmd()
	c.DistributorName = "한울유통"
	return c
}

// TestDecideLinkWithDistributorName: the distributor name is optional,
// trimmed, checked as the store name is, recorded on store.linked and kept
// as first linked: a repeat with another name, or with one for a link made
// without, needs nothing.
func TestDecideLinkWithDistributorName(t *testing.T) {
	t.Run("recorded, trimmed", func(t *testing.T) {
		c := namedLinkCmd()
		c.DistributorName = "  한울유통 "
		events, err := domain.DecideLink(domain.Link{}, c)
		if err != nil {
			t.Fatal(err)
		}
		want := linked()
		want.DistributorName = "한울유통"
		if !reflect.DeepEqual(events, []domain.Event{want}) {
			t.Fatalf("events\n got %#v\nwant %#v", events, []domain.Event{want})
		}
		if l := givenLink(events...); l.DistributorName != "한울유통" || l.StoreName != "행복식당" {
			t.Errorf("state after store.linked = %+v", l)
		}
	})
	t.Run("blank is none", func(t *testing.T) {
		c := linkCmd()
		c.DistributorName = " \t "
		events, err := domain.DecideLink(domain.Link{}, c)
		if err != nil || !reflect.DeepEqual(events, []domain.Event{linked()}) {
			t.Fatalf("DecideLink with a blank distributor name = %#v, %v; want store.linked without one", events, err)
		}
	})
	t.Run("linking again keeps the first name, or none", func(t *testing.T) {
		named := linked()
		named.DistributorName = "한울유통"
		for _, l := range []domain.Link{givenLink(named), givenLink(linked())} {
			c := linkCmd()
			c.DistributorName = "다른유통"
			if events, err := domain.DecideLink(l, c); err != nil || events != nil {
				t.Fatalf("DecideLink again = %#v, %v; want nothing", events, err)
			}
		}
	})
	for _, tt := range []struct {
		name string
		dist string
	}{
		{"of 101 characters", strings.Repeat("유", 101)},
		{"with a newline", "한울\n유통"},
		{"with a bidi control", "한울\u202e유통"},
		{"with a private-use character", "한울\ue000"},
		{"only a combining mark", "\u0301"},
	} {
		t.Run("a distributor name "+tt.name, func(t *testing.T) {
			c := namedLinkCmd()
			c.DistributorName = tt.dist
			events, err := domain.DecideLink(domain.Link{}, c)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil || de.Details["field"] != "distributor_name" {
				t.Errorf("events %#v, details %v; want none and field distributor_name", events, de.Details)
			}
		})
	}
	t.Run("100 characters are taken", func(t *testing.T) {
		c := namedLinkCmd()
		c.DistributorName = strings.Repeat("유", domain.MaxDistributorNameLength)
		if _, err := domain.DecideLink(domain.Link{}, c); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLinkEventsCarryTheDistributorName: every event of a link made with a
// distributor name that a store's message renders carries it, and the link
// keeps it through a snapshot's round trip.
func TestLinkEventsCarryTheDistributorName(t *testing.T) {
	f := &linkFlow{t: t, at: t0}
	f.do(domain.DecideLink(f.link, namedLinkCmd()))
	issued := f.issue(50_000)[0].(domain.BillIssued)
	paid := f.pay("dep_1", 20_000)
	reminded := f.do(domain.DecideRemind(f.link, domain.Remind{Now: f.at}))[0].(domain.BillReminded)
	cancelled := f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: issued.BillID, Now: f.at}))[0].(domain.BillCancelled)
	for what, got := range map[string]string{"bill.issued": issued.DistributorName, "store.payment_received": paid.DistributorName,
		"bill.reminded": reminded.DistributorName, "bill.cancelled": cancelled.DistributorName} {
		if got != "한울유통" {
			t.Errorf("%s carries distributor name %q, want 한울유통", what, got)
		}
	}
	raw, err := json.Marshal(f.link)
	if err != nil {
		t.Fatal(err)
	}
	var back domain.Link
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back, f.link) {
		t.Fatalf("round trip of %s: %+v, %v", raw, back, err)
	}
	if !strings.Contains(string(raw), `"distributor_name":"한울유통"`) {
		t.Errorf("snapshot %s lacks the distributor name", raw)
	}
	// A link made without one: its events and its snapshot have none.
	plain := newLinkFlow(t)
	for _, e := range plain.issue(10_000) {
		if raw, _ := json.Marshal(e); strings.Contains(string(raw), "distributor_name") {
			t.Errorf("%s of a link without a distributor name: %s", e.EventType(), raw)
		}
	}
	if raw, _ := json.Marshal(plain.link); strings.Contains(string(raw), "distributor_name") {
		t.Errorf("snapshot of a link without a distributor name: %s", raw)
	}
}

// TestStoreMessagesNameTheDistributor: with the link's distributor name,
// the four messages to the store name it after their tag, and their data
// has it; the distributor's own message is as it was.
func TestStoreMessagesNameTheDistributor(t *testing.T) {
	store, dist := "store:store-1", "distributor:dist-1"
	account := map[string]string{"bank": "KB", "account_number": "5001000042", "account_holder": "bankbook"}
	issued := billIssued()
	issued.DistributorName = "한울유통"
	cancelled := billCancelled()
	cancelled.DistributorName = "한울유통"
	paid := billedPayment()
	paid.DistributorName = "한울유통"
	reminded := billReminded()
	reminded.DistributorName = "한울유통"
	reminded.PaymentsCountedTo = time.Date(2025, 3, 16, 9, 55, 0, 0, time.UTC)
	oldCancel := billCancelled() // recorded before cancellations carried the store name
	oldCancel.StoreName, oldCancel.DistributorName = "", "한울유통"
	runIntentCases(t, []intentCase{
		{"bill.issued", issued, []domain.NotificationIntent{
			intent(domain.NotifyBillIssued, store, "bill.issued",
				"[청구서] 한울유통: 행복식당 님, 50,000원 청구서가 발행되었습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)\n메모: 3월분",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "distributor_name": "한울유통", "store_id": "store-1", "store_name": "행복식당",
					"amount": "50000", "memo": "3월분", "issued_at": "2025-03-14T09:26:53.589000Z"}, account)),
		}},
		{"bill.cancelled", cancelled, []domain.NotificationIntent{
			intent(domain.NotifyBillCancelled, store, "bill.cancelled",
				"[청구서 취소] 한울유통: 행복식당 님, 2025-03-14에 발행된 50,000원 청구서가 취소되었습니다.\n청구서 번호: "+bill(1)+"\n"+
					"이 청구서로 입금하신 20,000원은 입금 내역에 그대로 남습니다.\n이 청구서로 입금하실 금액은 없습니다.",
				map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "distributor_name": "한울유통", "store_id": "store-1", "store_name": "행복식당",
					"amount": "50000", "paid_amount": "20000", "issued_at": "2025-03-14T09:26:53.589000Z", "cancelled_at": "2025-03-14T10:26:53.589000Z"}),
		}},
		{"bill.cancelled without the store's name", oldCancel, []domain.NotificationIntent{
			intent(domain.NotifyBillCancelled, store, "bill.cancelled",
				"[청구서 취소] 한울유통: 2025-03-14에 발행된 50,000원 청구서가 취소되었습니다.\n청구서 번호: "+bill(1)+"\n"+
					"이 청구서로 입금하신 20,000원은 입금 내역에 그대로 남습니다.\n이 청구서로 입금하실 금액은 없습니다.",
				map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "distributor_name": "한울유통", "store_id": "store-1",
					"amount": "50000", "paid_amount": "20000", "issued_at": "2025-03-14T09:26:53.589000Z", "cancelled_at": "2025-03-14T10:26:53.589000Z"}),
		}},
		{"store.payment_received: the store's confirmation only", paid, []domain.NotificationIntent{
			intent(domain.NotifyPaymentReceived, dist, "store.payment_received",
				"[입금 알림] 행복식당에서 20,000원을 입금했습니다.\n수수료 500원을 뺀 19,500원이 2025-03-17에 정산됩니다.\n청구서 50,000원 중 남은 금액: 30,000원",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"fee": "500", "net": "19500", "settlement_date": "2025-03-17",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "partially_paid"}),
			intent(domain.NotifyPaymentComplete, store, "store.payment_received",
				"[입금 완료] 한울유통: 행복식당 님, 20,000원 입금이 확인되었습니다.\n청구서 50,000원 중 남은 금액: 30,000원",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "distributor_name": "한울유통", "store_id": "store-1", "store_name": "행복식당",
					"amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "partially_paid"}),
		}},
		{"bill.reminded", reminded, []domain.NotificationIntent{
			intent(domain.NotifyUnpaidReminder, store, "bill.reminded",
				"[미납 안내] 한울유통: 행복식당 님, 청구 금액 50,000원 중 30,000원이 아직 입금되지 않았습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)\n"+
					"2025-03-16 18:55까지의 입금을 반영했습니다. 그 뒤에 입금하셨다면 이 안내는 무시해 주세요.",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "distributor_name": "한울유통", "store_id": "store-1", "store_name": "행복식당",
					"amount": "50000", "paid_amount": "20000", "outstanding": "30000", "payments_counted_to": "2025-03-16T09:55:00.000000Z"}, account)),
		}},
	})
}

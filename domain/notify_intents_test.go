package domain_test

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

const srcEvent = "019a0000-0000-7000-8000-00000000beef"

// intent is the expected intent of srcEvent.
func intent(kind, recipient, sourceType, message string, data map[string]string) domain.NotificationIntent {
	return domain.NotificationIntent{
		ID: domain.NewNotificationID(srcEvent, kind, recipient), Kind: kind, Recipient: recipient, Message: message, Data: data,
		SourceEventID: srcEvent, SourceType: sourceType,
	}
}

func orderCancelled() domain.OrderCancelled {
	return domain.OrderCancelled{OrderID: "o-1", Reason: "옵션을 잘못 골랐어요", CancelledAt: t0, BuyerID: "u-1", Amount: 15000}
}

func orderExpired() domain.OrderExpired {
	return domain.OrderExpired{OrderID: "o-1", ExpiresAt: t0, ExpiredAt: t0.Add(time.Minute), BuyerID: "u-1", Amount: 15000}
}

func refundCredited(kind, ref string, order domain.OrderID) domain.WalletCredited {
	return domain.WalletCredited{UserID: "u-1", Amount: 15000, Kind: kind, Ref: ref, OrderID: order, FromAccount: domain.AccountPayableOrders, CreditedAt: t0}
}

// TestNotificationIntents: each event that calls for a message, its kind,
// recipient, rendered text and data, the way TestPostings lists postings.
func TestNotificationIntents(t *testing.T) {
	paidInFull := billedPayment()
	paidInFull.Amount, paidInFull.Fee, paidInFull.Net = 30_000, 750, 29_250
	paidInFull.BillPaidAmount, paidInFull.BillOutstanding, paidInFull.BillStatus = 50_000, 0, domain.BillStatusPaid
	toExpired := billedPayment()
	toExpired.BillStatus = domain.BillStatusExpired
	noMemo := billIssued()
	noMemo.Memo = ""
	finalised := domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0, AfterReservation: true, BuyerID: "u-1", Amount: 15000}
	store := "store:store-1"
	dist := "distributor:dist-1"
	account := map[string]string{"bank": "KB", "account_number": "5001000042", "account_holder": "bankbook"}
	unpaidCancelled := billCancelled()
	unpaidCancelled.PaidAmount = 0
	unpaidCancelled.IssuedAt = time.Date(2025, 3, 14, 15, 30, 0, 0, time.UTC) // 00:30 on the 15th in Seoul
	counted := billReminded()
	counted.PaymentsCountedTo = time.Date(2025, 3, 16, 9, 55, 0, 0, time.UTC) // 18:55 in Seoul
	runIntentCases(t, []intentCase{
		{"bill.issued: the store, with the account and the memo", billIssued(), []domain.NotificationIntent{
			intent(domain.NotifyBillIssued, store, "bill.issued",
				"[청구서] 행복식당 님, 50,000원 청구서가 발행되었습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)\n메모: 3월분",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "memo": "3월분", "issued_at": "2025-03-14T09:26:53.589000Z"}, account)),
		}},
		{"bill.issued without a memo", noMemo, []domain.NotificationIntent{
			intent(domain.NotifyBillIssued, store, "bill.issued",
				"[청구서] 행복식당 님, 50,000원 청구서가 발행되었습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "issued_at": "2025-03-14T09:26:53.589000Z"}, account)),
		}},
		{"bill.cancelled: the store, which bill, what was paid, nothing due; no account, no reason", billCancelled(), []domain.NotificationIntent{
			intent(domain.NotifyBillCancelled, store, "bill.cancelled",
				"[청구서 취소] 행복식당 님, 2025-03-14에 발행된 50,000원 청구서가 취소되었습니다.\n청구서 번호: "+bill(1)+"\n"+
					"이 청구서로 입금하신 20,000원은 입금 내역에 그대로 남습니다.\n이 청구서로 입금하실 금액은 없습니다.",
				map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "paid_amount": "20000",
					"issued_at": "2025-03-14T09:26:53.589000Z", "cancelled_at": "2025-03-14T10:26:53.589000Z"}),
		}},
		{"bill.cancelled of a bill nothing was paid to, issued late in the day in Seoul", unpaidCancelled, []domain.NotificationIntent{
			intent(domain.NotifyBillCancelled, store, "bill.cancelled",
				"[청구서 취소] 행복식당 님, 2025-03-15에 발행된 50,000원 청구서가 취소되었습니다.\n청구서 번호: "+bill(1)+"\n이 청구서로 입금하실 금액은 없습니다.",
				map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "paid_amount": "0",
					"issued_at": "2025-03-14T15:30:00.000000Z", "cancelled_at": "2025-03-14T10:26:53.589000Z"}),
		}},
		{"store.payment_received on a bill: the distributor, then the store", billedPayment(), []domain.NotificationIntent{
			intent(domain.NotifyPaymentReceived, dist, "store.payment_received",
				"[입금 알림] 행복식당에서 20,000원을 입금했습니다.\n수수료 500원을 뺀 19,500원이 2025-03-17에 정산됩니다.\n청구서 50,000원 중 남은 금액: 30,000원",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"fee": "500", "net": "19500", "settlement_date": "2025-03-17",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "partially_paid"}),
			intent(domain.NotifyPaymentComplete, store, "store.payment_received",
				"[입금 완료] 행복식당 님, 20,000원 입금이 확인되었습니다.\n청구서 50,000원 중 남은 금액: 30,000원",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "partially_paid"}),
		}},
		{"store.payment_received paying the bill in full", paidInFull, []domain.NotificationIntent{
			intent(domain.NotifyPaymentReceived, dist, "store.payment_received",
				"[입금 알림] 행복식당에서 30,000원을 입금했습니다.\n수수료 750원을 뺀 29,250원이 2025-03-17에 정산됩니다.\n청구서 50,000원이 모두 입금되었습니다.",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "30000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"fee": "750", "net": "29250", "settlement_date": "2025-03-17",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "50000", "bill_outstanding": "0", "bill_status": "paid"}),
			intent(domain.NotifyPaymentComplete, store, "store.payment_received",
				"[입금 완료] 행복식당 님, 30,000원 입금이 확인되었습니다.\n청구서 50,000원이 모두 입금되었습니다.",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "30000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "50000", "bill_outstanding": "0", "bill_status": "paid"}),
		}},
		{"store.payment_received on a bill since expired", toExpired, []domain.NotificationIntent{
			intent(domain.NotifyPaymentReceived, dist, "store.payment_received",
				"[입금 알림] 행복식당에서 20,000원을 입금했습니다.\n수수료 500원을 뺀 19,500원이 2025-03-17에 정산됩니다.\n지난 청구서 50,000원에 대한 입금입니다.",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"fee": "500", "net": "19500", "settlement_date": "2025-03-17",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "expired"}),
			intent(domain.NotifyPaymentComplete, store, "store.payment_received",
				"[입금 완료] 행복식당 님, 20,000원 입금이 확인되었습니다.\n지난 청구서 50,000원에 대한 입금입니다.",
				map[string]string{"deposit_id": "dep_1", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "20000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"bill_id": bill(1), "bill_amount": "50000", "bill_paid_amount": "20000", "bill_outstanding": "30000", "bill_status": "expired"}),
		}},
		{"store.payment_received unbilled, without a fee", unbilledPayment(), []domain.NotificationIntent{
			intent(domain.NotifyPaymentReceived, dist, "store.payment_received",
				"[입금 알림] 행복식당에서 7,000원을 입금했습니다.\n7,000원이 2025-03-17에 정산됩니다.\n청구서 없이 받은 입금입니다.",
				map[string]string{"deposit_id": "dep_2", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "7000", "paid_at": "2025-03-14T09:26:53.589000Z",
					"fee": "0", "net": "7000", "settlement_date": "2025-03-17"}),
			intent(domain.NotifyPaymentComplete, store, "store.payment_received",
				"[입금 완료] 행복식당 님, 7,000원 입금이 확인되었습니다.\n청구서 없이 받은 입금입니다.",
				map[string]string{"deposit_id": "dep_2", "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "7000", "paid_at": "2025-03-14T09:26:53.589000Z"}),
		}},
		{"bill.reminded: the store, outstanding and account", billReminded(), []domain.NotificationIntent{
			intent(domain.NotifyUnpaidReminder, store, "bill.reminded",
				"[미납 안내] 행복식당 님, 청구 금액 50,000원 중 30,000원이 아직 입금되지 않았습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "paid_amount": "20000", "outstanding": "30000"}, account)),
		}},
		{"bill.reminded with the scan's watermark: up to when payments are counted, in Seoul time", counted, []domain.NotificationIntent{
			intent(domain.NotifyUnpaidReminder, store, "bill.reminded",
				"[미납 안내] 행복식당 님, 청구 금액 50,000원 중 30,000원이 아직 입금되지 않았습니다.\n입금 계좌: KB 5001000042 (예금주 bankbook)\n"+
					"2025-03-16 18:55까지의 입금을 반영했습니다. 그 뒤에 입금하셨다면 이 안내는 무시해 주세요.",
				with(map[string]string{"bill_id": bill(1), "distributor_id": "dist-1", "store_id": "store-1", "store_name": "행복식당", "amount": "50000", "paid_amount": "20000", "outstanding": "30000",
					"payments_counted_to": "2025-03-16T09:55:00.000000Z"}, account)),
		}},
		{"order.cancelled: the buyer, with the reason", orderCancelled(), []domain.NotificationIntent{
			intent(domain.NotifyOrderCancelled, "user:u-1", "order.cancelled",
				"[주문 취소] 주문이 취소되었습니다.\n주문번호: o-1\n금액: 15,000원\n사유: 옵션을 잘못 골랐어요",
				map[string]string{"order_id": "o-1", "status": "cancelled", "amount": "15000", "reason": "옵션을 잘못 골랐어요"}),
		}},
		{"order.cancelled when a reservation became final", finalised, []domain.NotificationIntent{
			intent(domain.NotifyOrderCancelled, "user:u-1", "order.cancelled",
				"[주문 취소] 주문이 취소되었습니다.\n주문번호: o-1\n금액: 15,000원",
				map[string]string{"order_id": "o-1", "status": "cancelled", "amount": "15000"}),
		}},
		{"order.expired: the buyer", orderExpired(), []domain.NotificationIntent{
			intent(domain.NotifyOrderCancelled, "user:u-1", "order.expired",
				"[주문 취소] 입금 기한이 지나 주문이 취소되었습니다.\n주문번호: o-1\n금액: 15,000원",
				map[string]string{"order_id": "o-1", "status": "expired", "amount": "15000"}),
		}},
		{"wallet.credited, order_refund", refundCredited(domain.CreditOrderRefund, "order:o-1", "o-1"), []domain.NotificationIntent{
			intent(domain.NotifyWalletRefund, "user:u-1", "wallet.credited",
				"[환불] 15,000원이 지갑으로 환불되었습니다.\n사유: 취소된 주문의 결제 금액\n주문번호: o-1",
				map[string]string{"user_id": "u-1", "amount": "15000", "refund_kind": "order_refund", "ref": "order:o-1", "order_id": "o-1", "credited_at": "2025-03-14T09:26:53.589000Z"}),
		}},
		{"wallet.credited, deposit_refund", refundCredited(domain.CreditDepositRefund, "dep_2", "o-1"), []domain.NotificationIntent{
			intent(domain.NotifyWalletRefund, "user:u-1", "wallet.credited",
				"[환불] 15,000원이 지갑으로 환불되었습니다.\n사유: 취소·만료되었거나 이미 결제된 주문으로 보내신 입금\n주문번호: o-1",
				map[string]string{"user_id": "u-1", "amount": "15000", "refund_kind": "deposit_refund", "ref": "dep_2", "order_id": "o-1", "credited_at": "2025-03-14T09:26:53.589000Z"}),
		}},
		{"wallet.credited, payment_reversal", refundCredited(domain.CreditPaymentReversal, "payment-reversal:o-1", "o-1"), []domain.NotificationIntent{
			intent(domain.NotifyWalletRefund, "user:u-1", "wallet.credited",
				"[환불] 15,000원이 지갑으로 환불되었습니다.\n사유: 결제되지 않은 주문의 지갑 결제 금액\n주문번호: o-1",
				map[string]string{"user_id": "u-1", "amount": "15000", "refund_kind": "payment_reversal", "ref": "payment-reversal:o-1", "order_id": "o-1", "credited_at": "2025-03-14T09:26:53.589000Z"}),
		}},
		{"wallet.credited, payout_reversal", refundCredited(domain.CreditPayoutReversal, "reversal:po_1", ""), []domain.NotificationIntent{
			intent(domain.NotifyWithdrawalReturned, "user:u-1", "wallet.credited",
				"[출금 반환] 출금하신 15,000원을 은행에서 보내지 못해 지갑으로 돌려드렸습니다.\n출금번호: po_1",
				map[string]string{"user_id": "u-1", "amount": "15000", "payout_id": "po_1", "credited_at": "2025-03-14T09:26:53.589000Z"}),
		}},
		{"payout.settled of a withdrawal", func() domain.PayoutSettled {
			e := payoutSettled(500)
			e.Source, e.SourceID = domain.PayoutFromWallet, "u-1"
			return e
		}(), []domain.NotificationIntent{
			intent(domain.NotifyWithdrawalSent, "user:u-1", "payout.settled",
				"[출금 완료] 출금하신 4,000원을 보냈습니다.\n출금번호: po_1",
				map[string]string{"user_id": "u-1", "amount": "4000", "payout_id": "po_1", "settled_at": "2025-03-14T09:27:53.589000Z"}),
		}},
		{"wallet.credited, orphan_refund (no order)", refundCredited(domain.CreditOrphanRefund, "dep_3", ""), []domain.NotificationIntent{
			intent(domain.NotifyWalletRefund, "user:u-1", "wallet.credited",
				"[환불] 15,000원이 지갑으로 환불되었습니다.\n사유: 주문과 연결되지 않은 입금",
				map[string]string{"user_id": "u-1", "amount": "15000", "refund_kind": "orphan_refund", "ref": "dep_3", "credited_at": "2025-03-14T09:26:53.589000Z"}),
		}},
	})
}

// intentCase is an event and the messages it calls for.
type intentCase struct {
	name  string
	event domain.Event
	want  []domain.NotificationIntent
}

// runIntentCases checks that each case's event calls for exactly its
// messages, and that they are well formed.
func runIntentCases(t *testing.T, cases []intentCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.NotificationIntents(srcEvent, tt.event)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NotificationIntents(%s)\n got %#v\nwant %#v", tt.event.EventType(), got, tt.want)
			}
			checkIntents(t, got)
		})
	}
}

// with is base and more merged into one map: a message's data.
func with(base map[string]string, more ...map[string]string) map[string]string {
	out := maps.Clone(base)
	for _, m := range more {
		maps.Copy(out, m)
	}
	return out
}

// checkIntents checks what every intent must be: one per recipient, its ID
// derived from its parts, a known kind and recipient form, a text, and
// something DecideCreateNotification records.
func checkIntents(t *testing.T, intents []domain.NotificationIntent) {
	t.Helper()
	kinds := []string{domain.NotifyBillIssued, domain.NotifyBillCancelled, domain.NotifyPaymentReceived, domain.NotifyPaymentComplete, domain.NotifyUnpaidReminder, domain.NotifyOrderCancelled, domain.NotifyWalletRefund, domain.NotifyWithdrawalReturned, domain.NotifyWithdrawalSent}
	recipients := map[string]bool{}
	for _, in := range intents {
		if recipients[in.Recipient] {
			t.Errorf("two intents to %s", in.Recipient)
		}
		recipients[in.Recipient] = true
		if in.ID != domain.NewNotificationID(in.SourceEventID, in.Kind, in.Recipient) {
			t.Errorf("intent %s: ID is not derived from its parts", in.ID)
		}
		known := false
		for _, k := range kinds {
			known = known || k == in.Kind
		}
		if !known {
			t.Errorf("intent %s: unknown kind %q", in.ID, in.Kind)
		}
		prefix, id, ok := strings.Cut(in.Recipient, ":")
		if !ok || (prefix != "store" && prefix != "distributor" && prefix != "user") || domain.ValidateID("recipient", id) != nil {
			t.Errorf("intent %s: recipient %q", in.ID, in.Recipient)
		}
		if !strings.HasPrefix(in.Message, "[") || in.Data == nil || in.Data["amount"] == "" {
			t.Errorf("intent %s: message %q data %v", in.ID, in.Message, in.Data)
		}
		if _, err := domain.DecideCreateNotification(domain.Notification{}, in, t0); err != nil {
			t.Errorf("intent %s is not recordable: %v", in.ID, err)
		}
	}
}

// TestNotificationIntentsNothing: events that call for no message.
func TestNotificationIntentsNothing(t *testing.T) {
	tests := []struct {
		name  string
		event domain.Event
	}{
		{"order.submitted", submitted()},
		{"order.cancel_reserved", cancelReserved()},
		{"order.paid", paidBy("dep_1", t0)},
		{"order.refunded (its wallet.credited notifies)", domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", Amount: 15000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0}},
		{"order.cancelled written before buyer_id", domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0}},
		{"order.expired written before buyer_id", domain.OrderExpired{OrderID: "o-1", ExpiresAt: t0, ExpiredAt: t0}},
		{"deposit.recorded", orphanRecorded()},
		{"deposit.resolved", resolvedToWallet("u-2")},
		{"deposit.reopened", reopened("po_1")},
		{"wallet.debited", debited(4000, "po_1")},
		{"payout.requested", payoutRequested()},
		{"payout.settled written before it named its source", payoutSettled(500)},
		{"payout.settled of an orphan refunded to the bank", func() domain.PayoutSettled {
			e := payoutSettled(500)
			e.Source, e.SourceID = domain.PayoutFromDeposit, "dep_1"
			return e
		}()},
		{"payout.failed", payoutFailed()},
		{"store.linked", linked()},
		{"bill.expired", billExpired()},
		{"bill.cancelled written before issued_at", domain.BillCancelled{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, Amount: 50_000, CancelledAt: t0}},
		{"notification.created", ntfCreated()},
		{"notification.attempted", ntfAttempted(1)},
		{"notification.sent", ntfSent(1)},
		{"notification.failed", ntfFailed(1, false)},
		{"notification.dead_lettered", ntfDead(1)},
		{"notification.redriven", ntfRedriven()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.NotificationIntents(srcEvent, tt.event); len(got) != 0 {
				t.Fatalf("NotificationIntents(%s) = %#v, want none", tt.event.EventType(), got)
			}
		})
	}
}

// eventTypes is every event type docs/events.md lists.
var eventTypes = []string{
	"order.submitted", "order.cancelled", "order.cancel_reserved", "order.paid", "order.refunded", "order.expired",
	"deposit.recorded", "deposit.resolved", "deposit.reopened",
	"wallet.credited", "wallet.debited",
	"payout.requested", "payout.settled", "payout.failed",
	"store.linked", "bill.issued", "bill.expired", "bill.cancelled", "store.payment_received", "bill.reminded",
	"notification.created", "notification.attempted", "notification.sent", "notification.failed", "notification.dead_lettered", "notification.redriven",
}

// TestNotificationIntentsCoverEveryEvent: between them, the two tables
// above speak of every event type docs/events.md lists.
func TestNotificationIntentsCoverEveryEvent(t *testing.T) {
	speaking := []domain.Event{billIssued(), billCancelled(), billedPayment(), billReminded(), orderCancelled(), orderExpired(), refundCredited(domain.CreditOrderRefund, "order:o-1", "o-1")}
	silent := []domain.Event{submitted(), cancelReserved(), paidBy("dep_1", t0), domain.OrderRefunded{}, orphanRecorded(), resolvedToWallet("u-2"), reopened("po_1"),
		debited(1, "po_1"), payoutRequested(), payoutSettled(0), payoutFailed(), linked(), billExpired(),
		ntfCreated(), ntfAttempted(1), ntfSent(1), ntfFailed(1, false), ntfDead(1), ntfRedriven()}
	seen := map[string]bool{}
	for _, e := range append(speaking, silent...) {
		seen[e.EventType()] = true
	}
	codec := domain.Events()
	for _, name := range eventTypes {
		if _, ok := codec.Version(name); !ok {
			t.Errorf("%s is not registered", name)
		}
		if !seen[name] {
			t.Errorf("no intent test speaks of %s", name)
		}
	}
}

// TestNotificationIntentsDeterministic: the same event gives the same
// intents, IDs included, every time; another source event other IDs.
func TestNotificationIntentsDeterministic(t *testing.T) {
	for _, e := range []domain.Event{billIssued(), billCancelled(), billedPayment(), billReminded(), orderCancelled(), orderExpired(), refundCredited(domain.CreditDepositRefund, "dep_2", "o-1")} {
		a, b := domain.NotificationIntents(srcEvent, e), domain.NotificationIntents(srcEvent, e)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two calls differ", e.EventType())
		}
		other := domain.NotificationIntents(srcEvent+"x", e)
		for i := range a {
			if a[i].ID == other[i].ID {
				t.Errorf("%s: the same ID %s for another source event", e.EventType(), a[i].ID)
			}
		}
	}
}

// TestIntentsFromDecisions: the events the decide functions write carry
// what the messages need (the buyer of a cancelled or expired order, the
// order of a refund), so each calls for its message.
func TestIntentsFromDecisions(t *testing.T) {
	now := t0.Add(time.Hour)
	one := func(t *testing.T) func([]domain.Event, error) domain.Event {
		return func(events []domain.Event, err error) domain.Event {
			t.Helper()
			if err != nil || len(events) == 0 {
				t.Fatalf("decision: %v %v", events, err)
			}
			return events[0]
		}
	}
	t.Run("cancel", func(t *testing.T) {
		ev := one(t)(domain.DecideCancel(given(submitted()), domain.CancelOrder{OrderID: "o-1", Now: now}))
		got := domain.NotificationIntents(srcEvent, ev)
		if len(got) != 1 || got[0].Recipient != "user:u-1" || got[0].Data["amount"] != "15000" {
			t.Fatalf("intents %#v", got)
		}
	})
	t.Run("finalised reservation", func(t *testing.T) {
		// The message says why, as the reservation did.
		ev := one(t)(domain.FinaliseCancel(given(submitted(), cancelReserved()), now, now))
		got := domain.NotificationIntents(srcEvent, ev)
		if len(got) != 1 || got[0].Recipient != "user:u-1" || got[0].Data["reason"] != "changed my mind" || !strings.Contains(got[0].Message, "\n사유: changed my mind") {
			t.Fatalf("intents %#v", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		ev := one(t)(domain.DecideExpire(given(submittedWithDeadline()), domain.ExpiryCheck{Watermark: now.Add(deadline), Now: now.Add(deadline)}))
		if got := domain.NotificationIntents(srcEvent, ev); len(got) != 1 || got[0].Recipient != "user:u-1" || got[0].Data["status"] != "expired" {
			t.Fatalf("intents %#v", got)
		}
	})
	t.Run("a paid order cancelled: cancellation, then the refund's credit", func(t *testing.T) {
		events, err := domain.DecideCancel(given(submitted(), paidBy("dep_1", t0)), domain.CancelOrder{OrderID: "o-1", Now: now})
		if err != nil || len(events) != 2 {
			t.Fatalf("DecideCancel: %v %v", events, err)
		}
		credit := one(t)(domain.DecideCredit(domain.Wallet{}, events[1].(domain.OrderRefunded).WalletCredit(now)))
		got := domain.NotificationIntents(srcEvent, credit)
		if len(got) != 1 || got[0].Kind != domain.NotifyWalletRefund || got[0].Data["order_id"] != "o-1" || got[0].Data["refund_kind"] != "order_refund" {
			t.Fatalf("intents %#v", got)
		}
	})
	t.Run("bill flow", func(t *testing.T) {
		f := newLinkFlow(t)
		issued := f.issue(120_000)
		paid := f.pay("dep_9", 20_000)
		reminded := f.do(domain.DecideRemind(f.link, domain.Remind{Now: f.at}))
		for _, e := range append(append(issued, paid), reminded...) {
			checkIntents(t, domain.NotificationIntents(srcEvent, e))
		}
		if got := domain.NotificationIntents(srcEvent, reminded[0]); len(got) != 1 || got[0].Data["outstanding"] != "100000" {
			t.Fatalf("reminder intents %#v", got)
		}
		// The next bill expires this one: no message of its own.
		next := f.issue(90_000)
		if got := domain.NotificationIntents(srcEvent, next[0]); next[0].EventType() != "bill.expired" || len(got) != 0 {
			t.Fatalf("%s intents %#v, want none", next[0].EventType(), got)
		}
		cancelled := f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: f.link.Current.ID, Reason: "금액 오류", Now: f.at}))
		got := domain.NotificationIntents(srcEvent, cancelled[0])
		checkIntents(t, got)
		second := next[1].(domain.BillIssued)
		if len(got) != 1 || got[0].Kind != domain.NotifyBillCancelled || got[0].Data["bill_id"] != second.BillID ||
			got[0].Data["amount"] != "90000" || got[0].Data["issued_at"] != domain.FormatTime(second.IssuedAt) || strings.Contains(got[0].Message, "금액 오류") {
			t.Fatalf("cancellation intents %#v", got)
		}
	})
}

func TestWon(t *testing.T) {
	tests := []struct {
		amount int64
		want   string
	}{
		{0, "0원"}, {7, "7원"}, {999, "999원"}, {1000, "1,000원"}, {15000, "15,000원"}, {123456, "123,456원"},
		{1234567, "1,234,567원"}, {domain.MaxAmount, "1,000,000,000,000,000원"}, {-1500, "-1,500원"},
	}
	for _, tt := range tests {
		if got := domain.Won(tt.amount); got != tt.want {
			t.Errorf("Won(%d) = %q, want %q", tt.amount, got, tt.want)
		}
	}
}

func TestRecipients(t *testing.T) {
	if got := domain.StoreRecipient("st_1"); got != "store:st_1" {
		t.Errorf("StoreRecipient = %q", got)
	}
	if got := domain.DistributorRecipient("d-1"); got != "distributor:d-1" {
		t.Errorf("DistributorRecipient = %q", got)
	}
	if got := domain.UserRecipient("u-1"); got != "user:u-1" {
		t.Errorf("UserRecipient = %q", got)
	}
}

package domain

import (
	"strconv"
	"strings"
)

// Notification kinds (API.md "Notifications"): the provider's custom_type.
const (
	// NotifyBillIssued tells a store of a new bill: amount, the dedicated
	// account number and holder.
	NotifyBillIssued = "bill_issued"
	// NotifyBillCancelled tells a store that a bill was cancelled and
	// nothing is due on it: which bill, its amount and issue date.
	NotifyBillCancelled = "bill_cancelled"
	// NotifyPaymentReceived tells a distributor that a store paid.
	NotifyPaymentReceived = "payment_received"
	// NotifyPaymentComplete confirms to a store that its transfer arrived.
	NotifyPaymentComplete = "payment_complete"
	// NotifyUnpaidReminder reminds a store of the outstanding amount of
	// its current bill, and the account to pay to.
	NotifyUnpaidReminder = "unpaid_reminder"
	// NotifyOrderCancelled tells a buyer that an order was cancelled or
	// expired.
	NotifyOrderCancelled = "order_cancelled"
	// NotifyWalletRefund tells a buyer that money was refunded to the
	// wallet.
	NotifyWalletRefund = "wallet_refund"
	// NotifyWithdrawalReturned tells a buyer that a withdrawal could not
	// be sent (the provider failed or refused it) and its money is back in
	// the wallet.
	NotifyWithdrawalReturned = "withdrawal_returned"
	// NotifyWithdrawalSent tells a buyer that a withdrawal was sent to
	// the bank account.
	NotifyWithdrawalSent = "withdrawal_sent"
)

// StoreRecipient is the recipient (the provider's channel) of a store.
func StoreRecipient(id StoreID) string { return "store:" + string(id) }

// DistributorRecipient is the recipient of a distributor.
func DistributorRecipient(id DistributorID) string { return "distributor:" + string(id) }

// UserRecipient is the recipient of a buyer (a wallet owner).
func UserRecipient(id UserID) string { return "user:" + string(id) }

// NotificationIntent is a message an event calls for, before it is
// recorded: what NotificationIntents returns and DecideCreateNotification
// records.
type NotificationIntent struct {
	// ID is NewNotificationID(SourceEventID, Kind, Recipient).
	ID NotificationID
	// Kind is one of the Notify* kinds.
	Kind string
	// Recipient is "store:<id>", "distributor:<id>" or "user:<id>".
	Recipient string
	// Message is the rendered text, in Korean.
	Message string
	// Data holds the fields a client app shows beside the text (amount,
	// bill_id, account_number ...), all as strings; amounts are plain
	// integers. The provider adapters add notification_id.
	Data map[string]string
	// SourceEventID is the event_id of the envelope of the event.
	SourceEventID string
	// SourceType is the event's type (bill.issued ...).
	SourceType string
	// SourceSeq is the stream sequence of the commit that holds the event
	// (set by its recorder; 0: unknown). One recipient's notifications go
	// out in the order of their sources.
	SourceSeq uint64
}

// NotificationIntents returns the messages an event calls for, at most one
// per recipient, in a fixed order. It is pure and deterministic: the same
// event and sourceEventID (the envelope's event_id) give the same intents,
// with the same IDs, on every engine instance and after any replay.
//
//	bill.issued             bill_issued       store        amount, dedicated account (bank, number, holder), memo
//	bill.cancelled          bill_cancelled    store        the bill (ID, amount, issue date, what was paid), nothing due
//	store.payment_received  payment_received  distributor  amount, fee, net, settlement date, the bill's balance
//	                        payment_complete  store        amount, the bill's balance
//	bill.reminded           unpaid_reminder   store        outstanding of amount, dedicated account
//	order.cancelled         order_cancelled   user (buyer) order, amount, reason
//	order.expired           order_cancelled   user (buyer) order, amount (the payment deadline passed)
//	wallet.credited         wallet_refund     user         amount, what it refunds (kind deposit_refund,
//	                                                       order_refund, orphan_refund or payment_reversal)
//	                        withdrawal_returned user       amount, the payout (kind payout_reversal: a
//	                                                       withdrawal the bank did not send)
//	payout.settled          withdrawal_sent   user         amount, the payout (a wallet's; not events
//	                                                       written before they named their source)
//
// A store buys from several distributors and has one channel: the four
// messages to a store name the distributor after their tag ("[청구서]
// 한울유통: 행복식당 님, …") when its link was made with a distributor name,
// and their data has distributor_name; a link without one gets them as
// before.
//
// Every other event calls for nothing. An event without the recipient's ID
// calls for no message to it: order.cancelled and order.expired written
// before they carried buyer_id notify no one, nor does bill.cancelled
// written before it carried issued_at. A bill that expires (bill.expired,
// the next bill issued) calls for nothing: the next bill's bill_issued is
// the store's news.
func NotificationIntents(sourceEventID string, ev Event) []NotificationIntent {
	var out []NotificationIntent
	add := func(kind, recipientID, recipient, message string, data map[string]string) {
		if recipientID == "" {
			return
		}
		out = append(out, NotificationIntent{
			ID: NewNotificationID(sourceEventID, kind, recipient), Kind: kind, Recipient: recipient,
			Message: message, Data: data, SourceEventID: sourceEventID, SourceType: ev.EventType(),
		})
	}
	switch e := ev.(type) {
	case BillIssued:
		add(NotifyBillIssued, string(e.StoreID), StoreRecipient(e.StoreID), billIssuedText(e), billIssuedData(e))
	case BillCancelled:
		if !e.IssuedAt.IsZero() {
			add(NotifyBillCancelled, string(e.StoreID), StoreRecipient(e.StoreID), billCancelledText(e), billCancelledData(e))
		}
	case StorePaymentReceived:
		add(NotifyPaymentReceived, string(e.DistributorID), DistributorRecipient(e.DistributorID), paymentReceivedText(e), paymentData(e, true))
		add(NotifyPaymentComplete, string(e.StoreID), StoreRecipient(e.StoreID), paymentCompleteText(e), paymentData(e, false))
	case BillReminded:
		add(NotifyUnpaidReminder, string(e.StoreID), StoreRecipient(e.StoreID), reminderText(e), reminderData(e))
	case OrderCancelled:
		add(NotifyOrderCancelled, string(e.BuyerID), UserRecipient(e.BuyerID), orderClosedText("주문이 취소되었습니다.", e.OrderID, e.Amount, e.Reason),
			orderClosedData(e.OrderID, e.Amount, string(StatusCancelled), e.Reason))
	case OrderExpired:
		add(NotifyOrderCancelled, string(e.BuyerID), UserRecipient(e.BuyerID), orderClosedText("입금 기한이 지나 주문이 취소되었습니다.", e.OrderID, e.Amount, ""),
			orderClosedData(e.OrderID, e.Amount, string(StatusExpired), ""))
	case PayoutSettled:
		if e.Source == PayoutFromWallet {
			add(NotifyWithdrawalSent, e.SourceID, UserRecipient(UserID(e.SourceID)), withdrawalSentText(e), withdrawalSentData(e))
		}
	case WalletCredited:
		if e.Kind == CreditPayoutReversal {
			add(NotifyWithdrawalReturned, string(e.UserID), UserRecipient(e.UserID), withdrawalReturnedText(e), withdrawalReturnedData(e))
		} else if why, ok := refundReason(e.Kind); ok {
			add(NotifyWalletRefund, string(e.UserID), UserRecipient(e.UserID), walletRefundText(e, why), walletRefundData(e))
		}
	}
	return out
}

// refundReason is how a refund's message names what it refunds; ok is
// false for a wallet credit that is not a refund (payout_reversal: a
// withdrawal the bank did not send).
func refundReason(kind string) (why string, ok bool) {
	switch kind {
	case CreditDepositRefund:
		return "취소·만료되었거나 이미 결제된 주문으로 보내신 입금", true
	case CreditOrderRefund:
		return "취소된 주문의 결제 금액", true
	case CreditOrphanRefund:
		return "주문과 연결되지 않은 입금", true
	case CreditPaymentReversal:
		// The order stopped awaiting its payment before it took the
		// wallet's: the command answered so, but a reactor that finished
		// a payment whose command died answers no one.
		return "결제되지 않은 주문의 지갑 결제 금액", true
	}
	return "", false
}

// fromText is what follows a store message's tag: the distributor's name
// and a colon when the link has one, so that a store that buys from several
// distributors knows whose message it is.
func fromText(distributorName string) string {
	if distributorName == "" {
		return ""
	}
	return distributorName + ": "
}

// fromData adds the distributor's name, when the link has one, to the data
// of a store's message.
func fromData(d map[string]string, distributorName string) map[string]string {
	if distributorName != "" {
		d["distributor_name"] = distributorName
	}
	return d
}

func billIssuedText(e BillIssued) string {
	var b strings.Builder
	b.WriteString("[청구서] " + fromText(e.DistributorName) + e.StoreName + " 님, " + Won(e.Amount) + " 청구서가 발행되었습니다.\n")
	b.WriteString("입금 계좌: " + accountText(e.DedicatedAccount))
	if e.Memo != "" {
		b.WriteString("\n메모: " + e.Memo)
	}
	return b.String()
}

func billIssuedData(e BillIssued) map[string]string {
	d := map[string]string{
		"bill_id": e.BillID, "distributor_id": string(e.DistributorID), "store_id": string(e.StoreID), "store_name": e.StoreName,
		"amount": itoa(e.Amount), "issued_at": FormatTime(e.IssuedAt),
	}
	accountData(d, e.DedicatedAccount)
	if e.Memo != "" {
		d["memo"] = e.Memo
	}
	return fromData(d, e.DistributorName)
}

// billCancelledText tells the store which bill was cancelled and that
// nothing is due on it. It names no account to pay to, and leaves out the
// distributor's reason, a note for the distributor's own records.
func billCancelledText(e BillCancelled) string {
	var b strings.Builder
	b.WriteString("[청구서 취소] " + fromText(e.DistributorName))
	if e.StoreName != "" {
		b.WriteString(e.StoreName + " 님, ")
	}
	b.WriteString(e.IssuedAt.In(Seoul()).Format("2006-01-02") + "에 발행된 " + Won(e.Amount) + " 청구서가 취소되었습니다.\n")
	b.WriteString("청구서 번호: " + e.BillID + "\n")
	if e.PaidAmount > 0 {
		b.WriteString("이 청구서로 입금하신 " + Won(e.PaidAmount) + "은 입금 내역에 그대로 남습니다.\n")
	}
	b.WriteString("이 청구서로 입금하실 금액은 없습니다.")
	return b.String()
}

func billCancelledData(e BillCancelled) map[string]string {
	d := map[string]string{
		"bill_id": e.BillID, "distributor_id": string(e.DistributorID), "store_id": string(e.StoreID),
		"amount": itoa(e.Amount), "paid_amount": itoa(e.PaidAmount), "issued_at": FormatTime(e.IssuedAt), "cancelled_at": FormatTime(e.CancelledAt),
	}
	if e.StoreName != "" {
		d["store_name"] = e.StoreName
	}
	return fromData(d, e.DistributorName)
}

// billBalanceText is the line about the bill a payment went to.
func billBalanceText(e StorePaymentReceived) string {
	switch {
	case e.BillID == "":
		return "청구서 없이 받은 입금입니다."
	case !e.BillStatus.Current():
		// Paid while that bill was current, recorded after the next
		// replaced it (or it was cancelled): no balance to show.
		return "지난 청구서 " + Won(e.BillAmount) + "에 대한 입금입니다."
	case e.BillOutstanding == 0:
		return "청구서 " + Won(e.BillAmount) + "이 모두 입금되었습니다."
	}
	return "청구서 " + Won(e.BillAmount) + " 중 남은 금액: " + Won(e.BillOutstanding)
}

func paymentReceivedText(e StorePaymentReceived) string {
	var b strings.Builder
	b.WriteString("[입금 알림] " + e.StoreName + "에서 " + Won(e.Amount) + "을 입금했습니다.\n")
	if e.Fee > 0 {
		b.WriteString("수수료 " + Won(e.Fee) + "을 뺀 ")
	}
	b.WriteString(Won(e.Net) + "이 " + e.SettlementDate + "에 정산됩니다.\n")
	b.WriteString(billBalanceText(e))
	return b.String()
}

func paymentCompleteText(e StorePaymentReceived) string {
	return "[입금 완료] " + fromText(e.DistributorName) + e.StoreName + " 님, " + Won(e.Amount) + " 입금이 확인되었습니다.\n" + billBalanceText(e)
}

// paymentData is the data of a payment's message; the distributor's has
// the fee and the settlement, the store's the distributor's name (when the
// link has one).
func paymentData(e StorePaymentReceived, distributor bool) map[string]string {
	d := map[string]string{
		"deposit_id": string(e.DepositID), "distributor_id": string(e.DistributorID), "store_id": string(e.StoreID), "store_name": e.StoreName,
		"amount": itoa(e.Amount), "paid_at": FormatTime(e.PaidAt),
	}
	if distributor {
		d["fee"], d["net"], d["settlement_date"] = itoa(e.Fee), itoa(e.Net), e.SettlementDate
	} else {
		fromData(d, e.DistributorName)
	}
	if e.BillID != "" {
		d["bill_id"], d["bill_amount"], d["bill_paid_amount"] = e.BillID, itoa(e.BillAmount), itoa(e.BillPaidAmount)
		d["bill_outstanding"], d["bill_status"] = itoa(e.BillOutstanding), string(e.BillStatus)
	}
	return d
}

func reminderText(e BillReminded) string {
	text := "[미납 안내] " + fromText(e.DistributorName) + e.StoreName + " 님, 청구 금액 " + Won(e.Amount) + " 중 " + Won(e.Outstanding) + "이 아직 입금되지 않았습니다.\n" +
		"입금 계좌: " + accountText(e.DedicatedAccount)
	if !e.PaymentsCountedTo.IsZero() {
		// The bank is scanned now and then: a payment made since the last
		// scan is not counted yet, and the store is told so.
		text += "\n" + e.PaymentsCountedTo.In(Seoul()).Format("2006-01-02 15:04") + "까지의 입금을 반영했습니다. 그 뒤에 입금하셨다면 이 안내는 무시해 주세요."
	}
	return text
}

func reminderData(e BillReminded) map[string]string {
	d := map[string]string{
		"bill_id": e.BillID, "distributor_id": string(e.DistributorID), "store_id": string(e.StoreID), "store_name": e.StoreName,
		"amount": itoa(e.Amount), "paid_amount": itoa(e.PaidAmount), "outstanding": itoa(e.Outstanding),
	}
	if !e.PaymentsCountedTo.IsZero() {
		d["payments_counted_to"] = FormatTime(e.PaymentsCountedTo)
	}
	accountData(d, e.DedicatedAccount)
	return fromData(d, e.DistributorName)
}

func orderClosedText(headline string, order OrderID, amount int64, reason string) string {
	var b strings.Builder
	b.WriteString("[주문 취소] " + headline + "\n주문번호: " + string(order))
	if amount > 0 {
		b.WriteString("\n금액: " + Won(amount))
	}
	if reason != "" {
		b.WriteString("\n사유: " + reason)
	}
	return b.String()
}

func orderClosedData(order OrderID, amount int64, status, reason string) map[string]string {
	d := map[string]string{"order_id": string(order), "status": status}
	if amount > 0 {
		d["amount"] = itoa(amount)
	}
	if reason != "" {
		d["reason"] = reason
	}
	return d
}

func walletRefundText(e WalletCredited, why string) string {
	s := "[환불] " + Won(e.Amount) + "이 지갑으로 환불되었습니다.\n사유: " + why
	if e.OrderID != "" {
		s += "\n주문번호: " + string(e.OrderID)
	}
	return s
}

func withdrawalReturnedText(e WalletCredited) string {
	return "[출금 반환] 출금하신 " + Won(e.Amount) + "을 은행에서 보내지 못해 지갑으로 돌려드렸습니다.\n출금번호: " + string(PayoutOfReversal(e.Ref))
}

func withdrawalSentText(e PayoutSettled) string {
	return "[출금 완료] 출금하신 " + Won(e.Amount) + "을 보냈습니다.\n출금번호: " + string(e.PayoutID)
}

func withdrawalSentData(e PayoutSettled) map[string]string {
	return map[string]string{"user_id": e.SourceID, "amount": itoa(e.Amount), "payout_id": string(e.PayoutID), "settled_at": FormatTime(e.SettledAt)}
}

func withdrawalReturnedData(e WalletCredited) map[string]string {
	return map[string]string{"user_id": string(e.UserID), "amount": itoa(e.Amount), "payout_id": string(PayoutOfReversal(e.Ref)), "credited_at": FormatTime(e.CreditedAt)}
}

func walletRefundData(e WalletCredited) map[string]string {
	d := map[string]string{"user_id": string(e.UserID), "amount": itoa(e.Amount), "refund_kind": e.Kind, "ref": e.Ref, "credited_at": FormatTime(e.CreditedAt)}
	if e.OrderID != "" {
		d["order_id"] = string(e.OrderID)
	}
	return d
}

// accountText is an account as a message shows it: "KB 5001000042 (예금주 bankbook)".
func accountText(a BankAccount) string {
	return a.Bank + " " + a.Number + " (예금주 " + a.Holder + ")"
}

func accountData(d map[string]string, a BankAccount) {
	d["bank"], d["account_number"], d["account_holder"] = a.Bank, a.Number, a.Holder
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Won formats an amount of KRW as messages show it: digits grouped by
// thousands and the unit, "1,234,500원".
func Won(amount int64) string { return GroupThousands(amount) + "원" }

// GroupThousands writes n with its digits grouped by thousands: "-1,234,500".
func GroupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

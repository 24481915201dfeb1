package domain_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// clearingAccounts are the accounts whose open items Clearing follows.
var clearingAccounts = []string{domain.AccountSuspense, domain.AccountPayoutsPending}

func TestClearing(t *testing.T) {
	suspense, pending := domain.AccountSuspense, domain.AccountPayoutsPending
	fromSuspense := domain.OrderPaid{OrderID: "o-1", DepositID: "dep_1", Amount: 15000, FromAccount: suspense, PaidAt: t0}
	reversal := domain.WalletCredited{UserID: "u-1", Amount: 4000, Kind: domain.CreditPayoutReversal, Ref: domain.ReversalRef("po_1"), FromAccount: pending, CreditedAt: t0}
	orphanToWallet := domain.WalletCredited{UserID: "u-2", Amount: 15000, Kind: domain.CreditOrphanRefund, Ref: "dep_1", FromAccount: suspense, CreditedAt: t0}
	tests := []struct {
		name  string
		event domain.Event
		want  domain.ClearingMove
	}{
		{"an orphan opens an item in suspense", orphanRecorded(), domain.ClearingMove{
			Open: domain.ClearingItem{Account: suspense, Key: "dep_1", Amount: 15000, Since: t0, Status: "orphaned"},
		}},
		{"a matched deposit moves nothing", matchedRecorded(), domain.ClearingMove{}},
		{"a refund to the bank moves the item from suspense to payouts pending", resolvedToBank("po_1", senderAccount), domain.ClearingMove{
			Close: domain.ClearingItem{Account: suspense, Key: "dep_1"},
			Open:  domain.ClearingItem{Account: pending, Key: "po_1", Amount: 15000, Since: t0.Add(time.Hour), Status: "requested"},
		}},
		{"an orphan assigned to an order stays in suspense until the order is paid", resolvedToOrder("o-2"), domain.ClearingMove{
			Note: domain.ClearingItem{Account: suspense, Key: "dep_1", Status: "resolved (assign_order), money not yet moved"},
		}},
		{"an orphan refunded to a wallet stays in suspense until the wallet is credited", resolvedToWallet("u-2"), domain.ClearingMove{
			Note: domain.ClearingItem{Account: suspense, Key: "dep_1", Status: "resolved (refund_to_wallet), money not yet moved"},
		}},
		{"an order paid from suspense closes the orphan", fromSuspense, domain.ClearingMove{
			Close: domain.ClearingItem{Account: suspense, Key: "dep_1"},
		}},
		{"an order paid from the bank moves nothing", paidBy("dep_1", t0), domain.ClearingMove{}},
		{"a failed refund to the bank moves the item back to suspense", reopened("po_1"), domain.ClearingMove{
			Close: domain.ClearingItem{Account: pending, Key: "po_1"},
			Open:  domain.ClearingItem{Account: suspense, Key: "dep_1", Amount: 15000, Since: t0.Add(2 * time.Hour), Status: "reopened"},
		}},
		{"a withdrawal opens an item in payouts pending", debited(4000, "po_1"), domain.ClearingMove{
			Open: domain.ClearingItem{Account: pending, Key: "po_1", Amount: 4000, Since: t0, Status: "requested"},
		}},
		{"a settled payout closes its item", payoutSettled(500), domain.ClearingMove{
			Close: domain.ClearingItem{Account: pending, Key: "po_1"},
		}},
		{"a failed payout keeps its item until the money is returned", payoutFailed(), domain.ClearingMove{
			Note: domain.ClearingItem{Account: pending, Key: "po_1", Status: "failed, not yet returned"},
		}},
		{"a reversal closes the payout's item, by payout", reversal, domain.ClearingMove{
			Close: domain.ClearingItem{Account: pending, Key: "po_1"},
		}},
		{"an orphan credited to a wallet closes it, by deposit", orphanToWallet, domain.ClearingMove{
			Close: domain.ClearingItem{Account: suspense, Key: "dep_1"},
		}},
		{"a refund from the bank moves nothing", credited(15000, "dep_2"), domain.ClearingMove{}},
		{"a store payment moves nothing", billedPayment(), domain.ClearingMove{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.Clearing(tt.event)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Clearing(%s)\n got %+v\nwant %+v", tt.event.EventType(), got, tt.want)
			}
			checkClearingFollowsPostings(t, tt.event, got)
		})
	}
}

// checkClearingFollowsPostings checks that mv moves a clearing account's
// money the way ev's postings do: an item opens where the postings credit
// the account (by its amount), closes where they debit it, and an event that
// leaves the account's balance as it was opens and closes nothing there.
func checkClearingFollowsPostings(t *testing.T, ev domain.Event, mv domain.ClearingMove) {
	t.Helper()
	credits := map[string]int64{}
	for _, p := range domain.Postings(ev) {
		credits[p.Credit] += p.Amount
		credits[p.Debit] -= p.Amount
	}
	for _, acc := range clearingAccounts {
		opens, closes := mv.Open.Account == acc, mv.Close.Account == acc
		switch c := credits[acc]; {
		case opens && c != mv.Open.Amount:
			t.Errorf("%s: opens %d on %s, its postings credit %d", ev.EventType(), mv.Open.Amount, acc, c)
		case closes && c >= 0:
			t.Errorf("%s: closes an item of %s, its postings debit it nothing (%d)", ev.EventType(), acc, c)
		case !opens && !closes && c != 0:
			t.Errorf("%s: opens and closes nothing on %s, its postings move %d", ev.EventType(), acc, c)
		}
	}
}

// TestClearingDrains folds whole flows into the open items of the clearing
// accounts: every item a flow opens is closed once its money has moved on,
// by the same key, and what is left open is what an operator must see.
func TestClearingDrains(t *testing.T) {
	suspense, pending := domain.AccountSuspense, domain.AccountPayoutsPending
	type item struct{ account, key string }
	orphanToWallet := domain.WalletCredited{UserID: "u-2", Amount: 15000, Kind: domain.CreditOrphanRefund, Ref: "dep_1", FromAccount: suspense, CreditedAt: t0}
	reversal := domain.WalletCredited{UserID: "u-1", Amount: 4000, Kind: domain.CreditPayoutReversal, Ref: domain.ReversalRef("po_1"), FromAccount: pending, CreditedAt: t0}
	fromSuspense := domain.OrderPaid{OrderID: "o-2", DepositID: "dep_1", Amount: 15000, FromAccount: suspense, PaidAt: t0}
	tests := []struct {
		name     string
		events   []domain.Event
		wantOpen map[item]int64
	}{
		{"an orphan nobody resolved stays open", []domain.Event{orphanRecorded()},
			map[item]int64{{suspense, "dep_1"}: 15000}},
		{"an orphan resolved but not yet moved stays open", []domain.Event{orphanRecorded(), resolvedToWallet("u-2")},
			map[item]int64{{suspense, "dep_1"}: 15000}},
		{"an orphan refunded to a wallet", []domain.Event{orphanRecorded(), resolvedToWallet("u-2"), orphanToWallet}, map[item]int64{}},
		{"an orphan assigned to an order", []domain.Event{orphanRecorded(), resolvedToOrder("o-2"), fromSuspense}, map[item]int64{}},
		{"an orphan refunded to the bank, sent", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount),
			domain.PayoutSettled{PayoutID: "po_1", Amount: 15000, Fee: 500, BankAccount: collect.Number, SettledAt: t0}}, map[item]int64{}},
		{"an orphan refunded to the bank, not yet sent", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount)},
			map[item]int64{{pending, "po_1"}: 15000}},
		{"a failed refund to the bank, reopened and refunded to a wallet", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount),
			payoutFailed(), reopened("po_1"), resolvedToWallet("u-2"), orphanToWallet}, map[item]int64{}},
		{"a failed refund to the bank not yet reopened", []domain.Event{orphanRecorded(), resolvedToBank("po_1", senderAccount), payoutFailed()},
			map[item]int64{{pending, "po_1"}: 15000}},
		{"a withdrawal sent", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1"), payoutSettled(500)}, map[item]int64{}},
		{"a failed withdrawal returned to the wallet", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1"), payoutFailed(), reversal}, map[item]int64{}},
		{"a failed withdrawal not yet returned", []domain.Event{credited(15000, "dep_1"), debited(4000, "po_1"), payoutFailed()},
			map[item]int64{{pending, "po_1"}: 4000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			open := map[item]int64{}
			balance := map[string]int64{} // credit-positive, as a liability holds money
			for _, ev := range tt.events {
				mv := domain.Clearing(ev)
				if mv.Close.Account != "" {
					k := item{mv.Close.Account, mv.Close.Key}
					if _, ok := open[k]; !ok {
						t.Fatalf("%s closes %v, which is not open (open: %v)", ev.EventType(), k, open)
					}
					delete(open, k)
				}
				if mv.Open.Account != "" {
					k := item{mv.Open.Account, mv.Open.Key}
					if _, ok := open[k]; ok {
						t.Fatalf("%s opens %v, which is open already", ev.EventType(), k)
					}
					open[k] = mv.Open.Amount
				}
				if mv.Note.Account != "" {
					if _, ok := open[item{mv.Note.Account, mv.Note.Key}]; !ok {
						t.Fatalf("%s notes %s %s, which is not open (open: %v)", ev.EventType(), mv.Note.Account, mv.Note.Key, open)
					}
				}
				for _, p := range domain.Postings(ev) {
					balance[p.Credit] += p.Amount
					balance[p.Debit] -= p.Amount
				}
			}
			if !reflect.DeepEqual(open, tt.wantOpen) {
				t.Fatalf("open items\n got %v\nwant %v", open, tt.wantOpen)
			}
			// The open items are what the clearing accounts hold.
			for _, acc := range clearingAccounts {
				var sum int64
				for k, amount := range open {
					if k.account == acc {
						sum += amount
					}
				}
				if balance[acc] != sum {
					t.Errorf("%s holds %d, its open items %d", acc, balance[acc], sum)
				}
			}
		})
	}
}

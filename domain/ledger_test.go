package domain_test

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// The accounts of the chart in docs/domain.md ("Chart of accounts"), by name
// or, for families, by prefix.
var (
	chartAccounts = []string{domain.AccountPayableOrders, domain.AccountSuspense, domain.AccountPayoutsPending, domain.AccountBankFees, domain.AccountRevenueFees}
	chartFamilies = []string{"assets:bank:", "liabilities:wallet:", "liabilities:payable:distributor:"}
)

func inChart(account string) bool {
	if slices.Contains(chartAccounts, account) {
		return true
	}
	for _, prefix := range chartFamilies {
		if rest, ok := strings.CutPrefix(account, prefix); ok && rest != "" {
			return true
		}
	}
	return false
}

// checkPostings checks what docs/domain.md says of every posting: it debits
// one account of the chart and credits another by the same positive amount.
// It returns the postings' balances, debits minus credits, and checks that
// they sum to 0: all amounts are KRW (Posting has no currency; KRW is the
// only currency collected), so "per currency" is one sum.
func checkPostings(t *testing.T, ps []domain.Posting) map[string]int64 {
	t.Helper()
	bal := map[string]int64{}
	for _, p := range ps {
		if p.Amount <= 0 {
			t.Errorf("posting %+v: amount is not positive", p)
		}
		if p.Debit == p.Credit {
			t.Errorf("posting %+v: debits and credits the same account", p)
		}
		if !inChart(p.Debit) || !inChart(p.Credit) {
			t.Errorf("posting %+v: an account is not in the chart of accounts", p)
		}
		if p.Memo == "" {
			t.Errorf("posting %+v: no memo", p)
		}
		bal[p.Debit] += p.Amount
		bal[p.Credit] -= p.Amount
	}
	var sum int64
	for _, b := range bal {
		sum += b
	}
	if sum != 0 {
		t.Errorf("postings %+v are not balanced: they sum to %d", ps, sum)
	}
	return bal
}

func TestAccountNames(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"bank account, hyphens removed", domain.AccountBank("123401-04-567890"), "assets:bank:12340104567890"},
		{"bank account, spaces removed", domain.AccountBank("1234 0104 567890"), "assets:bank:12340104567890"},
		{"bank account, letters upper-cased", domain.AccountBank("ab-12"), "assets:bank:AB12"},
		{"wallet", domain.AccountWallet("u-1"), "liabilities:wallet:u-1"},
		{"payable orders", domain.AccountPayableOrders, "liabilities:payable:orders"},
		{"suspense", domain.AccountSuspense, "liabilities:suspense:unmatched"},
		{"payouts pending", domain.AccountPayoutsPending, "liabilities:payouts:pending"},
		{"bank fees", domain.AccountBankFees, "expenses:bank-fees"},
		{"revenue from fees", domain.AccountRevenueFees, "revenue:fees"},
		{"payable to a distributor", domain.AccountPayableDistributor("dist-1"), "liabilities:payable:distributor:dist-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestNormalizeAccountNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"123401-04-567890", "12340104567890"},
		{"1234 0104 567890", "12340104567890"},
		{"\t1234\u00a00104\u3000567890\n", "12340104567890"},
		{"ab-cd", "ABCD"},
		{"", ""},
		{"---", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := domain.NormalizeAccountNumber(tt.in); got != tt.want {
				t.Errorf("NormalizeAccountNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := domain.NormalizeAccountNumber(domain.NormalizeAccountNumber(tt.in)); got != tt.want {
				t.Errorf("NormalizeAccountNumber is not idempotent on %q: %q", tt.in, got)
			}
		})
	}
}

// TestPostings checks every posting rule of docs/domain.md ("Posting rules")
// posting by posting.
func TestPostings(t *testing.T) {
	bank := domain.AccountBank(collect.Number) // assets:bank:123456789
	wallet := domain.AccountWallet("u-1")
	orphan := orphanRecorded()
	unknownAccount := orphanRecorded()
	unknownAccount.AccountNumber, unknownAccount.Reason = "999 888-7", domain.ReasonUnknownAccount
	unheldAccount := unknownAccount
	unheldAccount.AccountNumber, unheldAccount.LandedOn = "5001000007", collect.Number
	credit := func(kind, ref, from string) domain.WalletCredited {
		return domain.WalletCredited{UserID: "u-1", Amount: 15000, Kind: kind, Ref: ref, FromAccount: from, CreditedAt: t0}
	}
	allFee := unbilledPayment()
	allFee.FeeBps, allFee.Fee, allFee.Net = 10000, 7_000, 0
	tests := []struct {
		name  string
		event domain.Event
		want  []domain.Posting
	}{
		{"deposit.recorded, orphaned", orphan, []domain.Posting{
			{Debit: "assets:bank:123456789", Credit: "liabilities:suspense:unmatched", Amount: 15000, Memo: "orphan deposit dep_1 (no_such_name)"},
		}},
		{"deposit.recorded, orphaned on an unknown account", unknownAccount, []domain.Posting{
			{Debit: "assets:bank:9998887", Credit: "liabilities:suspense:unmatched", Amount: 15000, Memo: "orphan deposit dep_1 (unknown_account)"},
		}},
		{"deposit.recorded, orphaned on a dedicated account no store holds", unheldAccount, []domain.Posting{
			{Debit: "assets:bank:123456789", Credit: "liabilities:suspense:unmatched", Amount: 15000, Memo: "orphan deposit dep_1 (unknown_account)"},
		}},
		{"order.paid from the bank", paidBy("dep_1", t0), []domain.Posting{
			{Debit: bank, Credit: "liabilities:payable:orders", Amount: 15000, Memo: "order o-1 paid by dep_1"},
		}},
		{"order.paid by an assigned orphan, from suspense",
			domain.OrderPaid{OrderID: "o-1", DepositID: "dep_1", Amount: 15000, FromAccount: domain.AccountSuspense, PaidAt: t0}, []domain.Posting{
				{Debit: "liabilities:suspense:unmatched", Credit: "liabilities:payable:orders", Amount: 15000, Memo: "order o-1 paid by dep_1"},
			}},
		{"wallet.credited, deposit_refund from the bank", credit(domain.CreditDepositRefund, "dep_2", bank), []domain.Posting{
			{Debit: bank, Credit: "liabilities:wallet:u-1", Amount: 15000, Memo: "deposit_refund dep_2"},
		}},
		{"wallet.credited, order_refund from payable orders", credit(domain.CreditOrderRefund, "order:o-1", domain.AccountPayableOrders), []domain.Posting{
			{Debit: "liabilities:payable:orders", Credit: wallet, Amount: 15000, Memo: "order_refund order:o-1"},
		}},
		{"wallet.credited, orphan_refund from suspense", credit(domain.CreditOrphanRefund, "dep_1", domain.AccountSuspense), []domain.Posting{
			{Debit: "liabilities:suspense:unmatched", Credit: wallet, Amount: 15000, Memo: "orphan_refund dep_1"},
		}},
		{"wallet.credited, payout_reversal from payouts pending", credit(domain.CreditPayoutReversal, "reversal:po_1", domain.AccountPayoutsPending), []domain.Posting{
			{Debit: "liabilities:payouts:pending", Credit: wallet, Amount: 15000, Memo: "payout_reversal reversal:po_1"},
		}},
		{"wallet.debited", debited(4000, "po_1"), []domain.Posting{
			{Debit: "liabilities:wallet:u-1", Credit: "liabilities:payouts:pending", Amount: 4000, Memo: "withdrawal po_1"},
		}},
		{"deposit.resolved, refund_to_bank", resolvedToBank("po_1", senderAccount), []domain.Posting{
			{Debit: "liabilities:suspense:unmatched", Credit: "liabilities:payouts:pending", Amount: 15000, Memo: "orphan dep_1 refunded to the bank by po_1"},
		}},
		{"payout.settled with a fee", payoutSettled(500), []domain.Posting{
			{Debit: "liabilities:payouts:pending", Credit: "assets:bank:123456789", Amount: 4000, Memo: "payout po_1 sent"},
			{Debit: "expenses:bank-fees", Credit: "assets:bank:123456789", Amount: 500, Memo: "firm-banking fee for po_1"},
		}},
		{"payout.settled without a fee", payoutSettled(0), []domain.Posting{
			{Debit: "liabilities:payouts:pending", Credit: "assets:bank:123456789", Amount: 4000, Memo: "payout po_1 sent"},
		}},
		{"deposit.reopened", reopened("po_1"), []domain.Posting{
			{Debit: "liabilities:payouts:pending", Credit: "liabilities:suspense:unmatched", Amount: 15000, Memo: "refund po_1 failed: account closed"},
		}},
		{"store.payment_received on a bill, with a fee: to the collection account", billedPayment(), []domain.Posting{
			{Debit: bank, Credit: "liabilities:payable:distributor:dist-1", Amount: 20_000, Memo: "store store-1 paid dep_1 for " + bill(1)},
			{Debit: "liabilities:payable:distributor:dist-1", Credit: "revenue:fees", Amount: 500, Memo: "fee on dep_1 (250 bps)"},
		}},
		{"store.payment_received unbilled, no fee", unbilledPayment(), []domain.Posting{
			{Debit: bank, Credit: "liabilities:payable:distributor:dist-1", Amount: 7_000, Memo: "store store-1 paid dep_2 (unbilled)"},
		}},
		{"store.payment_received with a fee of 100%", allFee, []domain.Posting{
			{Debit: bank, Credit: "liabilities:payable:distributor:dist-1", Amount: 7_000, Memo: "store store-1 paid dep_2 (unbilled)"},
			{Debit: "liabilities:payable:distributor:dist-1", Credit: "revenue:fees", Amount: 7_000, Memo: "fee on dep_2 (10000 bps)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := domain.Postings(tt.event)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Postings(%s)\n got %+v\nwant %+v", tt.event.EventType(), got, tt.want)
			}
			checkPostings(t, got)
			// A pure function: the same event posts the same again.
			if again := domain.Postings(tt.event); !reflect.DeepEqual(again, got) {
				t.Fatalf("Postings is not deterministic: %+v then %+v", got, again)
			}
		})
	}
}

// TestPostingsNothing: the events docs/domain.md lists under "Everything else
// posts nothing".
func TestPostingsNothing(t *testing.T) {
	refundedDeposit := matchedRecorded()
	refundedDeposit.Outcome = domain.OutcomeRefundedToWallet
	tests := []struct {
		name  string
		event domain.Event
	}{
		{"order.submitted", submitted()},
		{"order.cancel_reserved", cancelReserved()},
		{"order.cancelled", domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0}},
		{"order.cancelled after a reservation", domain.OrderCancelled{OrderID: "o-1", CancelledAt: t0, AfterReservation: true}},
		{"order.refunded of a deposit", domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", DepositID: "dep_2", Amount: 15000, FromAccount: domain.AccountBank(collect.Number), RefundedAt: t0}},
		{"order.refunded of a paid amount", domain.OrderRefunded{OrderID: "o-1", BuyerID: "u-1", Amount: 15000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0}},
		{"deposit.recorded, matched", matchedRecorded()},
		{"deposit.recorded, refunded_to_wallet", refundedDeposit},
		{"deposit.resolved, assign_order", resolvedToOrder("o-1")},
		{"deposit.resolved, refund_to_wallet", resolvedToWallet("u-2")},
		{"payout.requested", payoutRequested()},
		{"payout.failed", payoutFailed()},
		{"order.expired", domain.OrderExpired{OrderID: "o-1", ExpiresAt: t0, ExpiredAt: t0}},
		{"store.linked", linked()},
		{"bill.issued", billIssued()},
		{"bill.expired", billExpired()},
		{"bill.cancelled", billCancelled()},
		{"bill.reminded", billReminded()},
		{"notification.created", ntfCreated()},
		{"notification.attempted", ntfAttempted(1)},
		{"notification.sent", ntfSent(1)},
		{"notification.failed", ntfFailed(1, false)},
		{"notification.dead_lettered", ntfDead(1)},
		{"notification.redriven", ntfRedriven()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := domain.Postings(tt.event); len(got) != 0 {
				t.Fatalf("Postings(%s) = %+v, want none", tt.event.EventType(), got)
			}
		})
	}
}

// TestPostingsCoverEveryEvent: between them, TestPostings and
// TestPostingsNothing speak of every event type the codec registers. The
// list is the one in docs/domain.md; each name must be registered.
func TestPostingsCoverEveryEvent(t *testing.T) {
	posting := []domain.Event{orphanRecorded(), paidBy("dep_1", t0), credited(1, "dep_1"), debited(1, "po_1"), resolvedToBank("po_1", senderAccount), payoutSettled(0), reopened("po_1"), billedPayment()}
	silent := []domain.Event{submitted(), cancelReserved(), domain.OrderCancelled{}, domain.OrderRefunded{}, payoutRequested(), payoutFailed(),
		domain.OrderExpired{}, linked(), billIssued(), billExpired(), billCancelled(), billReminded(),
		ntfCreated(), ntfAttempted(1), ntfSent(1), ntfFailed(1, false), ntfDead(1), ntfRedriven()}
	seen := map[string]bool{}
	for _, e := range append(posting, silent...) {
		seen[e.EventType()] = true
	}
	codec := domain.Events()
	for _, name := range eventTypes {
		if _, ok := codec.Version(name); !ok {
			t.Errorf("%s is not registered", name)
		}
		if !seen[name] {
			t.Errorf("no posting test speaks of %s", name)
		}
	}
}

// flow runs decisions through the aggregates of one money flow and books
// every commit's postings, as the ledger read model does.
type flow struct {
	t        *testing.T
	balances map[string]int64
	order    domain.Order
	deposit  domain.Deposit
	payout   domain.Payout
	wallets  map[domain.UserID]domain.Wallet
	link     domain.Link
}

func newFlow(t *testing.T) *flow {
	return &flow{t: t, balances: map[string]int64{}, wallets: map[domain.UserID]domain.Wallet{}}
}

// commit checks that a decision succeeded, that its postings balance, and
// applies its events to their aggregates.
func (f *flow) commit(events []domain.Event, err error) []domain.Event {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("decision refused: %v", err)
	}
	var ps []domain.Posting
	for _, e := range events {
		ps = append(ps, domain.Postings(e)...)
		switch e := e.(type) {
		case domain.OrderSubmitted, domain.OrderCancelReserved, domain.OrderCancelled, domain.OrderPaid, domain.OrderRefunded:
			f.order = f.order.Apply(e)
		case domain.DepositRecorded, domain.DepositResolved, domain.DepositReopened:
			f.deposit = f.deposit.Apply(e)
		case domain.PayoutRequested, domain.PayoutSettled, domain.PayoutFailed:
			f.payout = f.payout.Apply(e)
		case domain.WalletCredited:
			f.wallets[e.UserID] = f.wallets[e.UserID].Apply(e)
		case domain.WalletDebited:
			f.wallets[e.UserID] = f.wallets[e.UserID].Apply(e)
		case domain.StoreLinked, domain.BillIssued, domain.BillExpired, domain.BillCancelled, domain.StorePaymentReceived, domain.BillReminded:
			f.link = f.link.Apply(e)
		default:
			f.t.Fatalf("unexpected event %T", e)
		}
	}
	for account, b := range checkPostings(f.t, ps) {
		f.balances[account] += b
		if f.balances[account] == 0 {
			delete(f.balances, account)
		}
	}
	return events
}

// applyDeposit applies a deposit to the order, as deposit.record does.
func (f *flow) applyDeposit(d domain.ApplyDeposit) []domain.Event {
	f.t.Helper()
	events, _, err := domain.DecideDeposit(f.order, d)
	return f.commit(events, err)
}

// credit credits a wallet, as the reactors do.
func (f *flow) credit(c domain.CreditWallet) {
	f.t.Helper()
	f.commit(domain.DecideCredit(f.wallets[c.UserID], c))
	// A redelivered credit needs nothing.
	if events, err := domain.DecideCredit(f.wallets[c.UserID], c); err != nil || events != nil {
		f.t.Fatalf("credit %s repeated: %v %v, want nothing", c.Ref, events, err)
	}
}

// payOut requests a payout and records the provider's answer, as the money
// reactor does; a failed one goes back to its source.
func (f *flow) payOut(req domain.PayoutRequested, fee int64, failed bool) {
	f.t.Helper()
	f.commit(domain.DecideRequestPayout(f.payout, req))
	at := req.RequestedAt.Add(time.Minute)
	var result domain.Event = domain.PayoutSettled{PayoutID: f.payout.ID, Amount: f.payout.Amount, Fee: fee, BankAccount: f.payout.PayFrom, SettledAt: at}
	if failed {
		result = domain.PayoutFailed{PayoutID: f.payout.ID, Reason: "account closed", FailedAt: at}
	}
	f.commit(domain.DecidePayoutResult(f.payout, result))
	if !failed {
		return
	}
	p := f.payout
	switch p.Source {
	case domain.PayoutFromWallet:
		f.credit(domain.CreditWallet{UserID: domain.UserID(p.SourceID), Amount: p.Amount, Kind: domain.CreditPayoutReversal, Ref: "reversal:" + string(p.ID), FromAccount: domain.AccountPayoutsPending, Now: at})
	case domain.PayoutFromDeposit:
		f.commit(domain.DecideReopen(f.deposit, domain.DepositReopened{DepositID: domain.DepositID(p.SourceID), Amount: p.Amount, PayoutID: p.ID, Reason: p.Reason, ReopenedAt: at}))
	}
}

// TestLedgerFlows runs whole money flows through the decisions and checks
// the ledger they post against docs/domain.md: every commit balances, the
// sum over all accounts is 0, payouts pending drains to 0 once the provider
// has answered, and suspense equals minus the unresolved orphans.
func TestLedgerFlows(t *testing.T) {
	bank := domain.AccountBank(collect.Number)
	at := t0.Add(2 * time.Minute)
	grace := 24 * time.Hour
	fromBank := func(id domain.DepositID, amount int64) domain.ApplyDeposit {
		return domain.ApplyDeposit{DepositID: id, Amount: amount, FromAccount: bank, DepositedAt: at, Now: at, NameGrace: grace}
	}
	recordOrphan := func(f *flow) {
		f.commit(domain.DecideRecord(f.deposit, orphanRecorded()))
	}
	resolve := func(f *flow, r domain.DepositResolved) domain.DepositResolved {
		return f.commit(domain.DecideResolve(f.deposit, r))[0].(domain.DepositResolved)
	}
	fundWallet := func(f *flow, amount int64) {
		f.credit(domain.CreditWallet{UserID: "u-1", Amount: amount, Kind: domain.CreditDepositRefund, Ref: "dep_9", FromAccount: bank, Now: at})
	}
	withdraw := func(f *flow, amount int64, id domain.PayoutID) domain.WalletDebited {
		return f.commit(domain.DecideWithdraw(f.wallets["u-1"], domain.Withdraw{UserID: "u-1", Amount: amount, PayoutID: id, To: payee, Now: at}))[0].(domain.WalletDebited)
	}
	// As the money reactor builds them (commands.ReactToMoney).
	withdrawalPayout := func(e domain.WalletDebited) domain.PayoutRequested {
		return domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: e.To, PayFrom: collect.Number, Source: domain.PayoutFromWallet,
			SourceID: string(e.UserID), FromAccount: domain.AccountWallet(e.UserID), RequestedAt: e.DebitAt}
	}
	storePay := func(f *flow, id domain.DepositID, amount int64, bps int) {
		f.commit(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: id, Amount: amount, PaidAt: at, CollectAccount: collect.Number, FeeBps: bps, SettlementDays: 1, Now: at}))
	}
	refundPayout := func(f *flow, e domain.DepositResolved) domain.PayoutRequested {
		return domain.PayoutRequested{PayoutID: e.PayoutID, Amount: e.Amount, To: *e.To, PayFrom: f.deposit.AccountNumber, Source: domain.PayoutFromDeposit,
			SourceID: string(e.DepositID), FromAccount: domain.AccountSuspense, RequestedAt: e.ResolvedAt}
	}

	tests := []struct {
		name string
		run  func(f *flow)
		want map[string]int64 // the accounts whose balance is not 0
	}{
		{
			"a deposit pays an order",
			func(f *flow) {
				f.commit(domain.DecideSubmit(f.order, submitCmd()))
				f.applyDeposit(fromBank("dep_1", 15000))
				f.commit(domain.DecideRecord(domain.Deposit{}, matchedRecorded()))
			},
			map[string]int64{bank: 15000, domain.AccountPayableOrders: -15000},
		},
		{
			"a paid order is cancelled and its amount refunded to the wallet",
			func(f *flow) {
				f.commit(domain.DecideSubmit(f.order, submitCmd()))
				f.applyDeposit(fromBank("dep_1", 15000))
				events := f.commit(domain.DecideCancel(f.order, domain.CancelOrder{OrderID: "o-1", Now: at}))
				f.credit(events[1].(domain.OrderRefunded).WalletCredit(at))
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-1"): -15000},
		},
		{
			"a second payment is refunded to the wallet",
			func(f *flow) {
				f.commit(domain.DecideSubmit(f.order, submitCmd()))
				f.applyDeposit(fromBank("dep_1", 15000))
				events := f.applyDeposit(fromBank("dep_2", 15000))
				f.credit(events[0].(domain.OrderRefunded).WalletCredit(at))
			},
			map[string]int64{bank: 30000, domain.AccountPayableOrders: -15000, domain.AccountWallet("u-1"): -15000},
		},
		{
			"a deposit for a reserved cancellation is refunded to the wallet, then the cancellation becomes final",
			func(f *flow) {
				f.commit(domain.DecideSubmit(f.order, submitCmd()))
				f.commit(domain.DecideCancel(f.order, domain.CancelOrder{OrderID: "o-1", Deposited: true, Now: at}))
				events := f.applyDeposit(fromBank("dep_1", 15000))
				f.credit(events[0].(domain.OrderRefunded).WalletCredit(at))
				f.commit(domain.FinaliseCancel(f.order, f.order.CancelAt, f.order.CancelAt))
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-1"): -15000},
		},
		{
			"an orphan waits in suspense",
			func(f *flow) { recordOrphan(f) },
			map[string]int64{bank: 15000, domain.AccountSuspense: -15000},
		},
		{
			"an orphan assigned to an order pays it from suspense",
			func(f *flow) {
				f.commit(domain.DecideSubmit(f.order, submitCmd()))
				recordOrphan(f)
				r := resolve(f, resolvedToOrder("o-1"))
				f.applyDeposit(domain.ApplyDeposit{DepositID: r.DepositID, Amount: r.Amount, FromAccount: domain.AccountSuspense, DepositedAt: r.ResolvedAt, Now: r.ResolvedAt, NameGrace: grace})
			},
			map[string]int64{bank: 15000, domain.AccountPayableOrders: -15000},
		},
		{
			"an orphan refunded to a wallet",
			func(f *flow) {
				recordOrphan(f)
				r := resolve(f, resolvedToWallet("u-2"))
				f.credit(domain.CreditWallet{UserID: r.UserID, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: at})
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-2"): -15000},
		},
		{
			"a withdrawal is in payouts pending until the provider answers",
			func(f *flow) {
				fundWallet(f, 15000)
				f.commit(domain.DecideRequestPayout(f.payout, withdrawalPayout(withdraw(f, 4000, "po_1"))))
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-1"): -11000, domain.AccountPayoutsPending: -4000},
		},
		{
			"a withdrawal settled with a fee",
			func(f *flow) {
				fundWallet(f, 15000)
				f.payOut(withdrawalPayout(withdraw(f, 4000, "po_1")), 500, false)
			},
			map[string]int64{bank: 15000 - 4000 - 500, domain.AccountBankFees: 500, domain.AccountWallet("u-1"): -11000},
		},
		{
			"a failed withdrawal is reversed to the wallet",
			func(f *flow) {
				fundWallet(f, 15000)
				f.payOut(withdrawalPayout(withdraw(f, 4000, "po_1")), 0, true)
				if f.wallets["u-1"].Balance != 15000 {
					f.t.Errorf("wallet balance after the reversal = %d, want 15000", f.wallets["u-1"].Balance)
				}
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-1"): -15000},
		},
		{
			"an orphan refunded to the bank, settled with a fee",
			func(f *flow) {
				recordOrphan(f)
				f.payOut(refundPayout(f, resolve(f, resolvedToBank("po_2", senderAccount))), 300, false)
			},
			map[string]int64{bank: -300, domain.AccountBankFees: 300},
		},
		{
			"an orphan refund to the bank failed: back in suspense",
			func(f *flow) {
				recordOrphan(f)
				f.payOut(refundPayout(f, resolve(f, resolvedToBank("po_2", senderAccount))), 0, true)
			},
			map[string]int64{bank: 15000, domain.AccountSuspense: -15000},
		},
		{
			"a reopened orphan resolved again to a wallet",
			func(f *flow) {
				recordOrphan(f)
				f.payOut(refundPayout(f, resolve(f, resolvedToBank("po_2", senderAccount))), 0, true)
				r := resolve(f, resolvedToWallet("u-2"))
				f.credit(domain.CreditWallet{UserID: r.UserID, Amount: r.Amount, Kind: domain.CreditOrphanRefund, Ref: string(r.DepositID), FromAccount: domain.AccountSuspense, Now: at})
			},
			map[string]int64{bank: 15000, domain.AccountWallet("u-2"): -15000},
		},
		{
			"store payments: billed, several, overpaying, superseded, cancelled and unbilled, across a fee change",
			func(f *flow) {
				f.commit(domain.DecideLink(f.link, linkCmd()))
				f.commit(domain.DecideIssueBill(f.link, domain.IssueBill{Amount: 50_000, Now: at}))
				storePay(f, "dep_1", 20_000, 100)                                                   // fee 200
				storePay(f, "dep_2", 40_001, 250)                                                   // fee 1000, overpays
				f.commit(domain.DecideIssueBill(f.link, domain.IssueBill{Amount: 10_000, Now: at})) // expires bill 1
				f.commit(domain.DecideRemind(f.link, domain.Remind{Now: at}))
				f.commit(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: f.link.Current.ID, Now: at}))
				storePay(f, "dep_3", 999, 0) // unbilled, no fee
				// A repeated deposit needs nothing and posts nothing.
				storePay(f, "dep_2", 40_001, 250)
			},
			map[string]int64{
				bank:                      20_000 + 40_001 + 999,
				domain.AccountRevenueFees: -(200 + 1_000),
				domain.AccountPayableDistributor(distributor): -(19_800 + 39_001 + 999),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t)
			tt.run(f)
			if !maps.Equal(f.balances, tt.want) {
				t.Errorf("balances\n got %v\nwant %v", f.balances, tt.want)
			}
			var total int64
			for _, b := range f.balances {
				total += b
			}
			if total != 0 {
				t.Errorf("trial balance total = %d, want 0", total)
			}
			// Payouts pending drains once the provider has answered.
			if f.payout.Status != domain.PayoutRequestedStatus && f.balances[domain.AccountPayoutsPending] != 0 {
				t.Errorf("payouts pending = %d with no payout in flight, want 0", f.balances[domain.AccountPayoutsPending])
			}
			// Suspense equals minus the unresolved orphans.
			var unresolved int64
			if f.deposit.Unresolved() {
				unresolved = f.deposit.Amount
			}
			if got := f.balances[domain.AccountSuspense]; got != -unresolved {
				t.Errorf("suspense = %d, want minus the unresolved orphans, %d", got, -unresolved)
			}
			// No wallet is negative, and each wallet account mirrors its balance.
			for user, w := range f.wallets {
				if w.Balance < 0 {
					t.Errorf("wallet %s is negative: %d", user, w.Balance)
				}
				if got := f.balances[domain.AccountWallet(user)]; got != -w.Balance {
					t.Errorf("account of wallet %s = %d, want minus its balance %d", user, got, -w.Balance)
				}
			}
		})
	}
}

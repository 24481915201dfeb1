package audit_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// An orphan an operator assigned to an order is carried out to that order,
// or (the order no longer taking it) to its buyer's wallet: a credit of its
// money from suspense to anyone else's wallet moves it wrongly.
func TestVerifyNamesAnAssignedOrphanCreditedToAnotherWallet(t *testing.T) {
	s := newStream(t)
	money(s)
	submitted(s, "oX", "u1")
	s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveAssignOrder, Amount: 1000, OrderID: "oX", ResolvedAt: t0})
	seq := s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// A resolution moves the orphan's whole amount (domain.DecideResolve):
// two orphans resolved with each other's amounts balance suspense and
// close both items, yet move 400 of one depositor's money to another.
func TestVerifyNamesAResolutionForAnotherAmountThanItsOrphan(t *testing.T) {
	s := newStream(t)
	money(s) // d1: an orphan of 1000
	d3 := depID(bankAcct, "X3")
	s.append(domain.AggregateDeposit, string(d3), domain.DepositRecorded{DepositID: d3, BankTxnID: "X3", AccountNumber: bankAcct, DepositorName: "누구", Amount: 600, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	seq := s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 600, UserID: "u1", ResolvedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 600, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
	s.append(domain.AggregateDeposit, string(d3), domain.DepositResolved{DepositID: d3, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u9", ResolvedAt: t0})
	s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d3), FromAccount: domain.AccountSuspense, CreditedAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// A payout is settled once, for its amount: settled twice, in two parts
// that add up to it, the second settlement moves money for an item that is
// no longer open, yet payouts pending sums up.
func TestVerifyNamesAPayoutSettledTwiceInParts(t *testing.T) {
	s := newStream(t)
	money(s) // p2: 200 pending
	seq := s.append(domain.AggregatePayout, "p2", domain.PayoutSettled{PayoutID: "p2", Amount: 120, BankAccount: bankAcct, SettledAt: t0})
	s.append(domain.AggregatePayout, "p2", domain.PayoutSettled{PayoutID: "p2", Amount: 80, BankAccount: bankAcct, SettledAt: t0})
	rep := s.verify()
	if f := findings(rep, audit.CheckClearing); rep.OK || len(f) != 2 || f[0].Seq != seq || f[1].Seq != seq+1 {
		t.Fatalf("want clearing findings at seqs %d and %d: %+v", seq, seq+1, rep.Findings)
	}
}

// An order is paid only while it awaits its deposit, with its amount
// (domain.DecideDeposit): a cancelled order paid by a recorded deposit keeps
// the buyer's money in orders payable instead of refunding it, and a second
// payment of a paid order does the same with the excess.
func TestVerifyNamesAnOrderPaidThatDoesNotTakePayment(t *testing.T) {
	from := domain.AccountBank(bankAcct)
	t.Run("cancelled", func(t *testing.T) {
		s := newStream(t)
		money(s)
		dC := depID(bankAcct, "XC")
		s.append(domain.AggregateOrder, "oC", domain.OrderSubmitted{OrderID: "oC", BuyerID: "u1", BuyerName: "김", Amount: domain.Money{Amount: 700, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: t0})
		s.append(domain.AggregateOrder, "oC", domain.OrderCancelled{OrderID: "oC", CancelledAt: t0})
		seq := s.append(domain.AggregateOrder, "oC", domain.OrderPaid{OrderID: "oC", DepositID: dC, Amount: 700, FromAccount: from, PaidAt: t0})
		s.append(domain.AggregateDeposit, string(dC), domain.DepositRecorded{DepositID: dC, BankTxnID: "XC", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oC"})
		s.wantFinding(audit.CheckAggregates, seq)
	})
	t.Run("paid twice", func(t *testing.T) {
		s := newStream(t)
		money(s)
		dD, dE := depID(bankAcct, "XD"), depID(bankAcct, "XE")
		s.append(domain.AggregateOrder, "oD", domain.OrderSubmitted{OrderID: "oD", BuyerID: "u1", BuyerName: "김", Amount: domain.Money{Amount: 700, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: t0})
		s.append(domain.AggregateOrder, "oD", domain.OrderPaid{OrderID: "oD", DepositID: dD, Amount: 700, FromAccount: from, PaidAt: t0})
		s.append(domain.AggregateDeposit, string(dD), domain.DepositRecorded{DepositID: dD, BankTxnID: "XD", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oD"})
		seq := s.append(domain.AggregateOrder, "oD", domain.OrderPaid{OrderID: "oD", DepositID: dE, Amount: 700, FromAccount: from, PaidAt: t0})
		s.append(domain.AggregateDeposit, string(dE), domain.DepositRecorded{DepositID: dE, BankTxnID: "XE", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oD"})
		s.wantFinding(audit.CheckAggregates, seq)
	})
	t.Run("more than its amount", func(t *testing.T) {
		s := newStream(t)
		money(s)
		dF := depID(bankAcct, "XF")
		s.append(domain.AggregateOrder, "oE", domain.OrderSubmitted{OrderID: "oE", BuyerID: "u1", BuyerName: "김", Amount: domain.Money{Amount: 700, Currency: "KRW"}, DepositorName: "김001", SubmittedAt: t0})
		seq := s.append(domain.AggregateOrder, "oE", domain.OrderPaid{OrderID: "oE", DepositID: dF, Amount: 9000, FromAccount: from, PaidAt: t0})
		s.append(domain.AggregateDeposit, string(dF), domain.DepositRecorded{DepositID: dF, BankTxnID: "XF", AccountNumber: bankAcct, DepositorName: "김001", Amount: 9000, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oE"})
		s.wantFinding(audit.CheckAggregates, seq)
	})
}

// A bank transaction recorded again under another spelling of its account
// number (U+2010 hyphens, which NormalizeAccountNumber keeps) is not the
// same key to the bank_transactions check, and posts to a bank account
// that no deposit the engine takes can name: the one transaction makes two
// orphans of its money. Only letters, digits, spaces and '-' name an
// account (domain.ValidateAccountNumber).
func TestVerifyNamesADepositOnAnAccountNumberNoFeedWrites(t *testing.T) {
	s := newStream(t)
	money(s) // d1: X1 on 100-200-300, an orphan of 1000
	other := "100\u2010200\u2010300"
	seq := s.append(domain.AggregateDeposit, string(depID(other, "X1")), domain.DepositRecorded{DepositID: depID(other, "X1"), BankTxnID: "X1", AccountNumber: other, DepositorName: "누군가", Amount: 1000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	s.wantFinding(audit.CheckBankTransactions, seq)
}

// A failed payout's money goes back to its source (process.returnMoney):
// a withdrawal's to the wallet it left, an orphan's refund to the bank to
// its deposit. Returned to another wallet, or reopened as another deposit
// (which an operator then resolves to anyone), it moves one user's money
// to another, yet every account sums up and the item closes for its
// amount.
func TestVerifyNamesAFailedPayoutReturnedToAnotherSource(t *testing.T) {
	withdrawal := func(s *stream) {
		money(s) // u1 holds 300
		s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p3", DebitAt: t0})
		s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 300, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
		s.append(domain.AggregatePayout, "p3", domain.PayoutFailed{PayoutID: "p3", Reason: "closed account", FailedAt: t0})
	}
	t.Run("to another wallet", func(t *testing.T) {
		s := newStream(t)
		withdrawal(s)
		seq := s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 300, Kind: domain.CreditPayoutReversal, Ref: "reversal:p3", FromAccount: domain.AccountPayoutsPending, CreditedAt: t0})
		s.wantFinding(audit.CheckClearing, seq)
	})
	t.Run("a withdrawal reopened as a deposit", func(t *testing.T) {
		s := newStream(t)
		withdrawal(s)
		dZ := depID(bankAcct, "XZ") // never recorded
		seq := s.append(domain.AggregateDeposit, string(dZ), domain.DepositReopened{DepositID: dZ, Amount: 300, PayoutID: "p3", Reason: "closed account", ReopenedAt: t0})
		s.append(domain.AggregateDeposit, string(dZ), domain.DepositResolved{DepositID: dZ, Action: domain.ResolveRefundToWallet, Amount: 300, UserID: "u9", ResolvedAt: t0})
		s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 300, Kind: domain.CreditOrphanRefund, Ref: string(dZ), FromAccount: domain.AccountSuspense, CreditedAt: t0})
		s.wantFinding(audit.CheckClearing, seq)
	})
	t.Run("an orphan's refund returned to a wallet", func(t *testing.T) {
		s := newStream(t)
		money(s) // d1: an orphan of 1000
		s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToBank, Amount: 1000, PayoutID: "p4", ResolvedAt: t0})
		s.append(domain.AggregatePayout, "p4", domain.PayoutRequested{PayoutID: "p4", Amount: 1000, PayFrom: bankAcct, Source: domain.PayoutFromDeposit, SourceID: string(d1), FromAccount: domain.AccountSuspense, RequestedAt: t0})
		s.append(domain.AggregatePayout, "p4", domain.PayoutFailed{PayoutID: "p4", Reason: "closed account", FailedAt: t0})
		seq := s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditPayoutReversal, Ref: "reversal:p4", FromAccount: domain.AccountPayoutsPending, CreditedAt: t0})
		s.wantFinding(audit.CheckClearing, seq)
	})
}

// storePaid writes a link of distributor "dist1" and store "s1", and the
// deposit of a store payment of 10,000 to it; the test writes the payment.
func storePaid(s *stream) (link string, dep domain.DepositID) {
	link = domain.LinkID("dist1", "s1")
	s.append(domain.AggregateLink, link, domain.StoreLinked{LinkID: link, DistributorID: "dist1", StoreID: "s1", StoreName: "가게", DedicatedAccount: domain.BankAccount{Number: "900-1"}, LinkedAt: t0})
	dep = depID("900-1", "XS1")
	s.append(domain.AggregateDeposit, string(dep), domain.DepositRecorded{DepositID: dep, BankTxnID: "XS1", AccountNumber: "900-1", LandedOn: bankAcct, DepositorName: "가게", Amount: 10000, DepositedAt: t0, Outcome: domain.OutcomeStorePayment, LinkID: link})
	return link, dep
}

// A store payment's fee is its fee_bps of its amount and its net the rest
// (domain.DecideStorePayment): the net is what settlement.expected tells
// the distributor it is paid, the fee what its payable gives to revenue.
// A net above the amount less the fee would settle more than the payable
// holds, a fee above its rate takes the distributor's money as revenue.
func TestVerifyNamesAStorePaymentWithAWrongFeeOrNet(t *testing.T) {
	for name, p := range map[string]struct{ fee, net int64 }{
		"net above the amount less the fee": {fee: 30, net: 99970},
		"fee above its rate":                {fee: 9000, net: 1000},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			link, dep := storePaid(s)
			seq := s.append(domain.AggregateLink, link, domain.StorePaymentReceived{LinkID: link, DepositID: dep, DistributorID: "dist1", StoreID: "s1", StoreName: "가게",
				Amount: 10000, Fee: p.fee, Net: p.net, FeeBps: 30, SettlementDate: "2026-12-02", PaidAt: t0, CollectAccount: bankAcct, DedicatedAccount: domain.BankAccount{Number: "900-1"}})
			s.wantFinding(audit.CheckTrialBalance, seq)
		})
	}
}

// A store payment is owed to its link's distributor (domain.DecideStorePayment
// copies the link's): booked to another distributor's payable, settlement
// pays that distributor a store's money that is not its own.
func TestVerifyNamesAStorePaymentToAnotherDistributor(t *testing.T) {
	s := newStream(t)
	link, dep := storePaid(s)
	seq := s.append(domain.AggregateLink, link, domain.StorePaymentReceived{LinkID: link, DepositID: dep, DistributorID: "dist9", StoreID: "s1", StoreName: "가게",
		Amount: 10000, Fee: 30, Net: 9970, FeeBps: 30, SettlementDate: "2026-12-02", PaidAt: t0, CollectAccount: bankAcct, DedicatedAccount: domain.BankAccount{Number: "900-1"}})
	s.wantFinding(audit.CheckAggregates, seq)
}

// A store payment is on the link its deposit was recorded for: booked on
// another link, even one whose own fields agree, another store's bill is
// paid, and another distributor's payable takes the money.
func TestVerifyNamesAStorePaymentOnAnotherLinkThanItsDeposit(t *testing.T) {
	s := newStream(t)
	_, dep := storePaid(s) // recorded for dist1's store s1
	other := domain.LinkID("dist9", "s9")
	s.append(domain.AggregateLink, other, domain.StoreLinked{LinkID: other, DistributorID: "dist9", StoreID: "s9", StoreName: "남의 가게", DedicatedAccount: domain.BankAccount{Number: "900-9"}, LinkedAt: t0})
	seq := s.append(domain.AggregateLink, other, domain.StorePaymentReceived{LinkID: other, DepositID: dep, DistributorID: "dist9", StoreID: "s9", StoreName: "남의 가게",
		Amount: 10000, Fee: 30, Net: 9970, FeeBps: 30, SettlementDate: "2026-12-02", PaidAt: t0, CollectAccount: bankAcct, DedicatedAccount: domain.BankAccount{Number: "900-9"}})
	s.wantFinding(audit.CheckAggregates, seq)
}

// A payout sends what its source moved to payouts pending, to where the
// source named (process.ReactToMoney copies both): the payouts part sends
// payout.requested's amount to its account. A withdrawal requested to
// another account, or for more, sends a user's money to whoever the
// request names, and the settlement still closes the withdrawal's item.
func TestVerifyNamesAPayoutRequestedOtherwiseThanItsSource(t *testing.T) {
	mine := domain.BankAccount{Bank: "신한은행", Number: "110-123-456789", Holder: "김민수"}
	theirs := domain.BankAccount{Bank: "신한은행", Number: "110-999-999999", Holder: "도둑"}
	for name, req := range map[string]domain.PayoutRequested{
		"to another account": {Amount: 300, To: theirs},
		"for another amount": {Amount: 3000, To: mine},
		"of another wallet":  {Amount: 300, To: mine, SourceID: "u9"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			money(s) // u1 holds 300
			s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p3", To: mine, DebitAt: t0})
			req.PayoutID, req.PayFrom, req.Source, req.FromAccount, req.RequestedAt = "p3", bankAcct, domain.PayoutFromWallet, domain.AccountWallet("u1"), t0
			if req.SourceID == "" {
				req.SourceID = "u1"
			}
			seq := s.append(domain.AggregatePayout, "p3", req)
			s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 300, BankAccount: bankAcct, SettledAt: t0})
			s.wantFinding(audit.CheckClearing, seq)
		})
	}
}

// An order's paid amount is refunded from orders payable only once it was
// paid, for what it was paid, once (domain.DecideCancel): orders payable
// holds every paid order's money together, so a refund of an order never
// paid (or of more than it paid) credits its buyer with another buyer's
// money, and the account stays in credit.
func TestVerifyNamesARefundOfAPaidAmountTheOrderDoesNotHold(t *testing.T) {
	for name, forge := range map[string]func(s *stream) (eventstore.Seq, int64){
		"never paid": func(s *stream) (eventstore.Seq, int64) {
			submittedFor(s, "oB", "u9", 12000)
			return s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", Amount: 39000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0}), 39000
		},
		"more than paid": func(s *stream) (eventstore.Seq, int64) {
			paidOrder(s, "oB", "u9", 1000)
			return s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", Amount: 39000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0}), 39000
		},
		"twice": func(s *stream) (eventstore.Seq, int64) {
			paidOrder(s, "oB", "u9", 1000)
			s.append(domain.AggregateOrder, "oB", domain.OrderCancelled{OrderID: "oB", CancelledAt: t0, BuyerID: "u9", Amount: 1000})
			s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", Amount: 1000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrderRefund, Ref: "order:oB", OrderID: "oB", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
			return s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", Amount: 1000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0}), 1000
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			paidOrder(s, "oA", "u1", 39000) // orders payable holds u1's 39,000
			seq, amount := forge(s)
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: amount, Kind: domain.CreditOrderRefund, Ref: "order:oB#x", OrderID: "oB", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
			s.wantFinding(audit.CheckWallets, seq)
		})
	}
}

// A payout has one result, for a payout that was requested
// (domain.DecidePayoutResult): the payouts part sends only what
// payout.requested says. Settled without a request, or after it failed,
// the withdrawal's money is booked out of the bank that the provider never
// sent, and the wallet never gets it back.
func TestVerifyNamesAPayoutSettledThatWasNeverSent(t *testing.T) {
	for name, forge := range map[string]func(s *stream){
		"never requested": func(s *stream) {},
		"after it failed": func(s *stream) {
			s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 300, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
			s.append(domain.AggregatePayout, "p3", domain.PayoutFailed{PayoutID: "p3", Reason: "closed account", FailedAt: t0})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			money(s) // u1 holds 300
			s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p3", DebitAt: t0})
			forge(s)
			seq := s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 300, BankAccount: bankAcct, SettledAt: t0})
			s.wantFinding(audit.CheckClearing, seq)
		})
	}
}

// An orphan is resolved once, while it is unresolved (domain.DecideResolve
// refuses another resolution: not_an_orphan): a second resolution, before
// the first one's money moved, redirects the orphan to whoever it names,
// and the credit it backs closes the item.
func TestVerifyNamesAnOrphanResolvedAgain(t *testing.T) {
	s := newStream(t)
	money(s) // d1: an orphan of 1000
	s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u1", ResolvedAt: t0})
	seq := s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u9", ResolvedAt: t0})
	s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// Engines before 4850503 took any account_number of 1–64 characters
// (api.RecordDepositRequest): a feed that wrote its account with dots was
// recorded so, and its deposits are still in the log. Such a spelling is
// not another spelling of an account the engine compares today (it
// records nothing under it any more): only a character no ASCII feed
// writes, a Unicode look-alike of '-' or a digit, makes one transaction
// two keys.
func TestVerifyTakesAnOlderEnginesAccountSpelling(t *testing.T) {
	s := newStream(t)
	old := depID("100.200.300", "XO")
	s.append(domain.AggregateDeposit, string(old), domain.DepositRecorded{DepositID: old, BankTxnID: "XO", AccountNumber: "100.200.300", DepositorName: "누군가", Amount: 1000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonUnknownAccount})
	rep := s.verify()
	if f := findings(rep, audit.CheckBankTransactions); len(f) != 0 {
		t.Fatalf("an older engine's honest deposit flagged: %+v", f)
	}
}

// A deposit is refunded from where its money is (domain.DecideDeposit
// copies the deposit's FromAccount): the bank account it arrived on, or
// suspense for an orphan assigned later. A deposit refund that names
// another account as its source (a distributor's payable, revenue) takes
// that money for a buyer; no bank money comes in for it, so no deposit
// need be recorded, and the payable stays in credit.
func TestVerifyNamesADepositRefundFromAnotherAccountThanTheBank(t *testing.T) {
	for name, from := range map[string]string{
		"a distributor's payable": domain.AccountPayableDistributor("dist1"),
		"revenue":                 domain.AccountRevenueFees,
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			link, dep := storePaid(s)
			s.append(domain.AggregateLink, link, domain.StorePaymentReceived{LinkID: link, DepositID: dep, DistributorID: "dist1", StoreID: "s1", StoreName: "가게",
				Amount: 10000, Fee: 30, Net: 9970, FeeBps: 30, SettlementDate: "2026-12-02", PaidAt: t0, CollectAccount: bankAcct, DedicatedAccount: domain.BankAccount{Number: "900-1"}})
			submittedFor(s, "oB", "u9", 5)
			dX := depID(bankAcct, "XX") // never recorded
			s.append(domain.AggregateOrder, "oB", domain.OrderCancelled{OrderID: "oB", CancelledAt: t0, BuyerID: "u9", Amount: 5})
			seq := s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", DepositID: dX, Amount: 25, FromAccount: from, RefundedAt: t0})
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 25, Kind: domain.CreditDepositRefund, Ref: string(dX), OrderID: "oB", FromAccount: from, CreditedAt: t0})
			s.wantFinding(audit.CheckWallets, seq)
		})
	}
}

// A deposit's outcome says where its money went, and the event that moved
// it from the bank agrees (commands.matchDeposit writes both): matched,
// the order it names is the one paid, and holds its depositor name;
// refunded, that order's buyer is refunded; a store payment, it is
// booked on the link the deposit names. A deposit recorded as matched to
// one buyer's order that paid another's order, or a store's money booked
// to any distributor under a deposit recorded as matched, passed.
func TestVerifyNamesADepositWhoseMoneyWentElsewhereThanItsOutcome(t *testing.T) {
	from, dA := domain.AccountBank(bankAcct), depID(bankAcct, "XA")
	order := func(s *stream, id domain.OrderID, buyer domain.UserID, name string) {
		s.append(domain.AggregateOrder, string(id), domain.OrderSubmitted{OrderID: id, BuyerID: buyer, BuyerName: "김", Amount: domain.Money{Amount: 700, Currency: "KRW"}, DepositorName: name, SubmittedAt: t0})
	}
	for name, forge := range map[string]func(s *stream) eventstore.Seq{
		"another order paid": func(s *stream) eventstore.Seq {
			order(s, "oA", "u1", "김001")
			order(s, "oB", "u9", "김001")
			s.append(domain.AggregateOrder, "oB", domain.OrderPaid{OrderID: "oB", DepositID: dA, Amount: 700, FromAccount: from, PaidAt: t0})
			return s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oA"})
		},
		"an order of another depositor name": func(s *stream) eventstore.Seq {
			order(s, "oA", "u1", "김001")
			order(s, "oB", "u9", "박002")
			s.append(domain.AggregateOrder, "oB", domain.OrderPaid{OrderID: "oB", DepositID: dA, Amount: 700, FromAccount: from, PaidAt: t0})
			return s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oB"})
		},
		"another order's buyer refunded": func(s *stream) eventstore.Seq {
			order(s, "oA", "u1", "김001")
			order(s, "oB", "u9", "김001")
			s.append(domain.AggregateOrder, "oB", domain.OrderCancelled{OrderID: "oB", CancelledAt: t0, BuyerID: "u9", Amount: 700})
			s.append(domain.AggregateOrder, "oB", domain.OrderRefunded{OrderID: "oB", BuyerID: "u9", DepositID: dA, Amount: 700, FromAccount: from, RefundedAt: t0})
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 700, Kind: domain.CreditDepositRefund, Ref: string(dA), OrderID: "oB", FromAccount: from, CreditedAt: t0})
			return s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oA"})
		},
		"a store payment recorded as matched": func(s *stream) eventstore.Seq {
			dA := depID("900-1", "XA")
			order(s, "oA", "u1", "김001")
			other := domain.LinkID("dist9", "s9")
			s.append(domain.AggregateLink, other, domain.StoreLinked{LinkID: other, DistributorID: "dist9", StoreID: "s9", StoreName: "남의 가게", DedicatedAccount: domain.BankAccount{Number: "900-9"}, LinkedAt: t0})
			s.append(domain.AggregateLink, other, domain.StorePaymentReceived{LinkID: other, DepositID: dA, DistributorID: "dist9", StoreID: "s9", StoreName: "남의 가게",
				Amount: 700, Fee: 2, Net: 698, FeeBps: 30, SettlementDate: "2026-12-02", PaidAt: t0, CollectAccount: bankAcct, DedicatedAccount: domain.BankAccount{Number: "900-9"}})
			return s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: "900-1", LandedOn: bankAcct, DepositorName: "가게", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeMatched, OrderID: "oA"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			seq := forge(s)
			s.wantFinding(audit.CheckBankTransactions, seq)
		})
	}
}

// A deposit is recorded on the aggregate its account and bank transaction
// give (domain.NewDepositID), and the engine knows a transaction by that
// aggregate alone: a second deposit.record of it finds the aggregate and
// answers duplicate. A deposit.recorded on transaction T1's aggregate that
// names another transaction (or another account) makes the engine turn T1
// away when it arrives, never booked, while the transaction it names, one
// the bank never sent, is an orphan that an insider resolves to a wallet
// and withdraws. Each passed: the audit keyed duplicates by the account
// and transaction the event names, and never asked which aggregate it was
// on.
func TestVerifyNamesADepositRecordedUnderAnotherTransactionsID(t *testing.T) {
	real := depID(bankAcct, "T1") // the transaction the bank will report
	for name, forged := range map[string]struct {
		typ, id string
		rec     domain.DepositRecorded
	}{
		"another transaction on its aggregate": {domain.AggregateDeposit, string(real),
			domain.DepositRecorded{DepositID: real, BankTxnID: "T2", AccountNumber: bankAcct}},
		"another account on its aggregate": {domain.AggregateDeposit, string(real),
			domain.DepositRecorded{DepositID: real, BankTxnID: "T1", AccountNumber: "900-1"}},
		"its own ID, on another transaction's aggregate": {domain.AggregateDeposit, string(real),
			domain.DepositRecorded{DepositID: depID(bankAcct, "T2"), BankTxnID: "T2", AccountNumber: bankAcct}},
		"its own ID, on another aggregate than a deposit's": {domain.AggregateOrder, string(depID(bankAcct, "T2")),
			domain.DepositRecorded{DepositID: depID(bankAcct, "T2"), BankTxnID: "T2", AccountNumber: bankAcct}},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			money(s)
			rec := forged.rec
			rec.DepositorName, rec.Amount, rec.DepositedAt, rec.Outcome, rec.Reason = "누군가", 5000, t0, domain.OutcomeOrphaned, domain.ReasonNoSuchName
			seq := s.append(forged.typ, forged.id, rec)
			// The insider resolves the orphan to a wallet and withdraws it.
			s.append(forged.typ, forged.id, domain.DepositResolved{DepositID: rec.DepositID, Action: domain.ResolveRefundToWallet, Amount: 5000, UserID: "u9", ResolvedAt: t0})
			s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 5000, Kind: domain.CreditOrphanRefund, Ref: string(rec.DepositID), FromAccount: domain.AccountSuspense, CreditedAt: t0})
			s.append(domain.AggregateWallet, "u9", domain.WalletDebited{UserID: "u9", Amount: 5000, PayoutID: "p9", DebitAt: t0})
			s.append(domain.AggregatePayout, "p9", domain.PayoutRequested{PayoutID: "p9", Amount: 5000, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u9", FromAccount: domain.AccountWallet("u9"), RequestedAt: t0})
			rep := s.verify()
			f := findings(rep, audit.CheckBankTransactions)
			if rep.OK || len(f) == 0 || f[0].Seq != seq {
				t.Fatalf("want a bank_transactions finding at seq %d: %+v", seq, rep.Findings)
			}
			if want := depID(rec.AccountNumber, rec.BankTxnID); !strings.Contains(f[0].Message, string(rec.DepositID)) || !strings.Contains(f[0].Message, string(want)) {
				t.Fatalf("the finding names deposit %s and %s, its transaction's: %s", rec.DepositID, want, f[0].Message)
			}
		})
	}
}

// Engines from 1757182 to 0229e3c derived a deposit's ID from its account
// number as written, not normalised: their deposits are under that ID,
// each on its own aggregate, and are not another transaction's.
func TestVerifyTakesTheFirstEnginesDepositIDs(t *testing.T) {
	s := newStream(t)
	sum := sha256.Sum256([]byte(bankAcct + "\x00" + "X0"))
	early := domain.DepositID("dep_" + hex.EncodeToString(sum[:16]))
	s.append(domain.AggregateDeposit, string(early), domain.DepositRecorded{DepositID: early, BankTxnID: "X0", AccountNumber: bankAcct, DepositorName: "누군가", Amount: 1000, DepositedAt: t0, Outcome: domain.OutcomeOrphaned, Reason: domain.ReasonNoSuchName})
	if rep := s.verify(); !rep.OK {
		t.Fatalf("a first engine's honest deposit flagged: %+v", rep.Findings)
	}
}

// A deposit's resolution and its reopening are on the deposit's own
// aggregate (commands.Deposits writes both there): on another one, the
// engine's deposit never sees them (it stays unresolved, to be resolved
// again; or stays resolved, never offered again), while the audit follows
// the money they move.
func TestVerifyNamesADepositEventOnAnotherAggregate(t *testing.T) {
	t.Run("deposit.resolved", func(t *testing.T) {
		s := newStream(t)
		money(s) // d1: an orphan of 1000
		seq := s.append(domain.AggregateDeposit, string(d2), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToWallet, Amount: 1000, UserID: "u9", ResolvedAt: t0})
		s.append(domain.AggregateWallet, "u9", domain.WalletCredited{UserID: "u9", Amount: 1000, Kind: domain.CreditOrphanRefund, Ref: string(d1), FromAccount: domain.AccountSuspense, CreditedAt: t0})
		s.wantFinding(audit.CheckBankTransactions, seq)
	})
	t.Run("deposit.reopened", func(t *testing.T) {
		s := newStream(t)
		money(s) // d1: an orphan of 1000
		s.append(domain.AggregateDeposit, string(d1), domain.DepositResolved{DepositID: d1, Action: domain.ResolveRefundToBank, Amount: 1000, PayoutID: "p4", ResolvedAt: t0})
		s.append(domain.AggregatePayout, "p4", domain.PayoutRequested{PayoutID: "p4", Amount: 1000, PayFrom: bankAcct, Source: domain.PayoutFromDeposit, SourceID: string(d1), FromAccount: domain.AccountSuspense, RequestedAt: t0})
		s.append(domain.AggregatePayout, "p4", domain.PayoutFailed{PayoutID: "p4", Reason: "closed account", FailedAt: t0})
		seq := s.append(domain.AggregatePayout, "p4", domain.DepositReopened{DepositID: d1, Amount: 1000, PayoutID: "p4", Reason: "closed account", ReopenedAt: t0})
		s.wantFinding(audit.CheckBankTransactions, seq)
	})
}

package audit_test

import (
	"testing"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
)

// A payout ID names one payout (the provider's idempotency key): the
// engine debits a wallet for it once (domain.DecideWithdraw) and records
// its request once (domain.DecideRequestPayout). A second wallet.debited
// under a payout ID already used, requested and settled again, takes the
// user's money a second time and books it out of the bank, though the
// provider, asked under the same key, sends nothing more: the bank holds
// that money, and the books say it does not.
func TestVerifyNamesAPayoutIDUsedTwice(t *testing.T) {
	s := newStream(t)
	money(s) // u1 holds 300
	s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 100, PayoutID: "p3", DebitAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 100, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 100, BankAccount: bankAcct, SettledAt: t0})
	seq := s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 100, PayoutID: "p3", DebitAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 100, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 100, BankAccount: bankAcct, SettledAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// A deposit is refunded to its order's buyer only when the order no
// longer takes it (domain.DecideDeposit): an order awaiting its deposit,
// for its amount, is paid by it.
func TestVerifyNamesADepositRefundOfAnOrderAwaitingIt(t *testing.T) {
	s := newStream(t)
	from, dA := domain.AccountBank(bankAcct), depID(bankAcct, "XA")
	submittedFor(s, "oA", "u1", 700)
	seq := s.append(domain.AggregateOrder, "oA", domain.OrderRefunded{OrderID: "oA", BuyerID: "u1", DepositID: dA, Amount: 700, FromAccount: from, RefundedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 700, Kind: domain.CreditDepositRefund, Ref: string(dA), OrderID: "oA", FromAccount: from, CreditedAt: t0})
	s.append(domain.AggregateDeposit, string(dA), domain.DepositRecorded{DepositID: dA, BankTxnID: "XA", AccountNumber: bankAcct, DepositorName: "김001", Amount: 700, DepositedAt: t0, Outcome: domain.OutcomeRefundedToWallet, OrderID: "oA"})
	s.wantFinding(audit.CheckWallets, seq)
}

// A payout is settled from the company account its request named
// (process.finalResult and domain.DecideResolvePayout copy PayFrom): the
// provider sent it from there. Booked out of another bank account, the
// books say that account paid it while the one that did still shows the
// money, which can then leave it unseen.
func TestVerifyNamesAPayoutSettledFromAnotherAccountThanItsRequest(t *testing.T) {
	s := newStream(t)
	money(s) // u1 holds 300
	s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p3", DebitAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 300, PayFrom: bankAcct, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
	seq := s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 300, BankAccount: "777-777", SettledAt: t0})
	s.wantFinding(audit.CheckClearing, seq)
}

// Requests before 977fbef named no account to send from, and their
// withdrawals were settled from the collection account: an honest log of
// then is not flagged.
func TestVerifyTakesAnOlderEnginesRequestWithoutPayFrom(t *testing.T) {
	s := newStream(t)
	money(s) // u1 holds 300
	s.append(domain.AggregateWallet, "u1", domain.WalletDebited{UserID: "u1", Amount: 300, PayoutID: "p3", DebitAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutRequested{PayoutID: "p3", Amount: 300, Source: domain.PayoutFromWallet, SourceID: "u1", FromAccount: domain.AccountWallet("u1"), RequestedAt: t0})
	s.append(domain.AggregatePayout, "p3", domain.PayoutSettled{PayoutID: "p3", Amount: 300, BankAccount: bankAcct, SettledAt: t0})
	if rep := s.verify(); !rep.OK {
		t.Fatalf("an older engine's honest withdrawal flagged: %+v", rep.Findings)
	}
}

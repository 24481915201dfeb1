package audit_test

import (
	"testing"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// An order moves only as docs/domain.md's table says (domain.DecideCancel,
// FinaliseCancel, DecideExpire): a paid order is cancelled with the refund
// of its paid amount in the same commit, and only an open order is
// reserved, expired or cancelled otherwise. Each forgery here balances and
// chains, yet leaves a buyer's money in orders payable for an order that
// says it is over (cancelled or expired without a refund), or starts an
// order again over the one its buyer paid.
func TestVerifyNamesAnOrderMovedOutOfTurn(t *testing.T) {
	cancelled := func(o domain.OrderID) domain.OrderCancelled {
		return domain.OrderCancelled{OrderID: o, CancelledAt: t0, BuyerID: "u1", Amount: 1000}
	}
	for name, forge := range map[string]func(s *stream) eventstore.Seq{
		"a paid order cancelled without its refund": func(s *stream) eventstore.Seq {
			paidOrder(s, "oA", "u1", 1000)
			return s.append(domain.AggregateOrder, "oA", cancelled("oA"))
		},
		"a paid order cancelled with a deposit's refund in place of its paid amount's": func(s *stream) eventstore.Seq {
			paidOrder(s, "oA", "u1", 1000)
			late := depID(bankAcct, "X-late")
			s.append(domain.AggregateDeposit, string(late), domain.DepositRecorded{DepositID: late, BankTxnID: "X-late", AccountNumber: bankAcct, DepositorName: "김001", Amount: 1000, DepositedAt: t0, Outcome: domain.OutcomeRefundedToWallet, OrderID: "oA"})
			return s.append(domain.AggregateOrder, "oA", cancelled("oA"),
				domain.OrderRefunded{OrderID: "oA", BuyerID: "u1", DepositID: late, Amount: 1000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
		},
		"a paid order expired": func(s *stream) eventstore.Seq {
			paidOrder(s, "oA", "u1", 1000)
			return s.append(domain.AggregateOrder, "oA", domain.OrderExpired{OrderID: "oA", ExpiresAt: t0, ExpiredAt: t0, BuyerID: "u1", Amount: 1000})
		},
		"a paid order's cancellation reserved": func(s *stream) eventstore.Seq {
			paidOrder(s, "oA", "u1", 1000)
			return s.append(domain.AggregateOrder, "oA", domain.OrderCancelReserved{OrderID: "oA", CancelAt: t0, ReservedAt: t0})
		},
		"a cancelled order cancelled again": func(s *stream) eventstore.Seq {
			submittedFor(s, "oA", "u1", 1000)
			s.append(domain.AggregateOrder, "oA", cancelled("oA"))
			return s.append(domain.AggregateOrder, "oA", cancelled("oA"))
		},
		"a paid order submitted again": func(s *stream) eventstore.Seq {
			paidOrder(s, "oA", "u1", 1000)
			return submittedFor(s, "oA", "u1", 1000)
		},
		"an order never submitted cancelled": func(s *stream) eventstore.Seq {
			return s.append(domain.AggregateOrder, "oA", cancelled("oA"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			s.wantFinding(audit.CheckAggregates, forge(s))
		})
	}
}

// The moves the engine makes are not findings: each order of the table's
// rows, a paid one cancelled with its refund and the refund credited.
func TestVerifyTakesEveryOrderMoveTheEngineMakes(t *testing.T) {
	s := newStream(t)
	submittedFor(s, "oA", "u1", 1000)
	s.append(domain.AggregateOrder, "oA", domain.OrderCancelled{OrderID: "oA", CancelledAt: t0, BuyerID: "u1", Amount: 1000})
	submittedFor(s, "oB", "u1", 1000)
	s.append(domain.AggregateOrder, "oB", domain.OrderCancelReserved{OrderID: "oB", CancelAt: t0, ReservedAt: t0})
	s.append(domain.AggregateOrder, "oB", domain.OrderCancelled{OrderID: "oB", CancelledAt: t0, AfterReservation: true, BuyerID: "u1", Amount: 1000})
	submittedFor(s, "oC", "u1", 1000)
	s.append(domain.AggregateOrder, "oC", domain.OrderExpired{OrderID: "oC", ExpiresAt: t0, ExpiredAt: t0, BuyerID: "u1", Amount: 1000})
	paidOrder(s, "oD", "u1", 1000)
	s.append(domain.AggregateOrder, "oD", domain.OrderCancelled{OrderID: "oD", CancelledAt: t0, BuyerID: "u1", Amount: 1000},
		domain.OrderRefunded{OrderID: "oD", BuyerID: "u1", Amount: 1000, FromAccount: domain.AccountPayableOrders, RefundedAt: t0})
	s.append(domain.AggregateWallet, "u1", domain.WalletCredited{UserID: "u1", Amount: 1000, Kind: domain.CreditOrderRefund, Ref: "order:oD", OrderID: "oD", FromAccount: domain.AccountPayableOrders, CreditedAt: t0})
	if rep := s.verify(); !rep.OK {
		t.Fatalf("findings on the engine's own moves: %+v", rep.Findings)
	}
}

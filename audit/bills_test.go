package audit_test

import (
	"testing"
	"time"

	"github.com/bankbook/bankbook/audit"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// billing writes a link's events as the engine decides them (domain's
// Decide functions on the link as the stream leaves it), and lets a test
// change what it writes.
type billing struct {
	s  *stream
	id string
	l  domain.Link
	n  int
}

// newBilling links distributor "dist1" and store "s1".
func newBilling(s *stream) *billing {
	b := &billing{s: s, id: domain.LinkID("dist1", "s1")}
	b.write(nil, domain.StoreLinked{LinkID: b.id, DistributorID: "dist1", StoreID: "s1", StoreName: "가게", DedicatedAccount: domain.BankAccount{Number: "900-1"}, LinkedAt: t0})
	return b
}

// write appends events to the link, changed by forge when it is not nil.
func (b *billing) write(forge func([]domain.Event) []domain.Event, events ...domain.Event) eventstore.Seq {
	b.s.t.Helper()
	if forge != nil {
		events = forge(events)
	}
	seq := b.s.append(domain.AggregateLink, b.id, events...)
	for _, e := range events {
		b.l = b.l.Apply(e)
	}
	return seq
}

func (b *billing) decided(events []domain.Event, err error) []domain.Event {
	b.s.t.Helper()
	if err != nil || len(events) == 0 {
		b.s.t.Fatalf("the engine decides %v, %v", events, err)
	}
	return events
}

func (b *billing) issue(amount int64, at time.Duration, forge func([]domain.Event) []domain.Event) eventstore.Seq {
	b.s.t.Helper()
	return b.write(forge, b.decided(domain.DecideIssueBill(b.l, domain.IssueBill{Amount: amount, Now: t0.Add(at)}))...)
}

func (b *billing) cancel(bill string, at time.Duration) eventstore.Seq {
	b.s.t.Helper()
	return b.write(nil, b.decided(domain.DecideCancelBill(b.l, domain.CancelBill{BillID: bill, Reason: "잘못 발행", Now: t0.Add(at)}))...)
}

// pay records a transfer of amount to the store's dedicated account, paid
// at paid and recorded at recorded: the deposit and the payment.
func (b *billing) pay(amount int64, paid, recorded time.Duration, forge func([]domain.Event) []domain.Event) eventstore.Seq {
	b.s.t.Helper()
	b.n++
	txn := "XB" + string(rune('A'+b.n))
	dep := depID("900-1", txn)
	b.s.append(domain.AggregateDeposit, string(dep), domain.DepositRecorded{DepositID: dep, BankTxnID: txn, AccountNumber: "900-1", LandedOn: bankAcct, DepositorName: "가게", Amount: amount, DepositedAt: t0.Add(paid), Outcome: domain.OutcomeStorePayment, LinkID: b.id})
	return b.write(forge, b.decided(domain.DecideStorePayment(b.l, domain.StorePayment{DepositID: dep, Amount: amount, PaidAt: t0.Add(paid), CollectAccount: bankAcct, FeeBps: 30, SettlementDays: 1, Now: t0.Add(recorded)}))...)
}

// Every move docs/domain.md's table of bill statuses makes, as the engine
// writes it, is no finding: a partial payment, a reminder, a bill
// superseding another, a payment recorded late going to the expired bill
// it paid, an overpayment, a cancellation, an unbilled payment, and a bill
// issued under the store's new name.
func TestVerifyTakesEveryBillMoveTheEngineMakes(t *testing.T) {
	s := newStream(t)
	b := newBilling(s)
	b.issue(1_200_000, time.Minute, nil)
	b.pay(300_000, 2*time.Minute, 2*time.Minute, nil)
	b.write(nil, b.decided(domain.DecideRemind(b.l, domain.Remind{Now: t0.Add(3 * time.Minute), PaymentsCountedTo: t0.Add(2 * time.Minute)}))...)
	b.issue(800_000, 4*time.Minute, nil)
	b.pay(100_000, 150*time.Second, 5*time.Minute, nil) // paid before the second bill: the first's
	b.pay(900_000, 5*time.Minute, 5*time.Minute, nil)
	b.cancel(domain.BillID(b.id, 2), 6*time.Minute)
	b.pay(1_000, 7*time.Minute, 7*time.Minute, nil)
	b.write(nil, domain.StoreRenamed{LinkID: b.id, DistributorID: "dist1", StoreID: "s1", StoreName: "새 가게", PreviousStoreName: "가게", RenamedAt: t0.Add(8 * time.Minute)})
	b.issue(50_000, 9*time.Minute, nil)
	if rep := s.verify(); !rep.OK {
		t.Fatalf("findings on the engine's own moves: %+v", rep.Findings)
	}
	if got := b.l.BillsIssued; got != 3 {
		t.Fatalf("the fixture issued %d bills, want 3", got)
	}
}

// A bill moves only as the engine moves it. Each forgery here moves no
// money and balances, yet tells a store it owes what it does not, or
// credits its payment to a bill it did not pay.
func TestVerifyNamesABillMovedOutOfTurn(t *testing.T) {
	alone := func(events []domain.Event) []domain.Event { return events[len(events)-1:] }
	for name, forge := range map[string]func(b *billing) eventstore.Seq{
		"a bill issued while another is current": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			return b.issue(2000, 2*time.Minute, alone) // without the expiry of the first
		},
		"a bill numbered out of turn": func(b *billing) eventstore.Seq {
			return b.issue(1000, time.Minute, func(events []domain.Event) []domain.Event {
				e := events[0].(domain.BillIssued)
				e.BillID = domain.BillID(b.id, 5)
				return []domain.Event{e}
			})
		},
		"a bill for another store on the link": func(b *billing) eventstore.Seq {
			return b.issue(1000, time.Minute, func(events []domain.Event) []domain.Event {
				e := events[0].(domain.BillIssued)
				e.StoreID = "s9"
				return []domain.Event{e}
			})
		},
		"a bill expired with no bill after it": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			return b.issue(2000, 2*time.Minute, func(events []domain.Event) []domain.Event { return events[:1] })
		},
		"an expired bill cancelled": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			b.issue(2000, 2*time.Minute, nil)
			return b.write(nil, domain.BillCancelled{LinkID: b.id, BillID: domain.BillID(b.id, 1), DistributorID: "dist1", StoreID: "s1", StoreName: "가게", Amount: 1000, CancelledAt: t0.Add(3 * time.Minute)})
		},
		"a bill paid in full reminded": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			b.pay(1000, 2*time.Minute, 2*time.Minute, nil)
			return b.write(nil, domain.BillReminded{LinkID: b.id, BillID: domain.BillID(b.id, 1), DistributorID: "dist1", StoreID: "s1", StoreName: "가게",
				Amount: 1000, PaidAmount: 1000, Outstanding: 1000, DedicatedAccount: domain.BankAccount{Number: "900-1"}, RemindedAt: t0.Add(3 * time.Minute)})
		},
		"a payment given to the bill before the one current when it was paid": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			b.issue(2000, 2*time.Minute, nil)
			return b.pay(500, 3*time.Minute, 3*time.Minute, func(events []domain.Event) []domain.Event {
				e := events[0].(domain.StorePaymentReceived)
				e.BillID, e.BillAmount, e.BillPaidAmount, e.BillOutstanding, e.BillStatus = domain.BillID(b.id, 1), 1000, 500, 500, domain.BillStatusExpired
				return []domain.Event{e}
			})
		},
		"a payment with figures that are not its bill's": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			return b.pay(500, 2*time.Minute, 2*time.Minute, func(events []domain.Event) []domain.Event {
				e := events[0].(domain.StorePaymentReceived)
				e.BillPaidAmount, e.BillOutstanding, e.BillStatus = 1000, 0, domain.BillStatusPaid
				return []domain.Event{e}
			})
		},
		"a payment taken twice": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			var again domain.Event
			b.pay(500, 2*time.Minute, 2*time.Minute, func(events []domain.Event) []domain.Event { again = events[0]; return events })
			return b.write(nil, again)
		},
		"a bill's event on an order": func(b *billing) eventstore.Seq {
			return b.s.append(domain.AggregateOrder, "oA", b.decided(domain.DecideIssueBill(b.l, domain.IssueBill{Amount: 1000, Now: t0.Add(time.Minute)}))...)
		},
		"a link made for another pair than its ID's": func(b *billing) eventstore.Seq {
			other := domain.LinkID("dist9", "s9")
			return b.s.append(domain.AggregateLink, other, domain.StoreLinked{LinkID: other, DistributorID: "dist9", StoreID: "s1", StoreName: "가게", DedicatedAccount: domain.BankAccount{Number: "900-9"}, LinkedAt: t0})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			s.wantFinding(audit.CheckAggregates, forge(newBilling(s)))
		})
	}
}

// A bill whose memo today's rules refuse (an older engine took it) is not
// a finding: the check is of moves, not of a command's inputs.
func TestVerifyTakesABillMemoAnOlderEngineTook(t *testing.T) {
	s := newStream(t)
	b := newBilling(s)
	memo := "11월분\u2028추가"
	if _, err := domain.DecideIssueBill(b.l, domain.IssueBill{Amount: 1000, Memo: memo, Now: t0}); err == nil {
		t.Fatalf("the memo %q is taken today; the test needs one that is refused", memo)
	}
	b.write(nil, domain.BillIssued{LinkID: b.id, BillID: domain.BillID(b.id, 1), DistributorID: "dist1", StoreID: "s1", StoreName: "가게",
		Amount: 1000, Memo: memo, DedicatedAccount: domain.BankAccount{Number: "900-1"}, IssuedAt: t0.Add(time.Minute)})
	b.issue(2000, 2*time.Minute, nil)
	if rep := s.verify(); !rep.OK {
		t.Fatalf("findings: %+v", rep.Findings)
	}
}

// The first engines gave a payment to the bill current when it was
// recorded, whatever its paid_at: one recorded after the next bill, though
// paid before it, went to that next bill. Their streams are no finding.
func TestVerifyTakesALatePaymentTheFirstEnginesGaveToTheBillCurrentWhenRecorded(t *testing.T) {
	s := newStream(t)
	b := newBilling(s)
	b.issue(1_000, time.Minute, nil)
	b.issue(2_000, 3*time.Minute, nil)
	b.pay(500, 2*time.Minute, 4*time.Minute, func(events []domain.Event) []domain.Event {
		e := events[0].(domain.StorePaymentReceived)
		e.BillID, e.BillAmount, e.BillPaidAmount, e.BillOutstanding, e.BillStatus = domain.BillID(b.id, 2), 2_000, 500, 1_500, domain.BillStatusPartiallyPaid
		return []domain.Event{e}
	})
	if rep := s.verify(); !rep.OK {
		t.Fatalf("findings on the first engines' late payment: %+v", rep.Findings)
	}
}

// A command's inputs that today's rules refuse (an older engine took them)
// do not hide its move: a bill issued over a current one, or a bill
// cancelled that is not current, is named whatever its memo or reason.
func TestVerifyNamesABillMovedOutOfTurnWhateverItsInputs(t *testing.T) {
	odd := "11월분\u2028추가" // a line separator: refused today
	for name, forge := range map[string]func(b *billing) eventstore.Seq{
		"a bill issued while another is current, with a memo refused today": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			return b.issue(2000, 2*time.Minute, func(events []domain.Event) []domain.Event {
				e := events[len(events)-1].(domain.BillIssued)
				e.Memo, e.SupersededBillID = odd, ""
				return []domain.Event{e}
			})
		},
		"a bill issued over a current one for an amount refused today": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			return b.issue(2000, 2*time.Minute, func(events []domain.Event) []domain.Event {
				e := events[len(events)-1].(domain.BillIssued)
				e.Amount, e.SupersededBillID = 0, ""
				return []domain.Event{e}
			})
		},
		"an expired bill cancelled, with a reason refused today": func(b *billing) eventstore.Seq {
			b.issue(1000, time.Minute, nil)
			b.issue(2000, 2*time.Minute, nil)
			return b.write(nil, domain.BillCancelled{LinkID: b.id, BillID: domain.BillID(b.id, 1), DistributorID: "dist1", StoreID: "s1", StoreName: "가게",
				Reason: odd, Amount: 1000, CancelledAt: t0.Add(3 * time.Minute)})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStream(t)
			s.wantFinding(audit.CheckAggregates, forge(newBilling(s)))
		})
	}
}

package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// TestRecordDepositOutcomes: what a bank transaction does, by where it
// arrived, the name it carries and the state of the order holding the name.
func TestRecordDepositOutcomes(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		open := u.submit(t, "o-open", 1000)
		short := u.submit(t, "o-short", 2000)
		reserved := u.submit(t, "o-reserved", 3000)
		yes := true
		if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-reserved", Deposited: &yes}); err != nil {
			t.Fatal(err)
		}
		at := u.clock.Now()
		for _, c := range []struct {
			name    string
			req     api.RecordDepositRequest
			outcome domain.DepositOutcome
			reason  domain.OrphanReason
			order   string
			user    string
		}{
			{"exact amount pays the order", api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: open.DepositorName, Amount: 1000},
				domain.OutcomeMatched, "", "o-open", ""},
			{"the same transaction again is a duplicate", api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: open.DepositorName, Amount: 1000},
				domain.OutcomeDuplicate, "", "o-open", ""},
			{"the same transaction described otherwise is a duplicate too", api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: open.DepositorName, Amount: 10000},
				domain.OutcomeDuplicate, "", "o-open", ""},
			{"another account is an orphan", api.RecordDepositRequest{BankTxnID: "t2", AccountNumber: "555", DepositorName: short.DepositorName, Amount: 2000},
				domain.OutcomeOrphaned, domain.ReasonUnknownAccount, "", ""},
			{"an unknown name is an orphan", api.RecordDepositRequest{BankTxnID: "t3", AccountNumber: collect.Number, DepositorName: "아무개", Amount: 2000},
				domain.OutcomeOrphaned, domain.ReasonNoSuchName, "", ""},
			{"another amount is an orphan naming the order", api.RecordDepositRequest{BankTxnID: "t4", AccountNumber: collect.Number, DepositorName: short.DepositorName, Amount: 1999},
				domain.OutcomeOrphaned, domain.ReasonAmountMismatch, "o-short", ""},
			{"a cancel-reserved order's deposit goes to its buyer's wallet", api.RecordDepositRequest{BankTxnID: "t5", AccountNumber: collect.Number, DepositorName: reserved.DepositorName, Amount: 3000},
				domain.OutcomeRefundedToWallet, "", "o-reserved", "buyer-o-reserved"},
			{"a second payment goes to the buyer's wallet", api.RecordDepositRequest{BankTxnID: "t6", AccountNumber: collect.Number, DepositorName: open.DepositorName, Amount: 1000},
				domain.OutcomeRefundedToWallet, "", "o-open", "buyer-o-open"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.req.DepositedAt = at
				rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject}, c.req)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Outcome != c.outcome || rep.Reason != c.reason || rep.OrderID != c.order || rep.UserID != c.user || rep.Seq == 0 {
					t.Fatalf("reply %+v, want outcome %s reason %q order %q user %q", rep, c.outcome, c.reason, c.order, c.user)
				}
			})
		}
		// Each refund credited its wallet once.
		assertBalance(t, u, "buyer-o-reserved", 3000)
		assertBalance(t, u, "buyer-o-open", 1000)
		// Only the duplicate that describes the transaction otherwise is
		// logged, as a warning naming both amounts.
		const differs = "bank transaction recorded before with other details"
		if logged := u.log.String(); strings.Count(logged, differs) != 1 || !strings.Contains(logged, `"recorded_amount":1000`) || !strings.Contains(logged, `"amount":10000`) {
			t.Fatalf("log: %s\nwant one warning %q naming both amounts", logged, differs)
		}
		if n := len(u.commits(t, domain.AggregateOrder, "o-open")); n != 3 {
			t.Fatalf("o-open has %d commits, want submit, paid, second payment refunded", n)
		}
	})
}

// TestResolveOrphanToAWalletCreditsItOnce: given an orphan, when an
// operator refunds it to a wallet, then the wallet is credited; the same
// resolution again answers the same and credits nothing more; another
// resolution is refused.
func TestResolveOrphanToAWalletCreditsItOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		rec, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t1", AccountNumber: collect.Number, DepositorName: "모름", Amount: 4000, DepositedAt: u.clock.Now()})
		if err != nil || rec.Outcome != domain.OutcomeOrphaned {
			t.Fatalf("record: %+v %v", rec, err)
		}
		req := api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToWallet, UserID: "u-7"}
		first, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, req)
		if err != nil || first.Outcome != domain.ResolveRefundToWallet || first.UserID != "u-7" {
			t.Fatalf("resolve: %+v %v", first, err)
		}
		again, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, req)
		if err != nil || again.Outcome != first.Outcome || again.UserID != "u-7" {
			t.Fatalf("same resolution again: %+v %v", again, err)
		}
		// The repeat's token covers the wallet credit the first one made.
		if first.Seq <= rec.Seq || again.Seq != first.Seq {
			t.Fatalf("tokens: record %d, first resolution %d, repeat %d", rec.Seq, first.Seq, again.Seq)
		}
		if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveRefundToWallet, UserID: "u-8"}); !errors.Is(err, domain.ErrNotOrphan) {
			t.Fatalf("another resolution: %v, want not an orphan", err)
		}
		if n := len(u.commits(t, domain.AggregateWallet, "u-7")); n != 1 {
			t.Fatalf("%d wallet commits, want 1", n)
		}
		assertBalance(t, u, "u-7", 4000)
	})
}

// TestResumedResolveAnswersWhatItsFirstAttemptDid: given an orphan refunded
// to a wallet by a keyed resolution whose idempotency record a crash lost,
// and a later credit to the same wallet, when the client repeats the
// resolution with the same key, then it gets the first reply, token
// included: the commit that credited the wallet, not the wallet's latest.
func TestResumedResolveAnswersWhatItsFirstAttemptDid(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		orphan := u.deposit(t, "t-res", "모름", 4000)
		later := u.deposit(t, "t-later", "몰라", 1000)
		req := api.ResolveDepositRequest{DepositID: orphan.DepositID, Action: domain.ResolveRefundToWallet, UserID: "u-7"}
		meta := commands.Meta{Command: api.DepositResolve.Subject, IdempotencyKey: "k-res"}
		first, err := u.Deposits.ResolveDeposit(ctx, meta, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{Command: api.DepositResolve.Subject, IdempotencyKey: "k-later"},
			api.ResolveDepositRequest{DepositID: later.DepositID, Action: domain.ResolveRefundToWallet, UserID: "u-7"}); err != nil {
			t.Fatal(err)
		}
		meta.Resumed = true
		again, err := u.Deposits.ResolveDeposit(ctx, meta, req)
		if err != nil || again != first {
			t.Fatalf("resumed repeat: %+v %v, want the first reply %+v", again, err, first)
		}
		assertBalance(t, u, "u-7", 5000)
	})
}

// TestResolveOrphanToAnOrderPaysIt, and an order that would refuse the
// money is refused up front, with nothing written.
func TestResolveOrphanToAnOrderPaysIt(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	u.submit(t, "o-9", 2500)
	u.submit(t, "o-other", 9999)
	rec, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{BankTxnID: "t9", AccountNumber: collect.Number, DepositorName: "오타", Amount: 2500, DepositedAt: u.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveAssignOrder, OrderID: "o-other"}); !errors.Is(err, domain.ErrAmountMismatch) {
		t.Fatalf("assign to an order of another amount: %v", err)
	}
	if n := len(u.commits(t, domain.AggregateDeposit, rec.DepositID)); n != 1 {
		t.Fatalf("a refused resolution wrote: %d deposit commits", n)
	}
	rep, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: rec.DepositID, Action: domain.ResolveAssignOrder, OrderID: "o-9"})
	if err != nil || rep.OrderID != "o-9" || rep.UserID != "" {
		t.Fatalf("assign: %+v %v; want the order, and no wallet", rep, err)
	}
	order := u.commits(t, domain.AggregateOrder, "o-9")
	if len(order) != 2 || order[1].Events[0].EventType != "order.paid" || rep.Seq != api.Seq(order[1].Seq) {
		t.Fatalf("order commits %+v, reply seq %d", order, rep.Seq)
	}
	if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: "dep_missing", Action: domain.ResolveRefundToWallet, UserID: "u"}); !errors.Is(err, domain.ErrDepositNotFound) {
		t.Fatalf("resolve of an unknown deposit: %v", err)
	}
}

// TestResolveOrphanToAPaidOrderRefundsItsBuyer: an orphan assigned to an
// order that is paid already goes to the buyer's wallet, and the reply says
// whose (user_id), the repeat's too.
func TestResolveOrphanToAPaidOrderRefundsItsBuyer(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	o := u.submit(t, "o-paid", 2500)
	if paid := u.deposit(t, "t-pay", o.DepositorName, 2500); paid.Outcome != domain.OutcomeMatched {
		t.Fatalf("paying deposit: %+v", paid)
	}
	orphan := u.deposit(t, "t-typo", "오타", 2500)
	req := api.ResolveDepositRequest{DepositID: orphan.DepositID, Action: domain.ResolveAssignOrder, OrderID: "o-paid"}
	first, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, req)
	if err != nil || first.OrderID != "o-paid" || first.UserID != "buyer-o-paid" {
		t.Fatalf("assign to a paid order: %+v %v; want its buyer's wallet named", first, err)
	}
	again, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, req)
	if err != nil || again.UserID != first.UserID || again.Seq != first.Seq {
		t.Fatalf("same resolution again: %+v %v; first %+v", again, err, first)
	}
	assertBalance(t, u, "buyer-o-paid", 2500)
}

// TestScanCompleteRefusesTheFuture: a feed cannot know what has not
// happened; an accepted watermark is answered for the normalised account.
func TestScanCompleteRefusesTheFuture(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	now := u.clock.Now()
	if _, err := u.Deposits.ScanComplete(ctx, commands.Meta{}, api.ScanCompleteRequest{AccountNumber: collect.Number, CompleteUpTo: now.Add(time.Second)}); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("a watermark in the future: %v", err)
	}
	rep, err := u.Deposits.ScanComplete(ctx, commands.Meta{}, api.ScanCompleteRequest{AccountNumber: collect.Number, CompleteUpTo: now})
	if err != nil || rep.AccountNumber != domain.NormalizeAccountNumber(collect.Number) || rep.Watermark != domain.FormatTime(now) {
		t.Fatalf("scan complete: %+v %v", rep, err)
	}
}

// TestResumedRecordAnswersWhatItsFirstAttemptDid: given a deposit recorded
// by an attempt that died before its reply was stored, when the client
// repeats it with the same key, then it gets the recorded outcome, not
// "duplicate"; another key's request for the same transaction is a duplicate.
func TestResumedRecordAnswersWhatItsFirstAttemptDid(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		req := api.RecordDepositRequest{BankTxnID: "t-r", AccountNumber: collect.Number, DepositorName: "모름", Amount: 3000, DepositedAt: u.clock.Now()}
		meta := commands.Meta{Command: api.DepositRecord.Subject, IdempotencyKey: "k-rec"}
		first, err := u.Deposits.RecordDeposit(ctx, meta, req)
		if err != nil || first.Outcome != domain.OutcomeOrphaned {
			t.Fatalf("first: %+v %v", first, err)
		}
		meta.Resumed = true
		again, err := u.Deposits.RecordDeposit(ctx, meta, req)
		if err != nil || again.Outcome != domain.OutcomeOrphaned || again.Reason != first.Reason || again.Seq != first.Seq {
			t.Fatalf("resumed repeat: %+v %v, want %+v", again, err, first)
		}
		other, err := u.Deposits.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject, IdempotencyKey: "k-other", Resumed: true}, req)
		if err != nil || other.Outcome != domain.OutcomeDuplicate {
			t.Fatalf("another key: %+v %v, want duplicate", other, err)
		}
	})
}

// failOnce fails the next append to an aggregate of type typ, as an
// instance dying right before it would. It is safe for concurrent use.
type failOnce struct {
	commands.EventStore
	mu     sync.Mutex
	typ    string
	failed bool
}

func (f *failOnce) Append(ctx context.Context, ref eventstore.Ref, expected eventstore.Seq, prevVersion int, commitID string, events []eventstore.Envelope) (eventstore.Commit, error) {
	f.mu.Lock()
	fail := ref.Type == f.typ && !f.failed
	f.failed = f.failed || fail
	f.mu.Unlock()
	if fail {
		return eventstore.Commit{}, errors.New("the instance died")
	}
	return f.EventStore.Append(ctx, ref, expected, prevVersion, commitID, events)
}

// failNext makes the next append to an aggregate of type typ fail.
func (f *failOnce) failNext(typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.typ, f.failed = typ, false
}

// TestResumedRecordCompletesWhatItsFirstAttemptBegan: the first attempt
// paid the order (or refunded it to the wallet) and died before recording
// the deposit; the repeat with its key records the deposit with what the
// first attempt did to the order.
func TestResumedRecordCompletesWhatItsFirstAttemptBegan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool // the order is cancel-reserved: the deposit is refunded
		want   domain.DepositOutcome
	}{{"paid", false, domain.OutcomeMatched}, {"refunded", true, domain.OutcomeRefundedToWallet}} {
		t.Run(tc.name, func(t *testing.T) {
			onEachStore(t, func(t *testing.T, es commands.EventStore) {
				fs := &failOnce{EventStore: es, typ: "deposit"}
				u := newUnit(t, fs)
				ctx := context.Background()
				o := u.submit(t, "o-"+tc.name, 4000)
				if tc.cancel {
					yes := true
					if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: o.OrderID, Deposited: &yes}); err != nil {
						t.Fatal(err)
					}
				}
				req := api.RecordDepositRequest{BankTxnID: "t-" + tc.name, AccountNumber: collect.Number, DepositorName: o.DepositorName, Amount: 4000, DepositedAt: u.clock.Now()}
				meta := commands.Meta{Command: api.DepositRecord.Subject, IdempotencyKey: "k-" + tc.name}
				if _, err := u.Deposits.RecordDeposit(ctx, meta, req); err == nil {
					t.Fatal("the first attempt did not die")
				}
				meta.Resumed = true
				rep, err := u.Deposits.RecordDeposit(ctx, meta, req)
				if err != nil || rep.Outcome != tc.want || rep.OrderID != o.OrderID {
					t.Fatalf("resumed repeat: %+v %v, want %s for order %s", rep, err, tc.want, o.OrderID)
				}
				commits := u.commits(t, "deposit", rep.DepositID)
				if len(commits) != 1 || !strings.Contains(string(commits[0].Events[0].Data), `"outcome":"`+string(tc.want)+`"`) {
					t.Fatalf("the deposit's commits: %+v", commits)
				}
			})
		})
	}
}

// TestRetryAfterTheNameMovedOnGoesToTheFirstOrder: the first attempt paid
// the order and died before recording the deposit; meanwhile the order's
// name was released and another order took it. The repeat (the scanner's,
// without a key) records the deposit as paying the first order, as the
// claim says, and leaves the new order unpaid: the transaction moves money
// once.
func TestRetryAfterTheNameMovedOnGoesToTheFirstOrder(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, &failOnce{EventStore: es, typ: "deposit"})
		ctx := context.Background()
		first := u.submit(t, "o-first", 4000)
		req := api.RecordDepositRequest{BankTxnID: "t-moved", AccountNumber: collect.Number, DepositorName: first.DepositorName, Amount: 4000, DepositedAt: u.clock.Now()}
		if _, err := u.Deposits.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject}, req); err == nil {
			t.Fatal("the first attempt did not die")
		}
		if st := u.order(t, first.OrderID).Status; st != domain.StatusPaid {
			t.Fatalf("the first order is %s, want paid by the attempt that died", st)
		}
		if err := u.names.Release(ctx, first.DepositorName, domain.OrderID(first.OrderID)); err != nil {
			t.Fatal(err)
		}
		next := orderIDTrying(t, "o-next", first.DepositorName, "김민수", u.Orders.Config().DepositorNameMax)
		if rep, err := u.submitAs(t, next, "u-next", "김민수", 4000); err != nil || rep.DepositorName != first.DepositorName {
			t.Fatalf("the next order under the name: %+v %v", rep, err)
		}
		rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject}, req)
		if err != nil || rep.Outcome != domain.OutcomeMatched || rep.OrderID != first.OrderID {
			t.Fatalf("the repeat: %+v %v, want matched to %s", rep, err, first.OrderID)
		}
		if o := u.order(t, next); o.Status != domain.StatusAwaitingDeposit || len(o.DepositIDs) != 0 {
			t.Fatalf("the order that took the name over: %+v, want unpaid", o)
		}
	})
}

// An attempt that stalls while it holds a transaction's claim, past its
// bound (well within the claim's lease, after which another attempt may
// take the claim over and record the transaction its own way), writes
// nothing more: the order stays unpaid and no deposit is recorded. The
// next attempt records it.
func TestAnAttemptStalledPastItsBoundWritesNothing(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		o := u.submit(t, "o-stall", 4000)
		req := api.RecordDepositRequest{BankTxnID: "t-stall", AccountNumber: collect.Number, DepositorName: o.DepositorName, Amount: 4000, DepositedAt: u.clock.Now()}
		meta := commands.Meta{Command: api.DepositRecord.Subject}
		commands.BoundRecording(t, 50*time.Millisecond, func() { time.Sleep(100 * time.Millisecond) })
		if rep, err := u.Deposits.RecordDeposit(ctx, meta, req); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("an attempt stalled past its bound: %+v %v, want it to stop at the bound", rep, err)
		}
		if got := u.order(t, o.OrderID); got.Status != domain.StatusAwaitingDeposit || len(got.DepositIDs) != 0 {
			t.Fatalf("the order after the stalled attempt: %+v, want it unpaid", got)
		}
		id := domain.NewDepositID(req.AccountNumber, req.BankTxnID)
		if c := u.commits(t, "deposit", string(id)); len(c) != 0 {
			t.Fatalf("the stalled attempt recorded the deposit: %+v", c)
		}
		commands.BoundRecording(t, time.Minute, nil)
		if rep, err := u.Deposits.RecordDeposit(ctx, meta, req); err != nil || rep.Outcome != domain.OutcomeMatched || rep.OrderID != o.OrderID {
			t.Fatalf("the next attempt: %+v %v, want matched to %s", rep, err, o.OrderID)
		}
	})
}

// A claim that does not describe the transaction (another one, or none) is
// never recorded: the request fails and nothing is written.
func TestRecordRefusesAClaimOfAnotherTransaction(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		req := api.RecordDepositRequest{BankTxnID: "t-c", AccountNumber: collect.Number, DepositorName: "모름", Amount: 3000, DepositedAt: u.clock.Now()}
		id := domain.NewDepositID(req.AccountNumber, req.BankTxnID)
		if _, _, err := u.names.ClaimDeposit(ctx, id, []byte(`{"bank_txn_id":"","account_number":"","amount":0}`), "someone"); err != nil {
			t.Fatal(err)
		}
		if rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, req); err == nil {
			t.Fatalf("recorded from a claim of no transaction: %+v", rep)
		}
		if n := len(u.commits(t, "deposit", string(id))); n != 0 {
			t.Fatalf("%d deposit commits, want none", n)
		}
	})
}

// A transfer made before the order that holds its depositor name now was
// submitted (a late import of an old statement, say, after the name was
// taken over) is not that order's: it is an orphan (no_such_name), and the
// order still awaits its deposit.
func TestDepositMadeBeforeTheOrderIsNotItsPayment(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		o := u.submit(t, "o-later", 4000)
		rep, err := u.Deposits.RecordDeposit(context.Background(), commands.Meta{Command: api.DepositRecord.Subject}, api.RecordDepositRequest{
			BankTxnID: "t-old", AccountNumber: collect.Number, DepositorName: o.DepositorName, Amount: 4000, DepositedAt: u.clock.Now().Add(-time.Hour)})
		if err != nil || rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonNoSuchName {
			t.Fatalf("a transfer made an hour before the order: %+v %v, want an orphan (no_such_name)", rep, err)
		}
		if st := u.order(t, o.OrderID).Status; st != domain.StatusAwaitingDeposit {
			t.Fatalf("the order is %s, want still awaiting its deposit", st)
		}
	})
}

// TestReopenIsForTheFailedRefundOnly: given an orphan refunded to the
// sender's bank, when the refund's payout fails and the deposit is
// reopened, then it is an orphan again, once; a reopen naming another
// payout (a late one, after the operator refunded it again) leaves the
// deposit as it is, so one failure cannot return the money of a refund
// still in flight to the orphan queue.
func TestReopenIsForTheFailedRefundOnly(t *testing.T) {
	sender := domain.BankAccount{Bank: "우리은행", Number: "1002-123", Holder: "박지훈"}
	tests := []struct {
		name           string
		refunds        []string // payouts the deposit was refunded to the bank by, in order
		reopenedBefore []string // reopens already made, after the refund they name
		reopen         string
		wantWrite      bool
		wantUnresolved bool
		wantPayout     domain.PayoutID // the refund in flight after
	}{
		{name: "the failed refund", refunds: []string{"po-1"}, reopen: "po-1", wantWrite: true, wantUnresolved: true},
		{name: "the failed refund again", refunds: []string{"po-1"}, reopenedBefore: []string{"po-1"}, reopen: "po-1", wantUnresolved: true},
		{name: "another payout", refunds: []string{"po-1"}, reopen: "po-9", wantPayout: "po-1"},
		{name: "an earlier refund's late failure", refunds: []string{"po-1", "po-2"}, reopenedBefore: []string{"po-1"}, reopen: "po-1", wantPayout: "po-2"},
		{name: "the second refund's failure", refunds: []string{"po-1", "po-2"}, reopenedBefore: []string{"po-1"}, reopen: "po-2", wantWrite: true, wantUnresolved: true},
		{name: "a deposit never refunded", reopen: "po-1", wantUnresolved: true},
		// Its money is in suspense already: a reopen would count it twice.
		{name: "a deposit never refunded, a reopen naming no payout", reopen: "", wantUnresolved: true},
	}
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := newUnit(t, es)
				ctx := context.Background()
				orphan := u.deposit(t, fmt.Sprint("t-reopen-", i), "모름", 4000)
				id := domain.DepositID(orphan.DepositID)
				payout := func(p string) domain.PayoutID {
					if p == "" {
						return ""
					}
					return domain.PayoutID(fmt.Sprint(p, "-", i))
				}
				reopen := func(p string) error {
					return u.Deposits.Reopen(ctx, commands.Meta{}, domain.DepositReopened{DepositID: id, Amount: 4000, PayoutID: payout(p), Reason: "account closed", ReopenedAt: u.clock.Now()})
				}
				for j, p := range tt.refunds {
					if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: orphan.DepositID, Action: domain.ResolveRefundToBank, BankAccount: &sender, PayoutID: string(payout(p))}); err != nil {
						t.Fatalf("refund to the bank by %s: %v", p, err)
					}
					if j < len(tt.reopenedBefore) {
						if err := reopen(tt.reopenedBefore[j]); err != nil {
							t.Fatal(err)
						}
					}
				}
				before := len(u.commits(t, domain.AggregateDeposit, orphan.DepositID))
				if err := reopen(tt.reopen); err != nil {
					t.Fatalf("reopen: %v", err)
				}
				if n := len(u.commits(t, domain.AggregateDeposit, orphan.DepositID)) - before; n != map[bool]int{true: 1}[tt.wantWrite] {
					t.Fatalf("reopen wrote %d commits, want a write %v", n, tt.wantWrite)
				}
				d, err := u.Deposits.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				wantPayout := domain.PayoutID("")
				if tt.wantPayout != "" {
					wantPayout = payout(string(tt.wantPayout))
				}
				if d.Unresolved() != tt.wantUnresolved || d.PayoutID != wantPayout {
					t.Fatalf("deposit after: unresolved %v, refund %q; want %v, %q", d.Unresolved(), d.PayoutID, tt.wantUnresolved, wantPayout)
				}
				if !tt.wantUnresolved {
					return
				}
				// An orphan again: the operator can resolve it another way.
				if _, err := u.Deposits.ResolveDeposit(ctx, commands.Meta{}, api.ResolveDepositRequest{DepositID: orphan.DepositID, Action: domain.ResolveRefundToWallet, UserID: fmt.Sprint("u-reopen-", i)}); err != nil {
					t.Fatalf("resolve after the reopen: %v", err)
				}
				assertBalance(t, u, fmt.Sprint("u-reopen-", i), 4000)
			})
		}
	})
}

// depositState returns deposit id as its commits record it.
func (u *unit) depositState(t *testing.T, id string) domain.Deposit {
	t.Helper()
	return fold[domain.Deposit](t, u, domain.AggregateDeposit, id)
}

// TestRepeatedStorePaymentNamesItsBillAndPaysItOnce: a payment to a
// store's dedicated account, recorded, then sent again: without its key
// it is a duplicate that still names the bill it paid and the commit that
// recorded it; with its key (resumed) it answers what the first attempt
// did, a store payment to that bill. The bill counts the money once.
func TestRepeatedStorePaymentNamesItsBillAndPaysItOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		acct := u.link(t, "d-1", "s-1").DedicatedAccount
		bill := u.issue(t, "d-1", "s-1", 5000)
		req := api.RecordDepositRequest{BankTxnID: "t-sp", AccountNumber: acct.Number, DepositorName: "가게", Amount: 3000, DepositedAt: u.clock.Now()}
		meta := commands.Meta{Command: api.DepositRecord.Subject, IdempotencyKey: "k-sp"}
		first, err := u.Deposits.RecordDeposit(ctx, meta, req)
		if err != nil || first.Outcome != domain.OutcomeStorePayment || first.BillID != bill.BillID || first.Seq == 0 {
			t.Fatalf("first: %+v %v, want a store payment to %s", first, err, bill.BillID)
		}
		again, err := u.Deposits.RecordDeposit(ctx, commands.Meta{Command: api.DepositRecord.Subject}, req)
		if err != nil || again.Outcome != domain.OutcomeDuplicate || again.BillID != bill.BillID || again.Seq != first.Seq {
			t.Fatalf("repeat: %+v %v, want a duplicate naming %s at seq %d", again, err, bill.BillID, first.Seq)
		}
		meta.Resumed = true
		resumed, err := u.Deposits.RecordDeposit(ctx, meta, req)
		if err != nil || resumed.Outcome != domain.OutcomeStorePayment || resumed.BillID != bill.BillID || resumed.Seq != first.Seq {
			t.Fatalf("resumed repeat: %+v %v, want %+v", resumed, err, first)
		}
		if l := u.linkState(t, "d-1", "s-1"); l.Payments != 1 || l.Current.PaidAmount != 3000 {
			t.Fatalf("the link counts %d payments, %d paid on the bill: want the payment once", l.Payments, l.Current.PaidAmount)
		}
	})
}

// TestDepositOnAnAccountNoStoreHoldsIsAnOrphan: a deposit on an account
// that is not the collection account and no store holds is an
// unknown_account orphan, not a refused deposit that would stop the bank
// scan; a dedicated number never handed out is a virtual account of the
// collection account, so the money is recorded as landed there, while a
// number outside the dedicated range (or any, without store links) landed
// on the account it names.
func TestDepositOnAnAccountNoStoreHoldsIsAnOrphan(t *testing.T) {
	accts := &commandstest.Accounts{From: 5001000000}
	withLinks := newUnitOn(t, storeOpeners[0].open(t), accts, nil)
	withLinks.link(t, "d-1", "s-1") // 5001000000 handed out
	noLinks := &unit{es: storeOpeners[0].open(t), clock: &clock{now: withLinks.clock.Now()}}
	h, err := commands.New(commands.Deps{Events: noLinks.es, Codec: domain.Events(), Names: commandstest.NewNames(noLinks.clock.Now), Timers: &commandstest.Timers{}, Watermarks: &commandstest.Watermarks{}},
		commands.Config{CollectAccount: collect, Now: noLinks.clock.Now}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	noLinks.Handlers = h
	for _, tc := range []struct {
		name     string
		u        *unit
		account  string
		landedOn string
	}{
		{"a dedicated number never handed out", withLinks, "5001000007", collect.Number},
		{"a number outside the dedicated range", withLinks, "999-999", ""},
		{"a dedicated-looking number without store links", noLinks, "5001000000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.u.pay(t, "t-"+tc.account, tc.account, 4000)
			if rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonUnknownAccount || rep.BillID != "" || rep.Seq == 0 {
				t.Fatalf("deposit on %s: %+v, want an unknown_account orphan", tc.account, rep)
			}
			if d := tc.u.depositState(t, rep.DepositID); d.LandedOn != tc.landedOn || d.Amount != 4000 {
				t.Fatalf("deposit %+v, want %d landed on %q", d, 4000, tc.landedOn)
			}
		})
	}
}

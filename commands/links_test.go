package commands_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/commands/commandstest"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

func (u *unit) link(t *testing.T, dist, store string) api.LinkStoreReply {
	t.Helper()
	rep, err := u.Links.LinkStore(context.Background(), commands.Meta{}, api.LinkStoreRequest{DistributorID: dist, StoreID: store, StoreName: "가게 " + store})
	if err != nil {
		t.Fatalf("link %s/%s: %v", dist, store, err)
	}
	return rep
}

func (u *unit) issue(t *testing.T, dist, store string, amount int64) api.IssueBillReply {
	t.Helper()
	rep, err := u.Links.IssueBill(context.Background(), commands.Meta{}, api.IssueBillRequest{DistributorID: dist, StoreID: store, Amount: amount})
	if err != nil {
		t.Fatalf("issue %s/%s %d: %v", dist, store, amount, err)
	}
	return rep
}

func (u *unit) pay(t *testing.T, txn, account string, amount int64) api.RecordDepositReply {
	t.Helper()
	rep, err := u.Deposits.RecordDeposit(context.Background(), commands.Meta{}, api.RecordDepositRequest{
		BankTxnID: txn, AccountNumber: account, DepositorName: "가게", Amount: amount, DepositedAt: u.clock.Now()})
	if err != nil {
		t.Fatalf("deposit %s on %s: %v", txn, account, err)
	}
	return rep
}

func (u *unit) linkState(t *testing.T, dist, store string) domain.Link {
	t.Helper()
	return fold[domain.Link](t, u, domain.AggregateLink, domain.LinkID(domain.DistributorID(dist), domain.StoreID(store)))
}

func domainCode(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return fmt.Sprint(err)
}

// The three flows of DOMAIN.md §4: a bill paid exactly, a bill paid in
// parts (and over), and payments with no bill at all.
func TestBillFlows(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		u := newUnit(t, es)
		ctx := context.Background()
		acct := u.link(t, "d-1", "s-1").DedicatedAccount
		if again := u.link(t, "d-1", "s-1"); again.DedicatedAccount != acct {
			t.Fatalf("linking again gave %+v, want %+v", again.DedicatedAccount, acct)
		}
		if other := u.link(t, "d-1", "s-2"); other.DedicatedAccount.Number == acct.Number {
			t.Fatal("two stores share a dedicated account")
		}

		// Normal: issued, paid exactly.
		b1 := u.issue(t, "d-1", "s-1", 100_000)
		if b1.Status != "active" || b1.DedicatedAccount != acct {
			t.Fatalf("issue: %+v", b1)
		}
		if rep := u.pay(t, "t-1", acct.Number, 100_000); rep.Outcome != domain.OutcomeStorePayment || rep.BillID != b1.BillID {
			t.Fatalf("exact payment: %+v", rep)
		}
		if l := u.linkState(t, "d-1", "s-1"); l.Current.ID != b1.BillID || l.Current.Status() != domain.BillStatusPaid {
			t.Fatalf("after the exact payment: %+v", l.Current)
		}

		// Partial: the next bill supersedes the paid one; two transfers and
		// an overpayment.
		b2 := u.issue(t, "d-1", "s-1", 50_000)
		if b2.SupersededBillID != b1.BillID {
			t.Fatalf("second bill superseded %q, want %q", b2.SupersededBillID, b1.BillID)
		}
		u.pay(t, "t-2", acct.Number, 20_000)
		if l := u.linkState(t, "d-1", "s-1"); l.Current.Status() != domain.BillStatusPartiallyPaid || l.Current.Outstanding() != 30_000 {
			t.Fatalf("after a partial payment: %+v", l.Current)
		}
		u.pay(t, "t-3", acct.Number, 40_000)
		if l := u.linkState(t, "d-1", "s-1"); l.Current.Status() != domain.BillStatusPaid || l.Current.PaidAmount != 60_000 {
			t.Fatalf("after overpaying: %+v", l.Current)
		}

		// No bill: cancelled, then paid anyway.
		if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: b2.BillID, Reason: "typo"}); err != nil {
			t.Fatal(err)
		}
		if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: b2.BillID}); domainCode(err) != "wrong_state" {
			t.Fatalf("cancel twice: %v", err)
		}
		if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: b1.BillID}); domainCode(err) != "wrong_state" {
			t.Fatalf("cancel a superseded bill: %v", err)
		}
		if rep := u.pay(t, "t-4", acct.Number, 7_000); rep.Outcome != domain.OutcomeStorePayment || rep.BillID != "" {
			t.Fatalf("unbilled payment: %+v", rep)
		}
		// The same bank transaction again changes nothing.
		if rep := u.pay(t, "t-4", acct.Number, 7_000); rep.Outcome != domain.OutcomeDuplicate || rep.BillID != "" {
			t.Fatalf("repeat: %+v", rep)
		}
		// A billed payment's repeat names its bill.
		if rep := u.pay(t, "t-3", acct.Number, 40_000); rep.Outcome != domain.OutcomeDuplicate || rep.BillID != b2.BillID {
			t.Fatalf("repeat of a billed payment: %+v, want bill %s", rep, b2.BillID)
		}
		if l := u.linkState(t, "d-1", "s-1"); l.Payments != 4 || l.PaidTotal != 167_000 {
			t.Fatalf("payments %d total %d, want 4 and 167000", l.Payments, l.PaidTotal)
		}

		// Unlinked stores and unknown bills.
		if _, err := u.Links.IssueBill(ctx, commands.Meta{}, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-9", Amount: 1}); domainCode(err) != "store_not_linked" {
			t.Fatalf("issue to an unlinked store: %v", err)
		}
		if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: "bill_000000000000000000000000_1"}); domainCode(err) != "bill_not_found" {
			t.Fatalf("cancel an unknown bill: %v", err)
		}
	})
}

// A deposit on a dedicated account never pays an order, even one whose
// depositor name and amount it carries; an order deposit never pays a bill.
func TestStorePaymentsAndOrdersNeverMix(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	acct := u.link(t, "d-1", "s-1").DedicatedAccount
	b := u.issue(t, "d-1", "s-1", 5000)
	sub := u.submit(t, "o-1", 5000)
	rep, err := u.Deposits.RecordDeposit(context.Background(), commands.Meta{}, api.RecordDepositRequest{
		BankTxnID: "t-1", AccountNumber: acct.Number, DepositorName: sub.DepositorName, Amount: 5000, DepositedAt: u.clock.Now()})
	if err != nil || rep.Outcome != domain.OutcomeStorePayment || rep.BillID != b.BillID || rep.OrderID != "" {
		t.Fatalf("dedicated-account deposit under the order's name: %+v %v", rep, err)
	}
	if o := u.order(t, "o-1"); o.Status != domain.StatusAwaitingDeposit {
		t.Fatalf("the order is %s", o.Status)
	}
	if rep := u.deposit(t, "t-2", sub.DepositorName, 5000); rep.Outcome != domain.OutcomeMatched || rep.BillID != "" {
		t.Fatalf("order deposit: %+v", rep)
	}
	if l := u.linkState(t, "d-1", "s-1"); l.Payments != 1 {
		t.Fatalf("the bill got %d payments", l.Payments)
	}
	// An account that is neither is an orphan, as before.
	if rep := u.pay(t, "t-3", "999-999", 100); rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonUnknownAccount {
		t.Fatalf("unknown account: %+v", rep)
	}
}

// TestTransferToANumberWhoseLinkFailedIsAnOrphan: store.link allocated a
// dedicated number, then failed to write its link, so no store was given
// the number. A transfer to it (a mistyped digit) is an unknown_account
// orphan on the collection account, not a refused deposit that would stop
// the bank scan; once the link is made, the same number takes payments.
func TestTransferToANumberWhoseLinkFailedIsAnOrphan(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		fs := &failOnce{EventStore: es, typ: domain.AggregateLink}
		u := newUnit(t, fs)
		if _, err := u.Links.LinkStore(context.Background(), commands.Meta{}, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-1", StoreName: "가게"}); err == nil {
			t.Fatal("the link's append did not fail")
		}
		number, err := u.accts.Allocate(context.Background(), domain.LinkID("d-1", "s-1")) // the same number again
		if err != nil {
			t.Fatal(err)
		}
		rep := u.pay(t, "t-typo", number, 5000)
		if rep.Outcome != domain.OutcomeOrphaned || rep.Reason != domain.ReasonUnknownAccount {
			t.Fatalf("a transfer to the allocated, unlinked number %s: %+v, want an unknown_account orphan", number, rep)
		}
		var d domain.Deposit
		for _, c := range u.commits(t, domain.AggregateDeposit, rep.DepositID) {
			for _, env := range c.Events {
				ev, err := domain.Events().Decode(env.EventType, env.SchemaVersion, env.Data)
				if err != nil {
					t.Fatal(err)
				}
				d = d.Apply(ev)
			}
		}
		if d.LandedOn != collect.Number {
			t.Fatalf("the orphan landed on %q, want the collection account %s", d.LandedOn, collect.Number)
		}
		if got := u.link(t, "d-1", "s-1").DedicatedAccount.Number; got != number {
			t.Fatalf("the repeated store.link got %s, want the number allocated first, %s", got, number)
		}
		if rep := u.pay(t, "t-2", number, 7000); rep.Outcome != domain.OutcomeStorePayment {
			t.Fatalf("a payment once the store is linked: %+v, want a store payment", rep)
		}
	})
}

// Concurrent issues for one store on two instances: exactly one bill is
// current, every other one expired by the next.
func TestConcurrentIssuesLeaveOneCurrentBill(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		accts := &commandstest.Accounts{From: 5001000000}
		a, b := newUnitOn(t, es, accts, nil), newUnitOn(t, es, accts, nil)
		a.link(t, "d-1", "s-1")
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u := a
				if i%2 == 1 {
					u = b
				}
				if _, err := u.Links.IssueBill(context.Background(), commands.Meta{}, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: int64(1000 + i)}); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		issued, expired := 0, 0
		for _, c := range a.commits(t, domain.AggregateLink, domain.LinkID("d-1", "s-1")) {
			for _, env := range c.Events {
				switch env.EventType {
				case "bill.issued":
					issued++
				case "bill.expired":
					expired++
				}
			}
		}
		l := a.linkState(t, "d-1", "s-1")
		if issued != n || expired != n-1 || !l.HasCurrentBill() || l.BillsIssued != n {
			t.Fatalf("issued %d expired %d, link %+v: want %d issued, %d expired, one current", issued, expired, l, n, n-1)
		}
	})
}

// A bulk issue answers every line in order; bad lines do not stop the
// others, a store named on two lines gets nothing (both lines refused), and
// the same request (same key) again issues nothing new.
func TestIssueBulk(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	for i := range 5 {
		u.link(t, "d-1", fmt.Sprintf("s-%d", i))
	}
	req := api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{
		{StoreID: "s-0", Amount: 1000},
		{StoreID: "s-1", Amount: 0},           // bad amount
		{StoreID: "s-unlinked", Amount: 1000}, // not linked
		{StoreID: "s-2", Amount: 2000, Memo: "5월분"},
		{StoreID: "bad id!", Amount: 1000}, // bad store ID
		{StoreID: "s-2", Amount: 2500},     // the same store again: lines 4 and 6 refused
		{StoreID: "s-3", Amount: 3000},
	}}
	meta := commands.Meta{IdempotencyKey: "erp-2025-05"}
	rep, err := u.Links.IssueBulk(context.Background(), meta, req)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []string{"", "invalid_input", "store_not_linked", "invalid_input", "invalid_input", "invalid_input", ""}
	for i, r := range rep.Results {
		got := ""
		if r.Error != nil {
			got = r.Error.Code
		}
		if r.Line != i+1 || r.StoreID != req.Bills[i].StoreID || got != wantErr[i] || (got == "") != (r.BillID != "") {
			t.Errorf("line %d: %+v, want error %q", i+1, r, wantErr[i])
		}
	}
	if rep.Issued != 2 || rep.Failed != 5 {
		t.Fatalf("issued %d failed %d", rep.Issued, rep.Failed)
	}
	for _, i := range []int{3, 5} {
		if e := rep.Results[i].Error; e.Details["store_id"] != "s-2" || !strings.Contains(e.Message, "lines 4 and 6") {
			t.Errorf("line %d: %+v, want s-2 named on lines 4 and 6", i+1, e)
		}
	}
	if l := u.linkState(t, "d-1", "s-2"); l.BillsIssued != 0 {
		t.Errorf("store s-2 named twice got %d bills, want none", l.BillsIssued)
	}
	// The instance died before the reply was stored: the repeat resumes and
	// finds every line's commit by its key and line number.
	before := len(u.commits(t, domain.AggregateLink, domain.LinkID("d-1", "s-3")))
	meta.Resumed = true
	again, err := u.Links.IssueBulk(context.Background(), meta, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again.Results {
		if again.Results[i].BillID != rep.Results[i].BillID {
			t.Errorf("line %d again: bill %q, first %q", i+1, again.Results[i].BillID, rep.Results[i].BillID)
		}
	}
	if after := len(u.commits(t, domain.AggregateLink, domain.LinkID("d-1", "s-3"))); after != before {
		t.Errorf("the repeat appended %d commits", after-before)
	}
}

// TestRetriedStorePaymentAfterManyOthersIsAppliedOnce: the first attempt
// applied a store payment and died before recording the deposit; more
// payments than the link remembers (domain.RecentDeposits) reach the link
// before the transaction is recorded again. The repeat finds the payment in
// the link's history and records the deposit without paying the bill again.
func TestRetriedStorePaymentAfterManyOthersIsAppliedOnce(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		fs := &failOnce{EventStore: es, typ: "deposit"}
		u := newUnit(t, fs)
		ctx := context.Background()
		acct := u.link(t, "d-1", "s-1").DedicatedAccount
		bill := u.issue(t, "d-1", "s-1", 1_000_000_000)
		req := api.RecordDepositRequest{BankTxnID: "t-first", AccountNumber: acct.Number, DepositorName: "가게", Amount: 1_000, DepositedAt: u.clock.Now()}
		if _, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, req); err == nil {
			t.Fatal("the first attempt did not die")
		}
		others := domain.RecentDeposits + 6
		for i := range others {
			u.pay(t, fmt.Sprint("t-", i), acct.Number, 1)
		}
		rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, req)
		if err != nil || rep.Outcome != domain.OutcomeStorePayment || rep.BillID != bill.BillID {
			t.Fatalf("the repeat: %+v %v, want a store payment to %s", rep, err, bill.BillID)
		}
		if l := u.linkState(t, "d-1", "s-1"); l.Current.PaidAmount != int64(1_000+others) {
			t.Fatalf("the bill's paid amount %d, want %d: the first payment counted once", l.Current.PaidAmount, 1_000+others)
		}
	})
}

// A reminder with nothing outstanding reminds nobody and says so (status
// none, nothing written); with a bill outstanding it reminds the store.
func TestRemindUnpaidSaysWhetherItReminded(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	u.link(t, "d-1", "s-1")
	links := []string{domain.LinkID("d-1", "s-1")}
	meta := commands.Meta{Command: api.BillRemind.Subject}
	rep, err := u.Links.RemindUnpaid(ctx, meta, "d-1", []string{"s-1"}, false)
	if err != nil || rep.Status != api.RemindStatusNone || len(rep.Reminded) != 0 || rep.Seq != 0 {
		t.Fatalf("nothing outstanding: %+v %v, want status none, nobody reminded, nothing written", rep, err)
	}
	u.issue(t, "d-1", "s-1", 10_000)
	rep, err = u.Links.RemindUnpaid(ctx, meta, "d-1", []string{"s-1"}, false)
	if err != nil || rep.Status != api.RemindStatusReminded || !slices.Equal(rep.Reminded, []string{"s-1"}) || rep.Seq == 0 || rep.PaymentsCountedTo != "" {
		t.Fatalf("a bill outstanding: %+v %v, want s-1 reminded, no scan named", rep, err)
	}
	// Once the bank scan has a watermark, the reminder records it (its
	// message says up to when payments are counted) and the reply says it.
	wm := time.Date(2025, 5, 1, 9, 55, 0, 123_456_789, time.UTC)
	if err := u.marks.Advance(ctx, u.Links.Config().CollectAccount.Number, wm); err != nil {
		t.Fatal(err)
	}
	rep, err = u.Links.RemindUnpaid(ctx, meta, "d-1", []string{"s-1"}, false)
	if want := "2025-05-01T09:55:00.123456Z"; err != nil || rep.PaymentsCountedTo != want {
		t.Fatalf("with a watermark: %+v %v, want payments_counted_to %s", rep, err, want)
	}
	commits := u.commits(t, domain.AggregateLink, links[0])
	last := commits[len(commits)-1].Events[0]
	ev, err := domain.Events().Decode(last.EventType, last.SchemaVersion, last.Data)
	if r, ok := ev.(domain.BillReminded); err != nil || !ok || !r.PaymentsCountedTo.Equal(wm.Truncate(time.Microsecond)) {
		t.Fatalf("the last reminder %#v (%v), want payments counted to %v", ev, err, wm)
	}
}

// A repeat of a reminder request with its key (its first attempt's reply
// lost) finds the reminders the first attempt recorded, and its reply names
// the watermark those reminders state, not the one the scan has reached
// since: the stores were told payments were counted up to the first.
func TestResumedReminderNamesTheWatermarkItsRemindersState(t *testing.T) {
	u := newUnit(t, storeOpeners[1].open(t))
	ctx := context.Background()
	u.link(t, "d-1", "s-1")
	u.issue(t, "d-1", "s-1", 10_000)
	account := u.Links.Config().CollectAccount.Number
	first := time.Date(2025, 5, 1, 9, 55, 0, 0, time.UTC)
	if err := u.marks.Advance(ctx, account, first); err != nil {
		t.Fatal(err)
	}
	meta := commands.Meta{Command: api.BillRemind.Subject, IdempotencyKey: "k-remind"}
	rep, err := u.Links.RemindUnpaid(ctx, meta, "d-1", []string{"s-1"}, false)
	if want := domain.FormatTime(first); err != nil || rep.PaymentsCountedTo != want {
		t.Fatalf("the first attempt: %+v %v, want payments counted to %s", rep, err, want)
	}
	if err := u.marks.Advance(ctx, account, first.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	meta.Resumed = true
	again, err := u.Links.RemindUnpaid(ctx, meta, "d-1", []string{"s-1"}, false)
	if err != nil || !slices.Equal(again.Reminded, rep.Reminded) || again.Seq != rep.Seq {
		t.Fatalf("the repeat: %+v %v, want the first attempt's reminders %+v", again, err, rep)
	}
	if again.PaymentsCountedTo != rep.PaymentsCountedTo {
		t.Fatalf("the repeat names payments counted to %s, but its reminder told the store %s", again.PaymentsCountedTo, rep.PaymentsCountedTo)
	}
}

// TestRemindUnpaidGoesOnPastAFailedLink: one link's reminder fails (the
// instance dies before its append); the others are reminded all the same,
// and the request fails. Its repeat with the same key reminds only the
// store that was missed: every store once, listed in the order of links.
func TestRemindUnpaidGoesOnPastAFailedLink(t *testing.T) {
	onEachStore(t, func(t *testing.T, es commands.EventStore) {
		fs := &failOnce{EventStore: es, typ: "x"}
		u := newUnit(t, fs)
		ctx := context.Background()
		var links, stores []string
		for i := range 20 {
			store := fmt.Sprintf("s-%02d", i)
			u.link(t, "d-1", store)
			u.issue(t, "d-1", store, 10_000)
			links, stores = append(links, domain.LinkID("d-1", domain.StoreID(store))), append(stores, store)
		}
		reminders := func() (n int) {
			for _, id := range links {
				for _, c := range u.commits(t, domain.AggregateLink, id) {
					if c.Events[0].EventType == "bill.reminded" {
						n++
					}
				}
			}
			return n
		}
		fs.failNext(domain.AggregateLink)
		meta := commands.Meta{Command: api.BillRemind.Subject, IdempotencyKey: "k-remind"}
		if _, err := u.Links.RemindUnpaid(ctx, meta, "d-1", stores, false); err == nil {
			t.Fatal("a link's reminder failed, but the request did not")
		}
		if n := reminders(); n != 19 {
			t.Fatalf("%d stores reminded after one failed, want the other 19", n)
		}
		meta.Resumed = true
		rep, err := u.Links.RemindUnpaid(ctx, meta, "d-1", stores, false)
		if err != nil || !slices.Equal(rep.Reminded, stores) {
			t.Fatalf("the repeat: %+v %v, want every store in order", rep, err)
		}
		if n := reminders(); n != 20 {
			t.Fatalf("%d reminders after the repeat, want 20: each store once", n)
		}
	})
}

// countLoads counts the whole-history loads (from sequence 0) of aggregates
// of type typ.
type countLoads struct {
	commands.EventStore
	typ   string
	whole atomic.Int32
}

func (c *countLoads) Load(ctx context.Context, ref eventstore.Ref, after eventstore.Seq) ([]eventstore.Commit, error) {
	if ref.Type == c.typ && after == 0 {
		c.whole.Add(1)
	}
	return c.EventStore.Load(ctx, ref, after)
}

// A resumed bulk of many lines for one store (a request an engine before
// the one-line-per-store rule began: it issued such lines one after
// another) reads the store's link history once to find what earlier
// attempts issued, not once per line (which grew with the square of the
// lines and kept a 1,000-line repeat from ever finishing), and issues only
// the lines not issued yet.
func TestResumedBulkReadsEachLinkOnce(t *testing.T) {
	cs := &countLoads{EventStore: storeOpeners[0].open(t), typ: domain.AggregateLink}
	u := newUnit(t, cs)
	u.link(t, "d-1", "s-1")
	var lines []api.BillLine
	for i := range 40 {
		lines = append(lines, api.BillLine{StoreID: "s-1", Amount: int64(1000 + i)})
	}
	meta := commands.Meta{Command: api.BillIssueBulk.Subject, IdempotencyKey: "erp-big"}
	// The first attempt, by an earlier engine, got through 25 lines, each
	// a commit under the key and its line number.
	var first api.IssueBulkReply
	for i, l := range lines[:25] {
		m := meta
		m.IdempotencyKey = fmt.Sprintf("%s#%d", meta.IdempotencyKey, i+1)
		rep, err := u.Links.IssueBill(context.Background(), m, api.IssueBillRequest{DistributorID: "d-1", StoreID: l.StoreID, Amount: l.Amount})
		if err != nil {
			t.Fatalf("first attempt, line %d: %v", i+1, err)
		}
		first.Results = append(first.Results, api.BulkResult{Line: i + 1, StoreID: l.StoreID, BillID: rep.BillID})
	}
	cs.whole.Store(0)
	meta.Resumed = true
	rep, err := u.Links.IssueBulk(context.Background(), meta, api.IssueBulkRequest{DistributorID: "d-1", Bills: lines})
	if err != nil || rep.Issued != 40 {
		t.Fatalf("the repeat: %+v %v", rep, err)
	}
	for i := range 25 {
		if rep.Results[i].BillID != first.Results[i].BillID {
			t.Fatalf("line %d: bill %s, the first attempt issued %s", i+1, rep.Results[i].BillID, first.Results[i].BillID)
		}
	}
	if n := cs.whole.Load(); n != 1 {
		t.Fatalf("the repeat read the link's whole history %d times, want once", n)
	}
	if l := u.linkState(t, "d-1", "s-1"); l.BillsIssued != 40 {
		t.Fatalf("%d bills issued, want 40: each line once", l.BillsIssued)
	}
}

// A bill's times are recorded to the microsecond, as the API shows them and
// as deposits are dated: a payment dated at a bill's shown issued_at pays
// that bill, and one dated at a cancelled bill's closing time is unbilled,
// whatever the clock's nanoseconds.
func TestPaymentsAtABillsBoundaryGoWhereItsShownTimeSays(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	t0 := time.Date(2026, 12, 4, 11, 48, 38, 613_870_079, time.UTC)
	u.clock.Set(t0)
	acct := u.link(t, "d-1", "s-1").DedicatedAccount
	b1 := u.issue(t, "d-1", "s-1", 20)
	u.clock.Set(t0.Add(time.Second))
	b2 := u.issue(t, "d-1", "s-1", 50_000)
	issued, err := time.Parse(time.RFC3339Nano, b2.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	pay := func(txn string, at time.Time) api.RecordDepositReply {
		t.Helper()
		rep, err := u.Deposits.RecordDeposit(ctx, commands.Meta{}, api.RecordDepositRequest{
			BankTxnID: txn, AccountNumber: acct.Number, DepositorName: "가게", Amount: 50_000, DepositedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := pay("t-at-issue", issued); rep.BillID != b2.BillID {
		t.Fatalf("a payment at the new bill's issued_at %s went to %q, want %q (not %q)", b2.IssuedAt, rep.BillID, b2.BillID, b1.BillID)
	}
	closing := t0.Add(2 * time.Second)
	u.clock.Set(closing)
	b3 := u.issue(t, "d-1", "s-1", 1_000)
	if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: b3.BillID}); err != nil {
		t.Fatal(err)
	}
	if rep := pay("t-at-close", closing.Truncate(time.Microsecond)); rep.BillID != "" {
		t.Fatalf("a payment at the cancelled bill's closing time went to %q, want no bill", rep.BillID)
	}
	for _, c := range u.commits(t, domain.AggregateLink, domain.LinkID("d-1", "s-1")) {
		for _, env := range c.Events {
			if !bytes.Contains(env.Data, []byte(`_at"`)) {
				continue
			}
			if bytes.Contains(env.Data, []byte(`079Z"`)) || bytes.Contains(env.Data, []byte(`.613870079`)) {
				t.Fatalf("%s records the clock's nanoseconds: %s", env.EventType, env.Data)
			}
		}
	}
}

// TestCancelBillRefusals: a cancellation that names no bill of the link —
// a malformed ID, a bill number the link has not issued, another link's
// bill — is refused and writes nothing; the current bill stays current
// and can still be cancelled.
func TestCancelBillRefusals(t *testing.T) {
	u := newUnit(t, storeOpeners[0].open(t))
	ctx := context.Background()
	u.link(t, "d-1", "s-1")
	u.link(t, "d-1", "s-2")
	b := u.issue(t, "d-1", "s-1", 5000)
	link := domain.LinkID("d-1", "s-1")
	other := domain.LinkID("d-1", "s-2")
	for _, tc := range []struct {
		name, bill, code string
	}{
		{"a malformed bill ID", "not-a-bill", "bill_not_found"},
		{"a bill number the link has not issued", domain.BillID(link, 2), "bill_not_found"},
		{"a bill of a link that has issued none", domain.BillID(other, 1), "bill_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(u.commits(t, domain.AggregateLink, link))
			if _, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: tc.bill, Reason: "typo"}); domainCode(err) != tc.code {
				t.Fatalf("cancel %s: %v, want %s", tc.bill, err, tc.code)
			}
			if n := len(u.commits(t, domain.AggregateLink, link)); n != before {
				t.Fatalf("the link has %d commits, was %d: the refusal wrote", n, before)
			}
		})
	}
	if l := u.linkState(t, "d-1", "s-1"); l.Current.ID != b.BillID {
		t.Fatalf("current bill %+v, want %s", l.Current, b.BillID)
	}
	if rep, err := u.Links.CancelBill(ctx, commands.Meta{}, api.CancelBillRequest{BillID: b.BillID, Reason: "typo"}); err != nil || rep.Status != string(domain.BillStatusCancelled) {
		t.Fatalf("cancel the current bill: %+v %v", rep, err)
	}
}

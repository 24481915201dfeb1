package domain_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

// The link of these tests: distributor dist-1 and store store-1.
const (
	distributor domain.DistributorID = "dist-1"
	store       domain.StoreID       = "store-1"
)

var (
	lnk = domain.LinkID(distributor, store)
	// dedicated is the store's dedicated account, a virtual sub-account of collect.
	dedicated = domain.BankAccount{Bank: "KB", Number: "5001000042", Holder: "bankbook"}
)

// bill is the ID of bill n of lnk.
func bill(n int) string { return domain.BillID(lnk, n) }

func linkCmd() domain.LinkStore {
	return domain.LinkStore{LinkID: lnk, DistributorID: distributor, StoreID: store, StoreName: "행복식당", Account: dedicated, Now: t0}
}

// linked is the event linkCmd produces.
func linked() domain.StoreLinked {
	return domain.StoreLinked{LinkID: lnk, DistributorID: distributor, StoreID: store, StoreName: "행복식당", DedicatedAccount: dedicated, LinkedAt: t0}
}

// givenLink folds events into a Link, the way the command layer rebuilds it.
func givenLink(events ...domain.Event) domain.Link {
	var l domain.Link
	for _, e := range events {
		l = l.Apply(e)
	}
	return l
}

// linkFlow drives one link through decisions as the command layer does:
// each decision's events are applied to the state.
type linkFlow struct {
	t    *testing.T
	link domain.Link
	at   time.Time
}

func newLinkFlow(t *testing.T) *linkFlow {
	f := &linkFlow{t: t, at: t0}
	f.do(domain.DecideLink(f.link, linkCmd()))
	return f
}

// do checks that a decision succeeded and applies its events.
func (f *linkFlow) do(events []domain.Event, err error) []domain.Event {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("decision refused: %v", err)
	}
	for _, e := range events {
		f.link = f.link.Apply(e)
	}
	f.at = f.at.Add(time.Minute)
	return events
}

func (f *linkFlow) issue(amount int64) []domain.Event {
	f.t.Helper()
	return f.do(domain.DecideIssueBill(f.link, domain.IssueBill{Amount: amount, Now: f.at}))
}

func (f *linkFlow) pay(deposit domain.DepositID, amount int64) domain.StorePaymentReceived {
	f.t.Helper()
	events := f.do(domain.DecideStorePayment(f.link, payment(deposit, amount, f.at)))
	if len(events) != 1 {
		f.t.Fatalf("payment %s: events %#v, want one store.payment_received", deposit, events)
	}
	return events[0].(domain.StorePaymentReceived)
}

// payment is a store payment at 1% (100 bps), settled D+1.
func payment(deposit domain.DepositID, amount int64, at time.Time) domain.StorePayment {
	return domain.StorePayment{DepositID: deposit, Amount: amount, PaidAt: at, CollectAccount: collect.Number, FeeBps: 100, SettlementDays: 1, Now: at.Add(time.Second)}
}

func TestLinkID(t *testing.T) {
	if !regexp.MustCompile(`^lnk_[0-9a-f]{24}$`).MatchString(lnk) {
		t.Fatalf("LinkID = %q, want lnk_ and 24 hex digits", lnk)
	}
	if again := domain.LinkID(distributor, store); again != lnk {
		t.Errorf("LinkID is not deterministic: %q then %q", lnk, again)
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if domain.LinkID("ab", "c") == domain.LinkID("a", "bc") {
		t.Error("LinkID(ab, c) = LinkID(a, bc)")
	}
	if domain.LinkID(distributor, "store-2") == lnk || domain.LinkID("dist-2", store) == lnk {
		t.Error("another pair has the same link ID")
	}
	if err := domain.ValidateID("link_id", lnk); err != nil {
		t.Errorf("a link ID is not a valid ID: %v", err)
	}
}

func TestBillIDRoundTrip(t *testing.T) {
	for _, n := range []int{1, 2, 9, 10, 12345, 999_999_999} {
		id := domain.BillID(lnk, n)
		if want := "bill_" + strings.TrimPrefix(lnk, "lnk_") + "_" + fmt.Sprint(n); id != want {
			t.Errorf("BillID(%s, %d) = %q, want %q", lnk, n, id, want)
		}
		if err := domain.ValidateID("bill_id", id); err != nil {
			t.Errorf("bill ID %q is not a valid ID: %v", id, err)
		}
		gotLink, gotN, err := domain.ParseBillID(id)
		if err != nil || gotLink != lnk || gotN != n {
			t.Errorf("ParseBillID(%q) = %q, %d, %v; want %q, %d", id, gotLink, gotN, err, lnk, n)
		}
	}
}

func TestParseBillIDRefuses(t *testing.T) {
	hex := strings.TrimPrefix(lnk, "lnk_")
	for name, id := range map[string]string{
		"empty":               "",
		"a link ID":           lnk,
		"no number":           "bill_" + hex,
		"empty number":        "bill_" + hex + "_",
		"number 0":            "bill_" + hex + "_0",
		"leading zero":        "bill_" + hex + "_01",
		"negative":            "bill_" + hex + "_-1",
		"letters in number":   "bill_" + hex + "_1a",
		"upper-case hex":      "bill_" + strings.ToUpper(hex) + "_1",
		"short hex":           "bill_" + hex[1:] + "_1",
		"long hex":            "bill_" + hex + "0_1",
		"not hex":             "bill_" + strings.Repeat("g", 24) + "_1",
		"other prefix":        "bil_" + hex + "_1",
		"number out of range": "bill_" + hex + "_1000000000",
		"something else":      "bill-42",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := domain.ParseBillID(id)
			de := requireDomainError(t, err, domain.ErrBillNotFound, domain.KindNotFound)
			if de.Details["bill_id"] != id {
				t.Errorf("details = %v, want bill_id %q", de.Details, id)
			}
		})
	}
}

func TestDecideLink(t *testing.T) {
	t.Run("a new pair is linked", func(t *testing.T) {
		events, err := domain.DecideLink(domain.Link{}, linkCmd())
		if err != nil {
			t.Fatal(err)
		}
		if want := []domain.Event{linked()}; !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		l := givenLink(events...)
		if !l.Exists() || l.ID != lnk || l.DedicatedAccount != dedicated || l.StoreName != "행복식당" || l.HasCurrentBill() {
			t.Errorf("state after store.linked = %+v", l)
		}
	})
	t.Run("linking again needs nothing and keeps the first name and account", func(t *testing.T) {
		l := givenLink(linked())
		c := linkCmd()
		c.StoreName, c.Account.Number, c.Now = "행복식당 본점", "5001000099", t0.Add(time.Hour)
		events, err := domain.DecideLink(l, c)
		if err != nil || events != nil {
			t.Fatalf("DecideLink again = %#v, %v; want nothing", events, err)
		}
	})
	for _, tt := range []struct {
		name  string
		edit  func(*domain.LinkStore)
		field string
	}{
		{"bad distributor ID", func(c *domain.LinkStore) { c.DistributorID = "dist 1" }, "distributor_id"},
		{"missing store ID", func(c *domain.LinkStore) { c.StoreID = "" }, "store_id"},
		{"blank store name", func(c *domain.LinkStore) { c.StoreName = " " }, "store_name"},
		{"store name of 101 characters", func(c *domain.LinkStore) { c.StoreName = strings.Repeat("가", 101) }, "store_name"},
		{"store name with a newline", func(c *domain.LinkStore) { c.StoreName = "행복\n식당" }, "store_name"},
		{"link ID of another pair", func(c *domain.LinkStore) { c.LinkID = domain.LinkID("dist-2", store) }, "link_id"},
		{"no dedicated account", func(c *domain.LinkStore) { c.Account.Number = " - " }, "dedicated_account"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := linkCmd()
			tt.edit(&c)
			events, err := domain.DecideLink(domain.Link{}, c)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil || de.Details["field"] != tt.field {
				t.Errorf("events %#v, details %v; want none and field %s", events, de.Details, tt.field)
			}
		})
	}
}

func TestDecideIssueBill(t *testing.T) {
	t.Run("the first bill", func(t *testing.T) {
		l := givenLink(linked())
		events, err := domain.DecideIssueBill(l, domain.IssueBill{Amount: 1_250_000, Memo: "  3월분  ", Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{domain.BillIssued{
			LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당",
			Amount: 1_250_000, Memo: "3월분", DedicatedAccount: dedicated, IssuedAt: t0,
		}}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
		l = l.Apply(events[0])
		if l.Current.ID != bill(1) || l.Current.Status() != domain.BillStatusActive || l.BillsIssued != 1 {
			t.Errorf("state = %+v", l)
		}
	})
	t.Run("a bill supersedes the current one, which expires first in the same commit", func(t *testing.T) {
		f := newLinkFlow(t)
		f.issue(100_000)
		f.pay("dep_1", 30_000)
		events, err := domain.DecideIssueBill(f.link, domain.IssueBill{Amount: 200_000, Now: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{
			domain.BillExpired{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, SupersededBy: bill(2),
				Amount: 100_000, PaidAmount: 30_000, Outstanding: 70_000, ExpiredAt: t0.Add(time.Hour)},
			domain.BillIssued{LinkID: lnk, BillID: bill(2), DistributorID: distributor, StoreID: store, StoreName: "행복식당",
				Amount: 200_000, DedicatedAccount: dedicated, IssuedAt: t0.Add(time.Hour), SupersededBillID: bill(1)},
		}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
	})
	t.Run("the largest amount", func(t *testing.T) {
		if _, err := domain.DecideIssueBill(givenLink(linked()), domain.IssueBill{Amount: domain.MaxAmount, Now: t0}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a store not linked", func(t *testing.T) {
		events, err := domain.DecideIssueBill(domain.Link{}, domain.IssueBill{Amount: 1000, Now: t0})
		requireDomainError(t, err, domain.ErrStoreNotLinked, domain.KindNotFound)
		if events != nil {
			t.Errorf("events = %#v, want none", events)
		}
		if domain.ErrStoreNotLinked.Details != nil {
			t.Errorf("sentinel ErrStoreNotLinked was mutated: %v", domain.ErrStoreNotLinked.Details)
		}
	})
	for _, tt := range []struct {
		name  string
		c     domain.IssueBill
		field string
	}{
		{"amount 0", domain.IssueBill{Amount: 0}, "amount"},
		{"negative amount", domain.IssueBill{Amount: -5}, "amount"},
		{"amount above 10^15", domain.IssueBill{Amount: domain.MaxAmount + 1}, "amount"},
		{"memo of 201 characters", domain.IssueBill{Amount: 1, Memo: strings.Repeat("a", 201)}, "memo"},
		{"memo with a control character", domain.IssueBill{Amount: 1, Memo: "a\x00b"}, "memo"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideIssueBill(givenLink(linked()), tt.c)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil || de.Details["field"] != tt.field {
				t.Errorf("events %#v, details %v; want none and field %s", events, de.Details, tt.field)
			}
		})
	}
}

// TestBillStateMachine walks the bill statuses of docs/domain.md ("Bills")
// through the decisions: each step is one command on the link, then the
// statuses of every bill issued so far.
func TestBillStateMachine(t *testing.T) {
	type want struct {
		current  string // the current bill ("" for none)
		statuses []domain.BillStatus
		paid     int64 // the current bill's paid amount
	}
	check := func(t *testing.T, f *linkFlow, w want) {
		t.Helper()
		if f.link.Current.ID != w.current {
			t.Errorf("current bill = %q, want %q", f.link.Current.ID, w.current)
		}
		if f.link.Current.PaidAmount != w.paid {
			t.Errorf("current bill paid = %d, want %d", f.link.Current.PaidAmount, w.paid)
		}
		if f.link.BillsIssued != len(w.statuses) {
			t.Errorf("bills issued = %d, want %d", f.link.BillsIssued, len(w.statuses))
		}
		for i, s := range w.statuses {
			if got, ok := f.link.BillStatus(i + 1); !ok || got != s {
				t.Errorf("status of bill %d = %q, %v; want %q", i+1, got, ok, s)
			}
		}
		if _, ok := f.link.BillStatus(len(w.statuses) + 1); ok {
			t.Errorf("bill %d, never issued, has a status", len(w.statuses)+1)
		}
	}
	const (
		active    = domain.BillStatusActive
		partially = domain.BillStatusPartiallyPaid
		paid      = domain.BillStatusPaid
		expired   = domain.BillStatusExpired
		cancelled = domain.BillStatusCancelled
	)
	cancel := func(f *linkFlow, id string) []domain.Event {
		f.t.Helper()
		return f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: id, Reason: "wrong amount", Now: f.at}))
	}
	tests := []struct {
		name string
		run  func(f *linkFlow)
		want want
	}{
		{"issued: active", func(f *linkFlow) { f.issue(50_000) }, want{bill(1), []domain.BillStatus{active}, 0}},
		{"exact payment: paid", func(f *linkFlow) {
			f.issue(50_000)
			if e := f.pay("dep_1", 50_000); e.BillStatus != paid || e.BillOutstanding != 0 {
				t.Errorf("payment = %+v, want bill paid", e)
			}
		}, want{bill(1), []domain.BillStatus{paid}, 50_000}},
		{"partial payment: partially paid", func(f *linkFlow) {
			f.issue(50_000)
			if e := f.pay("dep_1", 20_000); e.BillStatus != partially || e.BillOutstanding != 30_000 || e.BillPaidAmount != 20_000 {
				t.Errorf("payment = %+v, want partially paid, 30000 outstanding", e)
			}
		}, want{bill(1), []domain.BillStatus{partially}, 20_000}},
		{"several payments add up to paid", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 20_000)
			f.pay("dep_2", 20_000)
			if e := f.pay("dep_3", 10_000); e.BillStatus != paid || e.BillPaidAmount != 50_000 {
				t.Errorf("third payment = %+v, want the bill paid", e)
			}
		}, want{bill(1), []domain.BillStatus{paid}, 50_000}},
		{"overpayment: paid, nothing outstanding", func(f *linkFlow) {
			f.issue(50_000)
			if e := f.pay("dep_1", 80_000); e.BillStatus != paid || e.BillOutstanding != 0 || e.BillPaidAmount != 80_000 {
				t.Errorf("payment = %+v, want paid with 80000 paid", e)
			}
		}, want{bill(1), []domain.BillStatus{paid}, 80_000}},
		{"a paid bill takes further payments", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 50_000)
			if e := f.pay("dep_2", 1_000); e.BillID != bill(1) || e.BillPaidAmount != 51_000 {
				t.Errorf("payment = %+v, want it on bill 1", e)
			}
		}, want{bill(1), []domain.BillStatus{paid}, 51_000}},
		{"payment without a bill: unbilled", func(f *linkFlow) {
			if e := f.pay("dep_1", 7_000); e.BillID != "" || e.BillStatus != "" || e.BillAmount != 0 {
				t.Errorf("payment = %+v, want unbilled", e)
			}
		}, want{"", nil, 0}},
		{"the next bill supersedes: the old one expires, payments go to the new", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 20_000)
			f.issue(90_000)
			if e := f.pay("dep_2", 5_000); e.BillID != bill(2) || e.BillPaidAmount != 5_000 {
				t.Errorf("payment = %+v, want it on bill 2", e)
			}
		}, want{bill(2), []domain.BillStatus{expired, partially}, 5_000}},
		{"a paid bill is superseded too", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 50_000)
			f.issue(10_000)
		}, want{bill(2), []domain.BillStatus{expired, active}, 0}},
		{"cancelled: no current bill, payments are unbilled", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 10_000)
			if e := cancel(f, bill(1))[0].(domain.BillCancelled); e.PaidAmount != 10_000 || e.Amount != 50_000 || e.Reason != "wrong amount" {
				t.Errorf("cancellation = %+v", e)
			}
			if e := f.pay("dep_2", 5_000); e.BillID != "" {
				t.Errorf("payment after the cancel = %+v, want unbilled", e)
			}
		}, want{"", []domain.BillStatus{cancelled}, 0}},
		{"a paid bill can be cancelled", func(f *linkFlow) {
			f.issue(50_000)
			f.pay("dep_1", 50_000)
			cancel(f, bill(1))
		}, want{"", []domain.BillStatus{cancelled}, 0}},
		{"a bill after a cancelled one supersedes nothing", func(f *linkFlow) {
			f.issue(50_000)
			cancel(f, bill(1))
			events := f.issue(60_000)
			if len(events) != 1 || events[0].(domain.BillIssued).SupersededBillID != "" {
				t.Errorf("issue after a cancel = %#v, want bill.issued alone", events)
			}
		}, want{bill(2), []domain.BillStatus{cancelled, active}, 0}},
		{"cancelled and expired bills are told apart", func(f *linkFlow) {
			f.issue(1) // 1: expired by 2
			f.issue(2) // 2: cancelled
			cancel(f, bill(2))
			f.issue(3) // 3: expired by 4
			f.issue(4) // 4: cancelled
			cancel(f, bill(4))
			f.issue(5) // 5: current, paid
			f.pay("dep_1", 5)
		}, want{bill(5), []domain.BillStatus{expired, cancelled, expired, cancelled, paid}, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLinkFlow(t)
			tt.run(f)
			check(t, f, tt.want)
		})
	}
}

func TestDecideCancelBillRefused(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(10_000) // 1: expired by 2
	f.issue(20_000) // 2: cancelled
	f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: bill(2), Now: f.at}))
	f.issue(30_000) // 3: current
	other := domain.LinkID(distributor, "store-2")
	tests := []struct {
		name       string
		link       domain.Link
		c          domain.CancelBill
		want       *domain.Error
		kind       domain.Kind
		wantStatus string
	}{
		{"an expired bill", f.link, domain.CancelBill{BillID: bill(1)}, domain.ErrWrongState, domain.KindConflict, "expired"},
		{"a bill cancelled already", f.link, domain.CancelBill{BillID: bill(2)}, domain.ErrWrongState, domain.KindConflict, "cancelled"},
		{"a bill never issued", f.link, domain.CancelBill{BillID: bill(4)}, domain.ErrBillNotFound, domain.KindNotFound, ""},
		{"a bill of another link", f.link, domain.CancelBill{BillID: domain.BillID(other, 1)}, domain.ErrBillNotFound, domain.KindNotFound, ""},
		{"a link that does not exist", domain.Link{}, domain.CancelBill{BillID: bill(1)}, domain.ErrBillNotFound, domain.KindNotFound, ""},
		{"not a bill ID", f.link, domain.CancelBill{BillID: "o-1"}, domain.ErrBillNotFound, domain.KindNotFound, ""},
		{"a reason too long", f.link, domain.CancelBill{BillID: bill(3), Reason: strings.Repeat("x", domain.MaxReasonLength+1)}, domain.ErrInvalidInput, domain.KindInvalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideCancelBill(tt.link, tt.c)
			de := requireDomainError(t, err, tt.want, tt.kind)
			if events != nil {
				t.Errorf("events = %#v, want none", events)
			}
			if tt.wantStatus != "" && (de.Details["status"] != tt.wantStatus || de.Details["bill_id"] != tt.c.BillID) {
				t.Errorf("details = %v, want status %s and the bill", de.Details, tt.wantStatus)
			}
			if tt.want == domain.ErrBillNotFound && de.Details["bill_id"] != tt.c.BillID {
				t.Errorf("details = %v, want the bill_id", de.Details)
			}
		})
	}
	if domain.ErrWrongState.Details != nil || domain.ErrBillNotFound.Details != nil {
		t.Error("a sentinel was mutated")
	}
}

func TestDecideStorePayment(t *testing.T) {
	// t0 is Friday 2025-03-14 18:26 in Seoul.
	t.Run("fee, net and settlement date are computed and recorded", func(t *testing.T) {
		f := newLinkFlow(t)
		f.issue(1_000_000)
		c := domain.StorePayment{DepositID: "dep_1", Amount: 333_333, PaidAt: f.at, CollectAccount: collect.Number, FeeBps: 250, SettlementDays: 1, Now: f.at.Add(time.Minute)}
		events, err := domain.DecideStorePayment(f.link, c)
		if err != nil {
			t.Fatal(err)
		}
		want := []domain.Event{domain.StorePaymentReceived{
			LinkID: lnk, DepositID: "dep_1", DistributorID: distributor, StoreID: store, StoreName: "행복식당",
			Amount: 333_333, Fee: 8_333, Net: 325_000, FeeBps: 250, SettlementDate: "2025-03-17", PaidAt: f.at,
			CollectAccount: collect.Number, DedicatedAccount: dedicated,
			BillID: bill(1), BillAmount: 1_000_000, BillPaidAmount: 333_333, BillOutstanding: 666_667, BillStatus: domain.BillStatusPartiallyPaid,
		}}
		if !reflect.DeepEqual(events, want) {
			t.Fatalf("events\n got %#v\nwant %#v", events, want)
		}
	})
	t.Run("no paid_at: now", func(t *testing.T) {
		c := payment("dep_1", 1000, time.Time{})
		c.Now = t0
		events, err := domain.DecideStorePayment(givenLink(linked()), c)
		if err != nil {
			t.Fatal(err)
		}
		if e := events[0].(domain.StorePaymentReceived); !e.PaidAt.Equal(t0) {
			t.Errorf("paid_at = %v, want now %v", e.PaidAt, t0)
		}
	})
	t.Run("the same deposit again needs nothing", func(t *testing.T) {
		f := newLinkFlow(t)
		f.issue(10_000)
		f.pay("dep_1", 4_000)
		events, err := domain.DecideStorePayment(f.link, payment("dep_1", 4_000, f.at))
		if err != nil || events != nil {
			t.Fatalf("repeat = %#v, %v; want nothing", events, err)
		}
		if b, ok := f.link.PaymentApplied("dep_1"); !ok || b != bill(1) {
			t.Errorf("PaymentApplied(dep_1) = %q, %v; want bill 1", b, ok)
		}
	})
	t.Run("any amount is taken", func(t *testing.T) {
		f := newLinkFlow(t)
		f.issue(10_000)
		for i, amount := range []int64{1, 9_999, domain.MaxAmount} {
			f.pay(domain.DepositID(fmt.Sprint("dep_", i)), amount)
		}
		if f.link.Payments != 3 || f.link.PaidTotal != 10_000+domain.MaxAmount {
			t.Errorf("payments %d totalling %d", f.link.Payments, f.link.PaidTotal)
		}
	})
	t.Run("a fee of 10000 bps takes everything", func(t *testing.T) {
		c := payment("dep_1", 5_000, t0)
		c.FeeBps = 10000
		events, err := domain.DecideStorePayment(givenLink(linked()), c)
		if err != nil {
			t.Fatal(err)
		}
		if e := events[0].(domain.StorePaymentReceived); e.Fee != 5_000 || e.Net != 0 {
			t.Errorf("fee %d net %d, want 5000 and 0", e.Fee, e.Net)
		}
	})
	t.Run("a store not linked", func(t *testing.T) {
		_, err := domain.DecideStorePayment(domain.Link{}, payment("dep_1", 1000, t0))
		requireDomainError(t, err, domain.ErrStoreNotLinked, domain.KindNotFound)
	})
	for _, tt := range []struct {
		name  string
		edit  func(*domain.StorePayment)
		field string
	}{
		{"negative fee", func(c *domain.StorePayment) { c.FeeBps = -1 }, "fee_bps"},
		{"fee above 100%", func(c *domain.StorePayment) { c.FeeBps = 10001 }, "fee_bps"},
		{"negative settlement days", func(c *domain.StorePayment) { c.SettlementDays = -1 }, "settlement_days"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := payment("dep_1", 1000, t0)
			tt.edit(&c)
			_, err := domain.DecideStorePayment(givenLink(linked()), c)
			if de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid); de.Details["field"] != tt.field {
				t.Errorf("details = %v, want field %s", de.Details, tt.field)
			}
		})
	}
}

// TestStorePaymentsAcrossAFeeChange: each payment records the fee rate and
// schedule of its day; a later change rewrites nothing that was recorded,
// and the state after the change is the same whatever the configuration.
// A payment goes to the bill that was current when it was paid, however
// late it is recorded: a bill since superseded (expired) or cancelled takes
// it; a payment made when no bill was current is unbilled.
func TestLatePaymentGoesToTheBillCurrentWhenPaid(t *testing.T) {
	// Each step happens at f.at, which then moves a minute on.
	f := newLinkFlow(t)
	beforeAny := f.at
	f.issue(10_000)
	paidOnFirst := f.at.Add(-time.Second)
	f.issue(20_000) // bill 1 expires
	paidOnSecond := f.at.Add(-time.Second)
	f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: bill(2), Now: f.at}))
	paidAfterCancel := f.at.Add(-time.Second)
	f.issue(30_000)

	for _, tc := range []struct {
		name   string
		paidAt time.Time
		bill   string
		status domain.BillStatus
	}{
		{"before the first bill", beforeAny.Add(-time.Hour), "", ""},
		{"while bill 1 was current", paidOnFirst, bill(1), domain.BillStatusExpired},
		{"while bill 2 was current", paidOnSecond, bill(2), domain.BillStatusCancelled},
		{"after bill 2 was cancelled", paidAfterCancel, "", ""},
		{"now", f.at, bill(3), domain.BillStatusPartiallyPaid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dep := domain.DepositID("dep_" + strings.ReplaceAll(tc.name, " ", "_"))
			events := f.do(domain.DecideStorePayment(f.link, payment(dep, 4_000, tc.paidAt)))
			e := events[0].(domain.StorePaymentReceived)
			if e.BillID != tc.bill || e.BillStatus != tc.status {
				t.Fatalf("paid at %s: bill %q (%s), want %q (%s)", tc.paidAt, e.BillID, e.BillStatus, tc.bill, tc.status)
			}
			if b, ok := f.link.PaymentApplied(dep); !ok || b != tc.bill {
				t.Errorf("PaymentApplied = %q, %v", b, ok)
			}
		})
	}
	// A second late payment to bill 1 counts the first.
	e := f.do(domain.DecideStorePayment(f.link, payment("dep_again", 6_000, paidOnFirst)))[0].(domain.StorePaymentReceived)
	if e.BillID != bill(1) || e.BillPaidAmount != 10_000 || e.BillOutstanding != 0 {
		t.Errorf("second payment to bill 1: %+v, want paid 10000, outstanding 0", e)
	}
}

// TestAPaymentDatedAheadOfItsRecording: a bank clock ahead of ours (which
// deposit.record allows by a few minutes) dates a payment later than its
// recording. It is dated when it was recorded instead, so that a bill
// cancelled in the minutes between never holds a payment dated after its
// end, and a payment recorded after the cancellation is unbilled, as any
// payment after a cancellation is.
func TestAPaymentDatedAheadOfItsRecording(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(10_000)
	recorded := f.at
	c := payment("dep_ahead", 4_000, recorded.Add(4*time.Minute))
	c.Now = recorded
	first := f.do(domain.DecideStorePayment(f.link, c))[0].(domain.StorePaymentReceived)
	if !first.PaidAt.Equal(recorded) || first.BillID != bill(1) {
		t.Fatalf("payment dated 4 min ahead: paid_at %v, bill %q; want %v, bill 1", first.PaidAt, first.BillID, recorded)
	}
	cancelled := f.at
	f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: bill(1), Now: cancelled}))
	if first.PaidAt.After(cancelled) {
		t.Fatalf("the cancelled bill holds a payment dated %v, after its end %v", first.PaidAt, cancelled)
	}
	c = payment("dep_after", 4_000, f.at.Add(2*time.Minute))
	c.Now = f.at
	second := f.do(domain.DecideStorePayment(f.link, c))[0].(domain.StorePaymentReceived)
	if second.BillID != "" || !second.PaidAt.Equal(c.Now) {
		t.Fatalf("payment recorded after the cancellation: bill %q, paid_at %v; want unbilled, %v", second.BillID, second.PaidAt, c.Now)
	}
}

func TestStorePaymentsAcrossAFeeChange(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(100_000)
	// Friday 18:26 in Seoul at 1% D+1, then, after the change, at 2.5% D+2.
	before := f.do(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: "dep_1", Amount: 40_000, PaidAt: f.at, CollectAccount: collect.Number, FeeBps: 100, SettlementDays: 1, Now: f.at}))[0].(domain.StorePaymentReceived)
	monday := t0.Add(72 * time.Hour)
	after := f.do(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: "dep_2", Amount: 40_001, PaidAt: monday, CollectAccount: collect.Number, FeeBps: 250, SettlementDays: 2, Now: monday}))[0].(domain.StorePaymentReceived)
	if before.Fee != 400 || before.Net != 39_600 || before.FeeBps != 100 || before.SettlementDate != "2025-03-17" {
		t.Errorf("payment before the change = %+v, want fee 400, net 39600 at 100 bps, settled Monday 03-17", before)
	}
	// 40001 × 250 / 10000 = 1000.025 → 1000.
	if after.Fee != 1_000 || after.Net != 39_001 || after.FeeBps != 250 || after.SettlementDate != "2025-03-19" {
		t.Errorf("payment after the change = %+v, want fee 1000, net 39001 at 250 bps, settled Wednesday 03-19", after)
	}
	// Replaying the log gives the same state, whatever is configured now.
	replayed := givenLink(linked(), domain.BillIssued{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당", Amount: 100_000, DedicatedAccount: dedicated, IssuedAt: t0.Add(time.Minute)}, before, after)
	if replayed.PaidTotal != 80_001 || replayed.Current.PaidAmount != 80_001 || replayed.Current.Status() != domain.BillStatusPartiallyPaid {
		t.Errorf("replayed state = %+v", replayed)
	}
	// A payment recorded after the day it would have settled (a
	// statement imported late) settles on the business day it is
	// recorded on, not in the past: Friday's, recorded on Thursday
	// 03-20, on 03-20; recorded on Saturday 03-22, on Monday 03-24.
	for _, tc := range []struct {
		recorded time.Time
		want     string
	}{{t0.Add(6 * 24 * time.Hour), "2025-03-20"}, {t0.Add(8 * 24 * time.Hour), "2025-03-24"}} {
		late := f.do(domain.DecideStorePayment(f.link, domain.StorePayment{DepositID: domain.DepositID("dep_late_" + tc.want), Amount: 1_000, PaidAt: f.at, CollectAccount: collect.Number, FeeBps: 100, SettlementDays: 1, Now: tc.recorded}))[0].(domain.StorePaymentReceived)
		if late.SettlementDate != tc.want {
			t.Errorf("a payment of %s recorded at %s settles %s, want %s", f.at, tc.recorded, late.SettlementDate, tc.want)
		}
	}
}

// TestPaymentRing: a link remembers its last RecentDeposits payments by
// deposit ID, and only those.
func TestPaymentRing(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(1_000_000)
	dep := func(i int) domain.DepositID { return domain.DepositID(fmt.Sprintf("dep_%03d", i)) }
	const n = domain.RecentDeposits + 1
	for i := range n {
		f.pay(dep(i), 10)
	}
	if _, ok := f.link.PaymentApplied(dep(0)); ok {
		t.Errorf("the %dth-latest deposit is still remembered", n)
	}
	for i := 1; i < n; i++ {
		if b, ok := f.link.PaymentApplied(dep(i)); !ok || b != bill(1) {
			t.Errorf("deposit %d of the last %d: PaymentApplied = %q, %v", i, domain.RecentDeposits, b, ok)
		}
		if events, err := domain.DecideStorePayment(f.link, payment(dep(i), 10, f.at)); err != nil || events != nil {
			t.Errorf("deposit %d again = %#v, %v; want nothing", i, events, err)
		}
	}
	if _, ok := f.link.PaymentApplied(""); ok {
		t.Error("the empty deposit ID is remembered")
	}
	if f.link.Payments != n || f.link.PaidTotal != 10*n {
		t.Errorf("payments %d totalling %d, want %d and %d", f.link.Payments, f.link.PaidTotal, n, 10*n)
	}
}

func TestDecideRemind(t *testing.T) {
	at := t0.Add(48 * time.Hour)
	tests := []struct {
		name string
		run  func(f *linkFlow)
		want []domain.Event
	}{
		{"no bill", func(f *linkFlow) {}, nil},
		{"an active bill", func(f *linkFlow) { f.issue(50_000) }, []domain.Event{domain.BillReminded{
			LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당",
			Amount: 50_000, Outstanding: 50_000, DedicatedAccount: dedicated, RemindedAt: at,
		}}},
		{"a partially paid bill", func(f *linkFlow) { f.issue(50_000); f.pay("dep_1", 20_000) }, []domain.Event{domain.BillReminded{
			LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당",
			Amount: 50_000, PaidAmount: 20_000, Outstanding: 30_000, DedicatedAccount: dedicated, RemindedAt: at,
		}}},
		{"a paid bill", func(f *linkFlow) { f.issue(50_000); f.pay("dep_1", 50_000) }, nil},
		{"an overpaid bill", func(f *linkFlow) { f.issue(50_000); f.pay("dep_1", 60_000) }, nil},
		{"a cancelled bill", func(f *linkFlow) {
			f.issue(50_000)
			f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: bill(1), Now: f.at}))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLinkFlow(t)
			tt.run(f)
			events, err := domain.DecideRemind(f.link, domain.Remind{Now: at})
			if err != nil || !reflect.DeepEqual(events, tt.want) {
				t.Fatalf("DecideRemind = %#v, %v\nwant %#v", events, err, tt.want)
			}
			// A reminder changes nothing but the version.
			if events != nil {
				l := f.link.Apply(events[0])
				l.Version--
				if !reflect.DeepEqual(l, f.link) {
					t.Errorf("bill.reminded changed the state: %+v", l)
				}
			}
		})
	}
	if events, err := domain.DecideRemind(domain.Link{}, domain.Remind{Now: at}); events != nil || err != nil {
		t.Errorf("DecideRemind of no link = %#v, %v; want nothing", events, err)
	}
}

// TestLinkApplyDoesNotChangeItsInput: Apply works on a copy; the state it
// was given is the same afterwards, for every link event, also once the
// rings have wrapped.
func TestLinkApplyDoesNotChangeItsInput(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(100)
	for i := range domain.RecentDeposits + 3 {
		f.pay(domain.DepositID(fmt.Sprint("dep_", i)), 1)
	}
	for range domain.RecentCancels + 2 {
		f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: f.link.Current.ID, Now: f.at}))
		f.issue(100)
	}
	f.pay("dep_x", 7)
	state := f.link
	snapshot := state // Link is a value: this copies its rings
	events := []domain.Event{
		linked(),
		domain.BillIssued{LinkID: lnk, BillID: bill(99), Amount: 5, IssuedAt: t0},
		domain.BillExpired{LinkID: lnk, BillID: state.Current.ID, SupersededBy: bill(99), ExpiredAt: t0},
		domain.BillCancelled{LinkID: lnk, BillID: state.Current.ID, CancelledAt: t0},
		domain.StorePaymentReceived{LinkID: lnk, DepositID: "dep_new", Amount: 5, BillID: state.Current.ID},
		domain.BillReminded{LinkID: lnk, BillID: state.Current.ID},
	}
	for _, e := range events {
		next := state.Apply(e)
		if !reflect.DeepEqual(state, snapshot) {
			t.Fatalf("Apply(%s) changed its input", e.EventType())
		}
		if reflect.DeepEqual(next, state) {
			t.Errorf("Apply(%s) returned the same state", e.EventType())
		}
	}
	// Deciding does not change the state either.
	domain.DecideIssueBill(state, domain.IssueBill{Amount: 5, Now: t0})
	domain.DecideStorePayment(state, payment("dep_y", 5, t0))
	domain.DecideCancelBill(state, domain.CancelBill{BillID: state.Current.ID, Now: t0})
	if !reflect.DeepEqual(state, snapshot) {
		t.Fatal("a decision changed the state")
	}
}

// TestLinkAggregate: the link's aggregate value names its type and applies
// with Link.Apply.
func TestLinkAggregate(t *testing.T) {
	if domain.LinkAggregate.Type != "link" || domain.AggregateLink != "link" {
		t.Errorf("link aggregate type = %q", domain.LinkAggregate.Type)
	}
	if l := domain.LinkAggregate.Apply(domain.Link{}, linked()); l.ID != lnk || l.Version != 1 {
		t.Errorf("LinkAggregate.Apply = %+v", l)
	}
}

func TestBillStatusOf(t *testing.T) {
	for _, tt := range []struct {
		amount, paid, outstanding int64
		status                    domain.BillStatus
	}{
		{100, 0, 100, domain.BillStatusActive},
		{100, 1, 99, domain.BillStatusPartiallyPaid},
		{100, 99, 1, domain.BillStatusPartiallyPaid},
		{100, 100, 0, domain.BillStatusPaid},
		{100, 250, 0, domain.BillStatusPaid},
	} {
		if got := domain.BillStatusOf(tt.amount, tt.paid); got != tt.status {
			t.Errorf("BillStatusOf(%d, %d) = %q, want %q", tt.amount, tt.paid, got, tt.status)
		}
		if got := domain.BillOutstanding(tt.amount, tt.paid); got != tt.outstanding {
			t.Errorf("BillOutstanding(%d, %d) = %d, want %d", tt.amount, tt.paid, got, tt.outstanding)
		}
		if !tt.status.Current() {
			t.Errorf("%q is not a current status", tt.status)
		}
	}
	if domain.BillStatusExpired.Current() || domain.BillStatusCancelled.Current() {
		t.Error("expired or cancelled counts as current")
	}
}

// TestLinkProperties runs random commands on one link (seed printed) and
// checks after each: at most one bill is current, and it is the one the
// state names; the current bill's paid amount is the sum of the payments
// made to it; the link's totals are those of the distinct deposits; every
// commit's postings balance and the ledger sums to 0, with the bank holding
// every payment, the distributor its nets and revenue the fees; a repeated
// recent deposit needs nothing; the state survives a snapshot round trip.
func TestLinkProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	f := newLinkFlow(t)
	bal := map[string]int64{}
	var deposits []domain.DepositID
	var total, paidToCurrent int64
	for step := range 2000 {
		var events []domain.Event
		var err error
		at := t0.Add(time.Duration(step) * time.Hour)
		switch op := rng.IntN(10); {
		case op < 2:
			events, err = domain.DecideIssueBill(f.link, domain.IssueBill{Amount: 1 + rng.Int64N(1_000_000), Now: at})
		case op < 7:
			id := domain.DepositID(fmt.Sprint("dep_", step))
			if len(deposits) > 0 && rng.IntN(4) == 0 { // a retry of a recent deposit
				id = deposits[max(0, len(deposits)-1-rng.IntN(domain.RecentDeposits))]
			}
			c := domain.StorePayment{DepositID: id, Amount: 1 + rng.Int64N(500_000), PaidAt: at, CollectAccount: collect.Number, FeeBps: rng.IntN(1001), SettlementDays: rng.IntN(3), Now: at}
			events, err = domain.DecideStorePayment(f.link, c)
			if _, seen := f.link.PaymentApplied(id); seen != (events == nil) {
				t.Fatalf("step %d (seed %d): deposit %s remembered %v, events %#v", step, seed, id, seen, events)
			}
		case op < 8:
			n := 1 + rng.IntN(f.link.BillsIssued+1)
			events, err = domain.DecideCancelBill(f.link, domain.CancelBill{BillID: bill(n), Now: at})
			if (bill(n) == f.link.Current.ID) != (err == nil) {
				t.Fatalf("step %d (seed %d): cancel of bill %d (current %q): %v", step, seed, n, f.link.Current.ID, err)
			}
			err = nil
		default:
			events, err = domain.DecideRemind(f.link, domain.Remind{Now: at})
			if (events != nil) != (f.link.HasCurrentBill() && f.link.Current.Outstanding() > 0) {
				t.Fatalf("step %d (seed %d): remind = %#v with current bill %+v", step, seed, events, f.link.Current)
			}
		}
		if err != nil {
			t.Fatalf("step %d (seed %d): %v", step, seed, err)
		}
		for account, b := range checkPostings(t, postingsOf(events)) {
			bal[account] += b
		}
		for _, e := range events {
			switch e := e.(type) {
			case domain.BillIssued:
				paidToCurrent = 0
			case domain.StorePaymentReceived:
				deposits = append(deposits, e.DepositID)
				total += e.Amount
				if e.BillID != "" {
					paidToCurrent += e.Amount
				}
				if e.Fee+e.Net != e.Amount || e.Fee != domain.Fee(e.Amount, e.FeeBps) || e.SettlementDate < domain.SettlementDate(e.PaidAt, 0, domain.Holidays{}) {
					t.Fatalf("step %d (seed %d): payment figures %+v", step, seed, e)
				}
			}
			f.link = f.link.Apply(e)
		}
		l := f.link
		current := 0
		for n := 1; n <= l.BillsIssued; n++ {
			if s, _ := l.BillStatus(n); s.Current() {
				current++
				if bill(n) != l.Current.ID {
					t.Fatalf("step %d (seed %d): bill %d is %s but the current bill is %q", step, seed, n, s, l.Current.ID)
				}
			}
		}
		if current > 1 || (current == 1) != l.HasCurrentBill() {
			t.Fatalf("step %d (seed %d): %d current bills, current %q", step, seed, current, l.Current.ID)
		}
		if l.HasCurrentBill() && l.Current.PaidAmount != paidToCurrent {
			t.Fatalf("step %d (seed %d): current bill paid %d, payments to it %d", step, seed, l.Current.PaidAmount, paidToCurrent)
		}
		if l.Payments != len(deposits) || l.PaidTotal != total {
			t.Fatalf("step %d (seed %d): %d payments totalling %d, want %d and %d", step, seed, l.Payments, l.PaidTotal, len(deposits), total)
		}
		var sum int64
		for _, b := range bal {
			sum += b
		}
		if sum != 0 || bal[domain.AccountBank(collect.Number)] != total ||
			-bal[domain.AccountPayableDistributor(distributor)]-bal[domain.AccountRevenueFees] != total {
			t.Fatalf("step %d (seed %d): ledger %v, payments total %d", step, seed, bal, total)
		}
		if step%50 == 0 {
			raw, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back domain.Link
			if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back, l) {
				t.Fatalf("step %d (seed %d): snapshot round trip: %v", step, seed, err)
			}
		}
	}
}

// postingsOf is the postings of a commit.
func postingsOf(events []domain.Event) []domain.Posting {
	var ps []domain.Posting
	for _, e := range events {
		ps = append(ps, domain.Postings(e)...)
	}
	return ps
}

// BenchmarkLinkLoad10000Payments: rebuilding a link with 10,000 payments
// from its events (no snapshot).
func BenchmarkLinkLoad10000Payments(b *testing.B) {
	events := []domain.Event{linked(), domain.BillIssued{LinkID: lnk, BillID: bill(1), Amount: 1 << 40, IssuedAt: t0}}
	for i := range 10_000 {
		events = append(events, domain.StorePaymentReceived{LinkID: lnk, DepositID: domain.DepositID(fmt.Sprint("dep_", i)), Amount: 1000, BillID: bill(1)})
	}
	b.ResetTimer()
	for b.Loop() {
		var l domain.Link
		for _, e := range events {
			l = domain.LinkAggregate.Apply(l, e)
		}
		if l.Payments != 10_000 {
			b.Fatal(l.Payments)
		}
	}
}

// Link events as the decisions above write them, for the codec and ledger
// tests.

func billIssued() domain.BillIssued {
	return domain.BillIssued{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당", Amount: 50_000, Memo: "3월분", DedicatedAccount: dedicated, IssuedAt: t0}
}

func billExpired() domain.BillExpired {
	return domain.BillExpired{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, SupersededBy: bill(2), Amount: 50_000, PaidAmount: 20_000, Outstanding: 30_000, ExpiredAt: t0.Add(time.Hour)}
}

func billCancelled() domain.BillCancelled {
	return domain.BillCancelled{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당", Reason: "wrong amount", Amount: 50_000, PaidAmount: 20_000, IssuedAt: t0, CancelledAt: t0.Add(time.Hour)}
}

// billedPayment is 20000 on bill 1 of 50000, at 2.5%, settled D+1 (t0 is a Friday).
func billedPayment() domain.StorePaymentReceived {
	return domain.StorePaymentReceived{
		LinkID: lnk, DepositID: "dep_1", DistributorID: distributor, StoreID: store, StoreName: "행복식당",
		Amount: 20_000, Fee: 500, Net: 19_500, FeeBps: 250, SettlementDate: "2025-03-17", PaidAt: t0,
		CollectAccount: collect.Number, DedicatedAccount: dedicated,
		BillID: bill(1), BillAmount: 50_000, BillPaidAmount: 20_000, BillOutstanding: 30_000, BillStatus: domain.BillStatusPartiallyPaid,
	}
}

// unbilledPayment is 7000 with no bill, and no fee.
func unbilledPayment() domain.StorePaymentReceived {
	return domain.StorePaymentReceived{
		LinkID: lnk, DepositID: "dep_2", DistributorID: distributor, StoreID: store, StoreName: "행복식당",
		Amount: 7_000, Net: 7_000, SettlementDate: "2025-03-17", PaidAt: t0,
		CollectAccount: collect.Number, DedicatedAccount: dedicated,
	}
}

func billReminded() domain.BillReminded {
	return domain.BillReminded{LinkID: lnk, BillID: bill(1), DistributorID: distributor, StoreID: store, StoreName: "행복식당", Amount: 50_000, PaidAmount: 20_000, Outstanding: 30_000, DedicatedAccount: dedicated, RemindedAt: t0.Add(48 * time.Hour)}
}

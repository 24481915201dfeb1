package domain_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/domain"
)

// TestLinkJSONRoundTrip: a link encoded and decoded (as an aggregate
// snapshot is) is the same link, rings included, so it decides the same: a
// deposit it remembers is not applied again, and every bill has the same
// status.
func TestLinkJSONRoundTrip(t *testing.T) {
	states := map[string]func(t *testing.T) domain.Link{
		"no link":         func(*testing.T) domain.Link { return domain.Link{} },
		"linked, no bill": func(*testing.T) domain.Link { return givenLink(linked()) },
		"a partially paid bill with a memo": func(t *testing.T) domain.Link {
			f := newLinkFlow(t)
			f.do(domain.DecideIssueBill(f.link, domain.IssueBill{Amount: 50_000, Memo: "3월분", Now: f.at}))
			f.pay("dep_1", 10_000)
			return f.link
		},
		"rings wrapped: many payments and cancellations": func(t *testing.T) domain.Link {
			f := newLinkFlow(t)
			for i := range domain.RecentCancels + 5 {
				f.issue(100)
				f.pay(domain.DepositID(fmt.Sprint("dep_c", i)), 40)
				f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: f.link.Current.ID, Now: f.at}))
				f.issue(200) // supersedes nothing
				f.issue(300) // expires the 200
			}
			for i := range domain.RecentDeposits + 7 {
				f.pay(domain.DepositID(fmt.Sprint("dep_", i)), 1)
			}
			return f.link
		},
	}
	for name, state := range states {
		t.Run(name, func(t *testing.T) {
			l := state(t)
			raw, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			var back domain.Link
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", raw, err)
			}
			if !reflect.DeepEqual(back, l) {
				t.Fatalf("round trip of %s:\n got %+v\nwant %+v", raw, back, l)
			}
			for n := 0; n <= l.BillsIssued+1; n++ {
				s1, ok1 := l.BillStatus(n)
				s2, ok2 := back.BillStatus(n)
				if s1 != s2 || ok1 != ok2 {
					t.Errorf("status of bill %d: %q, %v after the round trip, was %q, %v", n, s2, ok2, s1, ok1)
				}
			}
			if l.Payments == 0 {
				return
			}
			last := fmt.Sprint("dep_", domain.RecentDeposits+6)
			if l.Payments < domain.RecentDeposits {
				last = "dep_1"
			}
			if events, err := domain.DecideStorePayment(back, payment(domain.DepositID(last), 1, t0)); err != nil || events != nil {
				t.Errorf("the last deposit again after the round trip: %v, %v; want nothing", events, err)
			}
			// More events apply the same to both.
			e := domain.StorePaymentReceived{LinkID: lnk, DepositID: "dep_more", Amount: 3, BillID: l.Current.ID}
			if a, b := l.Apply(e), back.Apply(e); !reflect.DeepEqual(a, b) {
				t.Errorf("after one more payment:\n got %+v\nwant %+v", b, a)
			}
			// A late payment to the bill before the current one (ended).
			if l.BillsIssued >= 2 {
				e.BillID = domain.BillID(lnk, l.BillsIssued-1)
				if a, b := l.Apply(e), back.Apply(e); !reflect.DeepEqual(a, b) {
					t.Errorf("after a payment to an ended bill:\n got %+v\nwant %+v", b, a)
				}
			}
		})
	}
}

func TestLinkJSONWireFormat(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(50_000)
	f.pay("dep_1", 10_000)
	raw, err := json.Marshal(f.link)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"id":"` + lnk + `"`, `"current":{"id":"` + bill(1) + `"`, `"paid_amount":10000`, `"recent_payments":[{"deposit_id":"dep_1","bill_id":"` + bill(1) + `"}]`, `"recent_cancelled_bills":[]`, `"recent_ended_bills":[]`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("snapshot %s lacks %s", raw, field)
		}
	}
}

func TestLinkJSONRefusesInconsistentRings(t *testing.T) {
	for name, raw := range map[string]string{
		"more recent payments than payments": `{"payments":1,"recent_payments":[{"deposit_id":"a"},{"deposit_id":"b"}],"recent_cancelled_bills":[]}`,
		"fewer recent payments than kept":    `{"payments":2,"recent_payments":[{"deposit_id":"a"}],"recent_cancelled_bills":[]}`,
		"more recent cancellations":          `{"bills_cancelled":0,"recent_payments":[],"recent_cancelled_bills":[1]}`,
		"more recent ended bills":            `{"bills_ended":0,"recent_payments":[],"recent_cancelled_bills":[],"recent_ended_bills":[{"id":"b"}]}`,
		"not an object":                      `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			var l domain.Link
			if err := json.Unmarshal([]byte(raw), &l); err == nil {
				t.Errorf("Unmarshal(%s) = %+v, want an error", raw, l)
			}
		})
	}
}

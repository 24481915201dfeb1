package domain_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/domain"
)

func ptr(s string) *string { return &s }

func renamed(storeName, dist, prevStore, prevDist string) domain.StoreRenamed {
	return domain.StoreRenamed{
		LinkID: lnk, DistributorID: distributor, StoreID: store, StoreName: storeName, DistributorName: dist,
		PreviousStoreName: prevStore, PreviousDistributorName: prevDist, RenamedAt: t0.Add(time.Hour),
	}
}

// TestDecideRename: either name, or both, change; a name left out stays;
// a blank distributor name removes it; names the link has already need
// nothing; bad names and unlinked pairs are refused.
func TestDecideRename(t *testing.T) {
	named := linked()
	named.DistributorName = "한울유통"
	at := t0.Add(time.Hour)
	for _, tt := range []struct {
		name string
		link domain.Link
		cmd  domain.RenameStore
		want []domain.Event
	}{
		{"the store's name", givenLink(named), domain.RenameStore{StoreName: ptr(" 행복식당 본점 ")},
			[]domain.Event{renamed("행복식당 본점", "한울유통", "행복식당", "한울유통")}},
		{"the distributor's name", givenLink(named), domain.RenameStore{DistributorName: ptr("한울유통(주)")},
			[]domain.Event{renamed("행복식당", "한울유통(주)", "행복식당", "한울유통")}},
		{"a distributor name for a link made without", givenLink(linked()), domain.RenameStore{DistributorName: ptr("한울유통")},
			[]domain.Event{renamed("행복식당", "한울유통", "행복식당", "")}},
		{"both", givenLink(linked()), domain.RenameStore{StoreName: ptr("행복식당 2호점"), DistributorName: ptr("한울유통")},
			[]domain.Event{renamed("행복식당 2호점", "한울유통", "행복식당", "")}},
		{"a blank distributor name removes it", givenLink(named), domain.RenameStore{DistributorName: ptr(" ")},
			[]domain.Event{renamed("행복식당", "", "행복식당", "한울유통")}},
		{"the names it has", givenLink(named), domain.RenameStore{StoreName: ptr("행복식당 "), DistributorName: ptr("한울유통")}, nil},
		{"no distributor name removed from a link without", givenLink(linked()), domain.RenameStore{DistributorName: ptr("")}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cmd.Now = at
			events, err := domain.DecideRename(tt.link, tt.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(events, tt.want) {
				t.Fatalf("events\n got %#v\nwant %#v", events, tt.want)
			}
			if len(events) == 0 {
				return
			}
			e := events[0].(domain.StoreRenamed)
			l := tt.link.Apply(e)
			if l.StoreName != e.StoreName || l.DistributorName != e.DistributorName || l.Version != tt.link.Version+1 {
				t.Errorf("state after store.renamed = %+v", l)
			}
		})
	}
}

// TestEventsAfterARenameCarryTheNewNames: the bills, payments, reminders
// and cancellations decided after a rename name the store and distributor
// as renamed, which is what the store's messages say.
func TestEventsAfterARenameCarryTheNewNames(t *testing.T) {
	f := newLinkFlow(t)
	f.issue(10_000)
	f.do(domain.DecideRename(f.link, domain.RenameStore{StoreName: ptr("행복식당 본점"), DistributorName: ptr("한울유통"), Now: f.at}))
	p := f.pay("dep_1", 1_000)
	r := f.do(domain.DecideRemind(f.link, domain.Remind{Now: f.at}))[0].(domain.BillReminded)
	c := f.do(domain.DecideCancelBill(f.link, domain.CancelBill{BillID: f.link.Current.ID, Now: f.at}))[0].(domain.BillCancelled)
	i := f.issue(5_000)[0].(domain.BillIssued)
	for typ, got := range map[string][2]string{
		"store.payment_received": {p.StoreName, p.DistributorName},
		"bill.reminded":          {r.StoreName, r.DistributorName},
		"bill.cancelled":         {c.StoreName, c.DistributorName},
		"bill.issued":            {i.StoreName, i.DistributorName},
	} {
		if got != [2]string{"행복식당 본점", "한울유통"} {
			t.Errorf("%s names %q, want the new names", typ, got)
		}
	}
}

func TestDecideRenameRefused(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cmd   domain.RenameStore
		field string
	}{
		{"neither name", domain.RenameStore{}, "store_name"},
		{"blank store name", domain.RenameStore{StoreName: ptr(" ")}, "store_name"},
		{"empty store name", domain.RenameStore{StoreName: ptr(""), DistributorName: ptr("한울유통")}, "store_name"},
		{"store name of 101 characters", domain.RenameStore{StoreName: ptr(strings.Repeat("가", 101))}, "store_name"},
		{"distributor name with a newline", domain.RenameStore{DistributorName: ptr("한울\n유통")}, "distributor_name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := domain.DecideRename(givenLink(linked()), tt.cmd)
			de := requireDomainError(t, err, domain.ErrInvalidInput, domain.KindInvalid)
			if events != nil || de.Details["field"] != tt.field {
				t.Errorf("events %#v, details %v; want none and field %s", events, de.Details, tt.field)
			}
		})
	}
	t.Run("an unlinked pair", func(t *testing.T) {
		events, err := domain.DecideRename(domain.Link{}, domain.RenameStore{StoreName: ptr("행복식당")})
		if events != nil || !errors.Is(err, domain.ErrStoreNotLinked) {
			t.Errorf("DecideRename on no link = %#v, %v; want store_not_linked", events, err)
		}
	})
}

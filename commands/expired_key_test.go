package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
)

// TestAResumedCommandIgnoresAnExpiredUseOfItsKey: an Idempotency-Key used
// more than its record's TTL ago (7 days) comes back with another request;
// that request's first attempt fails before it appends, so its repeat is
// resumed (Meta.Resumed, with the claim's time, as the server sets them).
// The repeat does its own work: the commits of the key's old use are not
// its earlier attempt's. For a bulk issue and a single one.
func TestAResumedCommandIgnoresAnExpiredUseOfItsKey(t *testing.T) {
	u := newUnit(t, storeOpeners[1].open(t))
	ctx := context.Background()
	u.link(t, "d-1", "s-1")
	bulk := commands.Meta{Command: api.BillIssueBulk.Subject, Actor: "app", IdempotencyKey: "erp-batch-1", ClaimedAt: u.clock.Now()}
	if _, err := u.Links.IssueBulk(ctx, bulk, api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{{StoreID: "s-1", Amount: 1_000}}}); err != nil {
		t.Fatal(err)
	}
	one := commands.Meta{Command: api.BillIssue.Subject, Actor: "app", IdempotencyKey: "k-1", ClaimedAt: u.clock.Now()}
	old, err := u.Links.IssueBill(ctx, one, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 2_000})
	if err != nil {
		t.Fatal(err)
	}

	u.clock.Set(u.clock.Now().Add(8 * 24 * time.Hour))
	bulk.Resumed, bulk.ClaimedAt = true, u.clock.Now()
	rep, err := u.Links.IssueBulk(ctx, bulk, api.IssueBulkRequest{DistributorID: "d-1", Bills: []api.BillLine{{StoreID: "s-1", Amount: 50_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if l := u.linkState(t, "d-1", "s-1"); l.Current.Amount != 50_000 || rep.Results[0].BillID != l.Current.ID {
		t.Fatalf("the resumed bulk answered line 1 with bill %q (%s); the store's current bill is %s for %d: want the 50000 bill issued",
			rep.Results[0].BillID, rep.Results[0].Status, l.Current.ID, l.Current.Amount)
	}
	one.Resumed, one.ClaimedAt = true, u.clock.Now()
	got, err := u.Links.IssueBill(ctx, one, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-1", Amount: 70_000})
	if err != nil {
		t.Fatal(err)
	}
	if l := u.linkState(t, "d-1", "s-1"); got.BillID == old.BillID || l.Current.Amount != 70_000 {
		t.Fatalf("the resumed issue answered bill %s for %d (the key's old one is %s); the current bill is for %d: want the 70000 bill issued",
			got.BillID, got.Amount, old.BillID, l.Current.Amount)
	}
}

package projections_test

import (
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
)

// TestApplyShowsExpiredOrders: an order submitted with a payment deadline
// shows expires_at; order.expired makes it expired; an order from before
// expiry shows no expires_at.
func TestApplyShowsExpiredOrders(t *testing.T) {
	f := newFixture(t)
	st := openStore(t, tempPath(t, "rm.db"))
	ev := submitted("E", 1)
	ev.PaymentDeadlineS = 86400
	subE := f.append(t, "E", f.envelope(t, ev, ev.SubmittedAt))
	subOld := f.submit(t, "OLD", 2)
	expiredAt := ev.SubmittedAt.Add(24*time.Hour + time.Minute)
	exp := domain.OrderExpired{OrderID: "E", ExpiresAt: ev.SubmittedAt.Add(24 * time.Hour), ExpiredAt: expiredAt}
	expE := f.append(t, "E", f.envelope(t, exp, expiredAt))
	if err := st.Apply([]eventstore.Commit{subE, subOld, expE}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	got := order(t, st, "E")
	if got.Status != "expired" || got.ExpiresAt != "2026-03-02T09:00:01.123456Z" || got.UpdatedAt != domain.FormatTime(expiredAt) ||
		got.Version != 2 || got.Seq != api.Seq(expE.Seq) || got.PaidAmount != 0 {
		t.Fatalf("expired order: %+v", got)
	}
	if old := order(t, st, "OLD"); old.ExpiresAt != "" || old.Status != "awaiting_deposit" {
		t.Fatalf("order from before expiry: %+v", old)
	}
}

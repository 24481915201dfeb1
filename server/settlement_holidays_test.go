package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// A store payment made during a block of holidays in the engine's calendar
// (--settlement-holidays: today and the two days after, in Asia/Seoul)
// settles D+1 from the first weekday after the block, in the store's
// payment list and in the distributor's expected settlement; read models
// rebuilt from the log by an engine given no calendar show the date the
// payment recorded.
func TestSettlementDatesSkipConfiguredHolidays(t *testing.T) {
	y, m, d := time.Now().In(domain.Seoul()).Date()
	day := func(n int) time.Time { return time.Date(y, m, d+n, 12, 0, 0, 0, time.UTC) }
	nextWeekday := func(t time.Time) time.Time {
		for t = t.AddDate(0, 0, 1); t.Weekday() == time.Saturday || t.Weekday() == time.Sunday; t = t.AddDate(0, 0, 1) {
		}
		return t
	}
	// The payment's business day is the first weekday after the block;
	// D+1 is the weekday after that. Counted by hand, so that the test
	// holds on any day of the week.
	want := nextWeekday(nextWeekday(day(2))).Format(domain.DateLayout)
	file := filepath.Join(t.TempDir(), "holidays.txt")
	calendar := fmt.Sprintf("# bank holidays\n%s # one\n\n%s\n%s  # three\n%s\n", day(0).Format(domain.DateLayout), day(1).Format(domain.DateLayout), day(2).Format(domain.DateLayout), day(1).Format(domain.DateLayout))
	if err := os.WriteFile(file, []byte(calendar), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, func(c *engine.Config) {
		c.BankSim, c.ScanInterval, c.BankSimLag = true, engine.Duration(100*time.Millisecond), 0
		c.StoreFeeBps, c.SettlementDays, c.SettlementHolidays = 100, 1, file
	})
	app := connectAs(t, e.ClientURL(), e.SeedFile(auth.App))
	var link api.LinkStoreReply
	if _, err := app.Call(ctxT(t), api.StoreLink.Subject, api.LinkStoreRequest{DistributorID: "d-h", StoreID: "s-h", StoreName: "명절식당"}, &link, nil); err != nil {
		t.Fatal(err)
	}
	var tr api.SimTransferReply
	e.call(t, api.SimBankTransfer.Subject, map[string]any{"depositor_name": "명절식당", "amount": 50_000, "account_number": link.DedicatedAccount.Number}, &tr, nil)
	if !tr.Scanned {
		t.Fatalf("a transfer to the dedicated account %s: %+v, want scanned", link.DedicatedAccount.Number, tr)
	}
	check := func(e *testEngine, when string) {
		t.Helper()
		var byStore api.PaymentsReply
		testenv.CheckFor(t, 20*time.Second, func() error {
			e.call(t, api.PaymentsByStore.Subject, map[string]any{"store_id": "s-h"}, &byStore, nil)
			if len(byStore.Payments) != 1 {
				return fmt.Errorf("%s: %d payments by store, want 1", when, len(byStore.Payments))
			}
			return nil
		})
		p := byStore.Payments[0]
		paidAt, err := time.Parse(time.RFC3339Nano, p.PaidAt)
		if err != nil {
			t.Fatal(err)
		}
		if paid := paidAt.In(domain.Seoul()).Format(domain.DateLayout); paid < day(0).Format(domain.DateLayout) || paid > day(2).Format(domain.DateLayout) {
			t.Fatalf("%s: paid on %s, not during the holidays %s to %s: the test took days", when, paid, day(0).Format(domain.DateLayout), day(2).Format(domain.DateLayout))
		}
		if p.SettlementDate != want {
			t.Errorf("%s: payment.by_store settlement_date %s, want %s (paid %s, holidays %s to %s)", when, p.SettlementDate, want, p.PaidAt, day(0).Format(domain.DateLayout), day(2).Format(domain.DateLayout))
		}
		var settle api.SettlementReply
		e.call(t, api.SettlementExpected.Subject, map[string]any{"distributor_id": "d-h"}, &settle, nil)
		if len(settle.Settlements) != 1 || settle.Settlements[0].Date != want || settle.Settlements[0].Gross != 50_000 || settle.Settlements[0].Net != 49_500 {
			t.Errorf("%s: settlement.expected %+v, want 50000 (net 49500) on %s", when, settle.Settlements, want)
		}
	}
	check(e, "with the calendar")

	// Another calendar (none) and read models rebuilt from the log: the
	// recorded date stands.
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.cfg.DataDir, "readmodels.db")); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.SettlementHolidays = ""
	check(startEngineWith(t, cfg), "rebuilt without a calendar")
}

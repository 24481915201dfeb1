package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/domain"
)

// The CLI asks the console's queries: orders by depositor name and status,
// payouts, a clearing account's series and the reconciliation runs, in JSON
// and as text; a bad account is a usage error of the API (exit 4).
func TestConsoleQueriesFromTheCLI(t *testing.T) {
	e, cfg := startEngine(t)
	url := "--nats-url=" + e.ClientURL()
	do := func(args ...string) string {
		t.Helper()
		out, err := cli(t, append(args, url)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	var order api.SubmitOrderReply
	if err := json.Unmarshal([]byte(do("order", "submit", "--buyer-id", "u1", "--buyer-name", "김민수", "--amount", "39000", "--json")), &order); err != nil {
		t.Fatal(err)
	}
	statement := writeStatement(t, "T1,"+cfg.CollectNumber+",누군가,1200,2026-12-01T09:00:00+09:00\n")
	if out, err := cli(t, "deposit", "import", url, statement); err != nil {
		t.Fatalf("deposit import: %v\n%s", err, out)
	}

	var found api.OrderSearchReply
	if err := json.Unmarshal([]byte(do("order", "search", "--depositor-name", order.DepositorName, "--status", "awaiting_deposit", "--json")), &found); err != nil {
		t.Fatal(err)
	}
	if len(found.Orders) != 1 || found.Orders[0].OrderID != order.OrderID {
		t.Fatalf("order search: %+v", found)
	}
	if out := do("order", "search", "--status", "paid"); !strings.Contains(out, "no orders") {
		t.Fatalf("no paid order, but: %q", out)
	}
	var series api.LedgerSeriesReply
	if err := json.Unmarshal([]byte(do("ledger", "series", "--account", domain.AccountSuspense, "--json")), &series); err != nil {
		t.Fatal(err)
	}
	if len(series.OpenItems) != 1 || series.OpenItems[0].Amount != 1200 || len(series.Points) == 0 {
		t.Fatalf("ledger series: %+v", series)
	}
	var payouts api.PayoutListReply
	if err := json.Unmarshal([]byte(do("payout", "list", "--json")), &payouts); err != nil || len(payouts.Payouts) != 0 {
		t.Fatalf("payout list: %+v %v", payouts, err)
	}
	var runs api.ReconcileListReply
	if err := json.Unmarshal([]byte(do("reconcile", "list", "--json")), &runs); err != nil || len(runs.Runs) != 0 {
		t.Fatalf("reconcile list: %+v %v", runs, err)
	}
	if _, err := cli(t, "ledger", "series", "--account", "assets:bank:1", url); exitCode(err) != exitRefused {
		t.Fatalf("series of a bank account: exit %d (%v), want %d", exitCode(err), err, exitRefused)
	}
}

package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/firmbanking"
	"github.com/bankbook/bankbook/internal/testenv"
)

// TestNightlyPayoutsReconciliation: an instance started with
// --reconcile-payouts-at arms the daily run; at that time one instance
// fetches the provider's report of the day before and reconciles it, as
// the actor timer, recording the run like `reconcile payouts` does (the
// payouts the engine made match; a transfer the provider holds that no
// payout recorded is a finding), and the next run is armed a day later.
func TestNightlyPayoutsReconciliation(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	a, bk := payoutEngine(t, g)
	fund(t, a, bk, "u-n", "김야간", 10000)
	w1 := a.withdraw(t, "u-n", 3000, payee)
	w2 := a.withdraw(t, "u-n", 2000, payee)
	a.waitPayouts(t, "settled", w1, w2)
	// A transfer the provider made that the engine never recorded.
	ghost := firmbanking.Transfer{ID: "po_ghost", Amount: 7000, To: payee}
	if _, err := (&firmbanking.Client{BaseURL: g.url, Token: "test"}).Send(context.Background(), ghost); err != nil {
		t.Fatal(err)
	}

	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(8 * time.Second).Truncate(time.Second)
	startEngine(t, func(c *engine.Config) {
		joinEngine(c, a.Engine)
		c.FirmbankURL, c.FirmbankToken = g.url, "test"
		c.ReconcilePayoutsAt = at.In(seoul).Format("15:04:05")
	})
	rep := firstRun(t, a)
	matched := map[string]bool{}
	for _, it := range rep.Matched {
		matched[it.PayoutID] = true
	}
	if rep.Kind != "payouts" || len(rep.Matched) != 2 || !matched[w1] || !matched[w2] ||
		len(rep.MissingInLedger) != 1 || rep.MissingInLedger[0].PayoutID != "po_ghost" || rep.Findings != 1 {
		t.Fatalf("the nightly run: %+v", rep)
	}
	auditor := connectAs(t, a.ClientURL(), a.SeedFile(auth.Auditor))
	evs, _ := wholeHistory(t, auditor, "reconciliation", string(rep.RunID), 0)
	if len(evs) != 1 || evs[0].Actor != "timer" {
		t.Fatalf("the run's history: %+v", evs)
	}
	// /metrics shows the latest run of each kind: its findings and age.
	_, metrics := a.get(t, "/metrics")
	if !strings.Contains(metrics, `bankbook_reconcile_last_run_findings{kind="payouts"} 1`) || !strings.Contains(metrics, `bankbook_reconcile_last_run_age_seconds{kind="payouts"} `) ||
		strings.Contains(metrics, `bankbook_reconcile_last_run_age_seconds{kind="bank"}`) {
		t.Errorf("/metrics of the reconciliations:\n%s", grepLines(metrics, "bankbook_reconcile_"))
	}
	// The next run is armed, a day after this one.
	requireNextRun(t, a, "reconcile_payouts", at.Add(24*time.Hour))
}

// firstRun waits for e's first reconciliation run and returns it.
func firstRun(t *testing.T, e *testEngine) api.ReconcileReply {
	t.Helper()
	var run api.ReconcileRunSummary
	testenv.CheckFor(t, 60*time.Second, func() error {
		var list api.ReconcileListReply
		if _, err := e.c.Call(ctxT(t), api.ReconcileList.Subject, api.ReconcileListRequest{}, &list, nil); err != nil {
			return err
		}
		if len(list.Runs) == 0 {
			return errors.New("no run yet")
		}
		run = list.Runs[0]
		return nil
	})
	var rep api.ReconcileReply
	e.call(t, api.ReconcileGet.Subject, api.ReconcileGetRequest{RunID: run.RunID}, &rep, nil)
	return rep
}

// requireNextRun waits until the nightly run of timer kind is armed at
// want.
func requireNextRun(t *testing.T, e *testEngine, kind string, want time.Time) {
	t.Helper()
	stream, err := e.js.Stream(ctxT(t), "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		m, err := stream.GetLastMsgForSubject(ctxT(t), "bankbook.timer.sched."+kind+".daily")
		if err != nil {
			return err
		}
		next, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(m.Header.Get(jetstream.ScheduleHeader), "@at "))
		if err != nil {
			return err
		}
		if !next.Equal(want) {
			return fmt.Errorf("next run at %s, want %s", next, want)
		}
		return nil
	})
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			out = append(out, strings.TrimRight(line, "\n"))
		}
	}
	return strings.Join(out, "\n")
}

// TestNightlyRunOfAnEmptyReport: a provider whose report of the day holds
// no transfer, although the engine recorded a payout settled in it: no run
// can be recorded (a run needs lines), and the engine says so as an error
// naming the payout.
func TestNightlyRunOfAnEmptyReport(t *testing.T) {
	g := newGatedBank(t, firmbanking.FakeOptions{})
	target, err := url.Parse(g.url)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	lost := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reports/transfers" {
			w.Header().Set("Content-Type", "text/csv")
			_, _ = io.WriteString(w, "payout_id,status,amount,fee,settled_at\n")
			return
		}
		forward.ServeHTTP(w, r)
	}))
	t.Cleanup(lost.Close)
	a, bk := scenarioEngine(t, func(c *engine.Config) {
		c.FirmbankURL, c.FirmbankToken = lost.URL, "test"
		c.FirmbankStatusLag = engine.Duration(50 * time.Millisecond)
	})
	fund(t, a, bk, "u-e", "김빈날", 10000)
	w := a.withdraw(t, "u-e", 3000, payee)
	a.waitPayouts(t, "settled", w)

	// Started again with the nightly run due in a few seconds, its log kept.
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	cfg := a.cfg
	cfg.ReconcilePayoutsAt = time.Now().Add(4 * time.Second).In(seoul).Format("15:04:05")
	var logs testenv.SyncBuffer
	b, err := engine.Start(context.Background(), cfg, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop(context.Background()) })
	testenv.CheckFor(t, 60*time.Second, func() error {
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, `"level":"error"`) && strings.Contains(line, "reported no payouts for a day in which the engine recorded some") && strings.Contains(line, w) {
				return nil
			}
		}
		return errors.New("no error naming the payout the provider left out")
	})
	c := connectAs(t, b.ClientURL(), operatorSeed(cfg, b))
	var list api.ReconcileListReply
	if _, err := c.Call(ctxT(t), api.ReconcileList.Subject, api.ReconcileListRequest{}, &list, nil); err != nil || len(list.Runs) != 0 {
		t.Fatalf("runs %+v, %v: a report without lines records none", list.Runs, err)
	}
}

// TestNightlyBankReconciliation: an engine started with
// --reconcile-bank-at reads, at that time, the bank's statement of the day
// before from its bank feed and reconciles it over the whole day, as the
// actor timer, as `reconcile bank` does: the transfers the scanner
// recorded match, and a deposit recorded with a bank_txn_id the bank never
// showed (a forged or mistyped one) is missing at the bank, also on a
// dedicated account the bank shows no transfer to that day and before the
// day's first transfer. A deposit on an account outside the feed is not
// the bank feed's to answer for. The next run is armed a day later.
func TestNightlyBankReconciliation(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	sim := newSimBank(t, bankfeed.SimOptions{})
	at := time.Now().Add(8 * time.Second).Truncate(time.Second)
	e, _ := scenarioEngine(t, func(c *engine.Config) {
		c.BankSim, c.Sim, c.BankSimLag, c.ScanInterval = true, sim, 0, engine.Duration(200*time.Millisecond)
		c.ReconcileBankAt = at.In(seoul).Format("15:04:05")
	})
	record := func(txn, account string, amount int64, ago time.Duration) string {
		t.Helper()
		var rep api.RecordDepositReply
		e.call(t, subjRecord, api.RecordDepositRequest{BankTxnID: txn, AccountNumber: account, DepositorName: "박위조",
			Amount: amount, DepositedAt: time.Now().Add(-ago)}, &rep, nil)
		return rep.DepositID
	}
	scanned := func(txn bankfeed.Transaction) {
		t.Helper()
		testenv.CheckFor(t, 20*time.Second, func() error {
			got, err := e.Models.DepositsWithTxn([]string{txn.BankTxnID})
			if err != nil || len(got) == 0 {
				return fmt.Errorf("%s not recorded yet (%v)", txn.BankTxnID, err)
			}
			return nil
		})
	}
	early := record("FORGE-EARLY", e.cfg.CollectNumber, 50000, 20*time.Minute)
	dedicated := record("FORGE-DEDICATED", "5001-000777", 30000, 10*time.Minute)
	record("ELSEWHERE", "333-44-555555", 7000, 10*time.Minute)
	first, err := sim.Transfer("김은행", 12000, e.cfg.CollectNumber)
	if err != nil {
		t.Fatal(err)
	}
	scanned(first)
	second, err := sim.Transfer("이은행", 8000, e.cfg.CollectNumber)
	if err != nil {
		t.Fatal(err)
	}
	scanned(second)

	rep := firstRun(t, e)
	missing := map[string]string{}
	for _, it := range rep.MissingAtBank {
		missing[it.BankTxnID] = strings.Join(it.DepositIDs, ",")
	}
	if rep.Kind != "bank" || rep.Lines != 2 || !slices.Equal(itemIDs(rep.Matched), []string{first.BankTxnID, second.BankTxnID}) ||
		len(missing) != 2 || missing["FORGE-EARLY"] != early || missing["FORGE-DEDICATED"] != dedicated || rep.Findings != 2 ||
		len(rep.TimingDifference) != 0 {
		t.Fatalf("the nightly run: %+v", rep)
	}
	// The whole day, on the collection account and the dedicated one (the
	// reply writes times to the microsecond).
	day := api.ReconcilePeriod{From: at.Add(-24 * time.Hour), To: at.Add(-time.Nanosecond).Truncate(time.Microsecond)}
	if rep.Period == nil || !rep.Period.From.Equal(day.From) || !rep.Period.To.Equal(day.To) || len(rep.Accounts) != 2 ||
		rep.Accounts[0].AccountNumber != domain.NormalizeAccountNumber(e.cfg.CollectNumber) || rep.Accounts[1].AccountNumber != "5001000777" ||
		!rep.Accounts[1].From.Equal(day.From) || !rep.Accounts[1].To.Equal(day.To) {
		t.Fatalf("the run covers %+v over %+v, want the collection and the dedicated account over %+v", rep.Accounts, rep.Period, day)
	}
	auditor := connectAs(t, e.ClientURL(), e.SeedFile(auth.Auditor))
	evs, _ := wholeHistory(t, auditor, "reconciliation", string(rep.RunID), 0)
	if len(evs) != 1 || evs[0].Actor != "timer" {
		t.Fatalf("the run's history: %+v", evs)
	}
	_, metrics := e.get(t, "/metrics")
	if !strings.Contains(metrics, `bankbook_reconcile_last_run_findings{kind="bank"} 2`) {
		t.Errorf("/metrics of the reconciliations:\n%s", grepLines(metrics, "bankbook_reconcile_"))
	}
	requireNextRun(t, e, "reconcile_bank", at.Add(24*time.Hour))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// page drives one browser's tab through the console.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string // http://HOST:PORT/console
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatal(err)
	}
}

// open loads the console path and waits for the element sel.
func (p *page) open(path, sel string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text returns the text of the first element sel matches.
func (p *page) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// count returns how many elements sel matches now, without waiting.
func (p *page) count(sel string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		p.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func (p *page) login(name, seedFile string) {
	p.t.Helper()
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		p.t.Fatal(err)
	}
	p.open("/login", "#login-form")
	p.do(chromedp.SendKeys(chromedp.CSS("#login-name"), name),
		chromedp.SetValue(chromedp.CSS("#login-secret"), strings.TrimSpace(string(seed))),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="counts"]`)))
	if got := p.text(`[data-testid="user-role"]`); got != name {
		p.t.Fatalf("logged in as %q, want %q", got, name)
	}
}

// digits keeps the digits of a formatted amount ("₩0" → "0").
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// TestConsoleInABrowser drives the ops console in a real headless Chromium
// against an engine with the simulated chat provider: an operator logs in,
// resolves an orphan deposit through its candidate with a double click,
// sees the order paid and the suspense account drained, redrives a dead
// notification; an auditor sees no action and a forged one is refused.
// Every page is left as a screenshot in test-artifacts/console.
func TestConsoleInABrowser(t *testing.T) {
	e, cfg := startEngine(t, func(c *engine.Config) { c.ChatSim, c.ChatSimListen = true, "127.0.0.1:0" })
	c, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Operator)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	// An order, and two transfers that match no depositor name but its
	// amount: orphans whose candidate is the order.
	order, _, err := client.Do(ctx(), c, api.OrderSubmit, api.SubmitOrderRequest{BuyerID: "u-kim", BuyerName: "김민수", Amount: 39000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var deposits []string
	for i, name := range []string{"누군가", "아무개"} {
		rep, _, err := client.Do(ctx(), c, api.DepositRecord, api.RecordDepositRequest{BankTxnID: fmt.Sprintf("T-%d", i), AccountNumber: cfg.CollectNumber,
			DepositorName: name, Amount: 39000, DepositedAt: time.Now().UTC()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		deposits = append(deposits, rep.DepositID)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		rep, _, err := client.Do(ctx(), c, api.DepositOrphans, api.PageRequest{}, nil)
		if err != nil {
			return err
		}
		for _, o := range rep.Deposits {
			if len(o.Candidates) == 0 {
				return fmt.Errorf("orphan %s has no candidate yet", o.DepositID)
			}
		}
		if len(rep.Deposits) != 2 {
			return fmt.Errorf("%d orphans", len(rep.Deposits))
		}
		return nil
	})
	// A notification the chat provider refuses: dead.
	e.ChatSim.RefuseChannel("store:s-dead")
	if _, _, err := client.Do(ctx(), c, api.StoreLink, api.LinkStoreRequest{DistributorID: "d-1", StoreID: "s-dead", StoreName: "가게"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.Do(ctx(), c, api.BillIssue, api.IssueBillRequest{DistributorID: "d-1", StoreID: "s-dead", Amount: 12000}, nil); err != nil {
		t.Fatal(err)
	}
	var dead api.NotificationView
	testenv.CheckFor(t, 15*time.Second, func() error {
		rep, _, err := client.Do(ctx(), c, api.NotifyList, api.NotifyListRequest{Status: "dead"}, nil)
		if err != nil {
			return err
		}
		if len(rep.Notifications) != 1 {
			return errors.New("no dead notification yet")
		}
		dead = rep.Notifications[0]
		return nil
	})

	base := "http://" + e.HTTPAddr().String() + "/console"
	op := &page{t: t, ctx: newBrowser(t, 3*time.Minute), base: base}
	op.open("/login", "#login-form")
	screenshot(t, op.ctx, "00-login")
	op.login("operator", e.SeedFile(auth.Operator))
	screenshot(t, op.ctx, "01-overview")
	if n := op.count(`[data-testid^="health-part-"]`); n == 0 {
		t.Error("the overview shows no part's health")
	}

	t.Run("resolve an orphan through its candidate", func(t *testing.T) {
		op.t = t
		dep := deposits[0]
		op.open("/orphans", `[data-testid="orphans"]`)
		screenshot(t, op.ctx, "02-orphans")
		op.do(chromedp.Click(chromedp.CSS(fmt.Sprintf("#assign-%s-%s", dep, order.OrderID))),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="effect"]`)))
		if got := op.text(`[data-testid="effect-order-id"]`); !strings.Contains(got, order.OrderID) {
			t.Fatalf("the confirmation names order %q, want %s", got, order.OrderID)
		}
		if got := digits(op.text(`[data-testid="effect-suspense-after"]`)); got != "-39000" && got != "39000" {
			t.Errorf("the confirmation says the suspense account ends at %q, want what the other orphan holds", got)
		}
		screenshot(t, op.ctx, "03-resolve-confirmation")
		// A double click: the form is submitted twice, with one key.
		if _, err := chromedp.Run(op.ctx, chromedp.Evaluate[bool](`(() => { const b = document.getElementById("resolve-confirm"); b.click(); b.click(); return true })()`)); err != nil {
			t.Fatal(err)
		}
		op.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid="result"], [data-testid="error"]`)))
		screenshot(t, op.ctx, "04-resolved")
		if n := op.count(`[data-testid="result-seq"]`); n != 1 {
			t.Fatalf("no result after confirming: %d", n)
		}
		hist, _, err := client.Do(ctx(), c, api.AuditHistory, api.AuditHistoryRequest{AggregateType: domain.AggregateDeposit, AggregateID: dep}, nil)
		if err != nil {
			t.Fatal(err)
		}
		resolved := 0
		for _, ev := range hist.Events {
			if ev.EventType == "deposit.resolved" {
				resolved++
			}
		}
		if resolved != 1 {
			t.Fatalf("%d deposit.resolved events after a double click, want 1", resolved)
		}

		// The order is paid.
		op.open("/orders", `[data-testid="order-search"]`)
		op.do(chromedp.SendKeys(chromedp.CSS("#search-order-id"), order.OrderID), chromedp.Click(chromedp.CSS("#search-submit")),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="order-row"]`)))
		if got := op.text(`[data-testid="order-status"]`); !strings.Contains(got, "paid") {
			t.Fatalf("order %s shows %q, want paid", order.OrderID, got)
		}
		screenshot(t, op.ctx, "05-orders")
		op.open("/orders/"+order.OrderID, `[data-testid="order"]`)
		screenshot(t, op.ctx, "06-order")

		// The suspense account holds only the other orphan now.
		op.open("/ledger", `[data-testid="trial-balance"]`)
		got := digits(op.text(`tr[data-account="` + domain.AccountSuspense + `"] [data-testid="trial-balance-value"]`))
		if got != "-39000" && got != "39000" {
			t.Fatalf("suspense shows %q after the resolution, want one orphan's 39,000", got)
		}
		if op.count(`[data-testid="chart-balance"]`) == 0 {
			t.Error("the ledger page draws no balance chart")
		}
		screenshot(t, op.ctx, "07-ledger")
		op.open("/ledger/account?account="+domain.AccountSuspense, `[data-testid="ledger-entries"]`)
		screenshot(t, op.ctx, "08-ledger-account")
	})

	t.Run("redrive a dead notification", func(t *testing.T) {
		op.t = t
		e.ChatSim.AllowChannel("store:s-dead")
		op.open("/notifications?status=dead", `[data-testid="notifications"]`)
		screenshot(t, op.ctx, "09-notifications-dead")
		op.do(chromedp.Click(chromedp.CSS(`tr[data-notification-id="`+dead.NotificationID+`"] [data-testid="redrive-notification"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="result"]`)))
		screenshot(t, op.ctx, "10-notification-redriven")
		testenv.CheckFor(t, 15*time.Second, func() error {
			rep, _, err := client.Do(ctx(), c, api.NotifyList, api.NotifyListRequest{Status: "sent"}, nil)
			if err != nil {
				return err
			}
			for _, n := range rep.Notifications {
				if n.NotificationID == dead.NotificationID {
					return nil
				}
			}
			return fmt.Errorf("notification %s not sent yet", dead.NotificationID)
		})
	})

	t.Run("the other pages", func(t *testing.T) {
		op.t = t
		for i, pg := range []struct{ path, sel string }{
			{"/wallets?user_id=u-kim", `[data-testid="wallet-search"]`},
			{"/payouts", `[data-testid="payout-filter"]`},
			{"/deadletters", `[data-testid="page-title"]`},
			{"/reconcile", `[data-testid="page-title"]`},
		} {
			op.open(pg.path, pg.sel)
			screenshot(t, op.ctx, fmt.Sprintf("%02d-%s", 11+i, strings.Trim(strings.SplitN(pg.path, "?", 2)[0], "/")))
		}
	})

	t.Run("an auditor sees and cannot act", func(t *testing.T) {
		au := &page{t: t, ctx: newBrowser(t, time.Minute), base: base}
		au.login("auditor", e.SeedFile(auth.Auditor))
		au.open("/orphans", `[data-testid="orphans"]`)
		if n := au.count(`[data-testid="assign-candidate"]`); n != 0 {
			t.Fatalf("the auditor's orphans page offers %d resolutions", n)
		}
		screenshot(t, au.ctx, "15-auditor-orphans")
		// The auditor forges the form the operator would have sent.
		forge := fmt.Sprintf(`(() => {
			const f = document.createElement("form"); f.method = "post"; f.action = "/console/orphans/%s/resolve";
			const add = (k, v) => { const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i) };
			add("csrf", document.querySelector('#logout-form input[name="csrf"]').value);
			add("idempotency_key", "forged-by-auditor"); add("action", "assign_order"); add("order_id", %q);
			document.body.appendChild(f); f.submit(); return true })()`, deposits[1], order.OrderID)
		if _, err := chromedp.Run(au.ctx, chromedp.Evaluate[bool](forge)); err != nil {
			t.Fatal(err)
		}
		au.do(chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-code"]`)))
		if got := au.text(`[data-testid="error-code"]`); got != "forbidden" {
			t.Fatalf("the auditor's forged resolution answered %q, want forbidden", got)
		}
		screenshot(t, au.ctx, "16-auditor-denied")
		rep, _, err := client.Do(ctx(), c, api.DepositOrphans, api.PageRequest{}, nil)
		if err != nil || len(rep.Deposits) != 1 || rep.Deposits[0].DepositID != deposits[1] {
			t.Fatalf("after the auditor's attempt the orphans are %+v (%v), want %s still open", rep.Deposits, err, deposits[1])
		}
	})

	// Last: the message that is not a commit holds the read models too.
	t.Run("discard a dead letter", func(t *testing.T) {
		op.t = t
		nc, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		if err := nc.Conn().Publish("bankbook.evt.order.poison", []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		var dl api.DeadLetter
		testenv.CheckFor(t, 20*time.Second, func() error {
			rep, _, err := client.Do(ctx(), c, api.DeadLetterList, api.DeadLettersRequest{Part: "react-orders"}, nil)
			if err != nil || len(rep.DeadLetters) != 1 {
				return fmt.Errorf("dead letters of react-orders: %+v, %v", rep.DeadLetters, err)
			}
			dl = rep.DeadLetters[0]
			return nil
		})
		op.open("/deadletters?part=react-orders", `[data-testid="deadletters"]`)
		screenshot(t, op.ctx, "17-deadletters")
		op.do(chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#discard-reason-%d", dl.ID)), "garbage published by a test"),
			chromedp.Click(chromedp.CSS(fmt.Sprintf("#discard-deadletter-%d", dl.ID))),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="result"]`)))
		screenshot(t, op.ctx, "18-deadletter-discarded")
		rep, _, err := client.Do(ctx(), c, api.DeadLetterList, api.DeadLettersRequest{Part: "react-orders"}, nil)
		if err != nil || len(rep.DeadLetters) != 0 {
			t.Fatalf("after the discard the dead letters of react-orders are %+v (%v), want none", rep.DeadLetters, err)
		}
	})
}

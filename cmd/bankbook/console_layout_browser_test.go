package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/internal/testenv"
)

// buttonsOutOfSight lists the buttons of the page that lie, wholly or in
// part, right of the window's edge: on a laptop screen they are out of
// sight until the operator scrolls sideways.
const buttonsOutOfSight = `(() => {
	const out = [];
	for (const b of document.querySelectorAll("button")) {
		const r = b.getBoundingClientRect();
		if (r.right > document.documentElement.clientWidth) out.push((b.id || b.textContent.trim()) + " ends at " + Math.round(r.right) + "px");
	}
	return out.join("; ");
})()`

// pageWiderThanWindow says how wide the page is when it reaches past the
// window's right edge, "" when it does not: text pushed past the edge is
// cut off on a laptop screen until the operator scrolls sideways.
const pageWiderThanWindow = `(() => {
	const d = document.documentElement;
	return d.scrollWidth > d.clientWidth ? "page is " + d.scrollWidth + "px wide" : "";
})()`

// TestConsoleLongWordsKeepButtonsInSight: text from outside the console
// can be one long word: a depositor name as the bank wrote it (64
// characters), the subject of a message on the event stream, a store's or
// its distributor's name (100). It wraps in its cell instead of widening
// the table past the screen, which would take the resolve and discard
// buttons of every row out of sight, and in a heading instead of running
// past the window's edge.
func TestConsoleLongWordsKeepButtonsInSight(t *testing.T) {
	e, cfg := startEngine(t)
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

	// An orphan whose depositor name is one word of 64 letters.
	if _, _, err := client.Do(ctx(), c, api.DepositRecord, api.RecordDepositRequest{BankTxnID: "T-long", AccountNumber: cfg.CollectNumber,
		DepositorName: strings.Repeat("W", 64), Amount: 12345, DepositedAt: time.Now().UTC()}, nil); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 10*time.Second, func() error {
		rep, _, err := client.Do(ctx(), c, api.DepositOrphans, api.PageRequest{}, nil)
		if err != nil || len(rep.Deposits) != 1 {
			return fmt.Errorf("orphans: %+v, %v", rep.Deposits, err)
		}
		return nil
	})
	// A dead letter whose subject ends in a long word.
	nc, err := client.Connect(e.ClientURL(), testenv.NKey(t, e.SeedFile(auth.Engine)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := nc.Conn().Publish("bankbook.evt.order."+strings.Repeat("p", 300), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	testenv.CheckFor(t, 20*time.Second, func() error {
		rep, _, err := client.Do(ctx(), c, api.DeadLetterList, api.DeadLettersRequest{}, nil)
		if err != nil || len(rep.DeadLetters) == 0 {
			return fmt.Errorf("dead letters: %+v, %v", rep.DeadLetters, err)
		}
		return nil
	})

	// A store whose names are one word of 100 letters each.
	if _, _, err := client.Do(ctx(), c, api.StoreLink, api.LinkStoreRequest{DistributorID: "d-long", StoreID: "s-long",
		StoreName: strings.Repeat("S", 100), DistributorName: strings.Repeat("D", 100)}, nil); err != nil {
		t.Fatal(err)
	}

	op := &page{t: t, ctx: newBrowser(t, 2*time.Minute), base: "http://" + e.HTTPAddr().String() + "/console"}
	op.login("operator", e.SeedFile(auth.Operator))
	for _, pg := range []struct{ path, sel string }{
		{"/orphans", `[data-testid="orphan-row"] [data-testid="refund-bank"]`},
		{"/deadletters", `[data-testid="deadletter-row"] [data-testid="discard-deadletter"]`},
		{"/bills?distributor_id=d-long&store_id=s-long", `[data-testid="store-name"]`},
	} {
		op.open(pg.path, pg.sel)
		for _, check := range []string{buttonsOutOfSight, pageWiderThanWindow} {
			out, err := chromedp.Run(op.ctx, chromedp.Evaluate[string](check))
			if err != nil {
				t.Fatal(err)
			}
			if out != "" {
				screenshot(t, op.ctx, "long-words"+strings.NewReplacer("/", "-", "?", "-", "&", "-", "=", "-").Replace(pg.path))
				t.Errorf("%s on a %s-wide window: %s", pg.path, "1366px", out)
			}
		}
	}
}

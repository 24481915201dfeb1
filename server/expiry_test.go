package server_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// orderIDFirstTrying returns an order ID whose first depositor name for
// buyerName is name (SuffixOrder is derived from the order ID).
func orderIDFirstTrying(t *testing.T, prefix, name, buyerName string, maxRunes int) string {
	t.Helper()
	for i := range 100000 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if domain.DepositorName(buyerName, domain.SuffixOrder(id, 1)[0], maxRunes) == name {
			return id
		}
	}
	t.Fatalf("no order ID tries %q first", name)
	return ""
}

// TestUnpaidOrderExpiresThroughTheTimers: an order still awaiting its
// deposit at --payment-deadline stays open until the bank scan covers the
// deadline, then becomes expired (written by the expiry timer); a transfer
// for it within the name grace is refunded to the buyer's wallet.
func TestUnpaidOrderExpiresThroughTheTimers(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) { c.PaymentDeadline = engine.Duration(time.Second) })
	o := e.submit(t, "u-exp", "김민수", 39000)
	submitted, err := time.Parse(domain.TimeLayout, o.SubmittedAt)
	if err != nil {
		t.Fatal(err)
	}
	if o.ExpiresAt != domain.FormatTime(submitted.Add(time.Second)) {
		t.Fatalf("submit reply expires_at %q, want submitted_at + 1s", o.ExpiresAt)
	}
	var v api.OrderView
	e.call(t, subjGet, map[string]any{"order_id": o.OrderID, "min_seq": o.Seq}, &v, nil)
	if v.ExpiresAt != o.ExpiresAt {
		t.Fatalf("order.get expires_at %q, want %q", v.ExpiresAt, o.ExpiresAt)
	}
	bk.scanned(submitted.Add(-time.Minute)) // the scan lags behind
	time.Sleep(2 * time.Second)             // past the deadline: the timer has fired and waits
	if st := e.order(t, o.OrderID).Status; st != "awaiting_deposit" {
		t.Fatalf("expired before the scan covered the deadline: %s", st)
	}
	bk.scanned(time.Now())
	testenv.Eventually(t, 10*time.Second, "order expired", func() bool { return e.order(t, o.OrderID).Status == "expired" })

	rep := bk.deposit(o.DepositorName, 39000)
	if rep.Outcome != "refunded_to_wallet" || rep.OrderID != o.OrderID || rep.UserID != "u-exp" {
		t.Fatalf("deposit for the expired order: %+v", rep)
	}
	testenv.Eventually(t, 10*time.Second, "refund in the wallet", func() bool { return e.wallet(t, "u-exp").Balance == 39000 })
	if ce := e.callErr(t, subjCancel, map[string]any{"order_id": o.OrderID, "deposited": false}, nil); ce.Status != 409 || ce.Code != "wrong_state" {
		t.Fatalf("cancel of an expired order: %+v", ce)
	}
	bal := e.balanced(t)
	if bal[domain.AccountWallet("u-exp")] != -39000 || bal[domain.AccountPayableOrders] != 0 {
		t.Fatalf("ledger: %v", bal)
	}
}

// TestExpiredOrderFreesItsName: with no name grace, the name of an expired
// order goes to the next order that wants it.
func TestExpiredOrderFreesItsName(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) {
		c.PaymentDeadline = engine.Duration(time.Second)
		c.NameGrace = 0
	})
	o := e.submit(t, "u-1", "이서연", 5000)
	bk.scanned(time.Now().Add(2 * time.Second))
	testenv.Eventually(t, 10*time.Second, "order expired", func() bool { return e.order(t, o.OrderID).Status == "expired" })
	id := orderIDFirstTrying(t, "next", o.DepositorName, "이서연", e.cfg.DepositorNameMax)
	var again api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "u-2", "buyer_name": "이서연", "amount": 7000}, &again, nil)
	if again.DepositorName != o.DepositorName {
		t.Fatalf("new order got %q, want the expired order's %q", again.DepositorName, o.DepositorName)
	}
	if rep := bk.deposit(o.DepositorName, 7000); rep.Outcome != "matched" || rep.OrderID != id {
		t.Fatalf("deposit under the reused name: %+v", rep)
	}
}

// TestClosedOrdersLeaveTheNamesBucket: the depositor names of a paid, a
// cancelled and an expired order are released once the name grace has passed
// and the bank scan covers it, by the orders' own timers: the names bucket
// holds no name of a closed order, nor a buyer without unpaid orders, so
// names and buyers seen once do not accumulate.
func TestClosedOrdersLeaveTheNamesBucket(t *testing.T) {
	e, bk := scenarioEngine(t, func(c *engine.Config) {
		c.PaymentDeadline = engine.Duration(time.Second)
		c.NameGrace = engine.Duration(time.Second)
	})
	paid := e.submit(t, "u-1", "김민수", 1000)
	cancelled := e.submit(t, "u-2", "이서연", 2000)
	expired := e.submit(t, "u-3", "박서준", 3000)
	if rep := bk.deposit(paid.DepositorName, 1000); rep.Outcome != "matched" {
		t.Fatalf("deposit: %+v", rep)
	}
	e.call(t, subjCancel, map[string]any{"order_id": cancelled.OrderID, "deposited": false}, nil, nil)
	ctx := ctxT(t)
	names, err := e.js.KeyValue(ctx, "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	held := func() []string {
		var out []string
		for _, o := range []api.SubmitOrderReply{paid, cancelled, expired} {
			key := base64.RawURLEncoding.EncodeToString([]byte(domain.NormalizeName(o.DepositorName)))
			if _, err := names.Get(ctx, key); err == nil {
				out = append(out, o.DepositorName)
			} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatal(err)
			}
		}
		return out
	}
	if h := held(); len(h) != 3 {
		t.Fatalf("names held right after the orders: %v, want all three", h)
	}
	buyers := func() (n int) {
		keys, err := names.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			if strings.HasPrefix(k, "unpaid.") {
				n++
			}
		}
		return n
	}
	if n := buyers(); n != 3 {
		t.Fatalf("%d buyers' unpaid orders right after the orders, want 3", n)
	}
	testenv.Eventually(t, 20*time.Second, "the closed orders' names and buyers released", func() bool {
		bk.scanned(time.Now())
		return len(held()) == 0 && buyers() == 0
	})
	if st := e.order(t, expired.OrderID).Status; st != "expired" {
		t.Fatalf("the unpaid order is %s, want expired", st)
	}
	if rep := bk.deposit(paid.DepositorName, 1000); rep.Outcome != "orphaned" || rep.Reason != "no_such_name" {
		t.Fatalf("deposit under a released name: %+v", rep)
	}
}

// TestUnpaidOrderLimitPerBuyer: a buyer at --max-unpaid-orders is refused
// (422 too_many_unpaid_orders) before anything is reserved: nothing is
// written, and no depositor name or expiry is left behind, with or without
// an Idempotency-Key.
func TestUnpaidOrderLimitPerBuyer(t *testing.T) {
	e := startEngine(t, func(c *engine.Config) { c.MaxUnpaidOrders = 2 })
	a := e.submit(t, "u-greedy", "BOB", 100)
	b := e.submit(t, "u-greedy", "BOB", 200)
	ctx := ctxT(t)
	names, err := e.js.KeyValue(ctx, "bankbook_depositor_names")
	if err != nil {
		t.Fatal(err)
	}
	timerStream, err := e.js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	// What is held: reserved depositor names, armed schedules.
	held := func() (nameKeys, schedules int) {
		keys, err := names.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for k := range keys.Keys() {
			if !strings.HasPrefix(k, "unpaid.") && !strings.HasPrefix(k, "deposit.") && !strings.HasPrefix(k, "meta.") {
				nameKeys++
			}
		}
		info, err := timerStream.Info(ctx, jetstream.WithSubjectFilter("bankbook.timer.sched.>"))
		if err != nil {
			t.Fatal(err)
		}
		return nameKeys, len(info.State.Subjects)
	}
	heldNames, armed := held()
	if heldNames != 2 || armed != 2 {
		t.Fatalf("two orders hold %d names and %d expiries, want 2 and 2", heldNames, armed)
	}
	before := e.lastSeq(t)
	for _, key := range []string{"", "greedy-3"} {
		var h nats.Header
		if key != "" {
			h = nats.Header{api.HeaderIdempotencyKey: []string{key}}
		}
		ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u-greedy", "buyer_name": "BOB", "amount": 300}, h)
		if ce.Status != 422 || ce.Code != "too_many_unpaid_orders" {
			t.Fatalf("third unpaid order (key %q): %+v", key, ce)
		}
		if ids := fmt.Sprint(ce.Details["order_ids"]); ids != fmt.Sprint([]string{a.OrderID, b.OrderID}) || fmt.Sprint(ce.Details["limit"]) != "2" {
			t.Fatalf("details %v", ce.Details)
		}
		if n, s := held(); n != heldNames || s != armed {
			t.Fatalf("after the refused submit (key %q): %d names and %d expiries held, want %d and %d", key, n, s, heldNames, armed)
		}
	}
	if e.lastSeq(t) != before {
		t.Fatal("the refused submit wrote an event")
	}
	e.submit(t, "u-modest", "BOB", 300) // another buyer
}

// TestFullWidthAndASCIINamesMatch (issue 7): names compare in NFKC, so a
// transfer written in ASCII pays an order whose buyer name is full-width,
// and the other way round; the depositor name handed out is the plain form.
func TestFullWidthAndASCIINamesMatch(t *testing.T) {
	e, bk := scenarioEngine(t)
	wide := e.submit(t, "u-wide", "ＢＯＢ", 12000)
	if want := "BOB" + wide.DepositorName[len(wide.DepositorName)-3:]; wide.DepositorName != want {
		t.Fatalf("depositor name %q, want the ASCII form %q", wide.DepositorName, want)
	}
	ascii := "bob" + wide.DepositorName[3:] // as a bank app writes it, lower case
	if rep := bk.deposit(ascii, 12000); rep.Outcome != "matched" || rep.OrderID != wide.OrderID {
		t.Fatalf("ASCII transfer %q for the full-width order: %+v", ascii, rep)
	}
	plain := e.submit(t, "u-plain", "Kim", 13000)
	fullWidth := ""
	for _, r := range plain.DepositorName {
		fullWidth += string(r + 0xFEE0) // Ａ = A + 0xFEE0, ０ = 0 + 0xFEE0
	}
	if rep := bk.deposit(fullWidth, 13000); rep.Outcome != "matched" || rep.OrderID != plain.OrderID {
		t.Fatalf("full-width transfer %q for %q: %+v", fullWidth, plain.DepositorName, rep)
	}
	// Characters that show nothing (a variation selector, a Hangul filler)
	// are not in the depositor name: the transfer written as it shows pays.
	hidden := e.submit(t, "u-hidden", "\ufe0f김\u3164", 14000)
	if want := "김" + hidden.DepositorName[len(hidden.DepositorName)-3:]; hidden.DepositorName != want {
		t.Fatalf("depositor name %+q, want %+q", hidden.DepositorName, want)
	}
	if rep := bk.deposit(hidden.DepositorName, 14000); rep.Outcome != "matched" || rep.OrderID != hidden.OrderID {
		t.Fatalf("transfer %q for the order named with invisible characters: %+v", hidden.DepositorName, rep)
	}
}

// TestBuyerNameWithBidiControlsIsRefused: a bidi control would make the
// name show other than it is; it is refused (400) and nothing is written.
func TestBuyerNameWithBidiControlsIsRefused(t *testing.T) {
	e := startEngine(t)
	before := e.lastSeq(t)
	for _, name := range []string{"BOB\u202e321", "\u2066김민수\u2069", "\u200f이서연"} {
		ce := e.callErr(t, subjSubmit, map[string]any{"buyer_id": "u", "buyer_name": name, "amount": 100}, nil)
		if ce.Status != 400 || ce.Code != "invalid_input" || ce.Details["field"] != "buyer_name" {
			t.Fatalf("buyer name %q: %+v", name, ce)
		}
	}
	if e.lastSeq(t) != before {
		t.Fatal("a refused submit wrote an event")
	}
}

// TestRefusedSubmitDoesNotPayTheExistingOrder (issue 7, finding 6): a
// submit refused with 409 order_exists reserves no name, so a transfer
// under the name it would have been given is an orphan, not a payment of
// the existing order.
func TestRefusedSubmitDoesNotPayTheExistingOrder(t *testing.T) {
	e, bk := scenarioEngine(t)
	const id = "checkout-42"
	var first api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "u-a", "buyer_name": "ALICE", "amount": 39000}, &first, nil)
	ce := e.callErr(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "u-b", "buyer_name": "BOB", "amount": 39000}, nil)
	if ce.Status != 409 || ce.Code != "order_exists" {
		t.Fatalf("second submit of %s: %+v", id, ce)
	}
	bobs := domain.DepositorName("BOB", domain.SuffixOrder(id, 1)[0], e.cfg.DepositorNameMax)
	if rep := bk.deposit(bobs, 39000); rep.Outcome != "orphaned" || rep.Reason != "no_such_name" {
		t.Fatalf("transfer under %q: %+v, want an orphan", bobs, rep)
	}
	var v api.OrderView
	e.call(t, subjGet, map[string]any{"order_id": id, "min_seq": e.lastSeq(t)}, &v, nil)
	if v.Status != "awaiting_deposit" || v.PaidAmount != 0 {
		t.Fatalf("order %s: %+v", id, v)
	}
}

// TestManySubmitsOfOneBuyerAtOnce: submits of one buyer racing for the
// unpaid-order count are each admitted, refused over the limit, or told to
// retry (409 conflict), never answered 500; and no more than the limit are
// admitted.
func TestManySubmitsOfOneBuyerAtOnce(t *testing.T) {
	const limit, submits = 20, 60
	e := startEngine(t, func(c *engine.Config) { c.MaxUnpaidOrders = limit })
	var (
		mu    sync.Mutex
		codes = map[string]int{}
		wg    sync.WaitGroup
	)
	for i := range submits {
		wg.Go(func() {
			_, err := e.c.Request(ctxT(t), subjSubmit, map[string]any{"buyer_id": "u-rush", "buyer_name": "RUSH", "amount": 100 + i}, nil)
			code := "ok"
			if err != nil {
				code = err.Error()
				if ce, ok := errors.AsType[*client.Error](err); ok {
					code = fmt.Sprintf("%d %s", ce.Status, ce.Code)
				}
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for code := range codes {
		if code != "ok" && code != "422 too_many_unpaid_orders" && code != "409 conflict" {
			t.Errorf("a submit answered %q (%v)", code, codes)
		}
	}
	if codes["ok"] == 0 || codes["ok"] > limit {
		t.Fatalf("%d submits admitted, want 1 to %d (%v)", codes["ok"], limit, codes)
	}
	t.Logf("answers: %v", codes)
}

package commands_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
	"github.com/bankbook/bankbook/reservations"
	"github.com/bankbook/bankbook/timers"
	"github.com/bankbook/bankbook/watermarks"
)

type fixture struct {
	h     commands.Handlers
	es    *eventstore.Store
	names *reservations.Store
	deps  commands.Deps
	marks *watermarks.Store
}

func newFixture(t *testing.T, namesNow func() time.Time) fixture {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	ctx := context.Background()
	codec := domain.Events()
	es, err := eventstore.Open(ctx, js, eventstore.Config{Upcaster: codec})
	if err != nil {
		t.Fatal(err)
	}
	names, err := reservations.Open(ctx, js, reservations.Config{Now: namesNow})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := timers.Open(ctx, js, timers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	marks, err := watermarks.Open(ctx, js, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{es: es, names: names, marks: marks,
		deps: commands.Deps{Events: es, Codec: codec, Names: names, Timers: tm, Watermarks: marks}}
	f.h = f.handler(t, commands.Config{})
	return f
}

// handler returns a new handler, as another engine instance would have, on
// the fixture's stores.
func (f fixture) handler(t *testing.T, cfg commands.Config) commands.Handlers {
	t.Helper()
	cfg.CollectAccount = domain.BankAccount{Bank: "KB", Number: "1", Holder: "bankbook"}
	h, err := commands.New(f.deps, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (f fixture) commits(t *testing.T, id string) []eventstore.Commit {
	t.Helper()
	c, err := f.es.Load(context.Background(), eventstore.Ref{Type: domain.AggregateOrder, ID: id}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRepeatedAttemptAnswersFromTheFirstAttemptsEvents(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	meta := commands.Meta{Command: "bankbook.cmd.order.submit", IdempotencyKey: "k-1"}
	req := api.SubmitOrderRequest{OrderID: "o-1", BuyerID: "u", BuyerName: "김민수", Amount: 1000}

	first, err := f.h.Orders.SubmitOrder(ctx, meta, req)
	if err != nil {
		t.Fatal(err)
	}
	// The reply was lost and the idempotency record never completed: the
	// repeat takes the claim over and runs again with the same plan (order ID).
	resumed := meta
	resumed.Resumed = true
	again, err := f.h.Orders.SubmitOrder(ctx, resumed, req)
	if err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if again != first {
		t.Fatalf("repeat answered %+v, first %+v", again, first)
	}
	if n := len(f.commits(t, "o-1")); n != 1 {
		t.Fatalf("%d commits after the repeat, want 1", n)
	}
	// Without the key, the same order ID is simply taken.
	if _, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{Command: meta.Command}, req); !errors.Is(err, domain.ErrOrderExists) {
		t.Fatalf("submit without key: %v", err)
	}
	// The same key on another command is not mistaken for its first attempt.
	no := false
	cmeta := commands.Meta{Command: "bankbook.cmd.order.cancel", IdempotencyKey: "k-1"}
	c1, err := f.h.Orders.CancelOrder(ctx, cmeta, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no})
	if err != nil || c1.Status != domain.StatusCancelled {
		t.Fatalf("cancel: %+v %v", c1, err)
	}
	cmeta.Resumed = true
	c2, err := f.h.Orders.CancelOrder(ctx, cmeta, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no})
	if err != nil || c2.Status != domain.StatusCancelled || c2.Seq != c1.Seq {
		t.Fatalf("repeated cancel: %+v %v (want the first cancel's outcome, not wrong_state)", c2, err)
	}
	if n := len(f.commits(t, "o-1")); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
}

func TestConcurrentCancelsReloadAndDecideAgain(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "o", BuyerID: "u", BuyerName: "A", Amount: 5}); err != nil {
		t.Fatal(err)
	}
	no := false
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, wrongState := 0, 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o", Deposited: &no})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, domain.ErrWrongState):
				wrongState++
			default:
				t.Errorf("cancel: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || wrongState != 15 {
		t.Fatalf("%d cancels succeeded, %d refused; want 1 and 15", ok, wrongState)
	}
	if n := len(f.commits(t, "o")); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
}

func TestStaleReservationsAreTakenOver(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := newFixture(t, clock)
	ctx := context.Background()
	cfg := f.h.Orders.Config()
	firstName := func(order string) string {
		return domain.DepositorName("박민", domain.SuffixOrder(order, 1)[0], cfg.DepositorNameMax)
	}

	// A submit that died after reserving: the reservation names an order
	// that never appeared. While it is young it is respected...
	if err := f.names.Reserve(ctx, firstName("o-young"), "ghost-1"); err != nil {
		t.Fatal(err)
	}
	rep, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "o-young", BuyerID: "u", BuyerName: "박민", Amount: 5})
	if err != nil || rep.DepositorName == firstName("o-young") {
		t.Fatalf("young orphan reservation was taken: %+v %v", rep, err)
	}
	// ...and once older than OrphanReservationAge it is taken over.
	now = time.Now().Add(-2 * cfg.OrphanReservationAge)
	if err := f.names.Reserve(ctx, firstName("o-old"), "ghost-2"); err != nil {
		t.Fatal(err)
	}
	now = time.Now()
	rep, err = f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "o-old", BuyerID: "u", BuyerName: "박민", Amount: 5})
	if err != nil || rep.DepositorName != firstName("o-old") {
		t.Fatalf("old orphan reservation not taken over: %+v %v", rep, err)
	}
	if h, _, err := f.names.Holder(ctx, rep.DepositorName); err != nil || h.OrderID != "o-old" {
		t.Fatalf("holder after takeover: %+v %v", h, err)
	}
	// A reservation left behind by a closed order (its release failed) is
	// taken over once the grace is over and the bank scan has covered it
	// (no grace here), not before: a transfer made within the grace and
	// scanned later would pay the order that took the name over.
	no := false
	if _, err := f.h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-old", Deposited: &no}); err != nil {
		t.Fatal(err)
	}
	if err := f.names.Reserve(ctx, rep.DepositorName, "o-old"); err != nil { // as if the release had failed
		t.Fatal(err)
	}
	// Find two order IDs whose first choice is that name.
	var ids []string
	for i := 0; i < 1_000_000 && len(ids) < 2; i++ {
		if cand := fmt.Sprintf("probe-%d", i); firstName(cand) == rep.DepositorName {
			ids = append(ids, cand)
		}
	}
	if len(ids) < 2 {
		t.Fatal("no two probe order IDs try that name first")
	}
	id := ids[1]
	early, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: ids[0], BuyerID: "u2", BuyerName: "박민", Amount: 5})
	if err == nil && early.DepositorName == rep.DepositorName {
		t.Fatalf("name left by a cancelled order taken over before the scan covered its grace: %+v", early)
	}
	if err := f.marks.Advance(ctx, "1", time.Now()); err != nil {
		t.Fatal(err)
	}
	rep2, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: id, BuyerID: "u", BuyerName: "박민", Amount: 5})
	if err != nil || rep2.DepositorName != rep.DepositorName {
		t.Fatalf("name left by a cancelled order not taken over once the scan covered its grace: %+v %v", rep2, err)
	}
}

// TestStaleCachesAcrossInstances runs two handlers, as two engine instances
// would be, over one event store: each caches what it has seen, and neither
// acts on, nor refuses because of, a state the other has changed.
func TestStaleCachesAcrossInstances(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	other := f.handler(t, commands.Config{})
	no := false
	cancel := api.CancelOrderRequest{OrderID: "shared", Deposited: &no}

	// A submits and caches "awaiting deposit".
	if _, err := f.h.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "shared", BuyerID: "u", BuyerName: "정", Amount: 9}); err != nil {
		t.Fatal(err)
	}
	// B has never seen the order: its empty state would refuse the cancel as
	// "not found", so it reads the order before refusing, and cancels it.
	if rep, err := other.Orders.CancelOrder(ctx, commands.Meta{}, cancel); err != nil || rep.Status != domain.StatusCancelled {
		t.Fatalf("cancel on an instance that never saw the order: %+v %v", rep, err)
	}
	// A's cache is now stale; its append conflicts, it catches up, and
	// refuses for the real reason.
	if _, err := f.h.Orders.CancelOrder(ctx, commands.Meta{}, cancel); !errors.Is(err, domain.ErrWrongState) {
		t.Fatalf("cancel on a stale cache: %v, want wrong_state", err)
	}
	if n := len(f.commits(t, "shared")); n != 2 {
		t.Fatalf("%d commits, want 2", n)
	}
	// B submitting an order ID it has not seen but A created is refused.
	if _, err := other.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "shared", BuyerID: "u", BuyerName: "정", Amount: 9}); !errors.Is(err, domain.ErrOrderExists) {
		t.Fatalf("submit of an existing ID on another instance: %v", err)
	}
}

func TestResumedSubmitWithoutEarlierEventsSubmits(t *testing.T) {
	f := newFixture(t, nil)
	// The first attempt died before appending anything.
	meta := commands.Meta{Command: "bankbook.cmd.order.submit", IdempotencyKey: "k-died", Resumed: true}
	rep, err := f.h.Orders.SubmitOrder(context.Background(), meta, api.SubmitOrderRequest{OrderID: "o-died", BuyerID: "u", BuyerName: "한", Amount: 3})
	if err != nil || rep.Status != domain.StatusAwaitingDeposit {
		t.Fatalf("resumed submit: %+v %v", rep, err)
	}
	commits := f.commits(t, "o-died")
	if len(commits) != 1 || commits[0].Events[0].IdempotencyKey != "k-died" {
		t.Fatalf("commits %+v", commits)
	}
}

// TestAttemptOnAnotherInstanceFindsTheFirstAttempt: the first attempt's
// commit exists (its instance appended, then its reply was lost), and a repeat
// runs on an instance that has never seen the order and whose claim is not
// even marked resumed. Its optimistic append conflicts; the catch-up read
// finds the commit by key and answers with it instead of "order exists".
func TestAttemptOnAnotherInstanceFindsTheFirstAttempt(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	other := f.handler(t, commands.Config{})
	meta := commands.Meta{Command: "bankbook.cmd.order.submit", IdempotencyKey: "k-x"}
	req := api.SubmitOrderRequest{OrderID: "o-x", BuyerID: "u", BuyerName: "윤", Amount: 10}
	first, err := f.h.Orders.SubmitOrder(ctx, meta, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := other.Orders.SubmitOrder(ctx, meta, req)
	if err != nil || again != first {
		t.Fatalf("repeat on another instance: %+v %v, want %+v", again, err, first)
	}
	if n := len(f.commits(t, "o-x")); n != 1 {
		t.Fatalf("%d commits, want 1", n)
	}
}

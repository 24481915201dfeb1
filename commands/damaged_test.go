package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// damagedFixture is the handlers on a real event stream, with a connection
// that may publish anything to it (as an attacker, or a broken writer, once
// could).
type damagedFixture struct {
	js jetstream.JetStream
	es *eventstore.Store
}

func newDamagedFixture(t *testing.T) *damagedFixture {
	t.Helper()
	srv := testenv.Start(t, "")
	_, js := srv.Connect(t)
	codec := domain.Events()
	es, err := eventstore.Open(context.Background(), js, eventstore.Config{Upcaster: codec, Check: func(e eventstore.Envelope) error {
		_, err := codec.Decode(e.EventType, e.SchemaVersion, e.Data)
		return err
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &damagedFixture{js: js, es: es}
}

func (f *damagedFixture) publish(t *testing.T, subject string, data []byte) eventstore.Seq {
	t.Helper()
	ack, err := f.js.Publish(context.Background(), subject, data)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Seq(ack.Sequence)
}

// refusedAt checks that err refuses the command because of the damaged
// commit at seq: ErrAggregateDamaged, and the 409 aggregate_damaged the API
// answers, with the sequence in its details.
func refusedAt(t *testing.T, err error, id string, seq eventstore.Seq) {
	t.Helper()
	var de *commands.DamagedError
	if !errors.Is(err, commands.ErrAggregateDamaged) || !errors.As(err, &de) || de.Seq != seq || de.Ref.ID != id {
		t.Fatalf("got %v, want the aggregate %s refused for the damaged commit at seq %d", err, id, seq)
	}
	var domainErr *domain.Error
	if !errors.As(err, &domainErr) || domainErr.Kind != domain.KindConflict || domainErr.Code != api.CodeAggregateDamaged ||
		domainErr.Details["seq"] != uint64(seq) || domainErr.Details["aggregate_id"] != id {
		t.Fatalf("as a domain error: %+v", domainErr)
	}
}

// A message on an order's subject that is not a commit, or a commit with an
// event type this engine does not know, refuses that order's commands with
// aggregate_damaged naming the sequence (not a 500, not a timeout), while
// other orders work. Once an operator sets it aside, the order works again,
// on this instance and on a cold one.
func TestDamagedAggregateIsRefusedUntilSetAside(t *testing.T) {
	f := newDamagedFixture(t)
	ctx := context.Background()
	u := newUnit(t, f.es)
	no := false

	u.submit(t, "o-1", 1000)
	garbage := f.publish(t, "bankbook.evt.order.o-1", []byte("junk!"))
	poison := f.publish(t, "bankbook.evt.order.poison", []byte("{}"))
	u.submit(t, "o-3", 3000)
	flagged, err := f.es.Append(ctx, eventstore.Ref{Type: domain.AggregateOrder, ID: "o-3"}, lastSeq(t, u, "o-3"), 1, "c-flagged",
		[]eventstore.Envelope{{EventID: "e-flagged", EventType: "order.flagged", SchemaVersion: 1, Data: json.RawMessage(`{"order_id":"o-3"}`)}})
	if err != nil {
		t.Fatal(err)
	}

	// The damaged orders are refused: from a warm cache (the append finds
	// the damage) and from a cold one (the load does).
	cold := newUnit(t, f.es)
	for _, h := range []*unit{u, cold} {
		_, err := h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-1", Deposited: &no})
		refusedAt(t, err, "o-1", garbage)
		_, err = h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-3", Deposited: &no})
		refusedAt(t, err, "o-3", flagged.Seq)
	}
	_, err = u.Orders.SubmitOrder(ctx, commands.Meta{}, api.SubmitOrderRequest{OrderID: "poison", BuyerID: "b", BuyerName: "최", Amount: 7})
	refusedAt(t, err, "poison", poison)

	// Other orders work.
	u.submit(t, "o-2", 2000)
	if _, err := u.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "o-2", Deposited: &no}); err != nil {
		t.Fatalf("cancel o-2: %v", err)
	}

	// Only damaged commits can be set aside.
	if _, _, err := f.es.SetAside(ctx, lastSeq(t, u, "o-2"), "looks odd", "operator"); !errors.Is(err, eventstore.ErrNotDamaged) {
		t.Fatalf("set aside a valid commit: %v", err)
	}
	if _, _, err := f.es.SetAside(ctx, 999, "nothing there", "operator"); !errors.Is(err, eventstore.ErrNoMessage) {
		t.Fatalf("set aside beyond the stream: %v", err)
	}
	if _, _, err := f.es.SetAside(ctx, garbage, " ", "operator"); !errors.Is(err, eventstore.ErrInvalid) {
		t.Fatalf("set aside without a reason: %v", err)
	}
	for _, seq := range []eventstore.Seq{garbage, poison, flagged.Seq} {
		rec, created, err := f.es.SetAside(ctx, seq, "forged before authentication", "operator")
		if err != nil || !created || rec.Seq != seq || rec.Actor != "operator" || rec.Problem == "" {
			t.Fatalf("set aside seq %d: %+v, created %v, %v", seq, rec, created, err)
		}
	}
	if rec, created, err := f.es.SetAside(ctx, garbage, "again", "someone else"); err != nil || created || rec.Reason != "forged before authentication" {
		t.Fatalf("second set-aside: %+v, created %v, %v", rec, created, err)
	}
	list, err := f.es.SetAsides(ctx)
	if err != nil || len(list) != 3 || list[0].Seq != garbage || list[0].PrevSeq == 0 || list[1].Seq != poison || list[1].PrevSeq != 0 ||
		list[2].Seq != flagged.Seq || list[2].PrevSeq != flagged.PrevSeq {
		t.Fatalf("set-aside records %+v, %v", list, err)
	}

	// Everything works again, warm and cold, and new commits chain past
	// the set-aside ones.
	for i, h := range []*unit{u, cold} {
		id := []string{"o-1", "o-3"}[i]
		rep, err := h.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: id, Deposited: &no})
		if err != nil || rep.Status != domain.StatusCancelled {
			t.Fatalf("cancel %s after the set-aside: %+v, %v", id, rep, err)
		}
	}
	u.submit(t, "poison", 7)
	fresh := newUnit(t, f.es)
	for _, id := range []string{"o-1", "o-3"} {
		if _, err := fresh.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: id, Deposited: &no}); !errors.Is(err, domain.ErrWrongState) {
			t.Fatalf("cancel %s again on a cold instance: %v, want wrong_state (it is cancelled)", id, err)
		}
	}
	if rep, err := fresh.Orders.CancelOrder(ctx, commands.Meta{}, api.CancelOrderRequest{OrderID: "poison", Deposited: &no}); err != nil || rep.Status != domain.StatusCancelled {
		t.Fatalf("cancel poison on a cold instance: %+v, %v", rep, err)
	}
}

func lastSeq(t *testing.T, u *unit, id string) eventstore.Seq {
	t.Helper()
	commits := u.commits(t, domain.AggregateOrder, id)
	return commits[len(commits)-1].Seq
}

// A deposit for an order whose history holds a damaged commit is kept as an
// orphan naming the order (order_gone), not an error that would stop the
// bank scan behind it.
func TestDepositForADamagedOrderIsKeptAsAnOrphan(t *testing.T) {
	f := newDamagedFixture(t)
	u := newUnit(t, f.es)
	sub := u.submit(t, "o-d", 4000)
	f.publish(t, "bankbook.evt.order.o-d", []byte("junk!"))
	rep := u.deposit(t, "t-d", sub.DepositorName, 4000)
	if rep.Outcome != domain.OutcomeOrphaned || rep.OrderID != "o-d" {
		t.Fatalf("deposit: %+v, want an orphan naming o-d", rep)
	}
}

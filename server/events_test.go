package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Five bytes of garbage on bankbook.evt.order.poison, and a commit with an
// event type this version does not know on an existing order, used to
// freeze every read model and make new orders 404 for good. Now: other
// orders submit and are read back (min_seq), the damaged orders are refused
// with 409 aggregate_damaged naming the sequence, /readyz and the dead
// letters name each sequence, and once an operator sets them aside (with a
// recorded, listed reason) everything continues, the damaged orders too.
func TestDamagedCommitsDoNotStopTheEngine(t *testing.T) {
	e := startEngine(t)
	js, err := jetstream.New(e.engineConn(t))
	if err != nil {
		t.Fatal(err)
	}
	var victim api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"order_id": "o-victim", "buyer_id": "u-v", "buyer_name": "김민수", "amount": 1000}, &victim, nil)

	ack, err := js.Publish(ctxT(t), "bankbook.evt.order.poison", []byte("junk!"))
	if err != nil {
		t.Fatal(err)
	}
	garbage := ack.Sequence
	// A commit as a newer engine would write it, with an event type this
	// one does not know, on the victim's chain.
	ref := eventstore.Ref{Type: "order", ID: "o-victim"}
	stream, err := js.Stream(ctxT(t), e.Events.Config().Stream)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := stream.GetMsg(ctxT(t), uint64(victim.Seq))
	if err != nil {
		t.Fatal(err)
	}
	c, err := eventstore.NewCommit(ref, eventstore.Seq(victim.Seq), eventstore.HashOf(prev.Data), 1, "c-flagged", []eventstore.Envelope{{
		EventID: "e-flagged", EventType: "order.flagged", SchemaVersion: 1, OccurredAt: time.Now().UTC(),
		Data: json.RawMessage(`{"order_id":"o-victim","note":"from a newer engine"}`),
	}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(c)
	ack, err = js.Publish(ctxT(t), "bankbook.evt.order.o-victim", body)
	if err != nil {
		t.Fatal(err)
	}
	flagged := ack.Sequence

	// Other orders submit and are read back at their seq.
	readBack := func(id string) api.OrderView {
		t.Helper()
		var sub api.SubmitOrderReply
		e.call(t, subjSubmit, map[string]any{"order_id": id, "buyer_id": "u-" + id, "buyer_name": "이영희", "amount": 2000}, &sub, nil)
		var got api.OrderView
		e.call(t, subjGet, map[string]any{"order_id": id, "min_seq": sub.Seq}, &got, nil)
		if got.OrderID != id || got.Status != "awaiting_deposit" {
			t.Fatalf("order %s = %+v", id, got)
		}
		return got
	}
	readBack("o-ok-1")

	// The damaged orders are refused, naming the sequence.
	ce := e.callErr(t, subjCancel, map[string]any{"order_id": "o-victim", "deposited": false}, nil)
	if ce.Status != 409 || ce.Code != api.CodeAggregateDamaged || ce.Details["seq"] != float64(flagged) || ce.Details["aggregate_id"] != "o-victim" {
		t.Fatalf("cancel of the damaged order: %v %+v", ce, ce.Details)
	}
	ce = e.callErr(t, subjSubmit, map[string]any{"order_id": "poison", "buyer_id": "u-p", "buyer_name": "최", "amount": 7}, nil)
	if ce.Status != 409 || ce.Code != api.CodeAggregateDamaged || ce.Details["seq"] != float64(garbage) {
		t.Fatalf("submit on the garbage's subject: %v %+v", ce, ce.Details)
	}

	// /readyz names both sequences; queries keep being answered.
	testenv.CheckFor(t, 20*time.Second, func() error {
		code, rep := e.readyz(t)
		p, _ := part(rep, "projections")
		if code != 503 || p.Ready || !strings.Contains(p.Reason, fmt.Sprintf("seq %d on bankbook.evt.order.poison", garbage)) ||
			!strings.Contains(p.Reason, fmt.Sprintf("seq %d on bankbook.evt.order.o-victim", flagged)) {
			return fmt.Errorf("/readyz %d, projections %+v", code, p)
		}
		if rm, _ := part(rep, "readmodels"); !rm.Ready {
			return fmt.Errorf("read models not ready: %+v", rm)
		}
		return nil
	})
	// The dead letters name them.
	testenv.CheckFor(t, 20*time.Second, func() error {
		var list api.DeadLettersReply
		e.call(t, "bankbook.q.deadletter.list", map[string]any{"part": "projections"}, &list, nil)
		var seqs []uint64
		for _, dl := range list.DeadLetters {
			seqs = append(seqs, dl.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint([]uint64{garbage, flagged}) {
			return fmt.Errorf("projections dead letters at %v", seqs)
		}
		return nil
	})
	// Redriving one says what to do instead.
	{
		var list api.DeadLettersReply
		e.call(t, "bankbook.q.deadletter.list", map[string]any{"part": "projections"}, &list, nil)
		ce := e.callErr(t, "bankbook.cmd.deadletter.redrive", map[string]any{"id": list.DeadLetters[0].ID}, nil)
		if ce.Status != 409 || !strings.Contains(ce.Message, "set-aside") {
			t.Errorf("redrive of a skipped commit: %+v, want 409 pointing at set-aside", ce)
		}
	}
	if _, metrics := e.get(t, "/metrics"); !strings.Contains(metrics, "bankbook_dead_letters ") || strings.Contains(metrics, "bankbook_dead_letters 0") {
		t.Error("/metrics does not count the dead letters")
	}
	readBack("o-ok-2")

	// Only damaged commits are set aside, and only with a reason.
	if ce := e.callErr(t, "bankbook.cmd.event.set_aside", map[string]any{"seq": victim.Seq, "reason": "looks odd"}, nil); ce.Status != 409 || ce.Code != api.CodeNotDamaged {
		t.Fatalf("set aside a valid commit: %v", ce)
	}
	if ce := e.callErr(t, "bankbook.cmd.event.set_aside", map[string]any{"seq": 1_000_000, "reason": "nothing there"}, nil); ce.Status != 404 || ce.Code != api.CodeEventNotFound {
		t.Fatalf("set aside beyond the stream: %v", ce)
	}
	if ce := e.callErr(t, "bankbook.cmd.event.set_aside", map[string]any{"seq": garbage}, nil); ce.Status != 400 {
		t.Fatalf("set aside without a reason: %v", ce)
	}
	for _, seq := range []uint64{garbage, flagged} {
		var rep api.SetAsideReply
		e.call(t, "bankbook.cmd.event.set_aside", map[string]any{"seq": seq, "reason": "forged before authentication"}, &rep, nil)
		if rep.Status != api.StatusSetAside || uint64(rep.SetAside.Seq) != seq || rep.SetAside.Reason != "forged before authentication" || rep.SetAside.At == "" {
			t.Fatalf("set aside seq %d: %+v", seq, rep)
		}
	}
	var again api.SetAsideReply
	e.call(t, "bankbook.cmd.event.set_aside", map[string]any{"seq": garbage, "reason": "again"}, &again, nil)
	if again.Status != api.StatusAlreadySetAside || again.SetAside.Reason != "forged before authentication" {
		t.Fatalf("second set-aside: %+v", again)
	}
	var listed api.SetAsidesReply
	e.call(t, "bankbook.q.event.set_asides", map[string]any{}, &listed, nil)
	if len(listed.SetAsides) != 2 || uint64(listed.SetAsides[0].Seq) != garbage || listed.SetAsides[0].Subject != "bankbook.evt.order.poison" ||
		listed.SetAsides[0].Actor == "" || uint64(listed.SetAsides[1].Seq) != flagged || !strings.Contains(listed.SetAsides[1].Problem, "order.flagged") {
		t.Fatalf("set-aside records %+v", listed.SetAsides)
	}

	// Everything continues: readiness clears, the dead letters are
	// resolved, and the damaged orders work again.
	testenv.CheckFor(t, 20*time.Second, func() error {
		code, rep := e.readyz(t)
		if code != 200 {
			return fmt.Errorf("/readyz %d, not ready %v", code, rep.NotReady)
		}
		var list api.DeadLettersReply
		e.call(t, "bankbook.q.deadletter.list", map[string]any{}, &list, nil)
		if len(list.DeadLetters) != 0 {
			return fmt.Errorf("dead letters %+v", list.DeadLetters)
		}
		return nil
	})
	var cancel api.CancelOrderReply
	e.call(t, subjCancel, map[string]any{"order_id": "o-victim", "deposited": false}, &cancel, nil)
	var got api.OrderView
	e.call(t, subjGet, map[string]any{"order_id": "o-victim", "min_seq": cancel.Seq}, &got, nil)
	if cancel.Status != "cancelled" || got.Status != "cancelled" {
		t.Fatalf("o-victim after the set-aside: cancel %+v, view %+v", cancel, got)
	}
	readBack("poison")
	readBack("o-ok-3")
}

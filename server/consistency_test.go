package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/auth"
	"github.com/bankbook/bankbook/bankfeed"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/domain"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/eventstore"
	"github.com/bankbook/bankbook/internal/testenv"
)

// Two instances share one queue group, so a query may land on either; with
// the consistency token every query sees the command before it, whichever
// instance wrote and whichever answers.
func TestReadYourWritesOnEveryInstance(t *testing.T) {
	dir := t.TempDir()
	a := startSysNode(t, sysConfig(filepath.Join(dir, "a", "data"), newSimBank(t, bankfeed.SimOptions{}), time.Minute))
	cfgB := sysConfig(filepath.Join(dir, "b", "data"), newSimBank(t, bankfeed.SimOptions{}), time.Minute)
	joinEngine(&cfgB, a.Engine)
	b := startSysNode(t, cfgB)

	// Separate connections for writing and reading: neither instance's
	// "own writes" wait can help the reader.
	writer, reader := connect(t, a.Engine), connectAs(t, b.ClientURL(), a.SeedFile(auth.Operator))
	for i := range 60 {
		var sub api.SubmitOrderReply
		if _, err := writer.Call(ctxT(t), subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u-%d", i), "buyer_name": "정하늘", "amount": 1000 + i}, &sub, nil); err != nil {
			t.Fatal(err)
		}
		var cancel api.CancelOrderReply
		if _, err := writer.Call(ctxT(t), subjCancel, map[string]any{"order_id": sub.OrderID, "deposited": false}, &cancel, nil); err != nil {
			t.Fatal(err)
		}
		var got api.OrderView
		if _, err := reader.Call(ctxT(t), subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": cancel.Seq}, &got, nil); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
		if got.Status != "cancelled" || got.Seq < cancel.Seq {
			t.Fatalf("order %d read after seq %d: status %s at seq %d", i, cancel.Seq, got.Status, got.Seq)
		}
	}
	// Both instances answered queries.
	for id, n := range served(t, a.nc, 2, api.OrderGet.Name) {
		if n == 0 {
			t.Errorf("instance %s answered no order.get: the test did not exercise it", id)
		}
	}
}

// appendMisfit appends an event the read models cannot apply (a deposit
// reopened that was never recorded): they stop at it, and its seq.
func appendMisfit(t *testing.T, e *testEngine) eventstore.Seq {
	t.Helper()
	data, err := json.Marshal(domain.DepositReopened{DepositID: "dep_never_recorded", Amount: 1000, PayoutID: "po_x", Reason: "test", ReopenedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	env := eventstore.Envelope{EventID: "ev-misfit", EventType: domain.DepositReopened{}.EventType(), SchemaVersion: 1,
		OccurredAt: time.Now().UTC(), Actor: "test", CorrelationID: "c", Data: data}
	misfit, err := e.Events.Append(context.Background(), eventstore.Ref{Type: domain.AggregateDeposit, ID: "dep_never_recorded"}, 0, 0, "misfit", []eventstore.Envelope{env})
	if err != nil {
		t.Fatal(err)
	}
	return misfit.Seq
}

// caughtUpAndBehind starts an engine whose read models take an order
// (returned) and catch up, and then stop at an event they cannot apply
// (appendMisfit), and a second instance joining it, whose read models stop
// at that event before they reach the stream's end at its start: it never
// catches up. firstID is the first instance's service ID.
func caughtUpAndBehind(t *testing.T) (first, second *testEngine, order api.SubmitOrderReply, firstID string) {
	t.Helper()
	first = startEngine(t)
	first.call(t, subjSubmit, map[string]any{"buyer_id": "u-first", "buyer_name": "정하늘", "amount": 1000}, &order, nil)
	var got api.OrderView
	first.call(t, subjGet, map[string]any{"order_id": order.OrderID}, &got, nil) // caught up
	for id := range served(t, first.nc, 1, api.OrderGet.Name) {
		firstID = id
	}
	misfit := appendMisfit(t, first)
	second = startEngine(t, func(c *engine.Config) {
		joinEngine(c, first.Engine)
		c.DataDir = filepath.Join(t.TempDir(), "second")
	})
	testenv.CheckFor(t, 20*time.Second, func() error {
		for _, e := range []*testEngine{first, second} {
			if ready, why := e.Runner.Ready(); ready || !strings.Contains(why, "never recorded") || e.Runner.Checkpoint() >= misfit {
				return fmt.Errorf("read models ready %v (%s) at seq %d, want both instances' stopped short of the misfit at %d", ready, why, e.Runner.Checkpoint(), misfit)
			}
		}
		return nil
	})
	return first, second, order, firstID
}

// An instance whose read models have not caught up since it started (a
// new instance, or one rebuilding a projection after an upgrade) passes
// its read-model queries to an instance that has, so a deployment's clients
// do not see one instance's catch-up. Here the second instance's read
// models stop at an event they cannot apply before they reach the stream's
// end at its start, so it never catches up, and every query still answers.
func TestAnInstanceCatchingUpPassesQueriesToOneThatHas(t *testing.T) {
	a, b, sub, _ := caughtUpAndBehind(t)
	const n = 30
	for i := range n {
		c := a.c
		if i%2 == 1 {
			c = b.c
		}
		var got api.OrderView
		if _, err := c.Call(ctxT(t), subjGet, map[string]any{"order_id": sub.OrderID}, &got, nil); err != nil || got.OrderID != sub.OrderID {
			t.Fatalf("order.get %d: %+v, %v; want the order", i, got, err)
		}
	}
	// A query b took counts once at b and once at a, which answered it.
	total := 0
	for _, n := range served(t, a.nc, 2, api.OrderGet.Name) {
		total += n
	}
	if total <= n {
		t.Errorf("the instances counted %d order.get for %d sent: none went through the instance catching up, the test did not exercise it", total, n)
	}
}

// An instance catching up with no other that has caught up answers a
// read-model query itself: 503 unavailable once its wait is over.
func TestAnInstanceCatchingUpAloneAnswersUnavailable(t *testing.T) {
	e := startEngine(t)
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-alone", "buyer_name": "정하늘", "amount": 1000}, &sub, nil)
	appendMisfit(t, e)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(e.cfg.DataDir, "readmodels.db")); err != nil {
		t.Fatal(err)
	}
	e = startEngineWith(t, e.cfg)
	ce := e.callErr(t, subjGet, map[string]any{"order_id": sub.OrderID}, nil)
	if ce.Status != 503 || ce.Code != api.CodeUnavailable || !strings.Contains(ce.Message, "not caught up") {
		t.Fatalf("order.get on read models that never caught up, alone: %+v, want 503 unavailable saying they are not caught up", ce)
	}
}

// Read models that stopped (here on an event that does not fit them, and
// again after each restart; a full disk does the same) and so apply
// nothing during a query's wait do not answer a query without min_seq as if
// this instance's acknowledged writes did not exist: it is told, with 503
// unavailable, not 404 (the cause, which may name files, is for /readyz).
func TestQueriesOfStoppedReadModelsSayTheyStopped(t *testing.T) {
	e := startEngine(t)
	misfit := appendMisfit(t, e)
	testenv.CheckFor(t, 20*time.Second, func() error {
		if ready, why := e.Runner.Ready(); ready || !strings.Contains(why, "never recorded") {
			return fmt.Errorf("read models ready %v (%s), want stopped on the misfit", ready, why)
		}
		return nil
	})
	var sub api.SubmitOrderReply
	e.call(t, subjSubmit, map[string]any{"buyer_id": "u-stop", "buyer_name": "정하늘", "amount": 1000}, &sub, nil)
	ce := e.callErr(t, subjGet, map[string]any{"order_id": sub.OrderID}, nil)
	if ce.Status != 503 || ce.Code != api.CodeUnavailable || !strings.Contains(ce.Message, "stopped") || strings.Contains(ce.Message, "never recorded") {
		t.Fatalf("order.get of an acknowledged order on stopped read models: %+v, want 503 unavailable saying they stopped (the cause is for /readyz)", ce)
	}
	if applied, _ := ce.Details["applied_seq"].(float64); eventstore.Seq(applied) >= misfit {
		t.Errorf("applied_seq %v, want below the misfit's seq %d", ce.Details["applied_seq"], misfit)
	}
	// With min_seq, as before: not caught up.
	if ce := e.callErr(t, subjGet, map[string]any{"order_id": sub.OrderID, "min_seq": sub.Seq}, nil); ce.Code != api.CodeNotCaughtUp {
		t.Errorf("with min_seq: %+v, want not_caught_up", ce)
	}
}

// A query without min_seq that an instance catching up passes on still
// waits for the commits that instance appended, as a query it answered
// itself would: here the instance that takes it on has stopped short of
// them, so it is 503 unavailable, not a 404 for the order the client was
// just told was taken.
func TestAPassedOnQueryWaitsForThePassingInstancesWrites(t *testing.T) {
	b, _, _, bID := caughtUpAndBehind(t)
	count := func(endpoint string) (aN, bN int) {
		for id, n := range served(t, b.nc, 2, endpoint) {
			if id == bID {
				bN = n
			} else {
				aN = n
			}
		}
		return aN, bN
	}
	// An order a took (the queue group picks the instance).
	var sub api.SubmitOrderReply
	for i := 0; ; i++ {
		if i == 40 {
			t.Fatal("no submit landed on the instance catching up")
		}
		before, _ := count(api.OrderSubmit.Name)
		b.call(t, subjSubmit, map[string]any{"buyer_id": fmt.Sprintf("u-own-%d", i), "buyer_name": "정하늘", "amount": 1000}, &sub, nil)
		if after, _ := count(api.OrderSubmit.Name); after > before {
			break
		}
	}
	// A query of it that a took and passed on to b.
	for i := 0; ; i++ {
		if i == 40 {
			t.Fatal("no order.get landed on the instance catching up")
		}
		aBefore, _ := count(api.OrderGet.Name)
		_, err := b.c.Request(ctxT(t), subjGet, map[string]any{"order_id": sub.OrderID}, nil)
		if aAfter, _ := count(api.OrderGet.Name); aAfter == aBefore {
			continue // b took it itself: a's writes are not its own
		}
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 503 || ce.Code != api.CodeUnavailable {
			t.Fatalf("order.get, passed on by the instance that took the order, of read models stopped short of it: %v, want 503 unavailable", err)
		}
		return
	}
}

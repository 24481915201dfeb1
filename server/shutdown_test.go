package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/projections"
)

// TestStopDrainsInFlightCommands sends a burst of submits and stops the
// engine while they are being handled: every request the engine received is
// answered, and every answered order is in the log.
func TestStopDrainsInFlightCommands(t *testing.T) {
	e := startEngine(t)
	const n = 200
	replies := make([]*nats.Msg, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	started := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := nats.NewMsg(subjSubmit)
			msg.Data = fmt.Appendf(nil, `{"buyer_id":"u%d","buyer_name":"drain%d","amount":100}`, i, i)
			started <- struct{}{}
			replies[i], errs[i] = e.nc.RequestMsg(msg, 15*time.Second)
		}()
	}
	for range n {
		<-started
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // let the first requests reach the handlers
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	wg.Wait()

	answered := 0
	var acked []api.SubmitOrderReply
	for i := range n {
		if errs[i] != nil {
			// Requests that reached NATS after the service unsubscribed have
			// no responder; they were never received, so never acknowledged.
			if errs[i] != nats.ErrNoResponders {
				t.Errorf("request %d: %v (received but not answered)", i, errs[i])
			}
			continue
		}
		switch code := replies[i].Header.Get("Nats-Service-Error-Code"); code {
		case "":
		case "503": // arrived after the drain: refused, not acknowledged
			continue
		default:
			t.Errorf("request %d answered %s during shutdown: %s", i, code, replies[i].Data)
			continue
		}
		answered++
		var rep api.SubmitOrderReply
		if err := json.Unmarshal(replies[i].Data, &rep); err != nil {
			t.Fatal(err)
		}
		acked = append(acked, rep)
	}
	if answered == 0 {
		t.Fatal("no request was answered before the engine stopped")
	}
	t.Logf("%d of %d submits answered while stopping", answered, n)

	// Nothing acknowledged is lost: a new engine on the same data finds
	// every acknowledged order.
	again := startEngine(t, func(c *engine.Config) { c.DataDir = e.cfg.DataDir })
	for _, rep := range acked {
		var view projections.OrderView
		again.call(t, subjGet, map[string]string{"order_id": rep.OrderID}, &view, nil)
		if view.DepositorName != rep.DepositorName {
			t.Fatalf("order %s after restart: %+v", rep.OrderID, view)
		}
	}
}

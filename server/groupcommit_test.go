package server_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bankbook/bankbook/api"
	"github.com/bankbook/bankbook/client"
	"github.com/bankbook/bankbook/commands"
	"github.com/bankbook/bankbook/engine"
	"github.com/bankbook/bankbook/internal/testenv"
)

// With group commit on (under safe: the server does not sync per write, the
// engine syncs its file system once for every write waiting), concurrent
// keyed submits (each sent twice at once) still make exactly one order per
// key, with its own depositor name and expiry timer, and the writes really
// shared syncs.
func TestGroupCommitKeepsEverySubmitsAnswer(t *testing.T) {
	testenv.RequireOnLinux(t, runtime.GOOS == "linux", "syncfs")
	e := startEngine(t, func(c *engine.Config) { c.GroupCommit, c.Durability = true, "safe" })
	const keys = 96
	type answer struct {
		rep api.SubmitOrderReply
		err error
	}
	answers := make([][2]answer, keys)
	var wg sync.WaitGroup
	for i := range keys {
		// Four buyer names among all: their depositor names must differ.
		req := map[string]any{"buyer_id": fmt.Sprintf("gc-u-%d", i), "buyer_name": []string{"김민수", "이영희", "박서준", "최유진"}[i%4], "amount": 10000 + i}
		for j := range 2 {
			wg.Go(func() {
				var rep api.SubmitOrderReply
				_, err := e.c.Call(ctxT(t), subjSubmit, req, &rep, client.WithIdempotencyKey(fmt.Sprintf("gc-key-%d", i)))
				answers[i][j] = answer{rep, err}
			})
		}
	}
	wg.Wait()

	ids := make([]string, keys)   // each key's order
	orders := map[string]string{} // order ID → depositor name
	names := map[string]string{}  // depositor name → order ID
	for i, pair := range answers {
		id := ""
		for _, a := range pair {
			var ce *client.Error
			if errors.As(a.err, &ce) && ce.Status == 409 && ce.Code == "in_progress" {
				continue // the repeat met the first attempt still running
			}
			if a.err != nil {
				t.Fatalf("key %d: %v", i, a.err)
			}
			if id != "" && a.rep.OrderID != id {
				t.Fatalf("key %d answered orders %s and %s", i, id, a.rep.OrderID)
			}
			id = a.rep.OrderID
			if other, ok := names[a.rep.DepositorName]; ok && other != id {
				t.Fatalf("depositor name %q given to %s and %s", a.rep.DepositorName, other, id)
			}
			names[a.rep.DepositorName], orders[id] = id, a.rep.DepositorName
		}
		if id == "" {
			t.Fatalf("key %d: both attempts answered in_progress", i)
		}
		ids[i] = id
	}
	if len(orders) != keys {
		t.Fatalf("%d keys made %d orders", keys, len(orders))
	}
	if w := e.written(t); w != keys {
		t.Fatalf("%d keyed submits appended %d commits, want %d", keys, w, keys)
	}

	// Every order has its expiry armed.
	ctx := context.Background()
	timers, err := e.js.Stream(ctx, "BANKBOOK_TIMERS")
	if err != nil {
		t.Fatal(err)
	}
	for id := range orders {
		if _, err := timers.GetLastMsgForSubject(ctx, "bankbook.timer.sched."+commands.TimerExpireOrder+"."+id); err != nil {
			t.Fatalf("order %s has no expiry timer: %v", id, err)
		}
	}

	// The writes went through group commit, and the syncs were shared.
	_, metrics := e.get(t, "/metrics")
	counts := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		if rest, ok := strings.CutPrefix(line, "bankbook_group_commit_total{"); ok {
			labels, value, _ := strings.Cut(rest, "} ")
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			counts[labels] = v
		}
	}
	// Six writes per order: the key's claim, the unpaid count, the name,
	// the expiry timer, the commit and the key's outcome.
	writes, waits, syncs := counts[`count="writes"`], counts[`count="waits"`], counts[`count="syncs"`]
	if writes < 6*keys || syncs < 1 {
		t.Fatalf("group commit metrics %v: want at least %d writes and a sync", counts, 6*keys)
	}
	if syncs >= waits {
		t.Fatalf("group commit metrics %v: %v syncs for %v waits, none shared", counts, syncs, waits)
	}
	t.Logf("%v waits shared %v syncs", waits, syncs)

	// The read models (synced, after the commits' sync) answer for each order.
	for i, pair := range answers {
		rep := pair[0].rep
		if pair[0].err != nil {
			rep = pair[1].rep
		}
		var view api.OrderView
		e.call(t, "bankbook.q.order.get", api.GetOrderRequest{OrderID: ids[i], ReadAfter: api.ReadAfter{MinSeq: rep.Written.Seq}}, &view, nil)
		if view.OrderID != ids[i] || view.DepositorName != rep.DepositorName {
			t.Fatalf("order %s reads as %+v, want its depositor name %q", ids[i], view, rep.DepositorName)
		}
	}

	// A later repeat replays the stored answer.
	var rep api.SubmitOrderReply
	r := e.call(t, subjSubmit, map[string]any{"buyer_id": "gc-u-5", "buyer_name": "이영희", "amount": 10005}, &rep, client.WithIdempotencyKey("gc-key-5"))
	if !r.Replayed || rep.OrderID != ids[5] {
		t.Fatalf("a later repeat got order %s (replayed %v), want %s replayed", rep.OrderID, r.Replayed, ids[5])
	}
}
